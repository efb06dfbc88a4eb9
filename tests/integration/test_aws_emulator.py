"""The embedded AWS gives DynamoDB's atomicity back, and leaves SQS long polling alone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import ROOT


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.local_stack.aws_emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout
    port = int(process.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def client(endpoint: str, service: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(max_pool_connections=64, retries={"max_attempts": 1}),
    )


def test_concurrent_conditional_decrements_never_overshoot(endpoint: str) -> None:
    dynamodb = client(endpoint, "dynamodb")
    dynamodb.create_table(
        TableName="counters",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def decrement(_: int) -> bool:
        try:
            dynamodb.update_item(
                TableName="counters",
                Key={"id": {"S": "c"}},
                UpdateExpression="SET avail = avail - :one",
                ConditionExpression="avail >= :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    for _ in range(5):
        # Given a counter of 100, When 200 threads each take one if there is one left
        dynamodb.put_item(TableName="counters", Item={"id": {"S": "c"}, "avail": {"N": "100"}})
        with ThreadPoolExecutor(max_workers=50) as pool:
            taken = sum(pool.map(decrement, range(200)))
        # Then exactly 100 succeed and none is left: DynamoDB's semantics, not moto's lost updates
        assert taken == 100
        item = dynamodb.get_item(TableName="counters", Key={"id": {"S": "c"}}, ConsistentRead=True)["Item"]
        assert item["avail"]["N"] == "0"


def test_sqs_long_poll_returns_right_after_a_send(endpoint: str) -> None:
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="hello")).start()
    started = time.monotonic()
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
    assert [m["Body"] for m in messages] == ["hello"]
    assert time.monotonic() - started < 1.5
