"""Helpers for lifecycle tests: a movable clock, SQS events as Lambda builds them, the node's routes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.conftest import Answer, LambdaContext, Lambdas, proxy_event
from tests.local_stack.event_sources import sqs_record
from tests.support import sample_event


@dataclass
class Clock:
    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def install_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from worldland import clock

    fake = Clock(datetime.now(UTC))
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


class OneTickContext(LambdaContext):
    """A context with little time left: scheduled functions run one check and return."""

    def get_remaining_time_in_millis(self) -> int:
        return 1_000


def sqs_event(queue_url: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return {"Records": [sqs_record(m, arn, "us-east-1") for m in messages]}


def receive_all(queue_url: str) -> list[dict[str, Any]]:
    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
    )
    return answer.get("Messages", [])


@dataclass
class Node:
    """The agent's side of the API for one provider."""

    lambdas: Lambdas
    wallet: str
    provider_id: str

    def poll(self, wait: int = 0) -> list[dict[str, Any]]:
        event = proxy_event(
            _commands_event(self.provider_id, "GET", "/api/v1/nodes/{provider_id}/commands"),
            wallet=self.wallet,
            query={"wait": str(wait)},
        )
        answer = self.lambdas.http("commands", event)
        assert answer.status == 200, answer.body
        return answer.body["commands"]

    def ack(self, *receipts: str) -> Answer:
        event = proxy_event(
            _commands_event(self.provider_id, "POST", "/api/v1/nodes/{provider_id}/commands/ack"),
            wallet=self.wallet,
            body={"receipts": list(receipts)},
        )
        return self.lambdas.http("commands", event)

    def report(self, job_id: str, **report: Any) -> Answer:
        event = proxy_event(
            _commands_event(self.provider_id, "POST", "/api/v1/nodes/{provider_id}/jobs/{job_id}/status"),
            wallet=self.wallet,
            body=report,
            path_parameters={"provider_id": self.provider_id, "job_id": job_id},
        )
        return self.lambdas.http("nodes", event)

    def heartbeat(self) -> Answer:
        event = proxy_event(
            sample_event("nodes_heartbeat"), wallet=self.wallet, path_parameters={"provider_id": self.provider_id}
        )
        return self.lambdas.http("nodes", event)


def _commands_event(provider_id: str, method: str, resource: str) -> dict[str, Any]:
    event = proxy_event(sample_event("nodes_heartbeat"), path_parameters={"provider_id": provider_id})
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    path = resource.replace("{provider_id}", provider_id)
    event["path"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    event["body"] = None if method == "GET" else json.dumps({})
    return event
