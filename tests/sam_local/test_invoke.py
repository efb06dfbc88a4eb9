"""Every function under `sam build` + `sam local invoke -e events/<sample>.json`, against the emulated AWS.

The route samples replay in the order a developer would use them (tests/integration/test_events.py
replays the same samples in process). The schedule and queue samples run twice: once as they are
(nothing to do), and once on state that needs them (an expired job, a dead-lettered command, a
silent provider), with the SQS records built from the real messages in the emulated queues.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import proxy_event
from tests.integration.test_events import ORDER, SAMPLE_WALLET
from tests.local_stack.event_sources import sqs_record
from tests.sam_local.conftest import Emulation
from tests.sam_local.sam import REGION, Invocation, SamLocal, functions
from tests.support import EVENTS, sample_event

pytestmark = pytest.mark.sam_local

UNKNOWN_JOB = sample_event("jobs_get")["pathParameters"]["job_id"]


def _logical_id(reference: Any) -> str:
    """The logical id in a built template's GetAtt ({"Fn::GetAtt": ["Queue", "Arn"]} or "Queue.Arn")."""
    target = reference["Fn::GetAtt"] if isinstance(reference, dict) else reference
    return target[0] if isinstance(target, list) else str(target).split(".")[0]


def _by_suffix(known: dict[str, str], physical_name: str) -> str:
    """<stack>-<LogicalId> physical names (as deployed) -> the function for that logical id."""
    (match,) = [function for logical_id, function in known.items() if physical_name.endswith(logical_id)]
    return match


def sample_targets(template: Path) -> dict[str, str]:
    """Which function each events/ sample is for, read from the template: API samples by route,
    TOKEN samples the authorizer, schedule samples by rule, SQS samples by queue."""
    declared = functions(template)
    routes: dict[tuple[str, str], str] = {}
    rules: dict[str, str] = {}
    queues: dict[str, str] = {}
    for logical_id, properties in declared.items():
        for event_name, source in (properties.get("Events") or {}).items():
            if source["Type"] == "Api":
                routes[(source["Properties"]["Path"], source["Properties"]["Method"].upper())] = logical_id
            elif source["Type"] == "Schedule":
                rules[f"{logical_id}{event_name}"] = logical_id  # SAM names the rule <Function><Event>
            elif source["Type"] == "SQS":
                queues[_logical_id(source["Properties"]["Queue"])] = logical_id
    authorizers = [name for name in declared if "Authorizer" in name]
    targets = {}
    for name in ORDER:
        event = sample_event(name)
        if event.get("type") == "TOKEN":
            assert len(authorizers) == 1, authorizers
            targets[name] = authorizers[0]
        elif event.get("source") == "aws.events":
            (rule,) = event["resources"]
            targets[name] = _by_suffix(rules, rule.rsplit("/", 1)[1])
        elif "Records" in event:
            queue = event["Records"][0]["eventSourceARN"].rsplit(":", 1)[1]
            targets[name] = _by_suffix(queues, queue.removesuffix(".fifo"))
        else:
            targets[name] = routes[(event["resource"], event["httpMethod"])]
    return targets


def test_every_function_in_the_template_is_invoked(built_template: Path) -> None:
    # Given the built template's functions
    declared = set(functions(built_template))
    # When the events/ samples are mapped to the functions they are for
    covered = set(sample_targets(built_template).values())
    # Then every function runs under sam local invoke in this suite
    assert declared == covered, f"not invoked: {sorted(declared - covered)}; unknown: {sorted(covered - declared)}"


