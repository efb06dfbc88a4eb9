"""SQS consumer: ends each due job (Expired at expires_at; Failed when not Running by its start
deadline), releasing its resources once, and tells its node to stop it."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland import clock
from worldland.api import deps
from worldland.domain.lifecycle import end_if_due
from worldland.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    job_id = json.loads(record.body)["job_id"]
    ended = end_if_due(job_id, deps.jobs(), deps.command_queues(), clock.now())
    if ended is not None:
        logger.info("due job ended", job_id=job_id, status=ended.value)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A record that raises is reported back alone and redelivered; the rest of the batch is done.
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
