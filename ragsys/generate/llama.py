"""The quantized CPU backend: llama.cpp (`llama-cpp-python`) on a Q8_0 GGUF of the generator.

Why llama.cpp: on the project's 2-core CPU it decodes SmolLM2-135M about 4x faster than
transformers fp32 end to end (a 441-token prompt and 64 greedy tokens; eval/bench/generate.py),
while CTranslate2 int8 ran at transformers' speed on this small model (the issue's
measurement, repeated in docs/results.md). It also reads the model's own format: the bundled
SmolLM2 ships as a GGUF.

The GGUF it runs is made once per model and adapter (`gguf_export.write_gguf`): base weights
plus the merged LoRA adapter, Q8_0, cached under `<cache>/gguf/` by the content digest of the
weights, so a fine-tuned pipeline answers on this path too and a changed adapter re-exports.

The decoding loop is ragsys's own, over llama.cpp's `eval` and last-token logits: prompts are
the transformers tokenizer's ids (so packing, stop strings, citations and streaming are the
transformers backend's), greedy is argmax as in `generate`, sampling is temperature then
nucleus with a seeded numpy generator, and a prompt that shares a prefix with the previous
one (the label step after an answer) reuses its KV cache.

Example:
    >>> gen = GeneratorConfig(backend="llama-cpp").build()  # doctest: +SKIP
    >>> gen.generate("What grew?", hits).backend  # doctest: +SKIP
    'llama-cpp'
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragsys.generate.config import GeneratorConfig
from ragsys.generate.figure_guard import TOP_K
from ragsys.generate.local import LocalGenerator
from ragsys.generate.watch import TextWatch

if TYPE_CHECKING:
    from ragsys.generate.prompt import ChatTokenizer

EXPORT_VERSION = "q8_0-v1"  # part of the cache key: a change in how GGUFs are written re-exports
MAX_CONTEXT = 8192  # KV cache cells allocated at most; prompts are budgeted far below this


@functools.cache
def note(message: str) -> None:
    """Said once per process on stderr (a fallback is worth one line, not one per answer)."""
    print(f"ragsys: {message}", file=sys.stderr, flush=True)


def build_llama(config: GeneratorConfig, *, required: bool) -> LocalGenerator | None:
    """The generator on llama.cpp, or None (with a note) when it cannot run here and the
    backend is "auto"; with backend "llama-cpp" the reason is an error instead."""
    from ragsys.generate.gguf_export import GgufExportError
    from ragsys.models import ModelLoadError

    try:
        import llama_cpp
    except ImportError:
        reason = "llama-cpp-python is not installed (`make install` builds it)"
        if required:
            raise ModelLoadError(f"backend 'llama-cpp': {reason}") from None
        note(f"{reason}; answering with transformers, about 4x slower")
        return None
    try:
        path, tokenizer = exported(config)
    except GgufExportError as e:
        if required:
            raise ModelLoadError(f"backend 'llama-cpp': {e}") from e
        note(f"{e}; answering {config.model!r} with transformers")
        return None
    window = getattr(tokenizer, "model_max_length", MAX_CONTEXT)
    threads = config.threads or _cpus()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=min(int(window), MAX_CONTEXT),
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=True,  # measured: prefill of a 441-token prompt 0.53 -> 0.41 s
        seed=config.seed,
        verbose=False,
    )
    return LocalGenerator(config, LlamaDecoder(llm, _eos_ids(tokenizer, llm)), tokenizer)


def exported(config: GeneratorConfig) -> tuple[Path, ChatTokenizer]:
    """The cached GGUF for the config's model and adapter (written if missing) and its tokenizer."""
    from ragsys.generate.chat_tokenizer import chat_tokenizer
    from ragsys.generate.gguf_export import GgufExportError, write_gguf
    from ragsys.generate.hf import load_adapter
    from ragsys.models import (
        ModelLoadError,
        alias_gguf,
        cache_dir,
        folder_digest,
        load_causal_lm,
        local_folder,
        resolve_adapter,
    )

    try:
        base = local_folder(config.model)
    except ModelLoadError as e:
        raise GgufExportError(str(e)) from e
    parts = [EXPORT_VERSION, folder_digest(base)]
    if config.adapter is not None:
        parts.append(folder_digest(resolve_adapter(config.adapter)))
    out = cache_dir() / "gguf" / (hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24] + ".gguf")
    tokenizer = chat_tokenizer(base)
    if not getattr(tokenizer, "chat_template", None):
        raise GgufExportError(f"model {config.model!r} has no chat template")
    if not out.is_file():
        what = f"{config.model!r}{' + adapter' if config.adapter else ''}"
        note(f"writing {what} as GGUF for llama.cpp (once): {out}")
        model, _ = load_causal_lm(str(base))
        if config.adapter is not None:
            model = load_adapter(model, config.adapter)
        donor = alias_gguf(config.model)
        write_gguf(model, out, donor=donor, tokenizer_dir=None if donor else base)
    return out, tokenizer


