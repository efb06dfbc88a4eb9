"""The rental lifecycle on the local stack: long-poll latency, acks and dead letters through real
SQS event sources, staleness and expiry fired by the template's schedules, concurrent enders."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.client import ApiClient
from tests.e2e.conftest import ACK_TIMEOUT_SECONDS
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
    # fast_stack: CommandAckTimeoutSeconds=5, CommandMaxDeliveries=2
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="dlq-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id)).json()["job_id"]
    first = wait_for(lambda: poll(provider, provider_id, wait=5), ACK_TIMEOUT_SECONDS + 10)
    second = wait_for(lambda: poll(provider, provider_id, wait=5), ACK_TIMEOUT_SECONDS + 10)
    assert first[0]["command_id"] == second[0]["command_id"]
    assert second[0]["delivery"] == 2
    # Never acknowledged: the next receive moves it to the dead-letter queue, whose consumer fails the job
    time.sleep(ACK_TIMEOUT_SECONDS + 0.5)
    assert poll(provider, provider_id, wait=1) == []
    failed = wait_for(
        lambda: (j := customer.call("GET", f"/api/v1/jobs/{job_id}").json())["status"] == "Failed" and j, 30
    )
    assert "did not acknowledge" in failed["failure_reason"]
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 0}


def test_silent_provider_goes_offline_within_the_threshold_and_returns(fast_stack) -> None:
    # fast_stack: HeartbeatStaleSeconds=5, StalenessCheckSeconds=1
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="stale-host")
    silent_since = time.monotonic()
    wait_for(lambda: provider.call("GET", f"/api/v1/providers/{provider_id}").json()["status"] == "Offline", 15)
    assert time.monotonic() - silent_since <= 5 + 1 + 2  # threshold + one period + slack
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


# ---------------------------------------------------------------- expiry and concurrent enders
def _time(moment: datetime) -> str:
    # As the platform stores times: fixed width, milliseconds, Z (they sort as strings in the index).
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expire_now(stack, job_id: str, deadline: str = "expires_at") -> None:
    """Move a job's deadline (expires_at, or start_by) into the past in the emulator's DynamoDB
    (durations are whole hours, the start timeout at least a minute; the handlers keep their real clocks)."""
    stack.boto3_client("dynamodb").update_item(
        TableName=stack.resources["JobsTable"],
        Key={"job_id": {"S": job_id}},
        UpdateExpression=f"SET {deadline} = :past",
        ConditionExpression="attribute_exists(job_id)",
        ExpressionAttributeValues={":past": {"S": _time(datetime.now(UTC) - timedelta(seconds=1))}},
    )


def test_a_job_ends_on_its_own_at_expires_at(fast_stack) -> None:
    # fast_stack: ExpirySweepSeconds=1; the schedule fires the sweep, which queues on ExpiryQueue,
    # whose event source feeds ExpiryFunction
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="expiry-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id, duration_hours=1)).json()["job_id"]
    (start,) = poll(provider, provider_id)
    provider.call("POST", f"/api/v1/nodes/{provider_id}/commands/ack", json={"receipts": [start["receipt"]]})
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 1}

    expire_now(fast_stack, job_id)

    expired = wait_for(
        lambda: (j := customer.call("GET", f"/api/v1/jobs/{job_id}").json())["status"] == "Expired" and j, 20
    )
    assert expired["ended_at"] is not None
    capacity = customer.capacity(provider_id)
    assert capacity["in_use_gpus"] == {"RTX-4090": 0}
    assert (capacity["available_cpu_cores"], capacity["in_use_cpu_cores"]) == (32, 0)
    (stop,) = wait_for(lambda: poll(provider, provider_id, wait=5), 15)
    assert (stop["type"], stop["job_id"]) == ("stop_rental", job_id)
    # It went schedule -> sweep -> ExpiryQueue -> consumer, not some other way
    log = fast_stack.log_path.read_text()
    assert "due jobs queued" in log
    assert any("due job ended" in line and job_id in line and "Expired" in line for line in log.splitlines())


def test_a_start_the_provider_never_picks_up_fails_at_its_deadline(fast_stack) -> None:
    # Given a job whose start_rental the provider's agent never polls for
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="silent-agent-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id, duration_hours=2)).json()["job_id"]
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 1}
    # When its start deadline passes
    expire_now(fast_stack, job_id, "start_by")
    # Then the sweep, the queue and the consumer fail it with the reason and give its GPU back
    failed = wait_for(
        lambda: (j := customer.call("GET", f"/api/v1/jobs/{job_id}").json())["status"] == "Failed" and j, 20
    )
    assert failed["failure_reason"].startswith("The provider did not start the rental within")
    assert customer.capacity(provider_id)["in_use_gpus"] == {"RTX-4090": 0}
    # And the agent, should it come back, is told to stop whatever it started, after the start
    commands = wait_for(lambda: len(c := poll(provider, provider_id, wait=5)) == 2 and c, 15)
    assert [c["type"] for c in commands] == ["start_rental", "stop_rental"]


def test_delete_expiry_and_failure_at_the_same_moment_release_once(fast_stack) -> None:
    provider = ApiClient(fast_stack.api_url).sign_in()
    provider_id = provider.register_provider(hostname="race-host")
    customer = ApiClient(fast_stack.api_url).sign_in()
    sqs = fast_stack.boto3_client("sqs")
    # A bystander job holds part of the host throughout: a double release would show in its counters
    held = job_body(provider_id, gpu_count=1, cpu_cores=2, memory_gb=8)
    assert customer.call("POST", "/api/v1/jobs", json=held).status_code == 201
    total_cpu, total_memory_mb = 32, 131072

    for round_ in range(6):
        beat = provider.call("POST", f"/api/v1/nodes/{provider_id}/heartbeat", json={"status": "Available"})
        assert beat.status_code == 200  # HeartbeatStaleSeconds=5: stays Available for new jobs
        body = job_body(provider_id, gpu_count=2, cpu_cores=4, memory_gb=16, duration_hours=1)
        created = customer.call("POST", "/api/v1/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        deleted, failed = _race_three_enders(fast_stack, customer, provider, provider_id, job_id)
        assert deleted in (200, 202), (round_, deleted)
        assert failed == 200, (round_, failed)
        # Let the expiry deliveries be consumed (the queue drained), then look at what is left
        wait_for(lambda: _queue_empty(sqs, fast_stack.resources["ExpiryQueue"]), 20)
        job = customer.call("GET", f"/api/v1/jobs/{job_id}").json()
        assert job["status"] in {"Terminating", "Terminated", "Failed", "Expired"}, (round_, job["status"])
        capacity = customer.capacity(provider_id)
        assert capacity["in_use_gpus"] == {"RTX-4090": 1}, (round_, capacity)  # the bystander's, exactly
        assert capacity["available_gpus"] == {"RTX-4090": 3}, (round_, capacity)
        assert (capacity["in_use_cpu_cores"], capacity["available_cpu_cores"]) == (2, total_cpu - 2)
        assert (capacity["in_use_memory_mb"], capacity["available_memory_mb"]) == (8192, total_memory_mb - 8192)


def _race_three_enders(
    stack, customer: ApiClient, provider: ApiClient, provider_id: str, job_id: str
) -> tuple[int, int]:
    """DELETE, a `failed` report and an expiry delivery for one job, released by one barrier."""
    barrier = threading.Barrier(3)
    sqs = stack.boto3_client("sqs")

    def delete() -> int:
        client = ApiClient(stack.api_url, wallet=customer.wallet, token=customer.token)
        barrier.wait()
        return client.call("DELETE", f"/api/v1/jobs/{job_id}").status_code

    def fail() -> int:
        node = ApiClient(stack.api_url, wallet=provider.wallet, token=provider.token)
        barrier.wait()
        report = {"state": "failed", "reason": "container died"}
        return node.call("POST", f"/api/v1/nodes/{provider_id}/jobs/{job_id}/status", json=report).status_code

    def expire() -> None:
        expire_now(stack, job_id)  # due now: the sweep may queue it too (one more ender)
        barrier.wait()
        sqs.send_message(QueueUrl=stack.resources["ExpiryQueue"], MessageBody=json.dumps({"job_id": job_id}))

    with ThreadPoolExecutor(max_workers=3) as pool:
        deleting, failing, expiring = pool.submit(delete), pool.submit(fail), pool.submit(expire)
        expiring.result()
        return deleting.result(), failing.result()


def _queue_empty(sqs, url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(attributes[n] == "0" for n in names)
