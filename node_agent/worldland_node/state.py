"""The state directory: the provider id, and a journal with one file per rental the agent has taken on.

A command is acknowledged once its rental is journaled, so a crash after the ack loses nothing: on
restart the journal says what to finish (start, stop, or re-send a report the platform never got).
Entries can hold a password hash until the container has it, so the directory and files are 0700/0600.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from worldland_node.models import RentalRecord


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._rentals = path / "rentals"
        self._rentals.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        os.chmod(self._rentals, 0o700)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ provider id

    def provider_id(self, api_origin: str) -> str | None:
        file = self._provider_file(api_origin)
        return file.read_text().strip() or None if file.exists() else None

    def save_provider_id(self, api_origin: str, provider_id: str) -> None:
        _write_atomic(self._provider_file(api_origin), provider_id + "\n")

    def _provider_file(self, api_origin: str) -> Path:
        # One id per platform: the same host may be registered with a staging and a production API.
        safe = "".join(c if c.isalnum() else "_" for c in api_origin)
        return self.path / f"provider_id.{safe}"

    # ------------------------------------------------------------------ rental journal

    def load(self, job_id: str) -> RentalRecord | None:
        file = self._rental_file(job_id)
        with self._lock:
            return RentalRecord.model_validate_json(file.read_text()) if file.exists() else None

    def save(self, record: RentalRecord) -> None:
        # model_dump_json would mask the SecretStr fields; the journal must keep them to resume a start.
        data = record.model_dump(mode="json")
        if record.rental is not None:
            for name in ("ssh_password_hash", "ssh_public_key"):
                secret = getattr(record.rental, name)
                data["rental"][name] = secret.get_secret_value() if secret is not None else None
        with self._lock:
            _write_atomic(self._rental_file(record.job_id), json.dumps(data, separators=(",", ":")))

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._rental_file(job_id).unlink(missing_ok=True)

    def all(self) -> list[RentalRecord]:
        with self._lock:
            files = sorted(self._rentals.glob("*.json"))
            return [RentalRecord.model_validate_json(f.read_text()) for f in files]

    def _rental_file(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise ValueError(f"not a job id: {job_id!r}")
        return self._rentals / f"{job_id}.json"


def _write_atomic(path: Path, text: str) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
