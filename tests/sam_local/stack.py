"""The emulated AWS the containers talk to: tests.local_stack's emulator, provisioned from the template."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import yaml
from boto3.dynamodb.types import TypeDeserializer

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


# ---------------------------------------------------------------------------------------------
# TEMPORARY scratch (until tests/local_stack lands): plain moto server + minimal provisioning.
STACK = "worldland-cloud"


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


@contextmanager
def emulation(parameter_overrides: dict[str, str]) -> Iterator[Emulation]:
    from tests.sam_local.sam import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        running = Emulation(port, {}, {})
        for _ in range(100):
            try:
                running.client("sts").get_caller_identity()
                break
            except Exception:
                time.sleep(0.1)
        template = yaml.load((ROOT / "template.yaml").read_text(), _Loader)
        names: dict[str, str] = {}
        arns: dict[str, str] = {}
        for logical_id, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::DynamoDB::Table":
                keep = {k: v for k, v in props.items() if k in ("AttributeDefinitions", "KeySchema", "BillingMode")}
                if "GlobalSecondaryIndexes" in props:
                    keep["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
                names[logical_id] = f"{STACK}-{logical_id}"
                running.client("dynamodb").create_table(TableName=names[logical_id], **keep)
            elif resource["Type"] == "AWS::SQS::Queue":
                attrs = {"FifoQueue": "true"} if props.get("FifoQueue") else {}
                queue = f"{STACK}-{logical_id}" + (".fifo" if props.get("FifoQueue") else "")
                url = running.client("sqs").create_queue(QueueName=queue, Attributes=attrs)["QueueUrl"]
                names[logical_id] = url
                arns[logical_id] = running.client("sqs").get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
            elif resource["Type"] == "AWS::SecretsManager::Secret":
                names[logical_id] = running.client("secretsmanager").create_secret(
                    Name=f"{STACK}-{logical_id}", SecretString="x" * 64
                )["ARN"]
        params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()} | parameter_overrides
        params |= {"AWS::StackName": STACK, "AWS::Region": REGION}

        def resolve(value: Any) -> str:
            if isinstance(value, dict) and "Ref" in value:
                return params.get(value["Ref"]) or names[value["Ref"]]
            if isinstance(value, dict) and "Fn::GetAtt" in value:
                return arns[value["Fn::GetAtt"][0]]
            if isinstance(value, dict) and "Fn::Sub" in value:
                return str(value["Fn::Sub"]).replace("${AWS::StackName}", STACK)
            return str(value)

        env = {k: resolve(v) for k, v in template["Globals"]["Function"]["Environment"]["Variables"].items()}
        running.names = names
        running.function_environments = {
            logical_id: dict(env)
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
