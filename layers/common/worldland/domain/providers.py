"""Provider registration, heartbeats, browsing, search and GPU availability."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from worldland.dal.errors import ConditionFailed, TransactionCancelled
from worldland.dal.providers import ProviderRepository
from worldland.domain.gpu_models import gpu_label
from worldland.domain.paging import page_of
from worldland.errors import Conflict, Forbidden, InvalidInput, NotFound
from worldland.models.providers import (
    GpuAvailability,
    GpuAvailabilityResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    ProviderList,
    ProviderRecord,
    ProviderSearch,
    ProviderSpec,
    ProviderStatus,
    RegisterRequest,
    RegisterResponse,
)

# Provider ids are derived from (wallet, hostname) so that re-registering a host finds it again.
_PROVIDER_NAMESPACE = uuid.UUID("6f1c2a52-3b7e-4c0e-9a51-7d7f3f4f9a10")
_REGISTRATION_ATTEMPTS = 8


def provider_id_for(wallet: str, hostname: str) -> str:
    return str(uuid.uuid5(_PROVIDER_NAMESPACE, f"{wallet.lower()}/{hostname.lower()}"))


def gpu_totals(spec: ProviderSpec) -> dict[str, int]:
    """GPUs per model label: one entry per GPU, or one entry standing for all of them."""
    try:
        labels = [gpu_label(g.name, g.memory) for g in spec.gpus]
    except ValueError as exc:
        raise InvalidInput.on("spec.gpus.name", str(exc)) from exc
    if len(labels) == 1:
        return {labels[0]: spec.total_gpus}
    return dict(Counter(labels))


def not_found(provider_id: str) -> NotFound:
    return NotFound("provider_not_found", f"No provider {provider_id}.")


def not_yours(provider_id: str) -> Forbidden:
    return Forbidden("not_your_provider", f"Provider {provider_id} belongs to another wallet.")


def register(request: RegisterRequest, wallet: str, repo: ProviderRepository, now: datetime) -> RegisterResponse:
    provider_id = request.provider_id or provider_id_for(wallet, request.spec.hostname)
    totals = gpu_totals(request.spec)
    for _ in range(_REGISTRATION_ATTEMPTS):
        found = repo.get_with_version(provider_id)
        try:
            if found is None:
                record = _new_record(provider_id, request, wallet, totals, now)
                repo.create(record)
                return RegisterResponse(provider_id=provider_id, status=record.status)
            old, version = found
            if old.wallet_addr != wallet:
                raise not_yours(provider_id)
            record = _resized(old, request, totals)
            repo.update_registration(record, version, dropped_models=set(old.gpu_total) - set(totals))
            return RegisterResponse(provider_id=provider_id, status=record.status)
        except TransactionCancelled:
            continue  # an allocation or another registration got there first: read again
    raise Conflict("registration_contention", "The provider is changing too fast to re-register; retry.")


def _new_record(
    provider_id: str, request: RegisterRequest, wallet: str, totals: dict[str, int], now: datetime
) -> ProviderRecord:
    memory = request.spec.total_memory_mb
    return ProviderRecord(
        provider_id=provider_id,
        wallet_addr=wallet,
        # A Docker host needs no cluster join; Kubernetes hosts wait for their join (Pending).
        status=ProviderStatus.JOINED if request.runtime == "docker" else ProviderStatus.PENDING,
        region=request.region,
        runtime=request.runtime,
        spec=request.spec,
        gpu_price_per_hour=Decimal(str(request.capacity.gpu_price_per_hour)),
        gpu_total=totals,
        gpu_available=dict(totals),
        gpu_in_use=dict.fromkeys(totals, 0),
        cpu_total=request.spec.cpu_cores,
        cpu_available=request.spec.cpu_cores,
        cpu_in_use=0,
        mem_total_mb=memory,
        mem_available_mb=memory,
        mem_in_use_mb=0,
        registered_at=now,
    )


def _resized(old: ProviderRecord, request: RegisterRequest, totals: dict[str, int]) -> ProviderRecord:
    """The record with new totals; what is in use stays in use, and the rest is available."""
    gpu_in_use = {model: old.gpu_in_use.get(model, 0) for model in totals}
    short = [m for m, n in old.gpu_in_use.items() if n > totals.get(m, 0)]
    if short or request.spec.cpu_cores < old.cpu_in_use or request.spec.total_memory_mb < old.mem_in_use_mb:
        raise Conflict("capacity_in_use", "The new spec is smaller than what running jobs hold; end them first.")
    return old.model_copy(
        update={
            "spec": request.spec,
            "region": request.region,
            "runtime": request.runtime,
            "gpu_price_per_hour": Decimal(str(request.capacity.gpu_price_per_hour)),
            "gpu_total": totals,
            "gpu_in_use": gpu_in_use,
            "gpu_available": {m: totals[m] - gpu_in_use[m] for m in totals},
            "cpu_total": request.spec.cpu_cores,
            "cpu_available": request.spec.cpu_cores - old.cpu_in_use,
            "mem_total_mb": request.spec.total_memory_mb,
            "mem_available_mb": request.spec.total_memory_mb - old.mem_in_use_mb,
        }
    )


def heartbeat(
    provider_id: str, wallet: str, request: HeartbeatRequest, repo: ProviderRepository, now: datetime
) -> HeartbeatResponse:
    try:
        record = repo.record_heartbeat(provider_id, wallet, now, request.mining)
    except ConditionFailed:
        # One conditional write on the hot path; read only to say why it was refused.
        if repo.get(provider_id) is None:
            raise not_found(provider_id) from None
        raise not_yours(provider_id) from None
    return HeartbeatResponse(provider_id=provider_id, status=record.status, last_heartbeat=now)


def get_provider(provider_id: str, repo: ProviderRepository) -> ProviderRecord:
    record = repo.get(provider_id)
    if record is None:
        raise not_found(provider_id)
    return record


def list_providers(repo: ProviderRepository, limit: int, token: str | None) -> ProviderList:
    records, next_token = repo.page(limit, token)
    return ProviderList(providers=[r.to_public() for r in records], next_token=next_token)


def search(query: ProviderSearch, repo: ProviderRepository, limit: int, token: str | None) -> ProviderList:
    model = _label(query.gpu_model) if query.gpu_model else None
    if model:
        # The model's listings index gives the candidates, cheapest first: no table scan.
        records = list(repo.batch_get(repo.listings_for_model(model, query.max_price)).values())
    else:
        records = repo.all_by_status(query.status)
    matches = [r for r in records if _matches(r, query, model)]
    matches.sort(key=_sort_key(query.sort, model))
    page, next_token = page_of(matches, limit, token)
    return ProviderList(providers=[r.to_public() for r in page], next_token=next_token)


def _label(name: str) -> str:
    try:
        return gpu_label(name)
    except ValueError as exc:
        raise InvalidInput.on("gpu_model", str(exc)) from exc


def _available_gpus(record: ProviderRecord, model: str | None) -> int:
    return record.gpu_available.get(model, 0) if model else sum(record.gpu_available.values())


def _matches(record: ProviderRecord, query: ProviderSearch, model: str | None) -> bool:
    return (
        record.status == query.status
        and (model is None or model in record.gpu_total)
        and (query.min_gpus is None or _available_gpus(record, model) >= query.min_gpus)
        and (query.max_price is None or record.gpu_price_per_hour <= Decimal(str(query.max_price)))
        and (query.region is None or record.region.lower() == query.region.lower())
        and (query.min_cpu_cores is None or record.cpu_available >= query.min_cpu_cores)
        and (query.min_memory_gb is None or record.mem_available_mb >= query.min_memory_gb * 1024)
    )


def _sort_key(sort: str, model: str | None) -> Callable[[ProviderRecord], tuple[Any, ...]]:
    if sort == "-price":
        return lambda r: (-r.gpu_price_per_hour, r.provider_id)
    if sort == "gpus":
        return lambda r: (-_available_gpus(r, model), r.gpu_price_per_hour, r.provider_id)
    return lambda r: (r.gpu_price_per_hour, r.provider_id)


def gpu_availability(repo: ProviderRepository) -> GpuAvailabilityResponse:
    totals: dict[str, GpuAvailability] = {}
    for record in repo.all_by_status(ProviderStatus.AVAILABLE):
        mining = record.mining_gpus()
        for model in record.gpu_total:
            entry = totals.setdefault(
                model,
                GpuAvailability(gpu_model=model, available=0, in_use=0, mining=0, providers=0, min_price_per_hour=None),
            )
            available = record.gpu_available.get(model, 0)
            entry.available += available
            entry.in_use += record.gpu_in_use.get(model, 0)
            entry.mining += mining.get(model, 0)
            entry.providers += 1
            price = float(record.gpu_price_per_hour)
            if available and (entry.min_price_per_hour is None or price < entry.min_price_per_hour):
                entry.min_price_per_hour = price
    return GpuAvailabilityResponse(gpus=sorted(totals.values(), key=lambda g: g.gpu_model))
