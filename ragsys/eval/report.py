"""Run records (JSON) and a self-contained HTML report, with comparison to a baseline run.

A run record is plain JSON so that any later run can be compared with it
(`--baseline RUN.json`) without the code that produced it::

    {
      "name": "bm25-scifact-test",
      "n": 300,                                      # queries with per-query values
      "metrics": {"ndcg@10": 0.66, ...},             # means of per_query (+ corpus-level extras)
      "ci95": {"ndcg@10": [0.62, 0.70], ...},        # percentile bootstrap of each mean
      "per_query": {"q1": {"ndcg@10": 1.0, ...}, ...},
      "seed": 0, "n_resamples": 10000,               # what the bootstrap used
      "config": {...},                               # whatever produced the run
      "run": {"q1": [["doc3", 12.1], ...], ...},     # optional: the ranking itself
      "comparison": {...}                            # only with a baseline: compare_runs()
    }

Any other key of `result` (split, dataset, timings) is kept as given. Metrics in
`result["metrics"]` that have no per-query values (macro-F1, say) are kept without a
CI; where both exist the per-query mean wins, so the table and its CIs agree.

The HTML has no external assets: charts are inline SVG, so the file can be mailed.
"""

from __future__ import annotations

import html
import json
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragsys.eval.report_answers import answers_section
from ragsys.eval.stats import bootstrap_ci, paired_bootstrap_delta_ci, paired_randomization_test

PerQuery = Mapping[str, Mapping[str, float]]  # qid -> metric -> value
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REQUIRED = ("n", "metrics", "ci95", "per_query")


def build_run_record(
    run_name: str, result: Mapping[str, Any], per_query: PerQuery, seed: int = 0, n_resamples: int = 10_000
) -> dict[str, Any]:
    """The run JSON (shape in the module docstring); pure, so tests need no files."""
    if not per_query:
        raise ValueError("per_query is empty: a run record needs at least one scored query")
    names = _metric_names(per_query)
    columns = {m: [per_query[q][m] for q in per_query if m in per_query[q]] for m in names}
    means = {m: statistics.fmean(v) for m, v in columns.items()}
    ci95 = {m: list(bootstrap_ci(v, n_resamples=n_resamples, seed=seed)) for m, v in columns.items()}
    record: dict[str, Any] = {"config": {}, **result, "name": run_name}
    record.update(
        n=len(per_query),
        n_by_metric={m: len(v) for m, v in columns.items()},  # e.g. numeric_match: numeric questions only
        metrics={**result.get("metrics", {}), **means},
        ci95=ci95,
        per_query={q: dict(v) for q, v in per_query.items()},
        seed=seed,
        n_resamples=n_resamples,
    )
    return record


