"""The rental lifecycle on the local stack: long-poll latency, acks and dead letters through real
SQS event sources, staleness fired by the template's schedule, concurrent enders."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.client import ApiClient
from tests.support import job_body

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


def poll(provider: ApiClient, provider_id: str, wait: int = 0) -> list[dict]:
    answer = provider.call("GET", f"/api/v1/nodes/{provider_id}/commands", params={"wait": wait})
    assert answer.status_code == 200, answer.text
    return answer.json()["commands"]


def test_long_poll_answers_as_soon_as_a_command_is_queued(fast_stack) -> None:
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="lp-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    arrived: dict[str, float] = {}

    def long_poll() -> None:
        poller = ApiClient(fast_stack.api_url, wallet=provider.wallet, token=provider.token)
        commands = poll(poller, provider_id, wait=20)
        arrived["at"] = time.monotonic()
        arrived["type"] = commands[0]["type"]

    waiting = threading.Thread(target=long_poll)
    waiting.start()
    time.sleep(1.5)  # the poll is parked in ReceiveMessage
    sent = time.monotonic()
    assert customer.call("POST", "/api/v1/jobs", json=job_body(provider_id)).status_code == 201
    waiting.join(25)
    assert arrived["type"] == "start_rental"
    assert arrived["at"] - sent < 1.0, "the long poll should return within a fraction of a second"


def test_running_report_gives_the_customer_ssh(fast_stack) -> None:
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="ssh-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id)).json()["job_id"]
    (start,) = poll(provider, provider_id)
    provider.call("POST", f"/api/v1/nodes/{provider_id}/commands/ack", json={"receipts": [start["receipt"]]})
    report = {"state": "running", "ssh_port": 30022}
    assert provider.call("POST", f"/api/v1/nodes/{provider_id}/jobs/{job_id}/status", json=report).status_code == 200
    job = customer.call("GET", f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "Running"
    assert job["ssh"]["command"] == "ssh root@123.45.67.89 -p 30022"


def test_unacknowledged_start_is_redelivered_then_fails_the_job(fast_stack) -> None:
    # fast_stack: CommandAckTimeoutSeconds=2, CommandMaxDeliveries=2
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="dlq-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id)).json()["job_id"]
    first = wait_for(lambda: poll(provider, provider_id, wait=5), 10)
    second = wait_for(lambda: poll(provider, provider_id, wait=5), 10)
    assert first[0]["command_id"] == second[0]["command_id"]
    assert second[0]["delivery"] == 2
    # Never acknowledged: the next receive moves it to the dead-letter queue, whose consumer fails the job
    time.sleep(2.5)
    assert poll(provider, provider_id, wait=1) == []
    failed = wait_for(
        lambda: (j := customer.call("GET", f"/api/v1/jobs/{job_id}").json())["status"] == "Failed" and j, 30
    )
    assert "did not acknowledge" in failed["failure_reason"]
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 0}


def test_silent_provider_goes_offline_within_the_threshold_and_returns(fast_stack) -> None:
    # fast_stack: HeartbeatStaleSeconds=3, StalenessCheckSeconds=1
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="stale-host")
    silent_since = time.monotonic()
    wait_for(lambda: provider.call("GET", f"/api/v1/providers/{provider_id}").json()["status"] == "Offline", 15)
    assert time.monotonic() - silent_since <= 3 + 1 + 2  # threshold + one period + slack
    beat = provider.call("POST", f"/api/v1/nodes/{provider_id}/heartbeat", json={"status": "Available"})
    assert beat.json()["status"] == "Available"


def test_concurrent_enders_release_once(fast_stack) -> None:
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="enders-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id, gpu_count=2)).json()["job_id"]

    def end(i: int) -> int:
        if i % 2:
            client = ApiClient(fast_stack.api_url, wallet=customer.wallet, token=customer.token)
            return client.call("DELETE", f"/api/v1/jobs/{job_id}").status_code
        node = ApiClient(fast_stack.api_url, wallet=provider.wallet, token=provider.token)
        return node.call(
            "POST", f"/api/v1/nodes/{provider_id}/jobs/{job_id}/status", json={"state": "failed"}
        ).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(end, range(12)))
    assert set(statuses) <= {200, 202}, statuses
    capacity = customer.capacity(provider_id)
    assert capacity["available_gpus"] == {"RTX-4090": 4}
    assert capacity["in_use_gpus"] == {"RTX-4090": 0}
    assert (capacity["available_cpu_cores"], capacity["in_use_cpu_cores"]) == (32, 0)
