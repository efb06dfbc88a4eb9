"""Lambda entry point for the auth routes (worldland.api.auth)."""

from __future__ import annotations

from worldland.api import auth
from worldland.api.app import http_handler

lambda_handler = http_handler(auth.router)
