"""Host ports for rentals' SSH: handed out from the configured range, each checked free before use."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class NoFreePort(Exception):
    pass


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port on any address (what Docker's publish will need)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Docker's proxy binds: connections of a removed rental lingering in TIME_WAIT do not block it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104  # the rental's port is published on all addresses
        except OSError:
            return False
    return True


class PortAllocator:
    """Thread-safe. Hands ports out round-robin, so a port just freed is the last to be reused
    (a customer's known_hosts entry for it then points at the old rental for as long as possible)."""

    def __init__(self, low: int, high: int, is_free: Callable[[int], bool] = port_is_free) -> None:
        self._low, self._high = low, high
        self._is_free = is_free
        self._taken: set[int] = set()
        self._next = low
        self._lock = threading.Lock()

    def allocate(self) -> int:
        with self._lock:
            size = self._high - self._low + 1
            for step in range(size):
                port = self._low + (self._next - self._low + step) % size
                if port in self._taken or not self._is_free(port):
                    continue
                self._taken.add(port)
                self._next = port + 1 if port < self._high else self._low
                return port
        raise NoFreePort(f"no free port in {self._low}-{self._high}")

    def reserve(self, port: int) -> None:
        """Marks a port taken (a container found running at start-up holds it)."""
        with self._lock:
            self._taken.add(port)

    def release(self, port: int | None) -> None:
        if port is None:
            return
        with self._lock:
            self._taken.discard(port)

    @property
    def taken(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._taken)
