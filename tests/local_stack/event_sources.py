"""What makes Lambda run besides HTTP: the template's schedules (moto never fires them) and its SQS
event sources (polled, batched, partial failures honoured, failed messages left to redrive)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.local_stack.lambda_runtime import LambdaError, LambdaRuntime
from tests.local_stack.template import ACCOUNT_ID, Function, Template

log = logging.getLogger("local_stack.events")

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"only rate(...) schedules are run locally, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class EventSources:
    def __init__(
        self,
        template: Template,
        functions: dict[str, Function],
        runtime: LambdaRuntime,
        sqs: Any,
        queue_urls_by_arn: dict[str, str],
        region: str,
    ) -> None:
        self.template = template
        self.functions = functions
        self.runtime = runtime
        self.sqs = sqs
        self.queue_urls_by_arn = queue_urls_by_arn
        self.region = region
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.schedules: list[tuple[str, str, dict[str, Any]]] = []

    def start(self, resolve: Any) -> None:
        for function in self.functions.values():
            for name, event in function.events.items():
                spec = resolve(event.get("Properties", {}))
                if event["Type"] in ("Schedule", "ScheduleV2") and spec.get("Enabled", True) is not False:
                    expression = spec.get("Schedule") or spec.get("ScheduleExpression")
                    self._thread(self._schedule, function.logical_id, name, rate_seconds(expression))
                    self.schedules.append((function.logical_id, name, spec))
                elif event["Type"] == "SQS":
                    self._thread(self._poll, function.logical_id, spec)

    def stop(self) -> None:
        self.stopping.set()

    def _thread(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"event-source-{args[0]}")
        thread.start()
        self.threads.append(thread)

    # ---------------------------------------------------------------- schedules
    def fire(self, function: str, rule: str) -> None:
        """Invoke a scheduled function once, without waiting (its run may take the whole minute)."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{function}-{rule}"],
            "detail": {},
        }
        future = self.runtime.submit(function, event)
        future.add_done_callback(lambda f: _log_failure(function, f))

    def _schedule(self, function: str, rule: str, period: int) -> None:
        # Fired once at start-up (AWS waits one period first), so sub-minute checks run from the start.
        while not self.stopping.is_set():
            self.fire(function, rule)
            self.stopping.wait(period)

    # ---------------------------------------------------------------- SQS event sources
    def _poll(self, function: str, spec: dict[str, Any]) -> None:
        url = self.queue_urls_by_arn[spec["Queue"]]
        batch = min(10, int(spec.get("BatchSize", 10)))
        partial = "ReportBatchItemFailures" in spec.get("FunctionResponseTypes", [])
        while not self.stopping.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=batch,
                    WaitTimeSeconds=5,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                log.exception("receive from %s failed", url)
                self.stopping.wait(1)
                continue
            if messages:
                self._deliver(function, spec["Queue"], url, messages, partial)

    def _deliver(self, function: str, arn: str, url: str, messages: list[dict[str, Any]], partial: bool) -> None:
        event = {"Records": [sqs_record(m, arn, self.region) for m in messages]}
        try:
            result = self.runtime.invoke(function, event)
        except LambdaError as error:
            log.error("%s failed on a batch of %d: %s", function, len(messages), error.message)
            return  # every message comes back after its visibility timeout
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])} if partial else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            )


def sqs_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """A received SQS message as Lambda's SQS event source hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            k: {
                "stringValue": v.get("StringValue"),
                "binaryValue": v.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": v["DataType"],
            }
            for k, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def _log_failure(function: str, future: Any) -> None:
    status, value = future.result() if not future.cancelled() and future.exception() is None else ("error", {})
    if status == "error" and value:
        log.error("%s failed: %s: %s", function, value.get("errorType"), value.get("errorMessage"))
