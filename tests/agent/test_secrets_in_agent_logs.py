"""The agent's whole log, through sign-in, a password rental, a key rental and their ends, holds no secret."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent.test_agent_e2e import delete_and_wait, rent, ssh, wait_for_status
from tests.e2e.client import ApiClient

pytestmark = pytest.mark.e2e


def test_the_wallet_key_passwords_and_hashes_never_reach_the_agent_log(agent_stack, make_agent) -> None:
    # Given an agent at DEBUG level, and a customer renting with a password and with a key
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    password = "never-in-logs-Pa55!"
    with_password = wait_for_status(
        customer, rent(customer, agent.provider_id, ssh_password=password)["job_id"], {"Running", "Failed"}
    )
    assert with_password["status"] == "Running", with_password
    ssh(with_password, password=password).close()
    public_key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    with_key = wait_for_status(
        customer, rent(customer, agent.provider_id, ssh_public_key=public_key)["job_id"], {"Running", "Failed"}
    )
    assert with_key["status"] == "Running", with_key
    # The hash the platform stored and sent the agent
    table = agent_stack.resources["JobsTable"]
    item = agent_stack.boto3_client("dynamodb").get_item(
        TableName=table, Key={"job_id": {"S": with_password["job_id"]}}
    )["Item"]
    password_hash = item["ssh_password_hash"]["S"]
    assert password_hash.startswith("$6$")
    # When both end and the agent stops
    delete_and_wait(customer, with_password)
    delete_and_wait(customer, with_key)
    assert agent.stop() == 0
    time.sleep(0.2)
    # Then the log tells the story without any of the secrets
    log = agent.log_text()
    assert "signed in as" in log
    assert "running; SSH on port" in log
    assert "login by password" in log
    for secret in (agent.key_hex, agent.key_hex.removeprefix("0x"), password, password_hash, public_key.split()[1]):
        assert secret not in log
    # Nor the token the agent signed in with (it is never logged; a fragment check covers a partial leak)
    assert "Bearer" not in log
