"""Progress as plain lines when stdout is not a terminal: once a minute per phase."""

from __future__ import annotations


def test_log_lines_once_a_minute_per_phase_and_at_the_end() -> None:
    from ragsys.cli.console import LineThrottle

    throttle = LineThrottle()
    assert throttle.due("mining", 1, 10)
    assert not throttle.due("mining", 2, 10)  # within the minute
    assert throttle.due("training", 1, 5)  # each phase has its own minute
    assert throttle.due("mining", 10, 10)  # the last one always shows
    assert LineThrottle(every_s=0.0).due("x", 1, 2)
