"""The platform's clock. Everything asks `clock.now()` (called through the module), so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
