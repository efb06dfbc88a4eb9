"""Lambda entry point for the providers routes (worldland.api.providers)."""

from __future__ import annotations

from worldland.api import providers
from worldland.api.app import http_handler

lambda_handler = http_handler(providers.router)
