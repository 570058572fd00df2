"""The report's per-question section: every answer beside its reference, citations and passages.

A metric table says that answers fail, not why. This section lists each question with the
answer (its `[n]` citations linked to the passages they name), the reference answer, the
passages the generator was given (document and pages, the first few hundred characters), and
the question's metrics. Column headers sort the table; the filter keeps only the failures a
domain expert looks at first (a missed figure, no citation, an abstention, a wrong label).
It is plain HTML with a few lines of inline script, so the report stays one file.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Columns shown when the run has them, in this order; the rest of a question's metrics follow.
FIRST = ("numeric_match", "no_citation_rate", "citation_precision", "token_f1", "abstained", "label_accuracy")
FAILURES = {
    "all": "every question",
    "numeric": "numeric_match = 0 (a figure missed or wrong)",
    "uncited": "cited nothing and did not abstain",
    "miscited": "a cited figure its citation's passages do not state",
    "abstained": "abstained",
    "label": "wrong label",
}
_CITATION = re.compile(r"\[(\d+)\]")
_SCRIPT = """
<script>
(function () {
  const table = document.getElementById("answers");
  const body = table.tBodies[0];
  table.querySelectorAll("th[data-col]").forEach(function (th) {
    th.addEventListener("click", function () {
      const col = th.dataset.col, up = th.dataset.dir !== "asc";
      th.dataset.dir = up ? "asc" : "desc";
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = a.dataset[col], y = b.dataset[col];
        const nx = parseFloat(x), ny = parseFloat(y);
        const c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.getElementById("failures").addEventListener("change", function (e) {
    const want = e.target.value;
    Array.from(body.rows).forEach(function (r) {
      r.hidden = want !== "all" && r.dataset["fail_" + want] !== "1";
    });
  });
})();
</script>
"""


def answers_section(
    answers: Mapping[str, Mapping[str, Any]], per_query: Mapping[str, Mapping[str, float]]
) -> str:
    """The per-question table (empty when the run generated no answers)."""
    if not answers:
        return ""
    metrics = _columns(per_query, answers)
    options = "".join(f"<option value='{k}'>{html.escape(v)}</option>" for k, v in FAILURES.items())
    head = "".join(f"<th data-col='{_key(m)}' title='sort'>{html.escape(m)}</th>" for m in metrics)
    rows = "".join(_row(qid, answers[qid], per_query.get(qid, {}), metrics) for qid in answers)
    return (
        "<h2>Answers</h2><p>Click a column to sort; show only: "
        f"<select id='failures'>{options}</select></p>"
        f"<table id='answers' class='answers'><thead><tr><th data-col='id'>id</th>"
        f"<th data-col='question'>question, answer and reference</th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>{_SCRIPT}"
    )


def _columns(per_query: Mapping[str, Mapping[str, float]], answers: Mapping[str, Any]) -> list[str]:
    seen = list(dict.fromkeys(m for qid in answers for m in per_query.get(qid, {})))
    return [m for m in FIRST if m in seen] + [m for m in seen if m not in FIRST]


def _key(metric: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", metric.lower())


def _row(qid: str, a: Mapping[str, Any], values: Mapping[str, float], metrics: Sequence[str]) -> str:
    anchor = f"q-{_key(qid)}"
    fails = {
        "numeric": values.get("numeric_match") == 0.0,
        "uncited": values.get("no_citation_rate") == 1.0,
        "miscited": values.get("cited_figure_support", 1.0) < 1.0,
        "abstained": bool(a.get("abstained")),
        "label": values.get("label_accuracy") == 0.0,
    }
    data = [
        f"data-id='{html.escape(qid, quote=True)}'",
        f"data-question='{html.escape(str(a.get('question', '')), quote=True)}'",
    ]
    data += [f"data-{_key(m)}='{values[m]}'" if m in values else f"data-{_key(m)}=''" for m in metrics]
    data += [f"data-fail_{k}='{int(v)}'" for k, v in fails.items()]
    cells = "".join(f"<td>{values[m]:.3g}</td>" if m in values else "<td>&mdash;</td>" for m in metrics)
    question, answer = html.escape(str(a.get("question", ""))), _linked(str(a.get("answer", "")), anchor)
    reference = html.escape(str(a.get("reference", ""))) or "&mdash;"
    passages = _passages(a.get("passages") or [], anchor, set(a.get("cited") or []))
    return (
        f"<tr id='{anchor}' {' '.join(data)}><td>{html.escape(qid)}</td><td class='qa'>"
        f"<b>Q:</b> {question}<br><b>A:</b> {answer}{_label(a)}<br><b>Reference:</b> {reference}"
        f"{passages}</td>{cells}</tr>"
    )


def _linked(answer: str, anchor: str) -> str:
    """The answer with each `[n]` a link to passage n below it."""
    escaped = html.escape(answer)
    return _CITATION.sub(lambda m: f"<a href='#{anchor}-p{m.group(1)}'>[{m.group(1)}]</a>", escaped)


def _label(a: Mapping[str, Any]) -> str:
    return f" <i>(label: {html.escape(str(a['label']))})</i>" if "label" in a else ""


def _passages(passages: Sequence[Mapping[str, Any]], anchor: str, cited: set[int]) -> str:
    if not passages:
        return ""
    items = "".join(
        f"<li id='{anchor}-p{p['n']}'{' class=cited' if p['n'] in cited else ''}>"
        f"[{p['n']}] <b>{html.escape(str(p['doc']).rsplit('/', 1)[-1])}</b>, {_pages(p)}: "
        f"{html.escape(str(p.get('text', '')))}</li>"
        for p in passages
    )
    summary = f"<summary>{len(passages)} passages given</summary>"
    return f"<details>{summary}<ol class='passages'>{items}</ol></details>"


def _pages(p: Mapping[str, Any]) -> str:
    start, end = p.get("page_start"), p.get("page_end")
    return f"p. {start}" if start == end else f"pp. {start}-{end}"
