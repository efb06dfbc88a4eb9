"""The whole broker over the local stack's HTTP API: sign in, register, browse, rent, end."""

from __future__ import annotations

import pytest

from tests.e2e.client import ApiClient
from tests.support import job_body, sign_text, sign_typed

pytestmark = pytest.mark.e2e


def test_provider_and_customer_flow(stack) -> None:
    # Given a provider that signed in with its wallet, registered seed 002's host and heartbeats
    provider = ApiClient(stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="e2e-flow-host")
    # Then anyone sees it Available, with its GPUs by model
    public = ApiClient(stack.api_url)
    listed = public.call("GET", f"/api/v1/providers/{provider_id}").json()
    assert listed["status"] == "Available"
    assert listed["wallet_addr"] == provider.address
    found = public.call("GET", "/api/v1/providers/search", params={"gpu_model": "RTX-4090", "min_gpus": 4}).json()
    assert provider_id in [p["provider_id"] for p in found["providers"]]
    gpus = {g["gpu_model"]: g for g in public.call("GET", "/api/v1/providers/gpu-availability").json()["gpus"]}
    assert gpus["RTX-4090"]["available"] >= 4

    # When a customer rents 1 GPU, 8 cores, 32 GB
    customer = ApiClient(stack.api_url).sign_in()
    created = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id))
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "Pending"
    assert job["ssh_password"]
    # Then capacity moves as seed 002's "After Allocation" shows
    after = public.capacity(provider_id)
    assert after["available_gpus"] == {"RTX-4090": 3}
    assert (after["available_cpu_cores"], after["available_memory_mb"]) == (24, 96 * 1024)
    assert (after["in_use_cpu_cores"], after["in_use_memory_mb"]) == (8, 32 * 1024)
    # And the customer lists and reads it; nobody else can
    assert [j["job_id"] for j in customer.call("GET", "/api/v1/jobs").json()["jobs"]] == [job["job_id"]]
    assert customer.call("GET", f"/api/v1/jobs/{job['job_id']}").json()["gpu_model"] == "RTX-4090"
    stranger = ApiClient(stack.api_url).sign_in()
    assert stranger.call("GET", f"/api/v1/jobs/{job['job_id']}").status_code == 404
    assert stranger.call("DELETE", f"/api/v1/jobs/{job['job_id']}").status_code == 404

    # When the customer deletes it, Then it is Terminating and the capacity is back
    deleted = customer.call("DELETE", f"/api/v1/jobs/{job['job_id']}")
    assert deleted.status_code == 202
    assert deleted.json()["status"] == "Terminating"
    back = public.capacity(provider_id)
    assert back["available_gpus"] == {"RTX-4090": 4}
    assert (back["available_cpu_cores"], back["available_memory_mb"]) == (32, 128 * 1024)


def test_routes_need_a_valid_token(stack) -> None:
    anonymous = ApiClient(stack.api_url)
    for method, path in [("GET", "/api/v1/jobs"), ("POST", "/api/v1/jobs"), ("POST", "/api/v1/nodes/register")]:
        answer = anonymous.call(method, path, json={})
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
    forged = ApiClient(stack.api_url, token="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDAwIn0.bad")
    assert forged.call("GET", "/api/v1/jobs").status_code == 401


def test_eip712_sign_in_over_http(stack) -> None:
    client = ApiClient(stack.api_url)
    issued = client.call("POST", "/api/v1/auth/nonce", json={"address": client.address}).json()
    body = {"typed_data": issued["typed_data"], "signature": sign_typed(client.wallet, issued["typed_data"])}
    login = client.call("POST", "/api/v1/auth/login", json=body)
    assert login.status_code == 200, login.text
    client.token = login.json()["token"]
    assert client.call("GET", "/api/v1/jobs").status_code == 200


def test_nonce_is_single_use_over_http(stack) -> None:
    client = ApiClient(stack.api_url)
    message = client.call("POST", "/api/v1/auth/nonce", json={"address": client.address}).json()["message"]
    body = {"message": message, "signature": sign_text(client.wallet, message)}
    assert client.call("POST", "/api/v1/auth/login", json=body).status_code == 200
    reused = client.call("POST", "/api/v1/auth/login", json=body)
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "nonce_used"


def test_bad_input_gets_clear_errors_never_5xx(stack) -> None:
    customer = ApiClient(stack.api_url).sign_in()
    cases = [
        ("POST", "/api/v1/jobs", {"data": "{not json", "headers": {"Content-Type": "application/json"}}, 422),
        ("POST", "/api/v1/jobs", {"json": job_body(None, gpu_count=0, cpu_cores=1)}, 422),
        ("POST", "/api/v1/jobs", {"json": job_body("does-not-exist")}, 404),
        ("GET", "/api/v1/jobs", {"params": {"limit": "0"}}, 422),
        ("GET", "/api/v1/providers/search", {"params": {"min_gpus": "x"}}, 422),
        ("GET", "/api/v1/no-such-route", {}, 404),
        ("POST", "/api/v1/auth/nonce", {"json": {"address": "nope"}}, 422),
        ("POST", "/api/v1/nodes/register", {"json": {"spec": {}}}, 422),
    ]
    for method, path, kwargs, status in cases:
        answer = customer.call(method, path, **kwargs)
        assert answer.status_code == status, (method, path, answer.text)
        error = answer.json()["error"]
        assert error["code"]
        assert error["message"]
        if status == 422:
            assert error["details"], answer.text


def test_idempotency_key_over_http(stack) -> None:
    provider_id = ApiClient(stack.api_url).sign_in().register_provider(hostname="e2e-idempotency-host")
    customer = ApiClient(stack.api_url).sign_in()
    headers = {"Idempotency-Key": "e2e-order-1"}
    first = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id), headers=headers)
    second = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id), headers=dict(headers))
    assert first.status_code == second.status_code == 201
    assert first.json()["job_id"] == second.json()["job_id"]
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 1}


def test_openapi_document_is_served(stack) -> None:
    answer = ApiClient(stack.api_url).call("GET", "/api/v1/docs", params={"format": "json"})
    assert answer.status_code == 200
    spec = answer.json()
    assert {"/api/v1/jobs", "/api/v1/providers/search", "/api/v1/auth/login"} <= set(spec["paths"])
    page = ApiClient(stack.api_url).call("GET", "/api/v1/docs")
    assert page.status_code == 200
    assert "swagger" in page.text.lower()
