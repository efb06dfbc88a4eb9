"""The local stack's SQS event sources (tests/local_stack/event_sources.py) feeding the real consumer
on moto: partial batch failures are honoured as Lambda honours them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tests.integration.conftest import Lambdas, proxy_event
from tests.integration.lifecycle_support import install_clock
from tests.local_stack.event_sources import EventSources
from tests.local_stack.lambda_runtime import LambdaError
from tests.local_stack.template import Template, load_template
from tests.support import ROOT, job_body, new_wallet, sample_event

POISON = "this is not JSON"


class InProcessRuntime:
    """LambdaRuntime's interface over the real handlers in this process (so moto and the test's
    clock apply); records every batch each consumer was given."""

    def __init__(self, template: Template, lambdas: Lambdas) -> None:
        self.folders = {
            logical_id: resource["Properties"]["CodeUri"].strip("/").split("/")[-1]
            for logical_id, resource in template.resources_of_type("AWS::Serverless::Function").items()
        }
        self.lambdas = lambdas
        self.batches: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        with self.lock:  # one invocation at a time: the in-process handlers share module state
            self.batches.append((logical_id, [r["body"] for r in event["Records"]]))
            try:
                return self.lambdas(self.folders[logical_id], event)
            except Exception as error:  # reported the way Lambda reports a failed invocation
                raise LambdaError(type(error).__name__, str(error)) from error

    def submit(self, logical_id: str, event: dict[str, Any]) -> Future[tuple[str, Any]]:
        done: Future[tuple[str, Any]] = Future()
        done.set_result(("ok", None))  # schedules are not what this test is about
        return done


@dataclass
class Feeding:
    sources: EventSources
    runtime: InProcessRuntime
    start: Callable[[], None]


@pytest.fixture
def feeding(aws: dict[str, str], lambdas: Lambdas) -> Iterator[Feeding]:
    template = load_template(ROOT / "template.yaml", stack_name="it")
    sqs = boto3.client("sqs")
    arns = {
        logical_id: sqs.get_queue_attributes(QueueUrl=aws[logical_id], AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for logical_id in template.resources_of_type("AWS::SQS::Queue")
    }

    def refs(logical_id: str, attribute: str | None) -> str:
        return arns[logical_id] if attribute == "Arn" and logical_id in arns else aws.get(logical_id, logical_id)

    runtime = InProcessRuntime(template, lambdas)
    urls = {arn: aws[logical_id] for logical_id, arn in arns.items()}
    # A duck-typed runtime: LambdaRuntime's invoke/submit over the in-process handlers.
    sources = EventSources(template, template.functions(refs), runtime, sqs, urls, "us-east-1")
    # Each test starts it once its messages are queued, resolving the template as the stack does.
    yield Feeding(sources, runtime, lambda: sources.start(lambda value: template.resolve(value, refs)))
    sources.stop()
    for thread in sources.threads:
        thread.join(10)  # a poll waits up to 5 s before it sees the stop


def expiry_batches(runtime: InProcessRuntime) -> list[list[str]]:
    with runtime.lock:
        return [bodies for function, bodies in runtime.batches if function == "ExpiryFunction"]


def test_a_failing_record_is_redelivered_alone_and_the_rest_of_its_batch_is_not(
    feeding: Feeding, aws: dict[str, str], lambdas: Lambdas, register: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = feeding.runtime
    sqs = boto3.client("sqs")
    # Given two jobs past their expiry, and a record the consumer cannot parse, in one batch
    clock = install_clock(monkeypatch)
    provider_id = register(new_wallet().address)
    customer = new_wallet().address
    jobs = []
    for _ in range(2):
        event = proxy_event(sample_event("jobs_create"), body=job_body(provider_id, duration_hours=1), wallet=customer)
        del event["headers"]["Idempotency-Key"], event["multiValueHeaders"]["Idempotency-Key"]
        created = lambdas.http("jobs", event)
        assert created.status == 201, created.body
        jobs.append(created.body["job_id"])
    clock.advance(3601)
    # Redelivery after 1 s instead of the template's 180 s; the redrive (5 receives) is the template's
    sqs.set_queue_attributes(QueueUrl=aws["ExpiryQueue"], Attributes={"VisibilityTimeout": "1"})
    bodies = [json.dumps({"job_id": jobs[0]}), POISON, json.dumps({"job_id": jobs[1]})]
    sqs.send_message_batch(
        QueueUrl=aws["ExpiryQueue"], Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    )

    # When the local stack feeds the queue to ExpiryFunction until the bad record is dead-lettered
    feeding.start()
    deadline = time.monotonic() + 30
    dead: list[dict[str, Any]] = []
    while not dead and time.monotonic() < deadline:
        dead = sqs.receive_message(QueueUrl=aws["ExpiryDeadLetterQueue"], WaitTimeSeconds=1).get("Messages", [])

    # Then the first batch held all three; every later one held the bad record alone
    batches = expiry_batches(runtime)
    assert sorted(batches[0]) == sorted(bodies)
    assert all(later == [POISON] for later in batches[1:]), batches
    assert len(batches) == 5  # the template's maxReceiveCount, then the redrive
    assert [m["Body"] for m in dead] == [POISON]
    # And the good records were handled once: both jobs Expired, their resources back
    for job_id in jobs:
        answer = lambdas.http(
            "jobs", proxy_event(sample_event("jobs_get"), wallet=customer, path_parameters={"job_id": job_id})
        )
        assert answer.body["status"] == "Expired"
    provider = lambdas.http(
        "providers", proxy_event(sample_event("providers_get"), path_parameters={"provider_id": provider_id})
    ).body
    assert provider["capacity"]["in_use_gpus"] == {"RTX-4090": 0}


def test_a_failed_invocation_returns_the_whole_batch(
    feeding: Feeding, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = feeding.runtime
    sqs = boto3.client("sqs")
    sqs.set_queue_attributes(QueueUrl=aws["ExpiryQueue"], Attributes={"VisibilityTimeout": "1"})
    bodies = [json.dumps({"job_id": f"no-such-job-{i}"}) for i in range(3)]
    sqs.send_message_batch(
        QueueUrl=aws["ExpiryQueue"], Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    )
    # Given a consumer that crashes once (not a per-record failure: the invocation itself fails)
    invoke = runtime.invoke
    crashed: list[bool] = []

    def crash_once(logical_id: str, event: dict[str, Any]) -> Any:
        if logical_id == "ExpiryFunction" and not crashed:
            crashed.append(True)
            with runtime.lock:
                runtime.batches.append((logical_id, [r["body"] for r in event["Records"]]))
            raise LambdaError("Runtime.ExitError", "the process died")
        return invoke(logical_id, event)

    monkeypatch.setattr(runtime, "invoke", crash_once)
    feeding.start()
    deadline = time.monotonic() + 20
    while len(expiry_batches(runtime)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # anything wrongly left behind would come back within this
    # Then every record came back once, and none after the successful invocation
    delivered = [body for batch in expiry_batches(runtime) for body in batch]
    assert sorted(delivered) == sorted(bodies * 2)
