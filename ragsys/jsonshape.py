"""The JSON shapes users' scripts read: `search --json` hits and the `ask --json` answer
(the HTTP API returns the same answer shape)."""

from __future__ import annotations

from ragsys.types import Answer, Hit


def hit_json(h: Hit) -> dict[str, object]:
    """A hit as `ragsys search --json` shows it (and `ask --json` lists its contexts)."""
    c = h.chunk
    return {"doc": c.doc_id, "page_start": c.page_start, "page_end": c.page_end, "chunk_id": c.id,
            "score": h.score, "text": c.text}  # fmt: skip


def answer_json(answer: Answer) -> dict[str, object]:
    """The `ragsys ask --json` shape (the HTTP API returns the same); `Pipeline.answer` put the
    retrieval time into `answer.timings` beside the generator's."""
    return {
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [
            {"n": c.n, "doc": c.doc, "page_start": c.page_start, "page_end": c.page_end,
             "chunk_id": c.chunk_id, "text": c.text}
            for c in answer.citations
        ],
        "contexts": [
            {"n": n, **hit_json(h)} for n, h in enumerate(answer.contexts, start=1)
        ],
        "dropped_citations": answer.dropped_citations,
        "timings": answer.timings,
        "backend": answer.backend,  # the generator's runtime: transformers, llama-cpp or openai
    }  # fmt: skip
