"""The platform's node routes over HTTP: register, heartbeat, long-poll commands, acknowledge, report."""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests
from pydantic import ValidationError

from worldland_node.auth import Token, WalletSigner, utc_now
from worldland_node.models import Command, describe_error

log = logging.getLogger(__name__)


class PlatformError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class IllegalTransition(PlatformError):
    """409: the platform has already moved the job past what was reported."""


class NotFound(PlatformError):
    """404: the platform does not know the provider or job named."""


class PlatformClient:
    """Thread-safe: the heartbeat, command and rental threads share one client (and one token)."""

    def __init__(self, origin: str, signer: WalletSigner, timeout: float = 30) -> None:
        self._origin = origin
        self._signer = signer
        self._timeout = timeout
        self._token: Token | None = None
        self._token_lock = threading.Lock()
        # requests.Session is not documented thread-safe; one per thread keeps connection reuse safe.
        self._local = threading.local()

    @property
    def address(self) -> str:
        return self._signer.address

    # ------------------------------------------------------------------ routes

    def register(self, body: dict[str, Any]) -> str:
        answer = self._call("POST", "/api/v1/nodes/register", json=body)
        return str(answer["provider_id"])

    def heartbeat(self, provider_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/nodes/{provider_id}/heartbeat", json=body)

    def poll_commands(self, provider_id: str, wait: int) -> list[Command]:
        """The commands waiting; one that does not parse is logged (fields and rules only) and skipped:
        unacknowledged, it comes back until the platform's delivery limit fails its job."""
        answer = self._call("GET", f"/api/v1/nodes/{provider_id}/commands", params={"wait": wait}, extra_timeout=wait)
        commands = []
        for raw in answer["commands"]:
            try:
                commands.append(Command.model_validate(raw))
            except ValidationError as error:
                log.error(
                    "command %s (job %s) is malformed and was skipped: %s",
                    _named(raw, "command_id"),
                    _named(raw, "job_id"),
                    describe_error(error),
                )
        return commands

    def ack(self, provider_id: str, receipts: list[str]) -> None:
        # The route takes at most 10 receipts a call.
        for start in range(0, len(receipts), 10):
            answer = self._call(
                "POST", f"/api/v1/nodes/{provider_id}/commands/ack", json={"receipts": receipts[start : start + 10]}
            )
            if answer.get("failed"):
                log.warning("%d receipt(s) were no longer valid (the command will come again)", len(answer["failed"]))

    def report(self, provider_id: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Raises IllegalTransition on 409 (the caller decides whether that matters)."""
        return self._call("POST", f"/api/v1/nodes/{provider_id}/jobs/{job_id}/status", json=body)

    # ------------------------------------------------------------------ plumbing

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "worldland-node/0.1"
            self._local.session = session
        return session

    def _bearer(self, force: bool = False) -> str:
        with self._token_lock:
            if force or self._token is None or not self._token.fresh(utc_now()):
                self._token = self._signer.sign_in(self._session(), self._origin, self._timeout)
            return self._token.value

    def _call(self, method: str, path: str, extra_timeout: float = 0, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, self._bearer(), extra_timeout, **kwargs)
        if response.status_code == 401:
            # Expired early, the signing secret rotated, ...: sign in again once.
            log.info("the platform answered 401 to %s %s; signing in again", method, path)
            response = self._send(method, path, self._bearer(force=True), extra_timeout, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    def _send(self, method: str, path: str, token: str, extra_timeout: float, **kwargs: Any) -> requests.Response:
        return self._session().request(
            method,
            f"{self._origin}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=self._timeout + extra_timeout,
            **kwargs,
        )


def _error(response: requests.Response) -> PlatformError:
    try:
        error = response.json()["error"]
        code, message = str(error.get("code", "error")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError):
        code, message = "error", response.text[:300]
    kinds: dict[int, type[PlatformError]] = {409: IllegalTransition, 404: NotFound}
    return kinds.get(response.status_code, PlatformError)(response.status_code, code, message)


def _named(raw: Any, key: str) -> str:
    # Identifiers only, and only when they look like one: nothing else of a malformed command is logged.
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value.isprintable() and len(value) <= 64 else "?"
