"""Types shared by every model: UTC times, wallet addresses, ids, the error body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, PlainSerializer

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


# What a field with a pattern must look like, for error messages (the regex itself helps nobody).
FORMAT_HINTS = {
    "address": "must be a 0x-prefixed 20-byte hex address",
    "signature": "must be a 65-byte hex signature",
    "image": "must be a Docker image reference such as nvidia/cuda:12.0.0-devel-ubuntu22.04",
    "ssh_public_key": "must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)",
    "ssh_password": "must be printable ASCII without spaces",
    "provider_id": "must be 1-64 letters, digits, '-' or '_'",
    "job_id": "must be 1-64 letters, digits or '-'",
    "hostname": "must be a host name (letters, digits, '.' and '-')",
    "region": "must be letters, digits, '.', '_' or '-'",
}


def format_time(value: datetime) -> str:
    # Fixed width (milliseconds, Z) so stored times sort as strings in index keys.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_as_utc), PlainSerializer(format_time, return_type=str)]
WalletAddress = Annotated[str, Field(pattern=ADDRESS_PATTERN, examples=["0x52908400098527886E0F7030069857D2E4169EE7"])]
ResourceId = Annotated[str, Field(pattern=ID_PATTERN)]


class ErrorDetail(BaseModel):
    field: str
    issue: str


class ErrorInfo(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorInfo
