"""The page at `/`, driven in the system Chromium (Playwright, no browser download): ask,
open a passage's page, give a thumbs-down with a revision, and find it in the store.

Skips when /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragsys.feedback.store import FeedbackStore
from ragsys.generate.config import GeneratorConfig
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline, PipelineConfig
from ragsys.serve import ServeSettings, create_app
from ragsys.serve.inthread import running
from tests.fixtures.serve import FakeGenerator, build_tiny_index

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (install the system chromium package)", allow_module_level=True)

QUESTION = "how fast does the conveyor belt run"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: PipelineConfig, tiny_lm_path: Path
) -> Iterator[tuple[Index, PipelineConfig, Path]]:
    root = tmp_path_factory.mktemp("browser")
    generator = GeneratorConfig(
        model=str(tiny_lm_path), max_new_tokens=12, context_tokens=96, system_prompt="Be brief."
    )
    config = tiny_pipeline.model_copy(update={"generator": generator})
    index = Index.open(build_tiny_index(root, config))
    yield index, config, root
    index.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


def test_ask_open_a_passage_and_revise_the_answer(
    served: tuple[Index, PipelineConfig, Path], browser: Any
) -> None:
    index, config, root = served
    rag = config.build(index, generator=True)  # the tiny random LM: no [n] markers in its text
    with (
        FeedbackStore.open(root / "fb.db") as store,
        running(create_app(rag, index, store, ServeSettings())) as url,
    ):
        page = browser.new_page()
        page.goto(url)
        question = page.get_by_label("Question")
        question.fill(QUESTION)
        question.press("Enter")  # Enter submits; Shift+Enter would add a line
        page.wait_for_selector("#answer-section[data-state=done]", timeout=15_000)
        assert page.locator("#passages li").count() >= 1

        page.locator("#passages button.open-passage", has_text="manual.pdf").first.click()
        page.wait_for_selector("#viewer[data-state=open]", timeout=10_000)
        assert "conveyor belt" in page.text_content("#page-text")
        assert page.evaluate("document.getElementById('page-image').naturalWidth") > 100  # the PNG render
        assert page.evaluate("document.activeElement.id") == "viewer-heading"  # focus follows the viewer

        page.get_by_role("button", name="Bad answer").click()
        page.get_by_label("Edit answer").fill("The belt runs at two metres per second [1].")
        page.get_by_label("Comment").fill("from the browser test")
        page.get_by_role("button", name="Send feedback").click()
        page.wait_for_selector("#answer-section[data-feedback]", timeout=10_000)
        record_id = page.get_attribute("#answer-section", "data-feedback")
        page.close()
    with FeedbackStore.open(root / "fb.db", readonly=True) as reread:
        record = reread.get(str(record_id))
    assert record is not None and record.rating == "down" and record.question == QUESTION
    assert (
        record.revision == "The belt runs at two metres per second [1]."
        and record.comment == "from the browser test"
    )
    assert record.contexts and record.pipeline_version == config.version()


def test_citation_markers_open_their_page_and_thumbs_up_saves(
    served: tuple[Index, PipelineConfig, Path], browser: Any
) -> None:
    index, config, root = served
    rag = config.build(index)
    rag = Pipeline(config=config, retrievers=rag.retrievers, generator=FakeGenerator())  # cites [1]
    with FeedbackStore.open(root / "fb-up.db") as store, running(create_app(rag, index, store)) as url:
        page = browser.new_page()
        page.goto(url)
        page.get_by_label("Question").fill(QUESTION)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "ask-button"  # focus order: box, then Ask
        page.keyboard.press("Enter")
        page.wait_for_selector("#answer-section[data-state=done]", timeout=10_000)
        assert page.text_content("#answer") == "It runs at two metres per second [1]."
        page.locator("#answer button.cite").click()
        page.wait_for_selector("#viewer[data-state=open]", timeout=10_000)
        assert page.locator("#passage-1").get_attribute("class") == "cited current"
        page.get_by_role("button", name="Good answer").click()
        page.wait_for_selector("#answer-section[data-feedback]", timeout=10_000)
        assert [r.rating for r in store.records()] == ["up"]
        page.close()
