"""Sub-minute periods inside a once-a-minute schedule (EventBridge's finest rate is one minute)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

WINDOW_SECONDS = 60
_MARGIN_MS = 5_000


def offsets(period_seconds: int) -> list[int]:
    """When, in seconds after the invocation starts, the checks run: 0, p, 2p, ... while < 60.

    ceil(60 / p) checks, so the gap from the last one to the next minute's first is at most p too
    (a period that does not divide 60, e.g. 45, runs at 0 and 45, not only at 0). Any check that
    still runs when the next invocation starts is harmless: every write the checks make is conditional.
    """
    period = max(1, min(period_seconds, WINDOW_SECONDS))
    return [tick * period for tick in range(math.ceil(WINDOW_SECONDS / period))]


def ticks(
    period_seconds: int,
    remaining_ms: Callable[[], int],
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[int]:
    """Yield once now and then every `period_seconds` for the rest of the minute, while the
    invocation has time left; the next scheduled invocation takes over after that."""
    started = monotonic()
    planned = offsets(period_seconds)
    for tick, offset in enumerate(planned):
        if tick:
            wait = offset - (monotonic() - started)
            # Not enough time left for this check and a margin: the next invocation is due soon.
            if remaining_ms() < max(0.0, wait) * 1000 + _MARGIN_MS:
                return
            sleep(max(0.0, wait))
        yield tick
