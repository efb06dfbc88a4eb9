"""Lambda entry point for the commands routes (worldland.api.commands)."""

from __future__ import annotations

from worldland.api import commands
from worldland.api.app import http_handler

lambda_handler = http_handler(commands.router)