def test_samples_replay_under_sam_local_invoke(sam: SamLocal, emulation: Emulation, built_template: Path) -> None:
    targets = sample_targets(built_template)
    invoked: list[Invocation] = []

    def invoke(name: str, event: dict[str, Any] | None = None) -> Invocation:
        invocation = sam.invoke(targets[name], event if event is not None else EVENTS / f"{name}.json")
        invoked.append(invocation)
        return invocation

    # Given the sign-in sample's nonce issued to the sample wallet
    nonce = invoke("auth_nonce").http
    assert nonce.status == 200, nonce.body
    assert "wants you to sign in with your Ethereum account" in nonce.body["message"]
    sample_nonce = re.search(r"Nonce: (\w+)", json.loads(sample_event("auth_login")["body"])["message"])
    assert sample_nonce
    emulation.issue_nonce(sample_nonce.group(1), SAMPLE_WALLET)

    # When the login sample is sent, Then a token comes back for the sample wallet and the nonce is spent
    login = invoke("auth_login").http
    assert login.status == 200, login.body
    assert login.body["address"] == SAMPLE_WALLET
    assert "used_at" in emulation.item("NoncesTable", nonce=sample_nonce.group(1))

    # The authorizer refuses the sample's placeholder token the way API Gateway expects: Exception("Unauthorized")
    refused = invoke("authorizer_token").result
    assert refused["errorMessage"] == "Unauthorized", refused
    assert refused["errorType"] == "Exception", refused
    # ... and allows a real token, passing the wallet on
    real_token = sample_event("authorizer_token") | {"authorizationToken": f"Bearer {login.body['token']}"}
    policy = invoke("authorizer_token", real_token).result
    assert policy["principalId"] == SAMPLE_WALLET
    assert policy["context"]["wallet"] == SAMPLE_WALLET
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"

    # Registration creates the provider item (and its GPU listing) in the emulated tables
    registered = invoke("nodes_register").http
    assert registered.status == 201, registered.body
    provider_id = registered.body["provider_id"]
    assert sample_event("providers_get")["pathParameters"]["provider_id"] == provider_id
    assert emulation.item("ProvidersTable", provider_id=provider_id)["wallet_addr"] == SAMPLE_WALLET
    beat = invoke("nodes_heartbeat").http
    assert beat.status == 200, beat.body
    assert beat.body["status"] == "Available"
    assert emulation.item("ProvidersTable", provider_id=provider_id)["status"] == "Available"

    # Browsing finds it
    listed = invoke("providers_list").http
    assert listed.status == 200, listed.body
    assert [p["provider_id"] for p in listed.body["providers"]] == [provider_id]
    searched = invoke("providers_search").http
    assert searched.status == 200, searched.body
    assert [p["provider_id"] for p in searched.body["providers"]] == [provider_id]
    availability = invoke("providers_gpu_availability").http
    assert availability.status == 200, availability.body
    assert availability.body["gpus"][0]["available"] == 4
    got = invoke("providers_get").http
    assert got.status == 200, got.body
    assert got.body["provider_id"] == provider_id

    # Creating a job holds a GPU on the provider
    created = invoke("jobs_create").http
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    job_item = emulation.item("JobsTable", job_id=job_id)
    assert job_item["status"] == "Pending"
    assert job_item["owner"] == SAMPLE_WALLET
    listed_jobs = invoke("jobs_list").http
    assert listed_jobs.status == 200, listed_jobs.body
    assert [j["job_id"] for j in listed_jobs.body["jobs"]] == [job_id]

    # The get sample names a job that does not exist; the real id finds the Pending job
    assert invoke("jobs_get").http.status == 404
    real_get = invoke("jobs_get", proxy_event(sample_event("jobs_get"), path_parameters={"job_id": job_id})).http
    assert real_get.status == 200, real_get.body
    assert real_get.body["status"] == "Pending"

    # The agent polls its command queue and gets the job's start; the ack sample's receipt is not live
    polled = invoke("commands_poll").http
    assert polled.status == 200, polled.body
    assert [(c["type"], c["job_id"]) for c in polled.body["commands"]] == [("start_rental", job_id)]
    acked = invoke("commands_ack").http
    assert acked.status == 200, acked.body
    assert acked.body == {"acknowledged": 0, "failed": ["AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a0"]}

    # The job report sample names an unknown job; for the real job it makes the job Running
    assert invoke("nodes_job_report").http.status == 404
    report = sample_event("nodes_job_report")
    real_report = proxy_event(report, path_parameters=report["pathParameters"] | {"job_id": job_id})
    reported = invoke("nodes_job_report", real_report).http
    assert reported.status == 200, reported.body
    assert emulation.item("JobsTable", job_id=job_id)["status"] == "Running"

    # The delete sample names an unknown job; the real job is ended and its GPU given back
    assert invoke("jobs_delete").http.status == 404
    real_delete = proxy_event(sample_event("jobs_delete"), path_parameters={"job_id": job_id})
    assert invoke("jobs_delete", real_delete).http.status == 202
    assert emulation.item("JobsTable", job_id=job_id)["status"] == "Terminating"

    # The schedules find nothing stale and nothing due; the queue samples name an unknown job.
    # Each container invoke takes seconds, so the provider heartbeats again first, as its agent would.
    assert invoke("nodes_heartbeat").http.status == 200
    assert invoke("staleness_schedule").result == {"offline": 0, "failed_jobs": 0}
    assert invoke("expiry_sweep_schedule").result == {"queued": 0}
    assert invoke("expiry_sqs").result == {"batchItemFailures": []}
    assert invoke("command_failures_sqs").result == {"batchItemFailures": []}

    # Then the same functions act on real state: an expired job, a dead-lettered command, a silent provider
    _schedules_and_consumers_act(invoke, emulation, provider_id)

    docs = invoke("docs_openapi").http
    assert docs.status == 200, docs.body
    assert "/api/v1/jobs" in docs.body["paths"]

    # Every sample was sent as is at least once
    assert {i.function for i in invoked} == set(targets.values())
    print("\n".join(f"  {i.function:28} {i.seconds:5.1f}s" for i in invoked))


