"""Masks known secrets in log output: defence in depth, since nothing is meant to log them at all."""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def redact(*secrets: str) -> None:
    """Registers strings that must never appear in a log line (short ones are ignored: too many false hits)."""
    with _lock:
        _secrets.update(s for s in secrets if len(s) >= 16)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        with _lock:
            secrets = tuple(_secrets)
        if secrets:
            message = record.getMessage()
            masked = message
            for secret in secrets:
                masked = masked.replace(secret, MASK)
            if masked != message:
                record.msg, record.args = masked, None
        return True
