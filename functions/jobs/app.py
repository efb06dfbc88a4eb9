"""Lambda entry point for the jobs routes (worldland.api.jobs)."""

from __future__ import annotations

from worldland.api import jobs
from worldland.api.app import http_handler

lambda_handler = http_handler(jobs.router)
