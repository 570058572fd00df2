"""Synthetic training questions for corpora without labels (doc2query with a small chat model).

A sample of the index's chunks is shown to a local instruction-tuned LM, which writes a
question each chunk answers. Small models write plenty of junk, so two filters follow:

* cleaning (`clean_question`): the first line with a '?', cut there, no "Question:" labels or list
  markers, within length bounds, not about "the passage" (a user searching a corpus never
  says that), and no duplicates;
* round trip (`round_trip_filter`, as in Promptagator and InPars): a question is kept only if
  the pipeline's own retrieval finds its chunk (or, by default, its document) in the top k --
  otherwise it is too vague or not answered by the chunk, and would teach the ranker noise.

Generation is the expensive part, so pairs are saved as JSONL (`save_pairs` / `load_pairs`)
by chunk id, and a rerun reads them back instead of generating again.

Example:
    >>> search = cfg.build(index)  # doctest: +SKIP
    >>> result = synthetic_pairs(index, search, SyntheticConfig(n_chunks=500))  # doctest: +SKIP
    >>> result.generated, result.well_formed, result.kept  # doctest: +SKIP
    (500, 431, 288)
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ragsys.types import Chunk, Frozen

if TYPE_CHECKING:  # annotations only: SyntheticConfig loads light (`ragsys tune` embeds it in its settings)
    import torch

    from ragsys.index.reader import Index
    from ragsys.pipeline import Pipeline
    from ragsys.train.budget import Progress

DEFAULT_PROMPT = (
    "Write one question that this passage answers. The question must make sense on its own, "
    "as a search query, without seeing the passage. Reply with the question only.\n\n"
    "Passage:\n{passage}"
)
_LABEL = re.compile(
    r"^\s*(?:(?:question|query|q)\s*\d*\s*[:.)\-]|\d+\s*[.)]|[-*#>\u2022]+)\s*", re.IGNORECASE
)
_QUOTES = "\"'`*\u201c\u201d\u2018\u2019 "
# "The question would be: ...", "Here is a question: ...": everything up to such a colon goes.
_PREAMBLE = re.compile(r"^[^?]*\bquestions?\b[^?:]*:\s*", re.IGNORECASE)
# Questions that only make sense next to the passage; real searchers never write them.
_REFERS_TO_PASSAGE = re.compile(
    r"\b(?:the|this|above|given)\s+(?:passage|text|article|excerpt|paragraph|abstract|document|author"
    r"|question|answer)s?\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")

Pair = tuple[str, Chunk]


class SyntheticConfig(Frozen):
    model: str = "smollm2-135m"
    n_chunks: int = Field(default=1000, ge=1, description="chunks sampled from the index")
    questions_per_chunk: int = Field(default=1, ge=1)
    max_new_tokens: int = Field(default=48, ge=4)
    temperature: float = Field(default=0.7, ge=0, description="0: greedy")
    top_p: float = Field(default=0.95, gt=0, le=1)
    seed: int = 0
    batch_size: int = Field(default=8, ge=1, description="chunks per generate call")
    round_trip_k: int = Field(default=20, ge=1)
    round_trip_level: Literal["chunk", "doc"] = "doc"
    min_chunk_tokens: int = Field(default=32, ge=0, description="shorter chunks say too little to ask about")
    max_passage_tokens: int = Field(
        default=384, ge=16, description="the passage is cut to this in the prompt"
    )
    min_chars: int = Field(default=15, ge=1)
    max_chars: int = Field(default=200, ge=1)
    prompt: str = DEFAULT_PROMPT
    # Written as the start of the model's reply: a 135M model asked for a question otherwise often
    # summarizes the passage instead; after this prefix it can only go on with a question.
    reply_prefix: str = "Question:"

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        if "{passage}" not in self.prompt:
            raise ValueError("prompt must contain {passage}, where the chunk's text goes")
        if self.temperature == 0 and self.questions_per_chunk > 1:
            raise ValueError("greedy decoding (temperature 0) writes the same question each time; sample")
        return self


class SyntheticResult(Frozen):
    pairs: tuple[Pair, ...]  # the kept (question, chunk) pairs
    sampled: int  # chunks shown to the model
    generated: int  # raw generations
    well_formed: int  # left after cleaning and deduplication
    kept: int  # left after the round trip

    @property
    def rejected(self) -> int:
        return self.generated - self.kept


# --- cleaning -------------------------------------------------------------------------------


def clean_question(text: str, min_chars: int = 15, max_chars: int = 200) -> str | None:
    """The question in a raw generation, or None if there is no usable one (see module docstring)."""
    # Small models often preface the question ("Sure! Here is one:"): take the first line asking one.
    line = next((ln for ln in text.splitlines() if "?" in ln), "")
    line = _PREAMBLE.sub("", line, count=1)
    while (stripped := _LABEL.sub("", line.strip(_QUOTES), count=1)) != line:
        line = stripped
    end = line.find("?")
    if end < 0:
        return None
    question = " ".join(line[: end + 1].split()).lstrip(_QUOTES)
    ok = (
        min_chars <= len(question) <= max_chars
        and len(_WORD.findall(question)) >= 3
        and question[0].isalnum()
        and not _REFERS_TO_PASSAGE.search(question)
    )
    return question if ok else None


def dedupe_key(question: str) -> str:
    return " ".join(_WORD.findall(question.lower()))


# --- generation -----------------------------------------------------------------------------


def write_questions(
    model: Any,
    tokenizer: Any,
    chunks: Sequence[Chunk],
    config: SyntheticConfig,
    progress: Progress | None = None,
) -> list[Pair]:
    """`questions_per_chunk` generations per chunk, cleaned and deduplicated (first one wins).

    Batches are seeded by their position, so the same chunks and config give the same questions.
    """
    out: list[Pair] = []
    seen: set[str] = set()
    for start in range(0, len(chunks), config.batch_size):
        batch = chunks[start : start + config.batch_size]
        prompts = [prompt_ids(tokenizer, c, config) for c in batch]
        texts = generate(model, tokenizer, prompts, config, seed=config.seed + start)
        for i, text in enumerate(texts):
            q = clean_question(text, config.min_chars, config.max_chars)
            if q is not None and (key := dedupe_key(q)) not in seen:
                seen.add(key)
                out.append((q, batch[i // config.questions_per_chunk]))
        if progress is not None:
            progress(start + len(batch), len(chunks))
    return out


def prompt_ids(tokenizer: Any, chunk: Chunk, config: SyntheticConfig) -> list[int]:
    """The chat-templated prompt for one chunk; the passage is cut to `max_passage_tokens`."""
    ids = tokenizer.encode(chunk.text, add_special_tokens=False)[: config.max_passage_tokens]
    passage = tokenizer.decode(ids, skip_special_tokens=True).strip()
    messages = [{"role": "user", "content": config.prompt.replace("{passage}", passage)}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text += config.reply_prefix
    encoded: list[int] = tokenizer.encode(text, add_special_tokens=False)  # the template wrote the markers
    return encoded


def generate(
    model: Any, tokenizer: Any, prompts: Sequence[list[int]], config: SyntheticConfig, seed: int
) -> list[str]:
    """One batched `generate` over left-padded prompts; `questions_per_chunk` outputs per prompt, in order."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask = left_pad(prompts, pad, model.device)
    sampling: dict[str, Any] = (
        {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p, "top_k": 0}
        if config.temperature > 0
        else {"do_sample": False}
    )
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # generate draws from the global RNG; fork_rng keeps the caller's intact
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=config.max_new_tokens,
            num_return_sequences=config.questions_per_chunk,
            pad_token_id=pad,
            stop_strings=["?"],  # a sequence is done at its first '?'; the batch ends when all are
            tokenizer=tokenizer,
            **sampling,
        )
    texts: list[str] = tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
    return texts


