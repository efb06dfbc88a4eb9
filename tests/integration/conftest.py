"""Integration layer: the real handlers on moto (in process), tables built from template.yaml itself."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.local_stack.provision import provision
from tests.local_stack.template import load_template
from tests.support import ROOT

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
    """Moto holding the template's tables, queues and secret, provisioned as the local stack does, and
    the environment the template gives the functions."""
    template = load_template(ROOT / "template.yaml", stack_name="it")
    with mock_aws():
        physical = provision(template, boto3.client, "it", "us-east-1")
        for name, value in template.functions(physical)["JobsFunction"].environment.items():
            monkeypatch.setenv(name, value)  # from Globals: every function has the same names
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        _clear_cold_start_caches()
        yield dict(physical.refs)
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
