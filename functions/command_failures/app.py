"""SQS consumer of the commands dead-letter queue: a start no node acknowledged fails its job (released once)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland import clock
from worldland.api import deps
from worldland.domain.lifecycle import dead_lettered
from worldland.models.commands import Command
from worldland.observability import logger, tracer
from worldland.settings import get_settings

# The dead-letter queue is FIFO, grouped by job: after a failure, that job's later records are
# handed back too (its order kept) while other jobs' records are still processed.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def record_handler(record: SQSRecord) -> None:
    command = Command.model_validate_json(record.body)
    outcome = dead_lettered(command, deps.jobs(), get_settings().command_max_deliveries, clock.now())
    logger.warning("command dead-lettered", job_id=command.job_id, type=command.type, outcome=outcome)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
