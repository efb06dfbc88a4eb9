"""A rental's life after creation: commands to the node, the node's reports, and every way a job ends.

Every ender (delete, expiry, failure report, dead-lettered command, provider loss) goes through
`end_job`, whose transaction is conditioned on the job not being released yet: whatever arrives
at the same moment, and however often a message is delivered, resources come back exactly once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from worldland.dal.commands import CommandQueues
from worldland.dal.errors import ConditionFailed, StorageError, TransactionCancelled
from worldland.dal.jobs import HOLDING, NOT_STARTED, JobRepository
from worldland.dal.providers import ProviderRepository
from worldland.domain.retry import ATTEMPTS, backoff
from worldland.errors import Conflict, NotFound
from worldland.models.commands import Command, CommandType, JobReport, RentalSpec
from worldland.models.jobs import ENDED_STATUSES, JobRecord, JobStatus, SshInfo
from worldland.models.providers import ProviderRecord, ProviderStatus

logger = logging.getLogger(__name__)

_STARTABLE = [JobStatus.PENDING, JobStatus.STARTING]


def command(job: JobRecord, kind: CommandType, now: datetime) -> Command:
    rental = None
    if kind == "start_rental":
        rental = RentalSpec(
            image=job.image,
            gpu_model=job.gpu_model,
            gpu_count=job.gpu_count,
            cpu_cores=job.cpu_cores,
            memory_gb=job.memory_gb,
            storage_gb=job.storage_gb,
            expires_at=job.expires_at,
            ssh_password_hash=job.ssh_password_hash,
            ssh_public_key=job.ssh_public_key,
        )
    return Command(
        command_id=str(uuid.uuid4()),
        type=kind,
        job_id=job.job_id,
        provider_id=job.provider_id,
        issued_at=now,
        rental=rental,
    )


def end_job(
    job: JobRecord,
    status: JobStatus,
    reason: str | None,
    jobs: JobRepository,
    queues: CommandQueues | None,
    now: datetime,
    from_statuses: list[JobStatus] = HOLDING,
) -> JobRecord | None:
    """Move a job that holds resources to Terminating / Failed / Expired and release them, once.

    Returns the ended job, or None when another ender got there first (or the job has left
    `from_statuses`). With `queues`, the node is told to stop the container (a stop for a
    container that never started is acknowledged and reported ended by the agent).
    """
    fields: dict[str, object] = {"ended_at": now} if status in ENDED_STATUSES else {"terminate_requested_at": now}
    if reason:
        fields["failure_reason"] = reason
    for attempt in range(ATTEMPTS):
        try:
            jobs.end(job, status, fields, from_statuses)
            break
        except TransactionCancelled as cancelled:
            if not cancelled.conflicted:
                return None
            backoff(attempt)
    else:
        raise Conflict("job_contention", "The job is changing too fast; retry.")
    known = {k: v for k, v in fields.items() if k in JobRecord.model_fields}
    ended = job.model_copy(update={"status": status, "released": True, **known})
    if queues is not None:
        try:
            queues.send(command(ended, "stop_rental", now))
        except StorageError:
            # Resources are already free; the agent's reconciliation stops containers of ended jobs.
            logger.exception("stop_rental not queued", extra={"job_id": job.job_id})
    return ended


def dispatch_start(job: JobRecord, jobs: JobRepository, queues: CommandQueues, now: datetime) -> None:
    """Queue start_rental for a new job; if that is impossible, the job fails and frees what it held."""
    try:
        queues.send(command(job, "start_rental", now))
    except StorageError:
        end_job(job, JobStatus.FAILED, "The provider's command queue could not be reached.", jobs, None, now)
        raise


def owned_provider(provider_id: str, wallet: str, providers: ProviderRepository) -> ProviderRecord:
    from worldland.domain.providers import get_provider, not_yours

    provider = get_provider(provider_id, providers)
    if provider.wallet_addr != wallet:
        raise not_yours(provider_id)
    return provider


def apply_report(
    provider: ProviderRecord, job_id: str, report: JobReport, jobs: JobRepository, now: datetime
) -> JobRecord:
    """Apply a node's report about one of its rentals. Repeats change nothing; stale ones are refused."""
    job = jobs.get(job_id)
    if job is None or job.provider_id != provider.provider_id:
        raise NotFound("job_not_found", f"No job {job_id} on provider {provider.provider_id}.")
    for _ in range(ATTEMPTS):
        try:
            return _apply(provider, job, report, jobs, now)
        except ConditionFailed:
            # The job moved between our read and our write (another report, a delete): decide again.
            fresh = jobs.get(job_id)
            assert fresh is not None  # jobs are never deleted
            job = fresh
    raise Conflict("job_contention", "The job is changing too fast; retry.")


