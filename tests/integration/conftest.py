"""Integration layer: the real handlers on moto (in process), tables built from template.yaml itself."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from tests.support import ROOT

ENV_BY_TABLE = {
    "ProvidersTable": "PROVIDERS_TABLE",
    "ProviderGpusTable": "PROVIDER_GPUS_TABLE",
    "JobsTable": "JOBS_TABLE",
    "NoncesTable": "NONCES_TABLE",
    "IdempotencyTable": "IDEMPOTENCY_TABLE",
}
TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode")
_modules: dict[str, ModuleType] = {}


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def _handler_module(function: str) -> ModuleType:
    if function not in _modules:
        spec = importlib.util.spec_from_file_location(f"function_{function}", ROOT / "functions" / function / "app.py")
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[function] = module
    return _modules[function]


def _clear_cold_start_caches() -> None:
    # Each test gets a fresh "cold start": new clients bound to this test's moto, settings re-read.
    from aws_lambda_powertools.utilities import parameters

    from worldland.api import deps
    from worldland.dal import commands, dynamodb
    from worldland.settings import get_settings

    for cached in (
        dynamodb.client,
        commands.client,
        commands._queue_url,
        deps.providers,
        deps.jobs,
        deps.nonces,
        deps.command_queues,
        get_settings,
    ):
        cached.cache_clear()
    parameters.clear_caches()


def _template_resources() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
            return {"Fn::GetAtt": loader.construct_scalar(node).split(".", 1)}
        return None

    Loader.add_multi_constructor("!", intrinsic)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader)["Resources"]


def _create_queues(resources: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The template's queues, dead-letter queues first (their ARNs go into redrive policies)."""
    sqs = boto3.client("sqs")
    made: dict[str, dict[str, str]] = {}
    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    for logical_id in sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {})):
        properties = queues[logical_id].get("Properties", {})
        fifo = bool(properties.get("FifoQueue"))
        attributes = {"FifoQueue": "true"} if fifo else {}
        if "VisibilityTimeout" in properties:
            attributes["VisibilityTimeout"] = str(properties["VisibilityTimeout"])
        if "RedrivePolicy" in properties:
            target = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": made[target]["arn"],
                    "maxReceiveCount": properties["RedrivePolicy"]["maxReceiveCount"],
                }
            )
        url = sqs.create_queue(QueueName=f"it-{logical_id}" + (".fifo" if fifo else ""), Attributes=attributes)[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made[logical_id] = {"url": url, "arn": arn}
    return made


class Lambdas:
    """Invoke the real handlers the way Lambda does: an event and a context in, a proxy answer out."""

    def __call__(self, function: str, event: dict[str, Any], context: LambdaContext | None = None) -> Any:
        return _handler_module(function).lambda_handler(event, context or LambdaContext())

    def http(self, function: str, event: dict[str, Any]) -> Answer:
        raw = self(function, event)
        headers = {k: v[-1] for k, v in (raw.get("multiValueHeaders") or {}).items()} | (raw.get("headers") or {})
        body = raw.get("body")
        if raw.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        parsed = json.loads(body) if body and headers.get("Content-Type", "").startswith("application/json") else body
        return Answer(raw["statusCode"], parsed, headers)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Moto with the template's tables and token secret; function environment set as the template says."""
    template = _template_resources()
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        names: dict[str, str] = {}
        for logical_id, resource in template.items():
            if resource["Type"] != "AWS::DynamoDB::Table":
                continue
            properties = {k: v for k, v in resource["Properties"].items() if k in TABLE_KEYS}
            names[logical_id] = f"it-{logical_id}"
            dynamodb.create_table(TableName=names[logical_id], **properties)
        secret = boto3.client("secretsmanager").create_secret(Name="it-token", SecretString=uuid.uuid4().hex * 2)
        queues = _create_queues(template)
        for logical_id, variable in ENV_BY_TABLE.items():
            monkeypatch.setenv(variable, names[logical_id])
        monkeypatch.setenv("TOKEN_SECRET_ARN", secret["ARN"])
        monkeypatch.setenv("COMMAND_QUEUE_PREFIX", "it-cmd-")
        monkeypatch.setenv("COMMANDS_DLQ_ARN", queues["CommandsDeadLetterQueue"]["arn"])
        monkeypatch.setenv("EXPIRY_QUEUE_URL", queues["ExpiryQueue"]["url"])
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "worldland")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "WorldLand")
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        _clear_cold_start_caches()
        yield names | {"TokenSecret": secret["ARN"]} | {k: v["url"] for k, v in queues.items()}
        _clear_cold_start_caches()


@pytest.fixture
def lambdas(aws: dict[str, str]) -> Lambdas:
    return Lambdas()


def proxy_event(
    sample: dict[str, Any],
    *,
    body: Any = None,
    wallet: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A sample event from events/ with its body, caller, path or query changed."""
    event = copy.deepcopy(sample)
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if wallet is not None:
        event["requestContext"]["authorizer"] = {"principalId": wallet, "wallet": wallet}
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
        path = event["resource"]
        for name, value in path_parameters.items():
            path = path.replace("{" + name + "}", value)
        event["path"] = path
        event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if headers:
        event["headers"] = (event.get("headers") or {}) | headers
        event["multiValueHeaders"] = (event.get("multiValueHeaders") or {}) | {k: [v] for k, v in headers.items()}
    return event


@pytest.fixture
def register(lambdas: Lambdas):
    """Register a provider for a wallet and heartbeat it to Available; returns its id."""

    def _register(
        wallet: str, *, available: bool = True, price: float = 0.5, region: str = "us-east", **spec_changes: Any
    ) -> str:
        from tests.support import provider_spec, sample_event

        body = {"spec": provider_spec() | spec_changes, "capacity": {"gpu_price_per_hour": price}, "region": region}
        answer = lambdas.http("nodes", proxy_event(sample_event("nodes_register"), body=body, wallet=wallet))
        assert answer.status == 201, answer.body
        provider_id = answer.body["provider_id"]
        if available:
            beat = proxy_event(
                sample_event("nodes_heartbeat"), wallet=wallet, path_parameters={"provider_id": provider_id}
            )
            assert lambdas.http("nodes", beat).status == 200
        return provider_id

    return _register