def compare_runs(
    current: Mapping[str, Any], baseline: Mapping[str, Any], n_resamples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Paired comparison on the queries both runs scored.

    Per shared metric: both means over the shared queries, their difference
    (current - baseline), a paired bootstrap CI of it and a paired randomization
    p-value; plus per-query deltas for plotting. Queries only one run has are counted,
    not used: unpaired queries would confound the systems with the query sets.
    """
    cur, base = current["per_query"], baseline["per_query"]
    common = sorted(set(cur) & set(base))
    if not common:
        raise ValueError("the runs share no query id: was the baseline run on a different eval set?")
    metrics: dict[str, Any] = {}
    deltas: dict[str, dict[str, float]] = {}
    for m in _metric_names(cur):
        # A metric some queries lack (answers scored on a subset) is compared on the queries
        # both runs scored it on; `n` says how many.
        qs = [q for q in common if m in cur[q] and m in base[q]]
        if not qs:
            continue
        a, b = [cur[q][m] for q in qs], [base[q][m] for q in qs]
        metrics[m] = {
            "n": len(qs),
            "current": statistics.fmean(a),
            "baseline": statistics.fmean(b),
            "delta": statistics.fmean(a) - statistics.fmean(b),
            "ci95": list(paired_bootstrap_delta_ci(a, b, n_resamples=n_resamples, seed=seed)),
            "p_value": paired_randomization_test(a, b, n_resamples=n_resamples, seed=seed),
        }
        deltas[m] = {q: x - y for q, x, y in zip(qs, a, b, strict=True)}
    return {
        "baseline": baseline.get("name", ""),
        "n_common": len(common),
        "only_current": len(set(cur) - set(base)),
        "only_baseline": len(set(base) - set(cur)),
        "metrics": metrics,
        "per_query_delta": deltas,
    }


def load_run(path: str | Path) -> dict[str, Any]:
    """A run record written by `write_report`; fails early if it is not one."""
    p = Path(path)
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: cannot read a run record ({e})") from e
    missing = [k for k in _REQUIRED if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{p}: not a run record, missing {missing}; pass the .json that write_report wrote")
    return dict(record)


def write_report(
    out_dir: str | Path,
    run_name: str,
    result: Mapping[str, Any],
    per_query: PerQuery,
    baseline: Mapping[str, Any] | None = None,
    n_resamples: int = 10_000,
) -> tuple[Path, Path]:
    """Writes `<out_dir>/<run_name>.json` and `.html`; the bootstrap seed is `result["seed"]` (default 0)."""
    if not _SAFE_NAME.match(run_name):
        raise ValueError(f"run_name {run_name!r} must be a plain file name: letters, digits, '.', '_', '-'")
    seed = int(result.get("seed", 0))
    record = build_run_record(run_name, result, per_query, seed=seed, n_resamples=n_resamples)
    if baseline is not None:
        record["comparison"] = compare_runs(record, baseline, n_resamples=n_resamples, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / f"{run_name}.json", out / f"{run_name}.html"
    json_path.write_text(json.dumps(record, indent=1, allow_nan=False, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render_html(record), encoding="utf-8")
    return json_path, html_path


def _metric_names(per_query: PerQuery) -> list[str]:
    """Every metric any query has, in first-seen order."""
    return list(dict.fromkeys(m for values in per_query.values() for m in values))


# --- HTML -------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "td.qa{text-align:left;max-width:40em}th[data-col]{cursor:pointer}li.cited{background:#eef6ee}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}"
)


def render_html(record: Mapping[str, Any]) -> str:
    """The report page for a run record (with a comparison section when it has one)."""
    name = html.escape(str(record.get("name", "")))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{name}</h1><p>{record['n']} queries; 95% CIs: percentile bootstrap, "
        f"{record.get('n_resamples', '?')} resamples, seed {record.get('seed', '?')}.</p>",
        _metric_table(record["metrics"], record["ci95"]),
        _bar_chart(record["metrics"], record["ci95"]),
    ]
    if "comparison" in record:
        parts.append(_comparison_section(record["comparison"]))
    parts.append(answers_section(record.get("answers") or {}, record.get("per_query") or {}))
    config = json.dumps(record.get("config", {}), indent=1, default=str)
    parts.append(f"<h2>Config</h2><pre>{html.escape(config)}</pre></body></html>")
    return "\n".join(parts)


def _metric_table(metrics: Mapping[str, float], ci95: Mapping[str, Sequence[float]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{v:.4f}</td><td>{_fmt_ci(ci95.get(m))}</td></tr>"
        for m, v in metrics.items()
    )
    head = "<tr><th>metric</th><th>mean</th><th>95% CI</th></tr>"
    return f"<h2>Metrics</h2><table class='metrics'>{head}{rows}</table>"


def _comparison_section(comparison: Mapping[str, Any]) -> str:
    head = (
        f"<h2>Against baseline {html.escape(str(comparison['baseline']))}</h2>"
        f"<p>{comparison['n_common']} shared queries ({comparison['only_current']} only here, "
        f"{comparison['only_baseline']} only in the baseline, both left out). "
        "p: paired randomization test (sign flips), two-sided.</p>"
    )
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{c['current']:.4f}</td><td>{c['baseline']:.4f}</td>"
        f"<td>{c['delta']:+.4f}</td><td>{_fmt_ci(c['ci95'])}</td><td>{c['p_value']:.4f}</td></tr>"
        for m, c in comparison["metrics"].items()
    )
    table = (
        "<table class='comparison'><tr><th>metric</th><th>current</th><th>baseline</th><th>delta</th>"
        f"<th>delta 95% CI</th><th>p</th></tr>{rows}</table>"
    )
    plots = "".join(
        f"<h3>Per-query delta, {html.escape(m)} (sorted)</h3>{_delta_plot(list(d.values()))}"
        for m, d in comparison["per_query_delta"].items()
    )
    return head + table + plots


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "&mdash;" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _bar_chart(metrics: Mapping[str, float], ci95: Mapping[str, Sequence[float]], w: int = 640) -> str:
    """Vertical bars labelled with their means, CI whiskers; the axis spans 0..max(1, highest CI end)."""
    h, pad = 260, 40
    names = list(metrics)
    top = max([1.0, *metrics.values(), *(ci[1] for ci in ci95.values())])
    bottom = min([0.0, *metrics.values(), *(ci[0] for ci in ci95.values())])
    slot = (w - 2 * pad) / max(1, len(names))

    def y(v: float) -> float:
        return pad + (top - v) / (top - bottom) * (h - 2 * pad)

    shapes = [f"<line x1='{pad}' y1='{y(0):.1f}' x2='{w - pad}' y2='{y(0):.1f}' stroke='#333'/>"]
    shapes += [_text(pad - 4, y(t) + 4, f"{t:.2g}", "end") for t in (bottom, (bottom + top) / 2, top)]
    for i, m in enumerate(names):
        x, cx, v = pad + i * slot + slot * 0.2, pad + (i + 0.5) * slot, metrics[m]
        shapes.append(
            f"<rect x='{x:.1f}' y='{min(y(v), y(0)):.1f}' width='{slot * 0.6:.1f}' "
            f"height='{abs(y(0) - y(v)):.1f}' fill='#4a7fb5'><title>{html.escape(m)}: {v:.4f}</title></rect>"
        )
        lo, hi = ci95.get(m, (v, v))
        if m in ci95:
            shapes.append(
                f"<path d='M{cx - 6:.1f} {y(lo):.1f}h12M{cx:.1f} {y(lo):.1f}V{y(hi):.1f}"
                f"M{cx - 6:.1f} {y(hi):.1f}h12' stroke='black' fill='none'/>"
            )
        label = (
            f"<text x='{cx:.1f}' y='{h - pad + 14:.1f}' font-size='12' text-anchor='end' "
            f"transform='rotate(-35 {cx:.1f} {h - pad + 14:.1f})'>{html.escape(m)}</text>"
        )
        shapes += [_text(cx, y(max(v, hi)) - 5, f"{v:.3f}"), label]
    return _svg("bars", w, h + 90, "".join(shapes))  # room below for the slanted labels


def _text(x: float, y: float, label: str, anchor: str = "middle") -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' font-size='12' text-anchor='{anchor}'>{html.escape(label)}</text>"


def _delta_plot(deltas: Sequence[float], w: int = 640, h: int = 200) -> str:
    """One bar per query, sorted, green above zero and red below: shows where a mean change comes from."""
    values = sorted(deltas)
    span = max([abs(v) for v in values] + [1e-9])
    step = w / max(1, len(values))
    mid = h / 2
    bars = "".join(
        f"<rect x='{i * step:.2f}' y='{mid - max(v, 0) / span * (mid - 5):.2f}' width='{max(step, 0.5):.2f}' "
        f"height='{abs(v) / span * (mid - 5):.2f}' fill='{'#3a9a4a' if v > 0 else '#c0392b'}'/>"
        for i, v in enumerate(values)
        if v != 0
    )
    axis = (
        f"<line x1='0' y1='{mid}' x2='{w}' y2='{mid}' stroke='#333'/>"
        f"<text x='4' y='12' font-size='11'>+{span:.3g}</text>"
        f"<text x='4' y='{h - 4}' font-size='11'>-{span:.3g}</text>"
    )
    return _svg("deltas", w, h, axis + bars)


def _svg(css_class: str, w: int, h: int, body: str) -> str:
    return (
        f"<svg class='{css_class}' xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}'>{body}</svg>"
    )


def finish_report(
    name: str,
    result: dict[str, Any],
    per_query: dict[str, dict[str, float]],
    out_dir: Path,
    baseline: Path | None,
) -> dict[str, Any]:
    """Writes `<out>/<name>.json` and `.html` (with the baseline comparison) and returns the record."""
    base = load_run(baseline) if baseline is not None else None
    json_path, html_path = write_report(out_dir, name, result, per_query, baseline=base)
    record = load_run(json_path)
    record["files"] = {"json": str(json_path), "html": str(html_path)}
    return record
