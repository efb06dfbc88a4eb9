"""The rental lifecycle on the real handlers: commands, acks, reports, staleness, expiry, dead letters."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.integration.conftest import Lambdas, proxy_event
from tests.integration.lifecycle_support import (
    Clock,
    Node,
    OneTickContext,
    install_clock,
    receive_all,
    sqs_event,
)
from tests.support import job_body, new_wallet, sample_event


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


@pytest.fixture
def node(lambdas: Lambdas, register) -> Node:
    wallet = new_wallet().address
    return Node(lambdas, wallet, register(wallet))


def create_job(lambdas: Lambdas, node: Node, customer: str, **changes: object) -> dict:
    event = proxy_event(sample_event("jobs_create"), body=job_body(node.provider_id, **changes), wallet=customer)
    del event["headers"]["Idempotency-Key"], event["multiValueHeaders"]["Idempotency-Key"]
    answer = lambdas.http("jobs", event)
    assert answer.status == 201, answer.body
    return answer.body


def get_job(lambdas: Lambdas, customer: str, job_id: str) -> dict:
    event = proxy_event(sample_event("jobs_get"), wallet=customer, path_parameters={"job_id": job_id})
    return lambdas.http("jobs", event).body


def delete_job(lambdas: Lambdas, customer: str, job_id: str) -> int:
    event = proxy_event(sample_event("jobs_delete"), wallet=customer, path_parameters={"job_id": job_id})
    return lambdas.http("jobs", event).status


def in_use(lambdas: Lambdas, provider_id: str) -> tuple[int, int, int]:
    event = proxy_event(sample_event("providers_get"), path_parameters={"provider_id": provider_id})
    capacity = lambdas.http("providers", event).body["capacity"]
    return capacity["in_use_gpus"]["RTX-4090"], capacity["in_use_cpu_cores"], capacity["in_use_memory_mb"]


def test_create_queues_start_and_delete_queues_stop(lambdas: Lambdas, node: Node) -> None:
    customer = new_wallet().address
    job = create_job(lambdas, node, customer, ssh_password="correct-horse-battery")
    (start,) = node.poll()
    assert start["type"] == "start_rental"
    assert start["job_id"] == job["job_id"]
    assert start["delivery"] == 1
    assert start["rental"]["image"] == job["image"]
    assert start["rental"]["ssh_password_hash"].startswith("$6$")  # the password itself never travels
    assert node.ack(start["receipt"]).body == {"acknowledged": 1, "failed": []}
    assert node.poll() == []

    assert delete_job(lambdas, customer, job["job_id"]) == 202
    (stop,) = node.poll()
    assert stop["type"] == "stop_rental"
    assert stop["job_id"] == job["job_id"]


def test_unacknowledged_command_comes_back(lambdas: Lambdas, register, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMAND_ACK_TIMEOUT_SECONDS", "1")
    wallet = new_wallet().address
    node = Node(lambdas, wallet, register(wallet))
    create_job(lambdas, node, new_wallet().address)
    (first,) = node.poll()
    assert node.poll() == []  # in flight, invisible
    time.sleep(1.2)
    (again,) = node.poll()
    assert again["command_id"] == first["command_id"]
    assert again["delivery"] == 2


def test_start_no_node_acknowledges_fails_the_job_and_releases(
    lambdas: Lambdas, register, monkeypatch: pytest.MonkeyPatch, aws: dict[str, str]
) -> None:
    # Given commands that may be delivered twice, one second apart, before they are dead letters
    monkeypatch.setenv("COMMAND_ACK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("COMMAND_MAX_DELIVERIES", "2")
    wallet, customer = new_wallet().address, new_wallet().address
    node = Node(lambdas, wallet, register(wallet))
    job = create_job(lambdas, node, customer)
    # When the node takes the start twice and never acknowledges it
    for _ in range(2):
        assert len(node.poll()) == 1
        time.sleep(1.2)
    assert node.poll() == []  # the third receive finds it moved to the dead-letter queue
    dead = receive_all(aws["CommandsDeadLetterQueue"])
    assert len(dead) == 1
    assert job["job_id"] in dead[0]["Body"]
    # Then the dead-letter consumer fails the job and gives its resources back, once
    event = sqs_event(aws["CommandsDeadLetterQueue"], dead)
    assert lambdas("command_failures", event) == {"batchItemFailures": []}
    assert lambdas("command_failures", event) == {"batchItemFailures": []}  # a duplicate delivery
    failed = get_job(lambdas, customer, job["job_id"])
    assert failed["status"] == "Failed"
    assert "did not acknowledge" in failed["failure_reason"]
    assert in_use(lambdas, node.provider_id) == (0, 0, 0)


def test_reports_move_the_job_along_its_lifecycle(lambdas: Lambdas, node: Node) -> None:
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer)["job_id"]

    pulling = node.report(job_id, state="starting", progress={"phase": "pulling", "percent": 42.5})
    assert pulling.status == 200
    assert pulling.body["status"] == "Starting"
    assert get_job(lambdas, customer, job_id)["progress"] == {"phase": "pulling", "percent": 42.5, "message": None}

    running = node.report(job_id, state="running", ssh_port=30001)
    assert running.status == 200
    job = get_job(lambdas, customer, job_id)
    assert job["status"] == "Running"
    assert job["started_at"] is not None
    assert job["progress"] is None
    assert job["ssh"] == {
        "host": "123.45.67.89",
        "port": 30001,
        "username": "root",
        "command": "ssh root@123.45.67.89 -p 30001",
    }
    # A duplicate changes nothing; a report behind the job's state is refused
    assert node.report(job_id, state="running", ssh_port=30001).body["started_at"] == job["started_at"]
    stale = node.report(job_id, state="starting")
    assert stale.status == 409
    assert stale.body["error"]["code"] == "illegal_transition"

    assert delete_job(lambdas, customer, job_id) == 202
    ended = node.report(job_id, state="ended")
    assert ended.body["status"] == "Terminated"
    assert ended.body["ended_at"] is not None
    assert node.report(job_id, state="ended").status == 200  # duplicate
    assert node.report(job_id, state="running", ssh_port=30001).status == 409
    assert in_use(lambdas, node.provider_id) == (0, 0, 0)


def test_container_failure_fails_the_job_and_releases_once(lambdas: Lambdas, node: Node) -> None:
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer)["job_id"]
    node.report(job_id, state="running", ssh_port=30002)
    failed = node.report(job_id, state="failed", reason="OOM killed")
    assert failed.body["status"] == "Failed"
    assert failed.body["failure_reason"] == "OOM killed"
    assert node.report(job_id, state="failed", reason="OOM killed").status == 200  # duplicate delivery
    assert delete_job(lambdas, customer, job_id) == 200  # already ended
    assert in_use(lambdas, node.provider_id) == (0, 0, 0)


def test_reports_are_checked(lambdas: Lambdas, node: Node, register) -> None:
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer)["job_id"]
    assert node.report(job_id, state="running").status == 422  # no port
    assert node.report(job_id, state="exploded").status == 422
    assert node.report("no-such-job", state="starting").status == 404
    intruder = Node(lambdas, new_wallet().address, node.provider_id)
    assert intruder.report(job_id, state="failed").status == 403
    other_wallet = new_wallet().address
    other = Node(lambdas, other_wallet, register(other_wallet, hostname="other"))
    assert other.report(job_id, state="failed").status == 404  # not that provider's job
    assert get_job(lambdas, customer, job_id)["status"] == "Pending"


def test_commands_are_only_for_the_owning_wallet(lambdas: Lambdas, node: Node) -> None:
    create_job(lambdas, node, new_wallet().address)
    intruder = Node(lambdas, new_wallet().address, node.provider_id)
    event_answer = intruder.ack("whatever")
    assert event_answer.status == 403
    assert len(node.poll()) == 1


def test_silent_provider_goes_offline_and_comes_back(lambdas: Lambdas, node: Node, clock: Clock) -> None:
    # Given an Available provider, When 121 s pass without a heartbeat and the check runs
    clock.advance(121)
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 1, "failed_jobs": 0}
    answer = lambdas.http(
        "providers", proxy_event(sample_event("providers_get"), path_parameters={"provider_id": node.provider_id})
    )
    assert answer.body["status"] == "Offline"
    # Then new jobs are refused, and a heartbeat brings it back
    refused = lambdas.http(
        "jobs", proxy_event(sample_event("jobs_create"), body=job_body(node.provider_id), wallet=new_wallet().address)
    )
    assert refused.body["error"]["code"] == "provider_unavailable"
    assert node.heartbeat().body["status"] == "Available"
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 0, "failed_jobs": 0}


def test_provider_lost_past_grace_fails_its_jobs_once(lambdas: Lambdas, node: Node, clock: Clock) -> None:
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer)["job_id"]
    clock.advance(121)
    lambdas("staleness", {}, OneTickContext())
    assert get_job(lambdas, customer, job_id)["status"] == "Pending"  # held during the grace period
    clock.advance(600)
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 0, "failed_jobs": 1}
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 0, "failed_jobs": 0}
    job = get_job(lambdas, customer, job_id)
    assert job["status"] == "Failed"
    assert "stopped answering" in job["failure_reason"]
    assert in_use(lambdas, node.provider_id) == (0, 0, 0)


def test_a_lost_provider_is_dealt_with_once_and_again_if_lost_again(
    lambdas: Lambdas, node: Node, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worldland.dal.jobs import JobRepository

    looked_up: list[str] = []
    holding = JobRepository.holding_on_provider

    def counted(self: JobRepository, provider_id: str) -> list:
        looked_up.append(provider_id)
        return holding(self, provider_id)

    monkeypatch.setattr(JobRepository, "holding_on_provider", counted)
    customer = new_wallet().address
    first = create_job(lambdas, node, customer)["job_id"]
    # Given a provider lost past the grace period, whose job the grace pass has failed
    clock.advance(121)
    lambdas("staleness", {}, OneTickContext())
    clock.advance(600)
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 0, "failed_jobs": 1}
    assert looked_up == [node.provider_id]
    # When it stays silent for many more ticks, Then its jobs are never looked up again
    for _ in range(5):
        clock.advance(3600)
        assert lambdas("staleness", {}, OneTickContext()) == {"offline": 0, "failed_jobs": 0}
    assert looked_up == [node.provider_id]
    # When it comes back, takes a job and is lost again, Then that job fails too
    assert node.heartbeat().body["status"] == "Available"
    second = create_job(lambdas, node, customer)["job_id"]
    clock.advance(121)
    lambdas("staleness", {}, OneTickContext())
    clock.advance(600)
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 0, "failed_jobs": 1}
    assert [get_job(lambdas, customer, j)["status"] for j in (first, second)] == ["Failed", "Failed"]
    assert in_use(lambdas, node.provider_id) == (0, 0, 0)


def test_job_expires_through_the_sweep_and_the_queue(
    lambdas: Lambdas, node: Node, clock: Clock, aws: dict[str, str]
) -> None:
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer, duration_hours=1)["job_id"]
    early = create_job(lambdas, node, customer, duration_hours=2)["job_id"]
    node.ack(*(c["receipt"] for c in node.poll()))
    assert node.report(early, state="running", ssh_port=30002).status == 200
    # When an hour and a second have passed, the sweep queues exactly the job that is due
    clock.advance(3601)
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 1}
    messages = receive_all(aws["ExpiryQueue"])
    assert len(messages) == 1
    # Then the consumer expires it, releases once (a duplicate delivery changes nothing) and stops it
    event = sqs_event(aws["ExpiryQueue"], messages)
    assert lambdas("expiry", event) == {"batchItemFailures": []}
    assert lambdas("expiry", event) == {"batchItemFailures": []}
    expired = get_job(lambdas, customer, job_id)
    assert expired["status"] == "Expired"
    assert expired["ended_at"] is not None
    assert get_job(lambdas, customer, early)["status"] == "Running"
    assert in_use(lambdas, node.provider_id) == (1, 8, 32 * 1024)
    (stop,) = node.poll()
    assert (stop["type"], stop["job_id"]) == ("stop_rental", job_id)
    # And the expired job is no longer in the expiry index
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 0}


def test_a_start_that_never_comes_fails_the_job_at_its_deadline(
    lambdas: Lambdas, node: Node, clock: Clock, aws: dict[str, str]
) -> None:
    # Given three 2-hour jobs: one the node never picks up, one it is still pulling, one Running
    customer = new_wallet().address
    lost, pulling, running = (create_job(lambdas, node, customer, duration_hours=2)["job_id"] for _ in range(3))
    node.ack(*(c["receipt"] for c in node.poll()))
    assert node.report(pulling, state="starting", progress={"phase": "pulling", "percent": 40}).status == 200
    assert node.report(running, state="running", ssh_port=30003).status == 200
    # When the start deadline (StartTimeoutSeconds, an hour by default) has not passed, nothing is due
    clock.advance(3599)
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 0}
    # When it has, the sweep queues exactly the two that never reached Running
    clock.advance(2)
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 2}
    event = sqs_event(aws["ExpiryQueue"], receive_all(aws["ExpiryQueue"]))
    assert lambdas("expiry", event) == {"batchItemFailures": []}
    assert lambdas("expiry", event) == {"batchItemFailures": []}  # a duplicate delivery changes nothing
    # Then both are Failed with the reason, their resources released once, and the node told to stop them
    for job_id in (lost, pulling):
        failed = get_job(lambdas, customer, job_id)
        assert failed["status"] == "Failed", failed
        assert failed["failure_reason"] == "The provider did not start the rental within 60 minutes."
    assert get_job(lambdas, customer, running)["status"] == "Running"
    assert in_use(lambdas, node.provider_id) == (1, 8, 32 * 1024)
    stops = {c["job_id"] for c in node.poll() if c["type"] == "stop_rental"}
    assert stops == {lost, pulling}
    # And neither is found by the sweep again
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 0}


def test_a_job_that_starts_after_it_was_queued_for_its_deadline_is_left_running(
    lambdas: Lambdas, node: Node, clock: Clock, aws: dict[str, str]
) -> None:
    # Given a job queued by the sweep at its start deadline
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer, duration_hours=2)["job_id"]
    node.ack(*(c["receipt"] for c in node.poll()))
    clock.advance(3601)
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 1}
    # When the node's Running report lands before the consumer runs
    assert node.report(job_id, state="running", ssh_port=30004).status == 200
    assert lambdas("expiry", sqs_event(aws["ExpiryQueue"], receive_all(aws["ExpiryQueue"]))) == {
        "batchItemFailures": []
    }
    # Then the rental goes on: the deadline only ever ends a job that has not started
    assert get_job(lambdas, customer, job_id)["status"] == "Running"
    assert in_use(lambdas, node.provider_id) == (1, 8, 32 * 1024)


def test_delete_expiry_and_failure_of_one_job_release_once(lambdas: Lambdas, node: Node, clock: Clock, aws) -> None:
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer, duration_hours=1)["job_id"]
    clock.advance(3601)
    boto3.client("sqs").send_message(QueueUrl=aws["ExpiryQueue"], MessageBody=f'{{"job_id": "{job_id}"}}')
    expiry_event = sqs_event(aws["ExpiryQueue"], receive_all(aws["ExpiryQueue"]))
    # All three enders, in the order they happen to arrive
    assert delete_job(lambdas, customer, job_id) == 202
    assert lambdas("expiry", expiry_event) == {"batchItemFailures": []}
    assert node.report(job_id, state="failed", reason="gone").body["status"] == "Terminated"
    assert in_use(lambdas, node.provider_id) == (0, 0, 0)


def test_starting_report_without_progress_is_accepted(lambdas: Lambdas, node: Node) -> None:
    # Found by the randomized test: a bare "starting" once tried to store a null progress.
    customer = new_wallet().address
    job_id = create_job(lambdas, node, customer)["job_id"]
    node.report(job_id, state="starting", progress={"phase": "pulling", "percent": 10})
    answer = node.report(job_id, state="starting")
    assert answer.status == 200, answer.body
    assert answer.body["progress"] is None


@pytest.mark.parametrize("receipt", ["", "has space", "\ud800", "nul\x00", "x" * 1025])
def test_a_malformed_receipt_is_refused_with_422(lambdas: Lambdas, node: Node, receipt: str) -> None:
    # A receipt SQS could never have issued is refused before it reaches SQS (found by fuzzing: it was a 5xx)
    answer = node.ack(receipt)
    assert answer.status == 422, answer.body
    assert answer.body["error"]["details"][0]["field"].startswith("receipts")


def test_a_receipt_sent_twice_in_one_ack_is_acknowledged_once(lambdas: Lambdas, node: Node) -> None:
    # Found by fuzzing: a batch repeating a receipt was a 503
    create_job(lambdas, node, new_wallet().address)
    (start,) = node.poll()
    answer = node.ack(start["receipt"], start["receipt"], "not-a-receipt")
    assert answer.status == 200, answer.body
    assert answer.body == {"acknowledged": 1, "failed": ["not-a-receipt"]}
    assert node.poll() == []
