"""Scheduled every minute: queues jobs past expires_at, and jobs not Running by their start deadline
(both from sparse indexes), for the expiry consumer."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland import clock
from worldland.api import deps
from worldland.dal.commands import send_job_ids
from worldland.domain.ticks import ticks
from worldland.observability import logger, metrics, tracer
from worldland.settings import get_settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = get_settings()
    queued = 0
    for _ in ticks(settings.expiry_sweep_seconds, context.get_remaining_time_in_millis):
        now, jobs = clock.now(), deps.jobs()
        due = list(dict.fromkeys(jobs.expiring(now) + jobs.start_overdue(now)))
        if due:
            # Duplicates (a job queued by two sweeps) are harmless: expiry is conditioned on the job.
            send_job_ids(settings.expiry_queue_url, due)
            logger.info("due jobs queued", count=len(due))
        queued += len(due)
    metrics.add_metric(name="JobsQueuedForExpiry", unit=MetricUnit.Count, value=queued)
    return {"queued": queued}
