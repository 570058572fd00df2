"""The tune report as one self-contained HTML page: stages, systems, comparisons, inline SVG."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}.kept{color:#060}.reverted{color:#a00}.skipped{color:#777}"
)


def render(report: dict[str, Any]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>ragsys tune</title><style>{_CSS}</style>"
        "</head><body><h1>ragsys tune report</h1>",
        f"<p>train {report['train_questions']} / dev {report['dev_questions']} questions for tuning; "
        f"{report['test_questions']} test questions scored only here. {report['minutes']} min of tuning. "
        "CIs: percentile bootstrap; p: paired randomization test.</p>",
        _stages_table(report["stages"]),
        _systems_table(report["systems"]),
        _bars(report["systems"]),
        _comparison_table("Tuned vs baseline", {"tuned vs baseline": report["tuned_vs_baseline"]}),
        _comparison_table("Ablation: tuned minus each stage (delta = tuned - ablated)", report["ablation"]),
    ]
    if "joint_vs_isolated" in report:
        parts.append(
            _comparison_table(
                "Joint vs isolated (delta = joint - isolated)",
                {"joint vs isolated": report["joint_vs_isolated"]},
            )
        )
    if "label_macro_f1" in report:
        parts.append(_macro_f1_html(report["label_macro_f1"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _macro_f1_html(block: dict[str, Any]) -> str:
    def ci(lo: float, hi: float, sign: str = "") -> str:
        return f"[{lo:{sign}.3f}, {hi:{sign}.3f}]"

    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{t['value']:.4f}</td><td>{ci(*t['ci95'])}</td><td>{t['n']}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v}' for k, v in t['counts'].items()))}</td></tr>"
        for n, t in block["systems"].items()
    )
    deltas = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{d['delta']:+.4f}</td>"
        f"<td>{ci(d['ci95'][0], d['ci95'][1], '+')}</td><td>{d['n']}</td></tr>"
        for k, d in block["deltas_vs_tuned"].items()
        if d is not None
    )
    head = "<tr><th>system</th><th>macro-F1</th><th>95% CI</th><th>n</th><th>labels chosen</th></tr>"
    return (
        "<h2>Label macro-F1 (test; paired bootstrap for deltas = tuned - other)</h2>"
        f"<table>{head}{rows}</table>"
        f"<table><tr><th>comparison</th><th>delta</th><th>95% CI</th><th>n</th></tr>{deltas}</table>"
    )


def _stages_table(stages: Sequence[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s['name'])}</td><td class='{s['status']}'>{s['status']}</td>"
        f"<td>{html.escape(s['reason'])}</td><td>{s['minutes']:.1f}</td></tr>"
        for s in stages
    )
    head = "<tr><th>stage</th><th>status</th><th>why</th><th>min</th></tr>"
    return f"<h2>Stages (dev)</h2><table>{head}{rows}</table>"


def _systems_table(systems: dict[str, dict[str, Any]]) -> str:
    metrics = sorted({m for s in systems.values() for m in s["metrics"]})
    head = "<tr><th>system</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in metrics) + "</tr>"
    rows = ""
    for name, s in systems.items():
        cells = "".join(
            f"<td>{s['metrics'][m]:.4f}<br><small>[{s['ci95'][m][0]:.3f}, {s['ci95'][m][1]:.3f}]</small></td>"
            if m in s["metrics"] and m in s["ci95"]
            else "<td>&mdash;</td>"
            for m in metrics
        )
        rows += f"<tr><td>{html.escape(name)}</td>{cells}</tr>"
    return f"<h2>Test</h2><table>{head}{rows}</table>"


def _comparison_table(title: str, comparisons: dict[str, dict[str, Any]]) -> str:
    if not comparisons:
        return f"<h2>{html.escape(title)}</h2><p>no kept stage to remove</p>"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(m)}</td><td>{c['delta']:+.4f}</td>"
        f"<td>[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]</td><td>{c['p_value']:.4f}</td></tr>"
        for name, comp in comparisons.items()
        for m, c in comp["metrics"].items()
    )
    head = "<tr><th>comparison</th><th>metric</th><th>delta</th><th>95% CI</th><th>p</th></tr>"
    return f"<h2>{html.escape(title)}</h2><table>{head}{rows}</table>"


def _bars(systems: dict[str, dict[str, Any]], w: int = 720) -> str:
    """One bar per system for the primary metric (nDCG@10, else the answer metric), CI whiskers."""
    first = next(iter(systems.values()))["metrics"]
    metric = "ndcg@10" if "ndcg@10" in first else next(iter(first), None)
    if metric is None:
        return ""
    names = [n for n, s in systems.items() if metric in s["metrics"]]
    row_h, left = 26, 200
    h = row_h * len(names) + 30
    top = max([1e-9, *(systems[n]["ci95"][metric][1] for n in names)])
    scale = (w - left - 60) / top
    body = []
    for i, n in enumerate(names):
        m, (lo, hi) = systems[n]["metrics"][metric], systems[n]["ci95"][metric]
        y = 10 + i * row_h
        body.append(
            f"<text x='{left - 6}' y='{y + 15}' text-anchor='end' font-size='12'>{html.escape(n)}</text>"
            f"<rect x='{left}' y='{y + 3}' width='{m * scale:.1f}' height='16' fill='#5b8def'/>"
            f"<line x1='{left + lo * scale:.1f}' x2='{left + hi * scale:.1f}' y1='{y + 11}' y2='{y + 11}' "
            f"stroke='#222'/><text x='{left + hi * scale + 4:.1f}' y='{y + 15}' font-size='11'>{m:.3f}</text>"
        )
    return f"<h2>{html.escape(metric)} by system</h2><svg width='{w}' height='{h}'>{''.join(body)}</svg>"