def _apply(
    provider: ProviderRecord, job: JobRecord, report: JobReport, jobs: JobRepository, now: datetime
) -> JobRecord:
    status = job.status
    if report.state == "starting":
        if status in _STARTABLE:
            fields: dict[str, object] = {"status": JobStatus.STARTING, "progress": report.progress}
            return jobs.transition(job.job_id, _STARTABLE, fields)
        return _stale(job, report)
    if report.state == "running":
        if status == JobStatus.RUNNING and job.ssh and job.ssh.port == report.ssh_port:
            return job  # a repeated report
        if status in _STARTABLE:
            assert report.ssh_port is not None  # the model requires it for "running"
            host = provider.spec.public_ip
            ssh = SshInfo(host=host, port=report.ssh_port, command=f"ssh root@{host} -p {report.ssh_port}")
            fields = {"status": JobStatus.RUNNING, "started_at": now, "ssh": ssh}
            return jobs.transition(job.job_id, _STARTABLE, fields, remove=("progress",))
        return _stale(job, report)
    # "failed" or "ended": the container is gone.
    if status.holds_resources:
        default = "The container failed." if report.state == "failed" else "The container exited on its own."
        ended = end_job(job, JobStatus.FAILED, report.reason or default, jobs, None, now)
        if ended is None:
            raise ConditionFailed("ended concurrently")
        return ended
    if status == JobStatus.TERMINATING:
        fields = {"status": JobStatus.TERMINATED, "ended_at": now}
        if report.state == "failed" and report.reason:
            fields["failure_reason"] = report.reason
        return jobs.transition(job.job_id, [JobStatus.TERMINATING], fields, remove=("progress",))
    if status == JobStatus.EXPIRED and job.ended_at is None:
        return jobs.transition(job.job_id, [JobStatus.EXPIRED], {"ended_at": now})
    return job  # already ended: a repeated or late report changes nothing


def _stale(job: JobRecord, report: JobReport) -> JobRecord:
    raise Conflict(
        "illegal_transition", f"Job {job.job_id} is {job.status.value}; a '{report.state}' report cannot apply."
    )


def check_staleness(
    providers: ProviderRepository,
    jobs: JobRepository,
    queues: CommandQueues,
    stale_seconds: int,
    grace_seconds: int,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """Mark silent providers Offline; fail the jobs of those silent past the grace period.

    Both look-ups are index queries for exactly the providers concerned (no table scan); a lost
    provider is read by the grace pass until its jobs are dealt with, then never again while it
    stays silent. Returns (providers marked Offline, jobs failed).
    """
    offline = [
        provider_id
        for provider_id, seen in providers.heartbeat_older_than(
            ProviderStatus.AVAILABLE, now - timedelta(seconds=stale_seconds)
        )
        if providers.mark_offline(provider_id, seen, now)
    ]
    failed: list[str] = []
    lost_since = now - timedelta(seconds=stale_seconds + grace_seconds)
    for provider_id, seen in providers.loss_pending(lost_since):
        for job in jobs.holding_on_provider(provider_id):
            reason = f"The provider stopped answering (last heartbeat {seen})."
            if end_job(job, JobStatus.FAILED, reason, jobs, queues, now):
                failed.append(job.job_id)
        # Only once every job is dealt with (an error above leaves it pending for the next tick): then
        # the provider drops out of the index, and later ticks never read it again while it stays silent.
        providers.loss_handled(provider_id, seen)
    return offline, failed


def end_if_due(job_id: str, jobs: JobRepository, queues: CommandQueues, now: datetime) -> JobStatus | None:
    """End a job whose time is up: Expired at `expires_at`; Failed when it is still not Running at
    its start deadline. Returns the status it ended in, None when there was nothing to do (already
    ended, not yet due, or it started meanwhile)."""
    job = jobs.get(job_id)
    if job is None or not job.status.holds_resources:
        return None
    if job.expires_at <= now:
        ended = end_job(job, JobStatus.EXPIRED, None, jobs, queues, now)
    elif job.status in NOT_STARTED and job.start_by is not None and job.start_by <= now:
        minutes = round((job.start_by - job.created_at).total_seconds() / 60)
        reason = f"The provider did not start the rental within {minutes} minutes."
        # Only from a not-yet-running state: a Running report landing now wins over the deadline.
        ended = end_job(job, JobStatus.FAILED, reason, jobs, queues, now, NOT_STARTED)
    else:
        return None
    return ended.status if ended else None


def dead_lettered(command_: Command, jobs: JobRepository, max_deliveries: int, now: datetime) -> str:
    """A command no node acknowledged. Returns what was done, for the log."""
    job = jobs.get(command_.job_id)
    if job is None:
        return "unknown job"
    if command_.type == "start_rental" and job.status in _STARTABLE:
        reason = f"The provider did not acknowledge the start after {max_deliveries} deliveries."
        return "failed" if end_job(job, JobStatus.FAILED, reason, jobs, None, now) else "already ended"
    if command_.type == "stop_rental" and job.status == JobStatus.TERMINATING:
        fields = {
            "status": JobStatus.TERMINATED,
            "ended_at": now,
            "failure_reason": "The provider never confirmed the stop.",
        }
        try:
            jobs.transition(job.job_id, [JobStatus.TERMINATING], fields)
        except ConditionFailed:
            return "already ended"
        return "terminated"
    return f"nothing to do ({job.status.value})"
