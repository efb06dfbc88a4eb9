"""Secrets from Secrets Manager, cached across invocations by Powertools Parameters."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

# Rotation is picked up within this many seconds without a cold start.
SECRET_MAX_AGE = 300


def secret_string(arn: str) -> str:
    value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE)
    return value if isinstance(value, str) else value.decode()
