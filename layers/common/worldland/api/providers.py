"""Public browsing: GET /providers, /providers/search, /providers/gpu-availability, /providers/{id}."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from worldland.api import deps
from worldland.domain import providers as domain
from worldland.models.common import ID_PATTERN
from worldland.models.providers import GpuAvailabilityResponse, Provider, ProviderList, ProviderSearch, ProviderStatus

router = Router()

Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
NextToken = Annotated[str | None, Query(min_length=1, max_length=4096, description="From the previous page.")]


@router.get("/api/v1/providers", summary="List providers", tags=["providers"])
def list_providers(limit: Limit = 50, next_token: NextToken = None) -> ProviderList:
    return domain.list_providers(deps.providers(), limit, next_token)


@router.get("/api/v1/providers/search", summary="Search providers", tags=["providers"])
def search_providers(
    gpu_model: Annotated[
        str | None, Query(min_length=1, max_length=128, description="RTX-4090 or the NVML name")
    ] = None,
    min_gpus: Annotated[int | None, Query(ge=1, le=64, description="Available GPUs of that model")] = None,
    max_price: Annotated[float | None, Query(ge=0.0001, le=1000, description="Per GPU-hour")] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    min_cpu_cores: Annotated[int | None, Query(ge=1, le=1024)] = None,
    min_memory_gb: Annotated[int | None, Query(ge=1, le=16384)] = None,
    status: ProviderStatus = ProviderStatus.AVAILABLE,
    sort: Literal["price", "-price", "gpus"] = "price",
    limit: Limit = 50,
    next_token: NextToken = None,
) -> ProviderList:
    query = ProviderSearch(
        gpu_model=gpu_model,
        min_gpus=min_gpus,
        max_price=max_price,
        region=region,
        min_cpu_cores=min_cpu_cores,
        min_memory_gb=min_memory_gb,
        status=status,
        sort=sort,
    )
    return domain.search(query, deps.providers(), limit, next_token)


@router.get("/api/v1/providers/gpu-availability", summary="GPUs per model over Available providers", tags=["providers"])
def gpu_availability() -> GpuAvailabilityResponse:
    return domain.gpu_availability(deps.providers())


@router.get("/api/v1/providers/<provider_id>", summary="One provider", tags=["providers"])
def get_provider(provider_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Provider:
    return domain.get_provider(provider_id, deps.providers()).to_public()
