"""Configuration read once from the environment (set by template.yaml) into a validated model."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    providers_table: str = ""
    provider_gpus_table: str = ""
    jobs_table: str = ""
    nonces_table: str = ""
    idempotency_table: str = ""
    token_secret_arn: str = ""
    siwe_domain: str = "localhost:3000"
    siwe_uri: str = "http://localhost:3000"
    chain_id: int = Field(default=11155111, ge=1)
    nonce_ttl_seconds: int = Field(default=300, ge=1)
    token_ttl_seconds: int = Field(default=3600, ge=1)
    idempotency_ttl_seconds: int = Field(default=86400, ge=1)
    command_queue_prefix: str = "worldland-cmd-"
    commands_dlq_arn: str = ""
    command_ack_timeout_seconds: int = Field(default=60, ge=1)
    command_max_deliveries: int = Field(default=5, ge=1)
    expiry_queue_url: str = ""
    heartbeat_stale_seconds: int = Field(default=120, ge=1)
    staleness_check_seconds: int = Field(default=30, ge=1)
    provider_loss_grace_seconds: int = Field(default=600, ge=0)
    expiry_sweep_seconds: int = Field(default=30, ge=1)
    start_timeout_seconds: int = Field(default=3600, ge=1)

    @classmethod
    def from_env(cls) -> Settings:
        # Only the variables the model knows are read; names are the upper-case field names.
        values = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
