"""Provider (GPU host) models: the public shape of API.md and the stored record behind it."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from ipaddress import ip_address
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from worldland.models.common import ResourceId, UtcTime


class ProviderStatus(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    JOINED = "Joined"
    AVAILABLE = "Available"
    OFFLINE = "Offline"


def _ip(value: str) -> str:
    return str(ip_address(value))


class GpuSpec(BaseModel):
    name: str = Field(min_length=1, max_length=128, examples=["NVIDIA GeForce RTX 4090"])
    memory: int = Field(ge=0, le=1_048_576, description="MiB, as NVML reports it.")


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hostname: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
    public_ip: Annotated[str, AfterValidator(_ip)] = Field(examples=["123.45.67.89"])
    total_gpus: int = Field(ge=1, le=64)
    gpus: list[GpuSpec] = Field(
        min_length=1,
        max_length=64,
        description="One entry per GPU, or a single entry when every GPU is that model.",
    )
    cpu_cores: int = Field(ge=1, le=1024)
    total_memory_mb: int = Field(ge=1024, le=16 * 1024 * 1024)
    available_disk_gb: int = Field(ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _gpus_match_total(self) -> ProviderSpec:
        if len(self.gpus) not in (1, self.total_gpus):
            raise ValueError("gpus must list one entry per GPU, or one entry when all GPUs are the same model")
        return self


class RegisterCapacity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gpu_price_per_hour: float = Field(ge=0.0001, le=1000, description="Price of one GPU for one hour.")


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_id: ResourceId | None = None
    spec: ProviderSpec
    capacity: RegisterCapacity
    region: str = Field(default="unknown", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    runtime: Literal["docker", "kubernetes"] = "docker"


class RegisterResponse(BaseModel):
    provider_id: str
    status: ProviderStatus


class GpuMetric(BaseModel):
    index: int = Field(ge=0, le=63)
    name: str | None = Field(default=None, max_length=128)
    utilization_pct: float | None = Field(default=None, ge=0, le=100)
    temperature_c: float | None = Field(default=None, ge=-50, le=150)
    memory_used_mb: int | None = Field(default=None, ge=0)
    memory_total_mb: int | None = Field(default=None, ge=0)


class MiningReport(BaseModel):
    state: Literal["running", "paused", "stopped"] = "stopped"
    container_id: str | None = Field(default=None, max_length=128)
    gpu_count: int = Field(default=0, ge=0, le=64)


class HeartbeatRequest(BaseModel):
    status: str = Field(default="Available", max_length=32, description="The agent's own view of itself.")
    active_jobs: int = Field(default=0, ge=0, le=1024)
    gpu_metrics: list[GpuMetric] = Field(default_factory=list, max_length=64)
    mining: MiningReport = Field(default_factory=MiningReport)
    timestamp: UtcTime | None = None


class HeartbeatResponse(BaseModel):
    provider_id: str
    status: ProviderStatus
    last_heartbeat: UtcTime


class Capacity(BaseModel):
    available_gpus: dict[str, int]
    in_use_gpus: dict[str, int]
    mining_gpus: dict[str, int]
    total_cpu_cores: int
    available_cpu_cores: int
    in_use_cpu_cores: int
    total_memory_mb: int
    available_memory_mb: int
    in_use_memory_mb: int
    gpu_price_per_hour: float


class Provider(BaseModel):
    provider_id: str
    wallet_addr: str
    status: ProviderStatus
    region: str
    spec: ProviderSpec
    capacity: Capacity
    runtime: Literal["docker", "kubernetes"]
    last_heartbeat: UtcTime | None
    registered_at: UtcTime
    joined_at: UtcTime | None


class ProviderRecord(BaseModel):
    """A provider as stored: one item holds every counter, so allocation is one conditional write.

    Invariant kept by every write: per GPU model `gpu_available + gpu_in_use == gpu_total`, and the
    same for CPU cores and memory. GPUs the agent mines on stay rentable (rentals win), so
    `mining_gpus` is derived from the last heartbeat's report as a part of `gpu_available`.
    """

    provider_id: str
    wallet_addr: str
    status: ProviderStatus
    region: str
    runtime: Literal["docker", "kubernetes"] = "docker"
    spec: ProviderSpec
    gpu_price_per_hour: Decimal
    gpu_total: dict[str, int]
    gpu_available: dict[str, int]
    gpu_in_use: dict[str, int]
    mining: MiningReport | None = None
    cpu_total: int
    cpu_available: int
    cpu_in_use: int
    mem_total_mb: int
    mem_available_mb: int
    mem_in_use_mb: int
    last_heartbeat: UtcTime | None = None
    registered_at: UtcTime
    joined_at: UtcTime | None = None

    def mining_gpus(self) -> dict[str, int]:
        """The reported mining GPU count spread over models, never more than is idle."""
        left = self.mining.gpu_count if self.mining and self.mining.state == "running" else 0
        spread: dict[str, int] = {}
        for model in sorted(self.gpu_total):
            spread[model] = min(left, self.gpu_available.get(model, 0))
            left -= spread[model]
        return spread

    def to_public(self) -> Provider:
        return Provider(
            provider_id=self.provider_id,
            wallet_addr=self.wallet_addr,
            status=self.status,
            region=self.region,
            spec=self.spec,
            capacity=Capacity(
                available_gpus=self.gpu_available,
                in_use_gpus=self.gpu_in_use,
                mining_gpus=self.mining_gpus(),
                total_cpu_cores=self.cpu_total,
                available_cpu_cores=self.cpu_available,
                in_use_cpu_cores=self.cpu_in_use,
                total_memory_mb=self.mem_total_mb,
                available_memory_mb=self.mem_available_mb,
                in_use_memory_mb=self.mem_in_use_mb,
                gpu_price_per_hour=float(self.gpu_price_per_hour),
            ),
            runtime=self.runtime,
            last_heartbeat=self.last_heartbeat,
            registered_at=self.registered_at,
            joined_at=self.joined_at,
        )


class ProviderList(BaseModel):
    providers: list[Provider]
    next_token: str | None = None


class GpuAvailability(BaseModel):
    gpu_model: str
    available: int
    in_use: int
    mining: int
    providers: int
    min_price_per_hour: float | None


class GpuAvailabilityResponse(BaseModel):
    gpus: list[GpuAvailability]


class ProviderSearch(BaseModel):
    """The search filters of GET /providers/search, already validated."""

    gpu_model: str | None = None
    min_gpus: int | None = None
    max_price: float | None = None
    region: str | None = None
    min_cpu_cores: int | None = None
    min_memory_gb: int | None = None
    status: ProviderStatus = ProviderStatus.AVAILABLE
    sort: Literal["price", "-price", "gpus"] = "price"
