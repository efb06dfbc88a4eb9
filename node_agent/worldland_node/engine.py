"""What rentals and mining need from a container engine besides their own calls (DockerRuntime; fakes in tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# (percent or None when unknown, the engine's status line)
OnPullProgress = Callable[[float | None, str], None]


class Images(Protocol):
    def image_present(self, image: str) -> bool: ...
    def pull(self, image: str, on_progress: OnPullProgress, timeout: float, cancelled: Callable[[], bool]) -> None: ...
