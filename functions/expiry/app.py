"""SQS consumer: ends each expired job (Expired, resources released once) and tells its node to stop it."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland import clock
from worldland.api import deps
from worldland.domain.lifecycle import expire
from worldland.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    job_id = json.loads(record.body)["job_id"]
    if expire(job_id, deps.jobs(), deps.command_queues(), clock.now()):
        logger.info("job expired", job_id=job_id)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A record that raises is reported back alone and redelivered; the rest of the batch is done.
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
