"""Per-provider command queues (worldland.dal.commands) on moto: creation, convergence, no stray creation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.integration.conftest import Lambdas, _clear_cold_start_caches, proxy_event
from tests.support import new_wallet, provider_spec, sample_event


def register(lambdas: Lambdas, wallet: str) -> tuple[int, dict]:
    body = {"spec": provider_spec(), "capacity": {"gpu_price_per_hour": 0.5}, "region": "us-east"}
    answer = lambdas.http("nodes", proxy_event(sample_event("nodes_register"), body=body, wallet=wallet))
    return answer.status, answer.body


def queue_settings(provider_id: str) -> tuple[int, int]:
    from worldland.api import deps

    url = deps.command_queues().url(provider_id)
    assert url is not None
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["VisibilityTimeout"]), json.loads(attributes["RedrivePolicy"])["maxReceiveCount"]


def redeploy(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """New parameter values reach the functions' environment; every container starts cold."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    _clear_cold_start_caches()


def test_registration_creates_the_queue_with_the_template_settings(lambdas: Lambdas) -> None:
    status, body = register(lambdas, new_wallet().address)
    assert status == 201, body
    assert queue_settings(body["provider_id"]) == (60, 5)  # CommandAckTimeoutSeconds, CommandMaxDeliveries


def test_re_registration_after_a_redeploy_converges_the_queue(
    lambdas: Lambdas, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a provider whose queue was created under the default ack timeout and delivery limit
    wallet = new_wallet().address
    status, body = register(lambdas, wallet)
    assert status == 201, body
    # When the stack is redeployed with other values and the host registers again
    redeploy(monkeypatch, COMMAND_ACK_TIMEOUT_SECONDS="30", COMMAND_MAX_DELIVERIES="3")
    status, again = register(lambdas, wallet)
    # Then registration still succeeds (SQS refuses CreateQueue with other attributes) and the
    # existing queue now has the new settings
    assert status == 201, again
    assert again["provider_id"] == body["provider_id"]
    assert queue_settings(body["provider_id"]) == (30, 3)
    # And a registration with the same settings again is a plain, idempotent CreateQueue
    assert register(lambdas, wallet)[0] == 201
    assert queue_settings(body["provider_id"]) == (30, 3)


def test_create_queue_on_moto_refuses_other_attributes(aws: dict[str, str]) -> None:
    # The emulation behaves as SQS does here; the test above would not prove anything otherwise.
    sqs = boto3.client("sqs")
    sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"})
    with pytest.raises(sqs.exceptions.ClientError) as refused:
        sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"})
    assert refused.value.response["Error"]["Code"] in {"QueueAlreadyExists", "QueueNameExists"}


def test_sending_to_a_provider_without_a_queue_creates_nothing(aws: dict[str, str]) -> None:
    from worldland.api import deps
    from worldland.dal.errors import StorageError
    from worldland.models.commands import Command

    command = Command(
        command_id="c-1",
        type="stop_rental",
        job_id="j-1",
        provider_id="never-registered",
        issued_at=datetime.now(UTC),
    )
    with pytest.raises(StorageError, match="no command queue"):
        deps.command_queues().send(command)
    assert deps.command_queues().url("never-registered") is None


# IAM authorizes these batch calls with the single-message action.
_IAM_ACTION = {"DeleteMessageBatch": "DeleteMessage", "SendMessageBatch": "SendMessage"}


def test_every_command_queue_call_a_function_makes_is_one_its_role_allows(
    lambdas: Lambdas, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template's permissions are sufficient: every function's command-queue path, run for real,
    calls only actions that the table in tests/infrastructure (checked against the template) grants."""
    from tests.infrastructure.test_lifecycle_template import COMMAND_QUEUE_ACTIONS
    from tests.integration.lifecycle_support import Node, OneTickContext, install_clock, receive_all, sqs_event
    from tests.support import job_body
    from worldland.dal import commands

    called: dict[str, set[str]] = {}
    function = ["?"]

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        queue = params.get("QueueUrl") or params.get("QueueName") or ""
        if "-cmd-" in queue:  # a provider's command queue, not the expiry or dead-letter queues
            called.setdefault(function[0], set()).add("sqs:" + _IAM_ACTION.get(model.name, model.name))

    def cold_start() -> None:  # the SQS client is created once per container: hook each new one
        commands.client().meta.events.register("provide-client-params.sqs.*", record)

    clock = install_clock(monkeypatch)
    cold_start()
    wallet, customer = new_wallet().address, new_wallet().address

    function[0] = "NodesFunction"
    status, body = register(lambdas, wallet)
    assert status == 201, body
    node = Node(lambdas, wallet, body["provider_id"])
    assert node.heartbeat().status == 200

    function[0] = "JobsFunction"
    jobs = []
    for hours in (1, 2, 2):  # one to expire, one to lose with its provider, one to delete
        event = proxy_event(sample_event("jobs_create"), body=job_body(node.provider_id, duration_hours=hours))
        event["requestContext"]["authorizer"] = {"principalId": customer, "wallet": customer}
        del event["headers"]["Idempotency-Key"], event["multiValueHeaders"]["Idempotency-Key"]
        created = lambdas.http("jobs", event)
        assert created.status == 201, created.body
        jobs.append(created.body["job_id"])
    deleted = jobs[2]
    delete = proxy_event(sample_event("jobs_delete"), wallet=customer, path_parameters={"job_id": deleted})
    assert lambdas.http("jobs", delete).status == 202

    function[0] = "CommandsFunction"
    delivered = node.poll()
    assert len(delivered) == 4  # three starts, one stop
    assert node.ack(*(c["receipt"] for c in delivered)).body["acknowledged"] == 4
    function[0] = "NodesFunction"
    for job_id in jobs[:2]:  # both run (a job still not Running at its start deadline would fail instead)
        assert node.report(job_id, state="running", ssh_port=30000 + len(job_id)).status == 200

    function[0] = "ExpiryFunction"
    clock.advance(3601)
    assert lambdas("expiry_sweep", {}, OneTickContext()) == {"queued": 1}
    expired = sqs_event(aws["ExpiryQueue"], receive_all(aws["ExpiryQueue"]))
    assert lambdas("expiry", expired) == {"batchItemFailures": []}

    function[0] = "StalenessFunction"
    clock.advance(1000)  # silent past the stale threshold and the grace period
    assert lambdas("staleness", {}, OneTickContext()) == {"offline": 1, "failed_jobs": 1}

    function[0] = "NodesFunction"
    redeploy(monkeypatch, COMMAND_ACK_TIMEOUT_SECONDS="30")
    cold_start()
    assert register(lambdas, wallet)[0] == 201  # converges the existing queue

    for name, actions in called.items():
        allowed = COMMAND_QUEUE_ACTIONS.get(name, set())
        assert actions <= allowed, f"{name} calls {sorted(actions - allowed)}, which its role does not allow"
    # Every path ran (GetQueueUrl is cached per container, so only some functions show it here)
    assert called["NodesFunction"] >= {"sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:SetQueueAttributes"}
    assert "sqs:SendMessage" in called["JobsFunction"]
    assert called["CommandsFunction"] >= {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    assert "sqs:SendMessage" in called["ExpiryFunction"]
    assert "sqs:SendMessage" in called["StalenessFunction"]
