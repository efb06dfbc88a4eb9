"""Opaque page tokens for lists that are filtered and sorted in memory after an index query."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from worldland.errors import InvalidInput

_PREFIX = "offset:"


def page_of[T](items: Sequence[T], limit: int, token: str | None) -> tuple[list[T], str | None]:
    start = _offset(token)
    end = start + limit
    return list(items[start:end]), _token(end) if end < len(items) else None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise InvalidInput.on("next_token", "is not a token this list handed out", code="invalid_page_token")
    return int(text[len(_PREFIX) :])
