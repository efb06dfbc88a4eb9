"""The platform client's command parsing: a malformed command is skipped and logged without its content."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from pydantic import ValidationError
from worldland_node.api_client import PlatformClient
from worldland_node.auth import WalletSigner
from worldland_node.loops import Loop
from worldland_node.models import RentalRecord

from tests.agent.test_rentals import PROVIDER, command

HASH = "$6$Qx7sAlTq$" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9rS1uV3xY5zA7cD9fG1iK3mO5qR7tU9wX1yZ3bD5fH7j"
# pydantic shortens a long input in its message to its start and its end: neither may reach the log.
FRAGMENTS = (HASH[:12], HASH[-20:])
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0pBBdK3GCNMSxkEa7qcK0kzbhnFQ8hgNiSqHhiVf9 customer@laptop"


def client_answering(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]) -> PlatformClient:
    client = PlatformClient("http://127.0.0.1:9", WalletSigner("0x" + "22" * 32))
    monkeypatch.setattr(client, "_call", lambda *args, **kwargs: answer)
    return client


def test_a_malformed_command_is_logged_by_field_and_rule_without_its_login_material(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a start whose rental lacks its image (so pydantic's message would repeat the whole rental), and a good one
    good = command("start_rental", job_id="job-good").model_dump(mode="json")
    good["rental"]["ssh_password_hash"] = HASH
    bad = command("start_rental", job_id="job-bad").model_dump(mode="json")
    bad["rental"] |= {"ssh_password_hash": HASH, "ssh_public_key": PUBLIC_KEY}
    del bad["rental"]["image"]
    client = client_answering(monkeypatch, {"commands": [bad, good]})
    caplog.set_level(logging.DEBUG)
    # When the agent polls
    commands = client.poll_commands(PROVIDER, 0)
    # Then the good command is handed on, the bad one skipped, and the log names the field and rule only
    assert [c.job_id for c in commands] == ["job-good"]
    assert "job-bad" in caplog.text
    assert "rental.image: missing" in caplog.text
    assert not [f for f in FRAGMENTS if f in caplog.text]
    assert PUBLIC_KEY.split()[1][-20:] not in caplog.text


def test_a_loop_logs_a_validation_failure_without_its_input(caplog: pytest.LogCaptureFixture) -> None:
    # Given a step that fails on a corrupt journal entry holding a password hash
    def step() -> None:
        RentalRecord.model_validate({"job_id": "j", "state": "bogus", "rental": {"ssh_password_hash": HASH}})

    loop = Loop("reconcile", step, 1, stop=threading.Event())
    caplog.set_level(logging.DEBUG)
    # When a pass fails
    loop.run_once()
    # Then the log says where and what kind, without the hash (nor a traceback repeating it)
    assert "reconcile failed (ValidationError" in caplog.text
    assert "state: literal_error" in caplog.text
    assert not [f for f in FRAGMENTS if f in caplog.text]


def test_the_hash_is_what_pydantic_itself_would_have_logged() -> None:
    # The premise of the two tests above: str() of the error carries (the start of) the input.
    with pytest.raises(ValidationError) as raised:
        RentalRecord.model_validate({"job_id": "j", "state": "bogus", "rental": {"ssh_password_hash": HASH}})
    assert HASH[-20:] in str(raised.value)
