"""Periodic work on its own thread: each pass caught, failures backed off exponentially with jitter."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from worldland_node.models import describe_error

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """1 s, 2 s, 4 s … up to `ceiling`, each scaled by a random 0.5-1.0 so many agents do not retry in step."""

    base: float = 1.0
    ceiling: float = 60.0
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        delay: float = min(self.ceiling, self.base * 2.0 ** (self.failures - 1))
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class Loop(threading.Thread):
    """Runs `step` every `interval` seconds (0: back to back, for a long poll) until `stop` is set.

    A failing step never ends the loop: it is logged and retried after a backoff."""

    def __init__(
        self, name: str, step: Callable[[], None], interval: float, stop: threading.Event, first_after: float = 0
    ) -> None:
        super().__init__(name=name, daemon=True)  # daemon: a long poll in flight must not hold up exit
        self._step = step
        self._interval = interval
        self._first_after = first_after
        self._wake = threading.Event()
        self._stopping = stop
        self._backoff = Backoff()

    def run(self) -> None:
        self._wake.wait(self._first_after)
        while not self._stopping.is_set():
            self._wake.clear()
            delay = self.run_once()
            self._wake.wait(delay)

    def wake(self) -> None:
        """Run the next pass now (the agent's stop wakes every loop, so it ends promptly)."""
        self._wake.set()

    def run_once(self) -> float:
        """One pass; returns the delay before the next (tests call it directly)."""
        try:
            self._step()
        except Exception as error:
            delay = self._backoff.next_delay()
            log_failure(self.name, error, delay)
            return delay
        self._backoff.reset()
        # ±10 % jitter on the steady interval too: heartbeats from hosts started together spread out.
        return self._interval * random.uniform(0.9, 1.1) if self._interval else 0.0


def log_failure(what: str, error: Exception, delay: float) -> None:
    """One line per failed pass; the traceback at DEBUG, never for a validation error (whose text
    repeats its input: see models.describe_error)."""
    log.warning("%s failed (%s: %s); retrying in %.1f s", what, type(error).__name__, describe_error(error), delay)
    if not isinstance(error, ValidationError):
        log.debug("%s failure", what, exc_info=True)
