"""End-to-end layer: the local stack started as a subprocess and driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.local_stack.process import RunningStack, running_stack
from tests.support import ROOT

# Seconds instead of minutes, so staleness, acks and dead letters can be watched in a test. The
# values respect the template's MinValue/MaxValue: the local stack refuses others, as sam deploy does.
ACK_TIMEOUT_SECONDS = 5
FAST_LIFECYCLE = (
    "HeartbeatStaleSeconds=5 StalenessCheckSeconds=1 ProviderLossGraceSeconds=30 ExpirySweepSeconds=1 "
    f"CommandAckTimeoutSeconds={ACK_TIMEOUT_SECONDS} CommandMaxDeliveries=2"
)


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    with running_stack(ROOT / ".local" / "e2e-stack.log") as running:
        yield running


@pytest.fixture(scope="session")
def fast_stack() -> Iterator[RunningStack]:
    with running_stack(ROOT / ".local" / "e2e-fast-stack.log", FAST_LIFECYCLE) as running:
        yield running
