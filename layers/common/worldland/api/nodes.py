"""Provider agent routes: POST /nodes/register and /nodes/{id}/heartbeat."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from worldland import clock
from worldland.api import deps
from worldland.api.app import caller_wallet, json_response
from worldland.domain import lifecycle
from worldland.domain import providers as domain
from worldland.models.commands import JobReport
from worldland.models.common import ID_PATTERN
from worldland.models.jobs import Job
from worldland.models.providers import HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse
from worldland.observability import logger

router = Router()

ProviderId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("/api/v1/nodes/register", summary="Register (or re-register) a GPU host", tags=["nodes"])
def register(request: RegisterRequest) -> Response[RegisterResponse]:
    answer = domain.register(request, caller_wallet(router), deps.providers(), clock.now())
    # Creates the queue, or brings it to the current ack timeout and delivery limit after a redeploy.
    deps.command_queues().ensure(answer.provider_id)
    logger.info("provider registered", provider_id=answer.provider_id, status=answer.status.value)
    return json_response(201, answer)


@router.post("/api/v1/nodes/<provider_id>/heartbeat", summary="Report the host alive", tags=["nodes"])
def heartbeat(provider_id: ProviderId, request: HeartbeatRequest) -> HeartbeatResponse:
    return domain.heartbeat(provider_id, caller_wallet(router), request, deps.providers(), clock.now())


@router.post(
    "/api/v1/nodes/<provider_id>/jobs/<job_id>/status",
    summary="Report a rental's progress: starting, running (with its SSH port), failed, ended",
    tags=["nodes"],
    responses={409: {"description": "illegal_transition: the report is behind the job's state"}},
)
def report_job(
    provider_id: ProviderId,
    job_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")],
    report: JobReport,
) -> Job:
    provider = lifecycle.owned_provider(provider_id, caller_wallet(router), deps.providers())
    job = lifecycle.apply_report(provider, job_id, report, deps.jobs(), clock.now())
    logger.info("job report", job_id=job_id, state=report.state, status=job.status.value)
    return job.to_public()
