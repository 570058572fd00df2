"""What a stream may show yet: text cut at stop strings, with what may still change held back."""

from __future__ import annotations

import random

from ragsys.generate.watch import visible_text


def test_visible_text_cuts_at_the_earliest_stop_string() -> None:
    assert visible_text("  Paris [1].\nQuestion: more", ["\nQuestion:", "[1]"], final=False) == (
        "Paris",
        True,
    )
    assert visible_text("Paris [1].\nQuestion: more", ["\nQuestion:"], final=False) == ("Paris [1].", True)
    assert visible_text("Paris [1].\n", ["\nQuestion:"], final=True) == ("Paris [1].", False)


def test_visible_text_holds_back_what_may_still_change() -> None:
    assert visible_text("Paris [1].\nQue", ["\nQuestion:"], final=False) == ("Paris [1].", False)
    assert visible_text("Paris is ", [], final=False) == ("Paris is", False)
    assert visible_text("caf\ufffd", [], final=False) == ("caf", False)


def test_visible_text_only_ever_grows() -> None:
    """Streamed pieces must join to the final text: each prefix's visible text extends the last."""
    rng = random.Random(0)
    stops = ["\nQ:", "END", "xx"]
    alphabet = ["a", "b", " ", "\n", "Q", ":", "E", "N", "D", "x", "\ufffd"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        final, _ = visible_text(text, stops, final=True)
        previous = ""
        for i in range(len(text) + 1):
            shown, stopped = visible_text(text[:i], stops, final=False)
            assert shown.startswith(previous) and final.startswith(shown), (text, i)
            previous = shown
            if stopped:
                assert shown == final
                break
