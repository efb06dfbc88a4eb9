"""Scheduled every minute: marks silent providers Offline, every StalenessCheckSeconds within the minute."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland import clock
from worldland.api import deps
from worldland.domain.lifecycle import check_staleness
from worldland.domain.ticks import ticks
from worldland.observability import logger, metrics, tracer
from worldland.settings import get_settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = get_settings()
    offline_total, failed_total = 0, 0
    for _ in ticks(settings.staleness_check_seconds, context.get_remaining_time_in_millis):
        offline, failed = check_staleness(
            deps.providers(),
            deps.jobs(),
            deps.command_queues(),
            settings.heartbeat_stale_seconds,
            settings.provider_loss_grace_seconds,
            clock.now(),
        )
        if offline or failed:
            logger.info("staleness", offline=offline, failed_jobs=failed)
        offline_total, failed_total = offline_total + len(offline), failed_total + len(failed)
    metrics.add_metric(name="ProvidersMarkedOffline", unit=MetricUnit.Count, value=offline_total)
    metrics.add_metric(name="JobsFailedProviderLost", unit=MetricUnit.Count, value=failed_total)
    return {"offline": offline_total, "failed_jobs": failed_total}
