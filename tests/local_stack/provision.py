"""Create, in the emulation, what the template declares that AWS would hold: tables, queues, secrets.

Schedules are not created (moto never fires them); the stack fires them itself.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tests.local_stack.template import ACCOUNT_ID, Template

_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
    "ProvisionedThroughput",
)
_QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "DelaySeconds",
    "MaximumMessageSize",
)


@dataclass
class Physical:
    """What Ref and GetAtt of each resource mean here."""

    stack_name: str
    region: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def __call__(self, logical_id: str, attribute: str | None) -> str:
        if attribute is None:
            if logical_id not in self.refs:
                raise KeyError(f"nothing to Ref: {logical_id}")
            return self.refs[logical_id]
        if (logical_id, attribute) not in self.attributes:
            raise KeyError(f"nothing to GetAtt: {logical_id}.{attribute}")
        return self.attributes[(logical_id, attribute)]

    def name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"


def provision(template: Template, clients: Callable[[str], Any], stack_name: str, region: str) -> Physical:
    physical = Physical(stack_name, region)
    _name_the_rest(template, physical)
    for logical_id, resource in template.resources_of_type("AWS::DynamoDB::Table").items():
        _table(clients("dynamodb"), physical, logical_id, resource.get("Properties", {}))
    queues = template.resources_of_type("AWS::SQS::Queue")
    # Dead-letter queues first: redrive policies name their ARNs.
    for logical_id in sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {})):
        _queue(clients("sqs"), template, physical, logical_id, queues[logical_id].get("Properties", {}))
    for logical_id, resource in template.resources_of_type("AWS::SecretsManager::Secret").items():
        _secret(clients("secretsmanager"), physical, logical_id, resource.get("Properties", {}))
    return physical


def _name_the_rest(template: Template, physical: Physical) -> None:
    """Functions, layers and the API exist only in this process, but templates still refer to them."""
    region = physical.region
    for logical_id, resource in template.resources.items():
        kind = resource.get("Type", "")
        name = physical.name(logical_id)
        if kind == "AWS::Serverless::Function":
            arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
            physical.refs[logical_id] = name
            physical.attributes[(logical_id, "Arn")] = arn
        elif kind == "AWS::Serverless::LayerVersion":
            physical.refs[logical_id] = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{name}:1"
        elif kind == "AWS::Serverless::Api":
            physical.refs[logical_id] = "local"


def _table(dynamodb: Any, physical: Physical, logical_id: str, properties: dict[str, Any]) -> None:
    name = physical.name(logical_id)
    try:
        dynamodb.create_table(TableName=name, **{k: properties[k] for k in _TABLE_KEYS if k in properties})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    physical.refs[logical_id] = name
    physical.attributes[(logical_id, "Arn")] = arn


def _queue(sqs: Any, template: Template, physical: Physical, logical_id: str, properties: dict[str, Any]) -> None:
    fifo = str(properties.get("FifoQueue", "false")).lower() == "true"
    name = properties.get("QueueName") or physical.name(logical_id) + (".fifo" if fifo else "")
    attributes = {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in properties.items() if k in _QUEUE_ATTRIBUTES
    }
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(template.resolve(properties["RedrivePolicy"], physical))
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    physical.refs[logical_id] = url
    physical.attributes[(logical_id, "Arn")] = arn
    physical.attributes[(logical_id, "QueueName")] = name
    physical.attributes[(logical_id, "QueueUrl")] = url


def _secret(manager: Any, physical: Physical, logical_id: str, properties: dict[str, Any]) -> None:
    name = properties.get("Name") or physical.name(logical_id)
    try:
        arn = manager.describe_secret(SecretId=name)["ARN"]
    except ClientError:
        value = properties.get("SecretString") or _generated(properties.get("GenerateSecretString", {}))
        arn = manager.create_secret(Name=name, SecretString=value)["ARN"]
    physical.refs[logical_id] = arn


def _generated(spec: dict[str, Any]) -> str:
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
