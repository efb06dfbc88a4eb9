"""Lambda entry point for the nodes routes (worldland.api.nodes)."""

from __future__ import annotations

from worldland.api import nodes
from worldland.api.app import http_handler

lambda_handler = http_handler(nodes.router)
