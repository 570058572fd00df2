"""Row-wise table linearization: each value beside its label and column header."""

from __future__ import annotations

from pathlib import Path

from ragsys.generate.config import GeneratorConfig
from ragsys.generate.prompt import build_prompt
from ragsys.generate.tables import linearize_tables
from tests.fixtures.factories import make_hit

SEGMENTS = """Acme reported revenue of $48.2 million.

|Segment|Q3 2025 revenue ($M)|Q3 2024 revenue ($M)|Change|
|---|---|---|---|
|Warehouse automation|29.6|22.1|+34%|
|Total|48.2|40.8|+18%|

Outlook follows."""


def test_each_value_sits_beside_its_row_label_and_column_header() -> None:
    lines = linearize_tables(SEGMENTS).split("\n")
    assert "Warehouse automation: Q3 2025 revenue ($M) 29.6; Q3 2024 revenue ($M) 22.1; Change +34%." in lines
    assert "Total: Q3 2025 revenue ($M) 48.2; Q3 2024 revenue ($M) 40.8; Change +18%." in lines
    assert lines[0] == "Acme reported revenue of $48.2 million." and lines[-1] == "Outlook follows."
    assert not any(line.startswith("|") for line in lines)


def test_filing_tables_drop_lone_currency_cells_and_take_headers_from_a_body_row() -> None:
    table = (
        "|||Three Months Ended|||\n|---|---|---|---|---|\n"
        "|(In Millions)||Apr 1, 2023||Apr 2, 2022|\n"
        "|Net cash used for investing activities|$|(8,521)|$|(2,639)|\n"
        "|Operating activities:||||\n"
    )
    lines = linearize_tables(table).split("\n")
    assert "(In Millions)" in lines  # the unit is kept
    assert "Net cash used for investing activities: Apr 1, 2023 (8,521); Apr 2, 2022 (2,639)." in lines
    assert lines[-2:] == ["Operating activities:", ""]  # a section row stays; the text's last newline too


def test_years_are_column_headers_and_a_count_mismatch_lists_values_unlabelled() -> None:
    table = "|Item|2024|2023|\n|---|---|---|\n|Cash|$|27,502|34,940|\n|Debt|1,000||\n"
    lines = linearize_tables(table).split("\n")
    assert "Cash: 2024 27,502; 2023 34,940." in lines
    assert "Debt: 1,000." in lines  # one value for two columns: never guessed into one of them


def test_text_without_a_table_is_unchanged() -> None:
    for text in ("No tables here.\n\nTwo paragraphs.", "a | b | c", "|not a table|\nno separator", ""):
        assert linearize_tables(text) == text


def test_the_prompt_reads_rows_by_default_and_markdown_when_asked(tmp_path: Path) -> None:
    from ragsys.models import load_tokenizer
    from tests.fixtures.tiny_models import make_tiny_causal_lm

    tok = load_tokenizer(str(make_tiny_causal_lm(tmp_path)))
    hit = make_hit("c1", SEGMENTS, chunk_source="/r/acme.pdf")
    assert GeneratorConfig().tables == "rows"
    rows = build_prompt("q?", [hit], tok, system_prompt="s", context_tokens=900, tables="rows")
    raw = build_prompt("q?", [hit], tok, system_prompt="s", context_tokens=900, tables="markdown")
    assert "Warehouse automation: Q3 2025 revenue ($M) 29.6" in rows.passages[0].text
    assert "|Warehouse automation|29.6|" in raw.passages[0].text
    assert rows.passages[0].hit.chunk.text == SEGMENTS  # citations still resolve to the stored chunk
