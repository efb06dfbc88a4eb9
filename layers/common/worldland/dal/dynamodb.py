"""The DynamoDB client (created once per cold start), item codecs and ClientError translation."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel

from worldland.dal.errors import BadPageToken, ConditionFailed, StorageError, TransactionCancelled
from worldland.models.common import format_time

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@lru_cache(maxsize=1)
def client() -> DynamoDBClient:
    # Endpoint comes from AWS_ENDPOINT_URL(_DYNAMODB) when set (local stack), never from code.
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def plain(value: Any) -> Any:
    """Python/pydantic values -> values TypeSerializer accepts (Decimal numbers, ISO times, no None)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | str | int | Decimal):
        return value
    if isinstance(value, float):
        # DynamoDB numbers stop at 1e-130; nine decimals are more than any price or percentage needs.
        return Decimal(str(round(value, 9)))
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in plain(values).items()}


def to_value(value: Any) -> dict[str, Any]:
    return dict(_serializer.serialize(plain(value)))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def encode_page_token(last_key: Mapping[str, Any] | None) -> str | None:
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError) as exc:
        raise BadPageToken(token) from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) and len(v) == 1 for v in key.values()):
        raise BadPageToken(token)
    return key


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn botocore's ClientError into the DAL's typed errors."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(error.get("Message", "")) from exc
        if code == "TransactionCanceledException":
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            raise TransactionCancelled(reasons) from exc
        if code == "ValidationException" and "ExclusiveStartKey" in error.get("Message", ""):
            raise BadPageToken(error.get("Message", "")) from exc
        if code == "ValidationException" and "start key" in error.get("Message", "").lower():
            raise BadPageToken(error.get("Message", "")) from exc
        raise StorageError(f"{code}: {error.get('Message', '')}") from exc
