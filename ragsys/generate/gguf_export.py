"""Writing a transformers Llama-family model (a LoRA-merged generator) as a GGUF file for llama.cpp.

The quantized backend (`ragsys.generate.llama`) runs GGUF files. The bundled SmolLM2 ships as
one; a generator fine-tuned with LoRA does not, so its adapter is merged into the base weights
and the result written here, once, through the `gguf` package's own writer, name map and
quantizers (no graph code: a GGUF holds named tensors and key/value metadata).

What is copied and what is written:

* Metadata: the architecture numbers (layers, heads, widths, rope) come from the model's
  config. The tokenizer (vocabulary, merges, special ids, chat template) is copied from a
  *donor* GGUF when the base model came from one (the bundled SmolLM2), so llama.cpp's
  vocabulary is exactly the original; otherwise it is read from the model folder's byte-level
  BPE `tokenizer.json` with the `gguf` package's `BpeVocab` and `SpecialVocab`. ragsys hands
  llama.cpp token ids made by the transformers tokenizer and decodes its output with that
  tokenizer too, so llama.cpp's own tokenizer only has to load, never to agree.
* Tensors: matrices as Q8_0 (8-bit blocks of 32, about 0.4% error). Measured on this CPU
  (eval/bench/generate.py), Q8_0 runs SmolLM2 faster than the shipped Q4_1 (prefill about
  2x; llama.cpp's batched kernels favour 8-bit blocks) and keeps a LoRA's small delta, which
  re-quantizing to 4 bits would mostly erase. Q8_0 of Q4_1-dequantized values is lossless
  up to the block scale, so the base model answers as its GGUF does. Rows whose length is
  not a multiple of 32 (tiny test models) are written as F16, one-dimensional tensors as F32.

llama.cpp stores the query and key projections with each head's rotary halves interleaved,
which its own converter does by permuting rows; `permute_qk` is that permutation and
`transformers`' GGUF loader undoes it, so a written file loads back into transformers exactly.

Example:
    >>> write_gguf(merged_model, Path("tuned.gguf"), donor=Path("SmolLM2.Q4_1.gguf"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import gguf

SUPPORTED = ("llama",)  # model_type values whose tensor layout this module writes
Q8_BLOCK = 32


class GgufExportError(ValueError):
    """The model cannot be written as GGUF by ragsys; the message says what to use instead."""


def permute_qk(weights: npt.NDArray[Any], n_head: int) -> npt.NDArray[Any]:
    """Rows of a (heads * head_dim, in) projection reordered as llama.cpp expects: within each
    head, the two rotary halves interleaved (transformers' GGUF loader applies the inverse)."""
    dim = weights.shape[0] // n_head // 2
    return weights.reshape(n_head, 2, dim, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def write_gguf(
    model: Any, out: Path, *, donor: Path | None = None, tokenizer_dir: Path | None = None
) -> Path:
    """`model` (a transformers causal LM, e.g. base + merged LoRA) as a GGUF file at `out`, its
    tokenizer copied from `donor` (a GGUF) or read from `tokenizer_dir` (a transformers folder).

    Written under a temporary name and renamed, so `out` existing means a complete file.
    """
    import gguf

    config = model.config
    if getattr(config, "model_type", None) not in SUPPORTED:
        raise GgufExportError(
            f"the llama.cpp backend converts {', '.join(SUPPORTED)} models only, not "
            f"{getattr(config, 'model_type', '?')!r}; use backend='transformers' for this generator"
        )
    if donor is None and tokenizer_dir is None:
        raise ValueError("write_gguf needs a donor GGUF or a tokenizer folder")
    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp_name, "llama")
        _write_architecture(writer, config)
        if donor is not None:
            _copy_tokenizer(writer, gguf.GGUFReader(donor), donor)
        else:
            assert tokenizer_dir is not None
            _write_tokenizer(writer, tokenizer_dir, int(config.vocab_size))
        for name, data, qtype in _tensors(state, config):
            writer.add_tensor(name, data, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        Path(tmp_name).chmod(0o644)  # mkstemp makes it private; the cache is a plain shared folder
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out


def _write_architecture(writer: gguf.GGUFWriter, config: Any) -> None:
    import gguf

    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(int(config.num_hidden_layers))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(getattr(config, "num_key_value_heads", None) or heads))
    writer.add_rope_dimension_count(int(head_dim))
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _copy_tokenizer(writer: gguf.GGUFWriter, reader: gguf.GGUFReader, donor: Path) -> None:
    import gguf

    if reader.fields["general.architecture"].contents() != "llama":
        raise GgufExportError(f"{donor} is not a llama GGUF; its tokenizer cannot be reused")
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            main = field.types[0]
            sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), main, sub)


def _write_tokenizer(writer: gguf.GGUFWriter, folder: Path, vocab_size: int) -> None:
    """A byte-level BPE vocabulary (GPT-2 style, as Llama-family chat models use), padded to the
    model's embedding rows as llama.cpp requires."""
    import gguf
    from gguf.vocab import BpeVocab, SpecialVocab

    try:
        vocab = BpeVocab(folder)
    except (FileNotFoundError, ValueError) as e:
        raise GgufExportError(
            f"{folder}: the llama.cpp backend needs a byte-level BPE tokenizer.json ({e}); "
            "use backend='transformers' for this generator"
        ) from e
    tokens, types = [], []
    for text, _score, kind in vocab.all_tokens():
        tokens.append(text.encode("utf-8") if isinstance(text, str) else text)
        types.append(int(kind))
    for i in range(len(tokens), vocab_size):
        tokens.append(f"[PAD{i}]".encode())
        types.append(int(gguf.TokenType.UNUSED))
    writer.add_tokenizer_model(vocab.tokenizer_model)
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens[:vocab_size])
    writer.add_token_types(types[:vocab_size])
    special = SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    template = folder / "chat_template.jinja"  # transformers >= 4.47 saves the template here
    if not special.chat_template and template.is_file():
        special.chat_template = template.read_text(encoding="utf-8")
    special.add_to_gguf(writer)


def _rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None)  # transformers >= 5 keeps it here
    if isinstance(params, Mapping) and "rope_theta" in params:
        return float(params["rope_theta"])
    return float(getattr(config, "rope_theta", 10000.0))


def _tensors(
    state: dict[str, npt.NDArray[np.float32]], config: Any
) -> Iterator[tuple[str, npt.NDArray[Any], gguf.GGMLQuantizationType]]:
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(config.num_hidden_layers))
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for hf_name, weights in state.items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise GgufExportError(f"no GGUF name for tensor {hf_name!r}; this model's layout is not llama's")
        if ".attn_q." in name:
            weights = permute_qk(weights, heads)
        elif ".attn_k." in name:
            weights = permute_qk(weights, kv_heads)
        yield _encoded(name, weights)


def _encoded(
    name: str, weights: npt.NDArray[np.float32]
) -> tuple[str, npt.NDArray[Any], gguf.GGMLQuantizationType]:
    import gguf

    if weights.ndim == 1:
        return name, weights.astype(np.float32), gguf.GGMLQuantizationType.F32
    if weights.shape[-1] % Q8_BLOCK:
        return name, weights.astype(np.float16), gguf.GGMLQuantizationType.F16
    q8 = gguf.GGMLQuantizationType.Q8_0
    return name, gguf.quants.quantize(np.ascontiguousarray(weights), q8), q8