class LlamaDecoder:
    """Greedy or seeded sampling over llama.cpp's logits, one token at a time.

    One llama.cpp context holds one sequence, so calls are serialized by a lock (the server
    answers one request at a time per generator anyway).
    """

    name = "llama-cpp"

    def __init__(
        self, llm: Any, eos: frozenset[int], logits: Callable[[Any], npt.NDArray[np.float32]] | None = None
    ) -> None:
        """`llm` is a `llama_cpp.Llama`; `logits` reads its last-token logits (tests script both)."""
        self._llm, self._eos, self._lock = llm, eos, threading.Lock()
        self._read_logits = logits or last_logits
        weakref.finalize(self, llm.close)  # before interpreter teardown, not from __del__ after it

    def run(self, prompt_ids: Sequence[int], watch: TextWatch, config: GeneratorConfig) -> list[int]:
        rng = np.random.default_rng(config.seed) if config.do_sample else None
        new: list[int] = []
        with self._lock:
            self._prefill(prompt_ids)
            for step in range(config.max_new_tokens):
                logits = self._logits()
                if step < config.min_new_tokens:
                    logits[list(self._eos)] = -np.inf
                if watch.steers:
                    top = np.argpartition(-logits, TOP_K)[:TOP_K]
                    ranked = top[np.argsort(-logits[top])].tolist()
                    logits[watch.blocked(ranked, greedy=not config.do_sample)] = -np.inf
                token = _pick(logits, config, rng)
                new.append(token)
                if token in self._eos or watch.push([token]) or step + 1 == config.max_new_tokens:
                    break
                self._llm.eval([token])
        return new

    def option_logprobs(self, prefix_ids: Sequence[int], options: Sequence[Sequence[int]]) -> list[float]:
        scores: list[float] = []
        with self._lock:
            for option in options:
                self._prefill(prefix_ids)  # after the first option: only the last prefix token
                total = 0.0
                for i, token in enumerate(option):
                    total += float(_log_softmax(self._logits())[token])
                    if i + 1 < len(option):
                        self._llm.eval([token])
                scores.append(total)
        return scores

    def forget(self) -> None:
        """Drop the cached prompt, so the next call evaluates its prompt in full (benchmarks
        time prefill this way; answering keeps the cache: questions share the system prompt)."""
        with self._lock:
            self._llm.n_tokens = 0

    def _prefill(self, ids: Sequence[int]) -> None:
        """Evaluate `ids`, keeping the KV cache of the longest prefix already evaluated."""
        llm, ids = self._llm, list(ids)
        cached = llm.input_ids[: llm.n_tokens].tolist()
        same = 0
        for a, b in zip(cached, ids, strict=False):
            if a != b:
                break
            same += 1
        same = min(same, len(ids) - 1)  # at least one token is evaluated, so its logits exist
        llm.n_tokens = same  # eval() drops the cache past n_tokens before decoding
        llm.eval(ids[same:])

    def _logits(self) -> npt.NDArray[np.float32]:
        return self._read_logits(self._llm)


def last_logits(llm: Any) -> npt.NDArray[np.float32]:
    """The logits after the last evaluated token, copied out of llama.cpp's buffer."""
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(int(llm.n_vocab()),)).astype(np.float32)


def _pick(logits: npt.NDArray[np.float32], config: GeneratorConfig, rng: np.random.Generator | None) -> int:
    """Argmax (ties: the lowest id, as torch's argmax), or temperature then nucleus sampling."""
    if rng is None:
        return int(np.argmax(logits))
    probs = np.exp(_log_softmax(logits / config.temperature))
    order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, config.top_p)) + 1]  # the smallest set reaching top_p
    return int(rng.choice(keep, p=probs[keep] / probs[keep].sum()))


def _log_softmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = x.astype(np.float64) - float(np.max(x))
    return shifted - float(np.log(np.exp(shifted).sum()))


def _eos_ids(tokenizer: Any, llm: Any) -> frozenset[int]:
    ids = {int(llm.token_eos())}
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    return frozenset(i for i in ids if i >= 0)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        return os.cpu_count() or 1


def gguf_path_for(config: GeneratorConfig) -> Path:
    """Where the config's GGUF is (written if missing): benchmarks and `ragsys serve` tests run it."""
    return exported(config)[0]
