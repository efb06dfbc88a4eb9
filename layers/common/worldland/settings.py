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

    @classmethod
    def from_env(cls) -> Settings:
        # Only the variables the model knows are read; names are the upper-case field names.
        values = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
