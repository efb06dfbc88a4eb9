"""The agent's settings: one validated model, read from flags and `WORLDLAND_*` environment variables."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOSTNAME = r"^[A-Za-z0-9][A-Za-z0-9.-]*$"


class AgentSettings(BaseSettings):
    """Every field is a `--flag-name` on the command line and a `WORLDLAND_FLAG_NAME` variable; flags win."""

    model_config = SettingsConfigDict(env_prefix="WORLDLAND_", extra="forbid", validate_default=True)

    api: str = Field(
        description="The platform's API address, e.g. https://api.worldland.cloud (with or without /api/v1). "
        "Seed 004: --hub-http."
    )
    host: str = Field(description="The public IP customers reach this host on; goes into each rental's SSH command.")
    private_key_file: Path | None = Field(
        default=None, description="File holding the provider wallet's private key (hex). Preferred over --private-key."
    )
    private_key: SecretStr | None = Field(
        default=None, description="The provider wallet's private key (hex); visible in `ps`, so prefer the key file."
    )
    state_dir: Path = Field(
        default=Path("/var/lib/worldland-node"),
        description="Where the provider id and the rental journal are kept. Seed 004: --cert-dir.",
    )
    hostname: str | None = Field(
        default=None, pattern=_HOSTNAME, description="The name registered for this host (default: the system's)."
    )
    region: str = Field(
        default="unknown", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Region shown to renters."
    )
    gpu_type: str | None = Field(
        default=None, description="GPU model name as NVML spells it, e.g. 'NVIDIA GeForce RTX 4090' (default: NVML)."
    )
    gpu_count: int | None = Field(default=None, ge=1, le=64, description="Number of GPUs (default: NVML).")
    gpu_memory_gb: int | None = Field(
        default=None, ge=1, le=1024, description="Memory of one GPU in GB (default: NVML). Seed 004: --memory-gb."
    )
    cpu_cores: int | None = Field(
        default=None, ge=1, le=1024, description="CPU cores offered to rentals (default: all this host has)."
    )
    # Not `memory_gb`: seed 004's --memory-gb was the GPU memory, and is kept as that (cli.SEED_ALIASES).
    host_memory_gb: int | None = Field(
        default=None, ge=1, le=16384, description="Host memory offered to rentals in GB (default: all this host has)."
    )
    price_per_hour: float = Field(
        default=0.5, gt=0, le=1000, description="Price of one GPU for one hour, in the platform's currency."
    )
    port_range: str = Field(default="30000-30999", description="Host ports rentals' SSH is published on, 'LOW-HIGH'.")
    heartbeat_interval: float = Field(default=30, gt=0, le=3600, description="Seconds between heartbeats.")
    poll_wait: int = Field(default=20, ge=0, le=20, description="Seconds each command long poll may wait.")
    reconcile_interval: float = Field(
        default=10, gt=0, le=3600, description="Seconds between checks of rentals against their containers and expiry."
    )
    pull_timeout: float = Field(default=1800, gt=0, description="Seconds an image pull may take before the job fails.")
    ssh_ready_timeout: float = Field(
        default=300,
        gt=0,
        description="Seconds from container start to sshd answering (includes installing openssh-server if needed).",
    )
    stop_grace: int = Field(default=10, ge=0, le=600, description="Seconds a rental gets between SIGTERM and SIGKILL.")
    siwe_domain: str | None = Field(
        default=None, description="Refuse to sign a sign-in message naming another domain (default: sign what comes)."
    )
    enable_mining: bool = Field(
        default=True, description="Mine on the GPUs nobody rents (rentals always take priority)."
    )
    mining_image: str = Field(default="mingeyom/worldland-mio:latest", description="The mining container's image.")
    mining_data_dir: Path = Field(
        default=Path("/data/worldland"), description="The mining chain data, mounted at /data in the mining container."
    )
    install_sshd: bool = Field(
        default=True,
        description="Install openssh-server with the image's package manager when a rental image has no sshd.",
    )
    request_timeout: float = Field(default=30, gt=0, description="Seconds for one API request (long polls add theirs).")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("api")
    @classmethod
    def _api_origin(cls, value: str) -> str:
        # Accept the address as README prints it (…/api/v1) or as a bare origin.
        return re.sub(r"/api/v1/?$", "", value.rstrip("/"))

    @field_validator("port_range")
    @classmethod
    def _port_range(cls, value: str) -> str:
        low, high = parse_port_range(value)
        return f"{low}-{high}"

    @model_validator(mode="after")
    def _one_key(self) -> AgentSettings:
        if self.private_key is None and self.private_key_file is None:
            raise ValueError("a wallet key is needed: --private-key-file (or WORLDLAND_PRIVATE_KEY_FILE)")
        return self

    @property
    def ports(self) -> tuple[int, int]:
        return parse_port_range(self.port_range)

    def wallet_key(self) -> str:
        """The private key's hex, from the file when one is named. Never logged."""
        if self.private_key_file is not None:
            text = self.private_key_file.read_text().strip()
            if not text:
                raise ValueError(f"{self.private_key_file} is empty")
            return text
        assert self.private_key is not None  # guaranteed by _one_key
        return self.private_key.get_secret_value().strip()


def parse_port_range(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
    if not match:
        raise ValueError(f"port range must be LOW-HIGH, got {value!r}")
    low, high = int(match[1]), int(match[2])
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"port range must lie within 1024-65535 with LOW <= HIGH, got {value!r}")
    return low, high
