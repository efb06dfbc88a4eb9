"""Job (rental) models: the create request, the public Job of API.md and the stored record."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from worldland.models.commands import Progress
from worldland.models.common import ResourceId, UtcTime

# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest].
IMAGE_PATTERN = (
    # A registry is named only where the first part has a dot or a port, or is localhost (as Docker reads it).
    r"^(?:(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+)(?::[0-9]+)?/|[a-zA-Z0-9-]+:[0-9]+/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
SSH_KEY_PATTERN = (
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]{0,256})?$"
)


class JobStatus(StrEnum):
    AWAITING_PAYMENT = "AwaitingPayment"
    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"
    FAILED = "Failed"
    EXPIRED = "Expired"

    @property
    def holds_resources(self) -> bool:
        return self in _HOLDING


_HOLDING = {JobStatus.AWAITING_PAYMENT, JobStatus.PENDING, JobStatus.STARTING, JobStatus.RUNNING}
ENDED_STATUSES = frozenset({JobStatus.TERMINATED, JobStatus.FAILED, JobStatus.EXPIRED})


class CreateJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_id: ResourceId | None = None
    gpu_model: str | None = Field(default=None, min_length=1, max_length=128, examples=["RTX-4090"])
    gpu_count: int = Field(ge=1, le=64)
    cpu_cores: int = Field(ge=2, le=64)
    memory_gb: int = Field(ge=8, le=256)
    storage_gb: int = Field(ge=20, le=500)
    image: str = Field(max_length=255, pattern=IMAGE_PATTERN, examples=["nvidia/cuda:12.0.0-devel-ubuntu22.04"])
    duration_hours: int = Field(ge=1, le=720)
    ssh_password: str | None = Field(default=None, min_length=8, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ssh_public_key: str | None = Field(default=None, max_length=16384, pattern=SSH_KEY_PATTERN)


class SshInfo(BaseModel):
    host: str
    port: int
    username: str = "root"
    command: str


class Job(BaseModel):
    job_id: str
    owner: str
    provider_id: str
    status: JobStatus
    gpu_model: str
    gpu_count: int
    cpu_cores: int
    memory_gb: int
    storage_gb: int
    image: str
    duration_hours: int
    price_per_hour: float = Field(description="Price of the whole job for one hour (GPU price x count).")
    created_at: UtcTime
    started_at: UtcTime | None = None
    expires_at: UtcTime
    ended_at: UtcTime | None = None
    ssh: SshInfo | None = None
    failure_reason: str | None = None
    progress: Progress | None = Field(default=None, description="What the node is doing (image pull percent, ...).")


class JobCreated(Job):
    ssh_password: str | None = Field(default=None, description="The generated password; shown only once.")


class JobRecord(Job):
    """A job as stored: the public fields plus what allocation and the agent need."""

    price_per_hour: Decimal  # type: ignore[assignment]
    released: bool = False
    ssh_password_hash: str | None = None
    ssh_public_key: str | None = None
    request_hash: str | None = None
    # Not Running by then: Failed and released (a start the node never picked up must not hold a GPU
    # until expires_at). None on records written before the deadline existed.
    start_by: UtcTime | None = None

    def to_public(self) -> Job:
        return Job.model_validate(self.model_dump(include=set(Job.model_fields)))


class JobList(BaseModel):
    jobs: list[Job]
    next_token: str | None = None
