"""Small text corpora the tests write themselves."""

from __future__ import annotations

from pathlib import Path

DOCS = {
    "robots.md": "# Robots\n\n## Arms\n\nThe picking arm lifts twelve kilograms and works all night.\n\n"
    "## Drives\n\nHarmonic drives need new grease every four thousand hours.\n",
    "fruit.md": "# Fruit\n\nStrawberries bruise easily; the harvester picks eleven hundred per hour.\n\n"
    "Spring floods ruined the harvest in the valley, so growers postponed new fleets.\n",
    "notes.txt": "Quarterly revenue rose eighteen percent to forty eight million dollars.\n\n"
    "Gross margin improved because the new arm is cheaper to build.\n",
}


def write_corpus(root: Path, docs: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (docs or DOCS).items():
        (root / name).write_text(text, encoding="utf-8")
    return root
