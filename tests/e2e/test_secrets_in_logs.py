"""Secrets never reach the logs: after a flow that handles them all, the stack's whole log is searched."""

from __future__ import annotations

import time

import pytest

from tests.e2e.client import ApiClient
from tests.support import job_body, sign_text

pytestmark = pytest.mark.e2e


def test_tokens_signatures_and_passwords_stay_out_of_the_logs(stack) -> None:
    # Given a sign-in whose signature and token we keep
    client = ApiClient(stack.api_url)
    message = client.call("POST", "/api/v1/auth/nonce", json={"address": client.address}).json()["message"]
    signature = sign_text(client.wallet, message)
    token = client.call("POST", "/api/v1/auth/login", json={"message": message, "signature": signature}).json()["token"]
    client.token = token
    # And a job with a chosen password, and one with a generated password, and a refused token
    provider_id = client.register_provider(hostname="secrets-host")
    chosen = "correct-horse-battery-staple"
    assert client.call("POST", "/api/v1/jobs", json=job_body(provider_id, ssh_password=chosen)).status_code == 201
    generated = client.call("POST", "/api/v1/jobs", json=job_body(provider_id)).json()["ssh_password"]
    forged = token[:-4] + "AAAA"
    assert ApiClient(stack.api_url, token=forged).call("GET", "/api/v1/jobs").status_code == 401
    time.sleep(0.5)  # the log is written by a reader thread
    # Then none of them appears anywhere in what the stack and its functions logged
    log = stack.log_path.read_text(errors="replace")
    assert "job created" in log  # the functions' structured logs are there
    for secret in (token, forged, signature, signature.removeprefix("0x"), chosen, generated):
        assert secret not in log
