"""Five real questions from the SEC 10-Q QA set, asked with the default pipeline.

Prints each question, the reference answer, ragsys's answer, its citations and the
passages it was given, as markdown (the README pastes this output as it came out).
Usage: python eval/sec10q_ask.py --index runs/sec10q/index [--rows 71 74 86 34 70] [-k 5]
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--csv", type=Path, default=ROOT.parent / "shared/data/sec10q/qna_data.csv")
    ap.add_argument("--rows", type=int, nargs="+", default=[71, 74, 86, 34, 70])
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragsys.index.reader import Index
    from ragsys.pipeline import default_pipeline

    rows = list(csv.DictReader(open(args.csv, encoding="utf-8-sig")))
    rag = default_pipeline().build(Index.open(args.index), generator=True)
    assert rag.generator is not None
    for i in args.rows:
        row = rows[i]
        answer = rag.answer(row["Question"], args.k)
        reference = row["Answer"].split("SOURCE")[0].strip().replace("\n", " ")
        print(f"**Q (row {i}, {row['Source Docs']}, {row['Source Chunk Type']}):** {row['Question']}\n")
        print(f"*Reference:* {reference[:400]}\n")
        print(f"*ragsys:* {answer.text.strip()}" + (" *(abstained)*" if answer.abstained else "") + "\n")
        cites = ", ".join(f"[{c.n}] {Path(c.doc).name} p. {c.page_start}" for c in answer.citations) or "none"
        given = "; ".join(
            f"[{n}] {Path(h.chunk.doc_id).name} p. {h.chunk.page_start}"
            for n, h in enumerate(answer.contexts, 1)
        )
        took = (
            f"{answer.timings.get('new_tokens', 0):.0f} tokens in {answer.timings.get('generate_s', 0):.1f} s"
        )
        print(f"*Citations:* {cites}. *Passages given:* {given}. *({took})*\n")


if __name__ == "__main__":
    main()
