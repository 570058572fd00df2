"""Hypothesis settings for the property tests: one derandomized profile, so CI sees the same
examples on every run, and no example database (nothing written under the repository).

Each test applies it with `@settings(PROFILE, max_examples=...)` (`PROFILE` being
`settings.get_profile("property")`) rather than `settings.load_profile`, which would change
Hypothesis's defaults for every other test in the session too. Set `RAGSYS_HYPOTHESIS_SEARCH=1`
to explore fresh random examples locally (still no database).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "property",
    derandomize=not os.environ.get("RAGSYS_HYPOTHESIS_SEARCH"),
    database=None,
    deadline=None,  # tiny tokenizers and pydantic models: the first call pays for warm-up
    suppress_health_check=[HealthCheck.too_slow],
)
