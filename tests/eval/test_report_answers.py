"""The report's per-question section: rendered, linked and filterable; sorted and filtered in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragsys.eval.report import render_html
from ragsys.eval.report_answers import answers_section


def _passage(page: int, end: int, text: str) -> dict[str, Any]:
    return {"n": 1, "doc": "/d/a.pdf", "page_start": page, "page_end": end, "text": text}


ANSWERS: dict[str, dict[str, Any]] = {
    "q1": {
        "question": "What was revenue?", "answer": "Revenue was $5 million [1].", "reference": "$5 million",
        "abstained": False, "cited": [1], "passages": [_passage(3, 3, "Revenue $5 million")],
    },
    "q2": {
        "question": "What was net income?", "answer": "It was $9 million.", "reference": "$2 million",
        "abstained": False, "cited": [], "passages": [_passage(4, 5, "Net income <b>$2m</b>")],
    },
    "q3": {
        "question": "Who audits?", "answer": "I cannot answer.", "reference": "", "abstained": True,
        "passages": [],
    },
}  # fmt: skip
PER_QUERY = {
    "q1": {"numeric_match": 1.0, "no_citation_rate": 0.0, "token_f1": 0.8},
    "q2": {"numeric_match": 0.0, "no_citation_rate": 1.0, "token_f1": 0.2, "cited_figure_support": 0.5},
    "q3": {"no_citation_rate": 0.0, "abstained": 1.0, "token_f1": 0.0},
}


def test_each_question_shows_its_answer_reference_passages_and_metrics() -> None:
    page = answers_section(ANSWERS, PER_QUERY)
    assert page.count("<tr id='q-") == 3
    assert "<a href='#q-q1-p1'>[1]</a>" in page and "id='q-q1-p1' class=cited" in page
    assert "pp. 4-5" in page and "&lt;b&gt;$2m&lt;/b&gt;" in page  # passage text escaped
    assert (
        "data-fail_numeric='1'" in page
        and "data-fail_uncited='1'" in page
        and "data-fail_abstained='1'" in page
        and page.count("data-fail_miscited='1'") == 1  # q2 alone: q1 has no such score
    )
    headers = page.split("<tbody>")[0]
    assert headers.index("numeric_match") < headers.index("no_citation_rate") < headers.index("token_f1")


def test_the_full_report_includes_the_section_and_runs_without_answers() -> None:
    record = {"name": "r", "n": 3, "metrics": {"token_f1": 0.33}, "ci95": {"token_f1": [0.1, 0.6]},
              "per_query": PER_QUERY, "answers": ANSWERS}  # fmt: skip
    assert "id='answers'" in render_html(record)
    assert "id='answers'" not in render_html({**record, "answers": {}})


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (install the system chromium package)"
)
def test_sorting_and_filtering_work_in_a_browser(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    record = {"name": "r", "n": 3, "metrics": {"token_f1": 0.33}, "ci95": {"token_f1": [0.1, 0.6]},
              "per_query": PER_QUERY, "answers": ANSWERS}  # fmt: skip
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(record), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(page_file.as_uri())

        def ids() -> list[str]:
            shown: list[str] = page.eval_on_selector_all(
                "#answers tbody tr:not([hidden])", "rs => rs.map(r => r.dataset.id)"
            )
            return shown

        assert ids() == ["q1", "q2", "q3"]
        page.click("th[data-col='token_f1']")
        assert ids() == ["q3", "q2", "q1"]  # ascending
        page.click("th[data-col='token_f1']")
        assert ids() == ["q1", "q2", "q3"]  # descending
        page.select_option("#failures", "numeric")
        assert ids() == ["q2"]
        page.select_option("#failures", "abstained")
        assert ids() == ["q3"]
        page.select_option("#failures", "all")
        assert len(ids()) == 3
        browser.close()
