"""The ranges of a TaskSpec's number and choice fields that both the scheduler and the CLI check.

The scheduler refuses a spec outside them (INVALID_ARGUMENT); `farm task` refuses the
same values as usage errors before anything is sent. docs/api.md lists them.
"""

import datetime as dt
from collections.abc import Mapping

MIN_JPEG_QUALITY = 1
MAX_JPEG_QUALITY = 100
MIN_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 300000
MAX_CACHE_TTL_SECONDS = 604800
MAX_VIEWPORT_PIXELS = 10000
MAX_COMPARE_MASKS = 50
MAX_DEADLINE_AHEAD = dt.timedelta(hours=24)
"""How far ahead a task's deadline may be."""

PAPER_FORMATS: Mapping[str, str] = {
    name.lower(): name
    for name in ("Letter", "Legal", "Tabloid", "Ledger", "A0", "A1", "A2", "A3", "A4", "A5", "A6")
}
"""Known paper formats by their lower-case name, mapped to their canonical spelling."""


def attempt_margin_ms(timeout_ms: float) -> float:
    """What an agent keeps back of an attempt's `timeout_ms` for itself: 2 s, or a quarter.

    Playwright's waits, and a step's `wait.ms`, get the attempt's time less this, so a
    missing element fails as the step's and not as the attempt's TIMEOUT; a wait step the
    scheduler takes must fit in what is left.
    """
    return min(2000.0, timeout_ms / 4)
