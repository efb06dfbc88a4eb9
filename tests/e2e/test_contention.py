"""No GPU is ever sold twice: many concurrent creates at one provider through the local HTTP API."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.client import ApiClient
from tests.support import job_body

pytestmark = pytest.mark.e2e

CONCURRENT_CREATES = 120
ROUNDS = 3


def _create(base_url: str, token: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    # One session per request: requests.Session is not safe to share between threads.
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    with requests.Session() as session:
        answer = session.post(f"{base_url}/api/v1/jobs", json=body, headers=headers, timeout=120)
    return answer.status_code, answer.json()


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_concurrent_creates_never_oversell_and_capacity_balances(stack, round_number: int) -> None:
    # Given a provider with 4 GPUs and customers holding tokens
    provider_id = ApiClient(stack.api_url).sign_in().register_provider(hostname=f"contention-{round_number}")
    customers = [ApiClient(stack.api_url).sign_in() for _ in range(4)]
    body = job_body(provider_id, cpu_cores=2, memory_gb=8)
    # When 120 creates for 1 GPU each arrive at once
    with ThreadPoolExecutor(max_workers=CONCURRENT_CREATES) as pool:
        results = list(
            pool.map(
                lambda i: _create(stack.api_url, customers[i % 4].token, body),
                range(CONCURRENT_CREATES),
            )
        )
    # Then exactly 4 succeed and every other one is a clean 409
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 4, 409: CONCURRENT_CREATES - 4}, statuses
    assert {b["error"]["code"] for s, b in results if s == 409} == {"insufficient_capacity"}
    capacity = customers[0].capacity(provider_id)
    assert capacity["available_gpus"] == {"RTX-4090": 0}
    assert capacity["in_use_gpus"] == {"RTX-4090": 4}
    assert capacity["in_use_cpu_cores"] == 8
    assert capacity["in_use_memory_mb"] == 4 * 8 * 1024
    # When all four are deleted, each twice and at the same time
    jobs = [(customers[i % 4], b["job_id"]) for i, (s, b) in enumerate(results) if s == 201]
    owners = {b["job_id"]: b["owner"] for s, b in results if s == 201}
    by_address = {c.address: c for c in customers}
    with ThreadPoolExecutor(max_workers=8) as pool:
        deletes = list(
            pool.map(
                lambda job_id: by_address[owners[job_id]].call("DELETE", f"/api/v1/jobs/{job_id}").status_code,
                [job_id for _, job_id in jobs] * 2,
            )
        )
    assert set(deletes) == {202}
    # Then the capacity balances exactly: nothing released twice
    after = customers[0].capacity(provider_id)
    assert after["available_gpus"] == {"RTX-4090": 4}
    assert after["in_use_gpus"] == {"RTX-4090": 0}
    assert (after["available_cpu_cores"], after["in_use_cpu_cores"]) == (32, 0)
    assert (after["available_memory_mb"], after["in_use_memory_mb"]) == (128 * 1024, 0)


def test_concurrent_creates_with_one_idempotency_key_allocate_once(stack) -> None:
    provider_id = ApiClient(stack.api_url).sign_in().register_provider(hostname="contention-idempotent")
    customer = ApiClient(stack.api_url).sign_in()
    body = job_body(provider_id)
    assert customer.token
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: _create(stack.api_url, customer.token, body, "same-click"), range(20)))
    assert {status for status, _ in results} == {201}
    assert len({answer["job_id"] for _, answer in results}) == 1
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 1}
