"""Sentence spans: where a sentence may start and end."""

from __future__ import annotations

from ragsys.chunk.spans import sentence_spans


def test_sentence_spans_skip_abbreviations_and_initials() -> None:
    text = "See Fig. 2 and e.g. Table 1 by J. Smith. Results were clear! Next one? Yes."
    sentences = [text[a:b] for a, b in sentence_spans(text, 0, len(text))]
    assert sentences == [
        "See Fig. 2 and e.g. Table 1 by J. Smith.",
        "Results were clear!",
        "Next one?",
        "Yes.",
    ]
