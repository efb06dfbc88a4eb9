"""Customer jobs: POST/GET /jobs, GET/DELETE /jobs/{id}."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from worldland import clock
from worldland.api import deps
from worldland.api.app import caller_wallet, json_response
from worldland.domain import jobs as domain
from worldland.errors import InvalidInput
from worldland.models.jobs import CreateJobRequest, Job, JobCreated, JobList
from worldland.observability import logger, metrics
from worldland.settings import get_settings

router = Router()

JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _idempotency_key() -> str | None:
    key = router.current_event.headers.get("Idempotency-Key")  # case-insensitive in Powertools v3
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidInput.on("Idempotency-Key", "must be 1 to 255 printable characters")
    return key


@router.post(
    "/api/v1/jobs",
    summary="Rent GPUs: hold a provider's capacity for a new job",
    tags=["jobs"],
    responses={
        201: {"description": "Created (also for a replay of the same Idempotency-Key)"},
        404: {"description": "provider_not_found"},
        409: {"description": "insufficient_capacity or provider_unavailable"},
    },
)
def create_job(request: CreateJobRequest) -> Response[JobCreated]:
    owner = caller_wallet(router)
    job, created = domain.create_job(
        request,
        owner,
        _idempotency_key(),
        deps.jobs(),
        deps.providers(),
        deps.command_queues(),
        get_settings(),
        clock.now(),
    )
    if created:
        metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
        logger.info("job created", job_id=job.job_id, provider_id=job.provider_id, gpus=job.gpu_count)
    response = json_response(201, job)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.get("/api/v1/jobs", summary="The caller's jobs, newest first", tags=["jobs"])
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(min_length=1, max_length=4096)] = None,
) -> JobList:
    return domain.list_jobs(caller_wallet(router), deps.jobs(), limit, next_token)


@router.get("/api/v1/jobs/<job_id>", summary="One of the caller's jobs", tags=["jobs"])
def get_job(job_id: JobId) -> Job:
    return domain.get_job(job_id, caller_wallet(router), deps.jobs()).to_public()


@router.delete(
    "/api/v1/jobs/<job_id>",
    summary="End a job and give its resources back",
    tags=["jobs"],
    responses={202: {"description": "Terminating"}, 200: {"description": "It had already ended"}},
)
def delete_job(job_id: JobId) -> Response[Job]:
    job, accepted = domain.delete_job(job_id, caller_wallet(router), deps.jobs(), deps.command_queues(), clock.now())
    if accepted:
        logger.info("job terminating", job_id=job_id)
    return json_response(202 if accepted else 200, job)
