"""Commands the platform queues for a provider's agent, and what the agent reports back."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worldland.models.common import UtcTime

CommandType = Literal["start_rental", "stop_rental"]


class RentalSpec(BaseModel):
    """What the agent needs to run a rental container."""

    image: str
    gpu_model: str
    gpu_count: int
    cpu_cores: int
    memory_gb: int
    storage_gb: int
    expires_at: UtcTime
    ssh_password_hash: str | None = Field(default=None, description="SHA-512 crypt, for chpasswd -e.")
    ssh_public_key: str | None = None


class Command(BaseModel):
    command_id: str
    type: CommandType
    job_id: str
    provider_id: str
    issued_at: UtcTime
    rental: RentalSpec | None = Field(default=None, description="Set on start_rental.")


class CommandDelivery(Command):
    receipt: str = Field(description="Send it back to /commands/ack once the command is handled.")
    delivery: int = Field(description="1 on the first delivery; more when an earlier one was not acknowledged.")


class CommandsResponse(BaseModel):
    commands: list[CommandDelivery]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # SQS receipt handles are printable ASCII of at most 1,024 characters; anything else is refused here
    # rather than sent to SQS (which cannot even encode a lone surrogate).
    receipts: list[Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[\x21-\x7e]+$")]] = Field(
        min_length=1, max_length=10
    )


class AckResponse(BaseModel):
    acknowledged: int
    failed: list[str] = Field(default_factory=list, description="Receipts that were not valid (already expired).")


class Progress(BaseModel):
    phase: Literal["pulling", "creating", "starting", "stopping"]
    percent: float | None = Field(default=None, ge=0, le=100)
    message: str | None = Field(default=None, max_length=500)


class JobReport(BaseModel):
    """The agent's account of one rental. Duplicates change nothing; reports behind the job's state are refused."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["starting", "running", "failed", "ended"]
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    reason: str | None = Field(default=None, max_length=1000)
    progress: Progress | None = None

    @model_validator(mode="after")
    def _running_needs_port(self) -> JobReport:
        if self.state == "running" and self.ssh_port is None:
            raise ValueError("ssh_port is required when state is running")
        return self
