"""Masks known secrets in log output: defence in depth, since nothing is meant to log them at all."""

from __future__ import annotations

import logging
import threading

MASK = "***"


class RedactingFilter(logging.Filter):
    """Installed on the log handler; the agent tells it the secrets it holds (`add`)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        """Strings that must never appear in a log line (short ones are ignored: too many false hits)."""
        with self._lock:
            self._secrets.update(s for s in secrets if len(s) >= 16)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = tuple(self._secrets)
        if secrets:
            message = record.getMessage()
            masked = message
            for secret in secrets:
                masked = masked.replace(secret, MASK)
            if masked != message:
                record.msg, record.args = masked, None
        return True
