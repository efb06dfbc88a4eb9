"""Repositories built once per cold start from settings (the only process-wide state besides clients)."""

from __future__ import annotations

from functools import lru_cache

from worldland.dal.commands import CommandQueues
from worldland.dal.jobs import JobRepository
from worldland.dal.nonces import NonceRepository
from worldland.dal.providers import ProviderRepository
from worldland.settings import get_settings


@lru_cache(maxsize=1)
def providers() -> ProviderRepository:
    s = get_settings()
    return ProviderRepository(s.providers_table, s.provider_gpus_table)


@lru_cache(maxsize=1)
def jobs() -> JobRepository:
    s = get_settings()
    return JobRepository(s.jobs_table, s.providers_table, s.idempotency_table)


@lru_cache(maxsize=1)
def nonces() -> NonceRepository:
    return NonceRepository(get_settings().nonces_table)


@lru_cache(maxsize=1)
def command_queues() -> CommandQueues:
    s = get_settings()
    return CommandQueues(
        s.command_queue_prefix, s.commands_dlq_arn, s.command_ack_timeout_seconds, s.command_max_deliveries
    )
