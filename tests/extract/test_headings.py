"""Heading detection from font sizes and weights, and line joining."""

from __future__ import annotations

from ragsys.extract.headings import Line, block_parts, heading_style, join_lines


def test_heading_rules_on_lines() -> None:
    lines = [
        Line("Title", 20, True),
        Line("Intro", 14, True),
        Line("1", 14, False),
        Line("Body text here.", 10, False),
    ]
    style = heading_style(lines + [Line("More body text " * 5, 10, False)])
    assert style.body_size == 10 and style.levels == {20: 1, 14: 2}
    parts = block_parts(
        [Line("1", 14, False), Line("Methods", 14, False), Line("We did it.", 10, False)], style
    )
    assert [(p.kind, p.text, p.level) for p in parts] == [
        ("heading", "1 Methods", 2),
        ("paragraph", "We did it.", 0),
    ]
    bold_sentence = block_parts([Line("This whole line is bold.", 10, True)], style)
    assert bold_sentence[0].kind == "paragraph"  # ends like a sentence: emphasis, not a heading
    assert join_lines(["exam-", "ple of it"]) == "example of it"
