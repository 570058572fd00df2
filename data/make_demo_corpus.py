"""Renders the bundled markdown documents in data/demo/ to PDF with PyMuPDF.

The demo corpus must exist on a fresh machine without ../shared, so the project
makes its own sample PDFs: headings, paragraphs and ruled tables, with metadata.
Usage: python data/make_demo_corpus.py OUT_DIR
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pymupdf

CSS = """
body { font-family: sans-serif; font-size: 10pt; }
h1 { font-size: 18pt; font-weight: bold; }
h2 { font-size: 13pt; font-weight: bold; }
table { border-collapse: collapse; }
td, th { border: 1px solid black; padding: 3px; }
"""


def markdown_to_html(md: str) -> str:
    out: list[str] = []
    table: list[list[str]] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                table.append(cells)
            continue
        if table:
            rows = "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>"
                                 for c in r) + "</tr>"
                for i, r in enumerate(table)
            )  # fmt: skip
            out.append(f"<table>{rows}</table>")
            table = []
        if m := re.match(r"(#+) (.*)", line):
            level = len(m.group(1))
            out.append(f"<h{level}>{html.escape(m.group(2))}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out)


def render(md_path: Path, pdf_path: Path) -> None:
    md = md_path.read_text(encoding="utf-8")
    title = md.splitlines()[0].lstrip("# ").strip()
    story = pymupdf.Story(html=markdown_to_html(md), user_css=CSS)
    mediabox = pymupdf.paper_rect("letter")
    where = mediabox + (54, 54, -54, -54)
    tmp = pdf_path.with_suffix(".tmp.pdf")
    writer = pymupdf.DocumentWriter(str(tmp))
    more = True
    while more:
        device = writer.begin_page(mediabox)
        more, _ = story.place(where)
        story.draw(device)
        writer.end_page()
    writer.close()
    doc = pymupdf.open(str(tmp))
    doc.set_metadata({"title": title, "author": "Acme Robotics (ragsys demo corpus)"})
    doc.save(str(pdf_path))
    doc.close()
    tmp.unlink()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo/pdfs")
    out.mkdir(parents=True, exist_ok=True)
    for md in sorted((Path(__file__).parent / "demo").glob("*.md")):
        render(md, out / f"{md.stem}.pdf")
        print(f"wrote {out / (md.stem + '.pdf')}")


if __name__ == "__main__":
    main()