PAST = "2001-01-01T00:00:00.000Z"  # stored times are fixed-width ISO strings, so they compare as text


def _sqs_event(queue_url: str, emulation: Emulation) -> dict[str, Any]:
    """The messages now in the queue (received, so invisible to others) as Lambda's SQS event source
    would deliver them."""
    sqs = emulation.client("sqs")
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    assert received, f"nothing in {queue_url}"
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Records": [sqs_record(m, arn, REGION) for m in received]}


def _gpus_available(emulation: Emulation, provider_id: str) -> int:
    return int(sum(emulation.item("ProvidersTable", provider_id=provider_id)["gpu_available"].values()))


def _schedules_and_consumers_act(invoke: Callable[..., Invocation], emulation: Emulation, provider_id: str) -> None:
    dynamodb = emulation.client("dynamodb")
    jobs_table = emulation.names["JobsTable"]
    free = _gpus_available(emulation, provider_id)

    def new_job(key: str) -> str:
        event = proxy_event(sample_event("jobs_create"), headers={"Idempotency-Key": key})
        created = invoke("jobs_create", event).http
        assert created.status == 201, created.body
        assert _gpus_available(emulation, provider_id) == free - 1
        return str(created.body["job_id"])

    # Expiry: a job past expires_at is queued by the sweep and ended by the consumer, its GPU given back
    expiring = new_job("sam-local-expiry")
    dynamodb.update_item(
        TableName=jobs_table,
        Key={"job_id": {"S": expiring}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"S": PAST}},
    )
    assert invoke("expiry_sweep_schedule").result == {"queued": 1}
    expiry_queue = emulation.function_environments["ExpiryFunction"]["EXPIRY_QUEUE_URL"]
    consumed = invoke("expiry_sqs", _sqs_event(expiry_queue, emulation)).result
    assert consumed == {"batchItemFailures": []}
    assert emulation.item("JobsTable", job_id=expiring)["status"] == "Expired"
    assert _gpus_available(emulation, provider_id) == free

    # A start command that reached the dead-letter queue fails its job and frees what it held
    failing = new_job("sam-local-dead-letter")
    polled = invoke("commands_poll").http
    starts = [c for c in polled.body["commands"] if c["type"] == "start_rental" and c["job_id"] == failing]
    assert len(starts) == 1, polled.body
    (record,) = sample_event("command_failures_sqs")["Records"]
    body = {k: v for k, v in starts[0].items() if k not in {"receipt", "delivery"}}  # the queued command
    record["body"] = json.dumps(body)
    assert invoke("command_failures_sqs", {"Records": [record]}).result == {"batchItemFailures": []}
    failed = emulation.item("JobsTable", job_id=failing)
    assert failed["status"] == "Failed", failed
    assert failed["failure_reason"]
    assert _gpus_available(emulation, provider_id) == free

    # Staleness: a provider whose last heartbeat is long past goes Offline
    dynamodb.update_item(
        TableName=emulation.names["ProvidersTable"],
        Key={"provider_id": {"S": provider_id}},
        UpdateExpression="SET last_heartbeat = :past",
        ExpressionAttributeValues={":past": {"S": PAST}},
    )
    assert invoke("staleness_schedule").result == {"offline": 1, "failed_jobs": 0}
    assert emulation.item("ProvidersTable", provider_id=provider_id)["status"] == "Offline"
