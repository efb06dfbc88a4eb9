"""What the platform sends the agent (commands) and what the agent keeps per rental (the journal entry)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

# Times are ISO 8601 UTC ("…Z"); pydantic parses them on every Python the agent supports (3.10's
# datetime.fromisoformat does not take "Z").
parse_time = TypeAdapter(datetime).validate_python


class RentalSpec(BaseModel):
    """A start_rental's container: image, resources, expiry, and how root logs in."""

    model_config = ConfigDict(extra="ignore")
    image: str
    gpu_model: str
    gpu_count: int
    cpu_cores: int
    memory_gb: int
    storage_gb: int
    expires_at: datetime
    # SecretStr: a repr, a log line or an exception message never shows them.
    ssh_password_hash: SecretStr | None = None
    ssh_public_key: SecretStr | None = None


class Command(BaseModel):
    model_config = ConfigDict(extra="ignore")
    command_id: str
    type: Literal["start_rental", "stop_rental"]
    job_id: str
    provider_id: str
    issued_at: datetime
    rental: RentalSpec | None = None
    receipt: str
    delivery: int = 1


RentalState = Literal["accepted", "starting", "running", "failed", "ended"]
FINAL_STATES: frozenset[str] = frozenset({"failed", "ended"})


class RentalRecord(BaseModel):
    """One rental as the agent journals it in the state dir, so a restart resumes where it was."""

    job_id: str
    rental: RentalSpec | None = None
    state: RentalState = "accepted"
    # The last state the platform confirmed (answered 2xx or 409); reconcile re-sends when it lags.
    reported: RentalState | None = None
    reason: str | None = None
    ssh_port: int | None = None
    container_id: str | None = None
    gpu_indices: list[int] = Field(default_factory=list)
    # Docker's RestartCount when the agent started or adopted the container: a higher count means its
    # main process exited on its own and the restart policy brought it back.
    restart_count: int = 0
    stop_requested: bool = False
    stop_reason: str | None = None
    # When the final state was confirmed; the entry stays a while after, so a late duplicate start is ignored.
    finished_at: datetime | None = None


def describe_error(error: BaseException) -> str:
    """An error's text fit for the log: a validation error names the fields and rules only.

    pydantic's own message repeats the input (`input_value=…`), which for a command or a journal
    entry can hold an SSH password hash or public key."""
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_context=False, include_input=False)
        where = "; ".join(f"{'.'.join(map(str, p['loc'])) or '(root)'}: {p['type']}" for p in problems)
        return f"{error.error_count()} validation error(s) for {error.title}: {where}"
    return str(error)
