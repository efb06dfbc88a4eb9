"""What the benchmarks share: the local stack as a subprocess, percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager

from tests.local_stack.process import RunningStack, running_stack
from tests.support import ROOT


@contextmanager
def local_stack(parameter_overrides: str = "") -> Iterator[RunningStack]:
    with running_stack(ROOT / ".local" / "bench-stack.log", parameter_overrides) as stack:
        yield stack


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary_ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n={len(ms)} p50={percentile(ms, 50):.1f} ms p95={percentile(ms, 95):.1f} ms "
        f"p99={percentile(ms, 99):.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )
