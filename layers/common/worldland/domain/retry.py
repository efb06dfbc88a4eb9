"""Jittered backoff for optimistic-concurrency retries (DynamoDB TransactionConflict and friends)."""

from __future__ import annotations

import random
import time

ATTEMPTS = 10


def backoff(attempt: int) -> None:
    # Full jitter, capped at 200 ms: contention on one provider clears in a few rounds.
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
