"""A screenshot of the `ragsys serve` page answering a question on a real index.

    .venv/bin/python eval/bench/serve_screenshot.py --index runs/demo/index --out docs/serve.png
                                                    [--pipeline P] [--question Q]

The server runs in this process on a free loopback port, with a throwaway feedback db;
the system Chromium (/usr/bin/chromium, driven by Playwright, nothing downloaded) asks
the question, waits for the streamed answer, opens the first cited passage (or the first
passage, if the answer cites none) and captures the whole page.
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from ragsys.serve.inthread import running  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
QUESTION = "Why did agricultural revenue fall in the third quarter of 2025?"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def capture(url: str, question: str, out: Path, timeout_s: float) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        page.goto(url)
        page.get_by_label("Question").fill(question)
        page.get_by_label("Question").press("Enter")
        log("waiting for the answer ...")
        page.wait_for_selector("#answer-section[data-state=done]", timeout=timeout_s * 1000)
        cites = page.locator("#answer button.cite")
        shown = {"citations": cites.count(), "passages": page.locator("#passages li").count()}
        opener = cites.first if shown["citations"] else page.locator("#passages button.open-passage").first
        opener.click()
        page.wait_for_selector("#viewer[data-state=open]", timeout=60_000)
        page.locator("#question").focus()  # no focus ring on the viewer heading in the picture
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        answer = page.text_content("#answer") or ""
        browser.close()
    return {"answer": answer, **shown}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    p.add_argument(
        "--pipeline", default=None, help="pipeline file or directory (default pipeline if omitted)"
    )
    p.add_argument("--question", default=QUESTION)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the answer")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads > 0:  # on a shared CPU extra threads spin rather than help (see generate.py)
        import torch

        torch.set_num_threads(args.threads)

    from ragsys.feedback.store import FeedbackStore
    from ragsys.index.reader import Index
    from ragsys.pipeline import load_pipeline
    from ragsys.serve import create_app

    started = time.perf_counter()
    config = load_pipeline(args.pipeline)
    log(f"loading pipeline {config.name!r} on {args.index} ...")
    index = Index.open(args.index)
    rag = config.build(index, generator=True)
    with tempfile.TemporaryDirectory() as tmp, FeedbackStore.open(Path(tmp) / "fb.db") as store:
        with running(create_app(rag, index, store)) as url:
            shot = capture(url, args.question, args.out, args.timeout)
    index.close()
    seconds = round(time.perf_counter() - started, 1)
    print(json.dumps({"out": str(args.out), "question": args.question, **shot, "seconds": seconds}))


if __name__ == "__main__":
    main()
