"""Sub-minute periods inside a once-a-minute schedule (EventBridge's finest rate is one minute)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

WINDOW_SECONDS = 60
_MARGIN_MS = 5_000


def ticks(period_seconds: int, remaining_ms: Callable[[], int]) -> Iterator[int]:
    """Yield once now and then every `period_seconds` for the rest of the minute, while the
    invocation has time left; the next scheduled invocation takes over after that."""
    count = max(1, WINDOW_SECONDS // period_seconds)
    for tick in range(count):
        started = time.monotonic()
        yield tick
        if tick == count - 1 or remaining_ms() < period_seconds * 1000 + _MARGIN_MS:
            return
        time.sleep(max(0.0, period_seconds - (time.monotonic() - started)))
