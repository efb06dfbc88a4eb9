"""Masks known secrets in log output: defence in depth, since nothing is meant to log them at all."""

from __future__ import annotations

import logging
import threading

MASK = "***"


class RedactingFilter(logging.Filter):
    """Installed on the log handler; the agent tells it the secrets it holds (`add`)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        """Strings that must never appear in a log line (short ones are ignored: too many false hits)."""
        with self._lock:
            known = set(self._secrets).union(s for s in secrets if len(s) >= 16)
            # Longest first: a key and its un-prefixed form both registered must mask whole, not leave "0x".
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets  # an immutable tuple, swapped whole under the lock by add()
        if secrets:
            message = record.getMessage()
            masked = message
            for secret in secrets:
                masked = masked.replace(secret, MASK)
            if masked != message:
                record.msg, record.args = masked, None
        return True
