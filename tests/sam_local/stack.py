"""The emulated AWS the containers talk to: tests.local_stack's emulator, provisioned from the template."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from tests.local_stack.provision import provision
from tests.local_stack.template import load_template
from tests.sam_local.sam import FAKE_CREDENTIALS, REGION
from tests.support import ROOT

_deserializer = TypeDeserializer()


@dataclass
class Emulation:
    """A running emulation: its port, the template's resources in it, each function's environment."""

    port: int
    names: dict[str, str]
    function_environments: dict[str, dict[str, str]]
    remembered: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def item(self, table: str, **key: str) -> dict[str, Any]:
        """One item of a template table (by logical id), decoded; {} when absent."""
        found = self.client("dynamodb").get_item(
            TableName=self.names[table], Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
        )
        return {k: _deserializer.deserialize(v) for k, v in found.get("Item", {}).items()}

    def issue_nonce(self, nonce: str, address: str) -> None:
        """Issue a sign-in nonce the way the auth function does (the layer's own repository)."""
        from worldland.dal import dynamodb
        from worldland.dal.nonces import NonceRepository

        with _patched(dynamodb, "client", lambda: self.client("dynamodb")):
            NonceRepository(self.names["NoncesTable"]).put(nonce, address, datetime(2099, 1, 1, tzinfo=UTC))

    def remember(self, **facts: str) -> None:
        self.remembered.update(facts)


@contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


STACK = "worldland-cloud"


@contextmanager
def emulation(parameter_overrides: dict[str, str]) -> Iterator[Emulation]:
    """The local stack's emulator on 0.0.0.0 (containers reach it over the Docker bridge), provisioned
    from template.yaml the way the local stack does; each function's environment resolved from it."""
    command = [sys.executable, "-m", "tests.local_stack.aws_emulator", "--host", "0.0.0.0", "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout
        line = process.stdout.readline()
        assert line.startswith("AWS_EMULATOR_PORT "), f"the AWS emulator did not start: {line!r}"
        running = Emulation(int(line.split()[1]), {}, {})
        template = load_template(ROOT / "template.yaml", parameter_overrides, STACK, REGION)
        physical = provision(template, running.client, STACK, REGION)
        running.names = dict(physical.refs)
        running.function_environments = {
            logical_id: function.environment for logical_id, function in template.functions(physical).items()
        }
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
