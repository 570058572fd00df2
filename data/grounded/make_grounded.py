"""Data the project makes itself to teach a small generator grounded answering over reports.

    .venv/bin/python data/grounded/make_grounded.py OUT_DIR [--companies 60] [--seed 0]
        [--pubmedqa ../shared/data/pubmedqa] [--pubmedqa-questions 300]

Writes OUT_DIR/corpus.jsonl (a BEIR corpus `ragsys index` reads) and OUT_DIR/train.jsonl (an
eval set, split "train"). The corpus is quarterly reports of invented companies (names from
syllables, never the demo's): a highlights paragraph with total revenue, growth and gross
margin, a segment table as ragsys renders PDF tables (markdown rows), and an outlook line; two
quarters per company, so the same segment appears with different figures in a neighbouring
report. Each question asks for one figure of one report (a segment's revenue this quarter or a
year earlier, the total, the growth, the margin) and names the company and the quarter as
analysts do; its reference answer states the figure with its unit and period. A share of
questions ask about a quarter no report covers: their gold document is not in the corpus, so
retrieval cannot find it and the training target is the abstention sentence
(`ragsys.train.generator.data.sft_target`). Optionally PubMedQA's trainval questions (never its
test split) add grounded answers of another kind. The 10-Q filings and the demo corpus are never
used. Everything is seeded: the same seed writes the same files.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SYLLABLES = ("nor", "vel", "kel", "tra", "bri", "mon", "dax", "lu", "pen", "sor", "vin", "ta", "cor", "ris",
             "hal", "ben", "qui", "ros", "zan", "mer", "tol", "fen", "gar", "lis")  # fmt: skip
KINDS = {
    "Systems": ("Industrial controls", "Sensors", "Field services", "Software licenses"),
    "Foods": ("Packaged meals", "Beverages", "Dairy products", "Food service"),
    "Health": ("Diagnostics", "Medical devices", "Pharmacy services", "Clinical software"),
    "Energy": ("Solar installations", "Battery storage", "Grid services", "Maintenance contracts"),
    "Logistics": ("Freight forwarding", "Warehousing", "Last-mile delivery", "Fleet leasing"),
    "Media": ("Streaming subscriptions", "Advertising", "Licensing", "Live events"),
}
QUARTERS = ((1, "first"), (2, "second"), (3, "third"), (4, "fourth"))
ABSENT_SHARE = 0.15  # questions about a quarter no report covers: the target is the abstention


def company_names(rng: random.Random, n: int) -> list[tuple[str, str]]:
    names: set[str] = set()
    out: list[tuple[str, str]] = []
    while len(out) < n:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        kind = rng.choice(list(KINDS))
        if stem not in names:
            names.add(stem)
            out.append((f"{stem} {kind}", kind))
    return out


def report(
    rng: random.Random, company: str, kind: str, year: int, quarter: int
) -> tuple[dict[str, str], dict[str, float]]:
    """One quarterly report (a corpus row) and its figures."""
    segments = rng.sample(KINDS[kind], 3)
    now = [round(rng.uniform(4.0, 90.0), 1) for _ in segments]
    before = [round(v / rng.uniform(0.8, 1.4), 1) for v in now]
    total, total_before = round(sum(now), 1), round(sum(before), 1)
    growth = round(100 * (total / total_before - 1))
    margin = round(rng.uniform(22.0, 58.0), 1)
    ordinal = QUARTERS[quarter - 1][1]
    rows = [
        f"| {s} | {a} | {b} | {round(100 * (a / b - 1)):+d}% |"
        for s, a, b in zip(segments, now, before, strict=True)
    ]
    table = "\n".join([
        f"| Segment | Q{quarter} {year} revenue ($M) | Q{quarter} {year - 1} revenue ($M) | Change |",
        "|---|---|---|---|", *rows, f"| Total | {total} | {total_before} | {growth:+d}% |",
    ])  # fmt: skip
    direction = "up" if growth >= 0 else "down"
    outlook = round(total * rng.uniform(1.0, 1.15), 1)
    text = (
        f"Financial highlights\n\n{company} reported total revenue of ${total} million for the {ordinal} "
        f"quarter of {year}, {direction} {abs(growth)}% from ${total_before} million a year earlier. Gross "
        f"margin was {margin}%.\n\n{table}\n\nOutlook\n\nManagement expects revenue of about ${outlook} "
        "million next quarter."
    )
    figures = {f"segment:{s}": a for s, a in zip(segments, now, strict=True)}
    figures |= {f"before:{s}": b for s, b in zip(segments, before, strict=True)}
    figures |= {"total": total, "growth": growth, "margin": margin}
    title = f"{company} Quarterly Report, {ordinal.title()} Quarter {year}"
    doc = {"_id": f"{company} {year} Q{quarter}".replace(" ", "-").lower(), "title": title, "text": text}
    return doc, figures


def question(
    rng: random.Random, company: str, year: int, quarter: int, figures: dict[str, float]
) -> tuple[str, str]:
    ordinal = QUARTERS[quarter - 1][1]
    when = rng.choice((f"Q{quarter} {year}", f"the {ordinal} quarter of {year}"))
    key = rng.choice(sorted(figures))
    value = figures[key]
    if key.startswith("segment:"):
        seg = key.split(":", 1)[1]
        return (f"How much revenue did {company}'s {seg.lower()} segment bring in during {when}?",
                f"{seg} revenue was ${value} million in {when}.")  # fmt: skip
    if key.startswith("before:"):
        seg = key.split(":", 1)[1]
        return (f"What was {company}'s {seg.lower()} revenue a year before {when}?",
                f"{seg} revenue was ${value} million in Q{quarter} {year - 1}.")  # fmt: skip
    if key == "total":
        return (
            f"What was {company}'s total revenue in {when}?",
            f"Total revenue was ${value} million in {when}.",
        )
    if key == "growth":
        moved = "rose" if value >= 0 else "fell"
        return (f"By how much did {company}'s total revenue change year over year in {when}?",
                f"Total revenue {moved} {abs(int(value))}% year over year in {when}.")  # fmt: skip
    return f"What was {company}'s gross margin in {when}?", f"Gross margin was {value}% in {when}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--companies", type=int, default=60)
    parser.add_argument("--questions-per-report", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pubmedqa", type=Path, default=None, help="PubMedQA folder: add trainval questions")
    parser.add_argument("--pubmedqa-questions", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus, items = [], []
    for company, kind in company_names(rng, args.companies):
        year = rng.choice((2021, 2022, 2023, 2024))
        quarters = sorted(rng.sample((1, 2, 3, 4), 2))
        for quarter in quarters:
            doc, figures = report(rng, company, kind, year, quarter)
            corpus.append(doc)
            for i in range(args.questions_per_report):
                q, a = question(rng, company, year, quarter, figures)
                items.append({"id": f"{doc['_id']}-{i}", "question": q, "answer": a, "split": "train",
                              "gold_doc_ids": [doc["_id"]]})  # fmt: skip
        absent = next(q for q in (1, 2, 3, 4) if q not in quarters)
        if rng.random() < ABSENT_SHARE * args.questions_per_report:  # a quarter with no report: abstain
            _, figures = report(random.Random(rng.random()), company, kind, year, absent)
            q, a = question(rng, company, year, absent, figures)
            items.append({"id": f"{company}-{year}-q{absent}-absent".replace(" ", "-").lower(), "question": q,
                          "answer": a, "split": "train", "gold_doc_ids": ["not-in-the-corpus"]})  # fmt: skip
    items += pubmedqa(args.pubmedqa, args.pubmedqa_questions, rng) if args.pubmedqa else []
    corpus += pubmedqa_corpus(args.pubmedqa) if args.pubmedqa else []
    rng.shuffle(items)
    write(args.out / "corpus.jsonl", corpus)
    write(args.out / "train.jsonl", items)
    print(f"wrote {len(corpus)} documents and {len(items)} train questions to {args.out}")


def pubmedqa(folder: Path, n: int, rng: random.Random) -> list[dict[str, object]]:
    """PubMedQA trainval questions (never the official test split) with their long answers."""
    data = json.loads((folder / "ori_pqal.json").read_text(encoding="utf-8"))
    trainval = (folder / "splits" / "trainval_pmids.txt").read_text(encoding="utf-8").split()
    chosen = rng.sample(sorted(trainval), min(n, len(trainval)))
    return [
        {"id": f"pubmedqa-{p}", "question": data[p]["QUESTION"], "answer": data[p]["LONG_ANSWER"],
         "label": data[p]["final_decision"], "split": "train", "gold_doc_ids": [p]}
        for p in chosen
    ]  # fmt: skip


def pubmedqa_corpus(folder: Path) -> list[dict[str, str]]:
    data = json.loads((folder / "ori_pqal.json").read_text(encoding="utf-8"))
    trainval = set((folder / "splits" / "trainval_pmids.txt").read_text(encoding="utf-8").split())
    return [{"_id": p, "title": "", "text": " ".join(data[p]["CONTEXTS"])} for p in sorted(trainval)]


def write(path: Path, rows: list[dict[str, object]] | list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
