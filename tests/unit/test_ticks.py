"""Sub-minute checks inside the once-a-minute schedule (worldland.domain.ticks)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from tests.local_stack.template import load_template
from tests.support import ROOT
from worldland.domain.ticks import WINDOW_SECONDS, offsets, ticks


@dataclass
class FakeInvocation:
    """A Lambda invocation with `timeout` seconds, on a clock that moves only when slept on or worked."""

    timeout: float
    now: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def remaining_ms(self) -> int:
        return int((self.timeout - self.now) * 1000)


def run(period: int, timeout: float = 75, work_seconds: float = 0.0) -> list[float]:
    """The times, from the invocation's start, at which the checks ran."""
    invocation = FakeInvocation(timeout)
    ran = []
    for _ in ticks(period, invocation.remaining_ms, sleep=invocation.sleep, monotonic=invocation.monotonic):
        ran.append(invocation.now)
        invocation.now += work_seconds
    return ran


@pytest.mark.parametrize(
    ("period", "expected"),
    [(30, [0, 30]), (45, [0, 45]), (40, [0, 40]), (60, [0]), (7, [0, 7, 14, 21, 28, 35, 42, 49, 56])],
)
def test_checks_run_every_period_from_the_start_of_the_minute(period: int, expected: list[int]) -> None:
    assert offsets(period) == expected
    assert run(period) == expected


@pytest.mark.parametrize("period", range(1, WINDOW_SECONDS + 1))
def test_no_gap_is_longer_than_one_period_across_minutes(period: int) -> None:
    # Given invocations every 60 s, each running its checks: the documented bound
    # "Offline within threshold + one period" needs every gap between two checks <= period.
    times = [minute * WINDOW_SECONDS + offset for minute in range(3) for offset in run(period)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) <= period
    assert all(offset < WINDOW_SECONDS for offset in run(period))  # never into the next minute


def test_work_does_not_make_the_checks_drift() -> None:
    assert run(15, work_seconds=2.5) == [0, 15, 30, 45]


def test_stops_when_the_invocation_is_running_out_of_time() -> None:
    # A check runs only if it would start with at least the 5 s margin left before the timeout.
    assert run(15, timeout=20) == [0, 15]
    assert run(15, timeout=19.9) == [0]
    assert run(15, timeout=1) == [0]  # the first check always runs


@pytest.mark.parametrize("function", ["StalenessFunction", "ExpirySweepFunction"])
def test_the_template_timeout_lets_every_check_of_the_minute_run(function: str) -> None:
    timeout = load_template(ROOT / "template.yaml").functions(lambda *_: "x")[function].timeout
    for period in range(1, WINDOW_SECONDS + 1):
        assert run(period, timeout=timeout, work_seconds=1) == [float(o) for o in offsets(period)], period