def left_pad(prompts: Sequence[list[int]], pad: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder-only models continue from the last position, so padding goes on the left."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], dtype=torch.long, device=device)
    mask = torch.tensor(
        [[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long, device=device
    )
    return ids, mask


# --- sampling, round trip, the whole step ---------------------------------------------------


def sample_chunks(
    index: Index, n: int, min_tokens: int, count: Callable[[str], int], seed: int
) -> list[Chunk]:
    """Up to `n` chunks in a seeded random order, skipping those shorter than `min_tokens`."""
    rows = list(range(index.store.num_chunks()))
    random.Random(seed).shuffle(rows)
    picked: list[Chunk] = []
    for start in range(0, len(rows), 256):
        for chunk in index.chunks(rows[start : start + 256]):
            if count(chunk.text) >= min_tokens:
                picked.append(chunk)
                if len(picked) == n:
                    return picked
    return picked


def round_trip_filter(
    pairs: Sequence[Pair], search: Pipeline, k: int, level: Literal["chunk", "doc"] = "doc"
) -> list[Pair]:
    """Pairs whose chunk (level "chunk") or the chunk's document (level "doc": when a document is
    split into many chunks, a neighbouring chunk answering the question is no failure) is in the
    top `k` of `search` for the question."""
    if not pairs:
        return []
    runs = search.search_many([q for q, _ in pairs], k)
    kept: list[Pair] = []
    for (q, chunk), hits in zip(pairs, runs, strict=True):
        top = hits[:k]
        found = any(h.chunk.id == chunk.id for h in top) or (
            level == "doc" and any(h.chunk.doc_id == chunk.doc_id for h in top)
        )
        if found:
            kept.append((q, chunk))
    return kept


def synthetic_pairs(
    index: Index, search: Pipeline, config: SyntheticConfig, progress: Progress | None = None
) -> SyntheticResult:
    """Samples chunks, writes questions with `config.model`, cleans them and keeps the round-trip ones."""
    from ragsys.models import default_device, load_causal_lm

    model, tokenizer = load_causal_lm(config.model)
    model.to(default_device())  # type: ignore[arg-type]  # transformers' `to` is loosely annotated

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    chunks = sample_chunks(index, config.n_chunks, config.min_chunk_tokens, count, config.seed)
    pairs = write_questions(model, tokenizer, chunks, config, progress)
    kept = round_trip_filter(pairs, search, config.round_trip_k, config.round_trip_level)
    return SyntheticResult(
        pairs=tuple(kept),
        sampled=len(chunks),
        generated=len(chunks) * config.questions_per_chunk,
        well_formed=len(pairs),
        kept=len(kept),
    )


# --- the cache ------------------------------------------------------------------------------


def save_pairs(path: Path, pairs: Sequence[Pair]) -> None:
    """One `{"question", "chunk_id"}` object per line; chunks are looked up again on load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"question": q, "chunk_id": c.id}, ensure_ascii=False) for q, c in pairs]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def load_pairs(path: Path, index: Index) -> list[Pair]:
    """Pairs saved by `save_pairs`, in order; pairs whose chunk is no longer in the index are dropped
    (a changed document gets new chunks, and questions about the old text may not fit them)."""
    raw: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            raw.append((str(obj["question"]), str(obj["chunk_id"])))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a synthetic pair ({e})") from e
    rows = index.store.rows_of_chunk_ids({cid for _, cid in raw})
    present = [(q, cid) for q, cid in raw if cid in rows]
    chunks = index.chunks([rows[cid] for _, cid in present])
    return [(q, c) for (q, _), c in zip(present, chunks, strict=True)]


def cached_pairs(
    path: Path,
    index: Index,
    search: Callable[[], Pipeline],
    config: SyntheticConfig,
    progress: Progress | None = None,
) -> tuple[list[Pair], SyntheticResult | None]:
    """The pairs an earlier run saved at `path`, else freshly written and saved there; the
    result (counts of what was generated and kept) is None when they were read back. `search`
    builds the round trip's pipeline, only when questions are written."""
    if path.exists():
        return load_pairs(path, index), None
    result = synthetic_pairs(index, search(), config, progress)
    save_pairs(path, result.pairs)
    return list(result.pairs), result
