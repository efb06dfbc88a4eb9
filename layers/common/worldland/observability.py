"""Powertools Logger, Tracer and Metrics, created once per cold start and shared by every module."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
