"""Per-provider FIFO command queues on SQS: the agent's long poll reads its own queue only.

FIFO with the job as message group keeps a job's commands in order (a stop never overtakes its
start) and deduplicates sends for five minutes. A command the agent does not acknowledge
(delete) reappears after the visibility timeout, and after `maxReceiveCount` deliveries the
queue's redrive policy moves it to the shared dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from worldland.dal.errors import StorageError
from worldland.models.commands import Command, CommandDelivery

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
# CreateQueue on an existing name with other attributes: the JSON protocol's code, then the query protocol's.
_EXISTS_OTHERWISE = {"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"}
# Fixed at creation: SetQueueAttributes refuses them.
_CREATE_ONLY = {"FifoQueue"}


@lru_cache(maxsize=1)
def client() -> SQSClient:
    # Read timeout above the longest long poll (20 s).
    return boto3.client("sqs", config=Config(read_timeout=30, retries={"mode": "standard", "max_attempts": 5}))


def queue_name(prefix: str, provider_id: str) -> str:
    # Provider ids may be up to 64 characters; SQS names stop at 80, so the name carries a digest.
    return f"{prefix}{hashlib.sha256(provider_id.encode()).hexdigest()[:40]}.fifo"


class CommandQueues:
    def __init__(self, prefix: str, dead_letter_arn: str, ack_timeout_seconds: int, max_deliveries: int) -> None:
        self.prefix = prefix
        self.dead_letter_arn = dead_letter_arn
        self.ack_timeout_seconds = ack_timeout_seconds
        self.max_deliveries = max_deliveries

    def ensure(self, provider_id: str) -> str:
        """Create the provider's queue, or bring an existing one to the current settings.

        CreateQueue is idempotent only while the attributes are the same; after a redeploy that
        changes the ack timeout or the delivery limit, SQS refuses it for queues made before, so
        those are converged with SetQueueAttributes instead (registration is the one writer).
        """
        name = queue_name(self.prefix, provider_id)
        attributes = self._attributes()
        try:
            return client().create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _EXISTS_OTHERWISE:
                raise StorageError(f"cannot create the command queue: {exc}") from exc
        try:
            url = _queue_url(name)
        except _NoQueue as gone:  # deleted between the two calls: let the caller retry
            raise StorageError(f"the command queue {name} vanished while it was updated") from gone
        mutable = {k: v for k, v in attributes.items() if k not in _CREATE_ONLY}
        try:
            client().set_queue_attributes(QueueUrl=url, Attributes=mutable)  # type: ignore[arg-type]
        except ClientError as exc:
            raise StorageError(f"cannot update the command queue: {exc}") from exc
        return url

    def _attributes(self) -> dict[str, str]:
        attributes = {
            "FifoQueue": "true",
            "VisibilityTimeout": str(self.ack_timeout_seconds),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "ReceiveMessageWaitTimeSeconds": "20",
            "SqsManagedSseEnabled": "true",
        }
        if self.dead_letter_arn:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": self.dead_letter_arn, "maxReceiveCount": self.max_deliveries}
            )
        return attributes

    def url(self, provider_id: str) -> str | None:
        try:
            return _queue_url(queue_name(self.prefix, provider_id))
        except _NoQueue:
            return None

    def send(self, command: Command) -> None:
        """Queue a command on the provider's queue, which registration created.

        Never creates the queue itself: only registration holds sqs:CreateQueue, so the queue's
        settings have one writer and every other function's role stays send-only.
        """
        url = self.url(command.provider_id)
        if url is None:
            raise StorageError(f"provider {command.provider_id} has no command queue (it never registered)")
        try:
            client().send_message(
                QueueUrl=url,
                MessageBody=command.model_dump_json(),
                MessageGroupId=command.job_id,
                MessageDeduplicationId=command.command_id,
            )
        except ClientError as exc:
            raise StorageError(f"cannot queue {command.type}: {exc}") from exc

    def receive(self, provider_id: str, wait_seconds: int, max_commands: int = 10) -> list[CommandDelivery]:
        url = self.url(provider_id)
        if url is None:
            return []
        try:
            answer = client().receive_message(
                QueueUrl=url,
                WaitTimeSeconds=wait_seconds,
                MaxNumberOfMessages=max_commands,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except ClientError as exc:
            raise StorageError(f"cannot read the command queue: {exc}") from exc
        return [_delivery(message) for message in answer.get("Messages", [])]

    def ack(self, provider_id: str, receipts: list[str]) -> list[str]:
        """Delete handled commands; returns the receipts that could not be deleted."""
        url = self.url(provider_id)
        if url is None:
            return receipts
        # Each receipt once: a repeat acknowledges nothing more, and SQS emulations refuse a batch with one.
        receipts = list(dict.fromkeys(receipts))
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)]
        try:
            answer = client().delete_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
        except ClientError as exc:
            raise StorageError(f"cannot acknowledge commands: {exc}") from exc
        return [receipts[int(failed["Id"])] for failed in answer.get("Failed", [])]


class _NoQueue(Exception):
    pass


@lru_cache(maxsize=4096)
def _queue_url(name: str) -> str:
    # A queue's URL never changes, so one lookup per container is enough. A missing queue raises,
    # and lru_cache does not keep raised calls: a queue created later is found on the next call.
    try:
        return client().get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            raise _NoQueue(name) from exc
        raise StorageError(f"cannot find the command queue: {exc}") from exc


def _delivery(message: Any) -> CommandDelivery:
    command = Command.model_validate_json(message["Body"])
    count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    return CommandDelivery(**command.model_dump(), receipt=message["ReceiptHandle"], delivery=count)


def send_job_ids(queue_url: str, job_ids: list[str]) -> None:
    """Queue job ids for a consumer (the expiry queue), ten to a batch."""
    for start in range(0, len(job_ids), 10):
        batch = job_ids[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": json.dumps({"job_id": j})} for i, j in enumerate(batch)]
        try:
            answer = client().send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        except ClientError as exc:
            raise StorageError(f"cannot queue expired jobs: {exc}") from exc
        if answer.get("Failed"):
            raise StorageError(f"{len(answer['Failed'])} expired jobs were not queued")
