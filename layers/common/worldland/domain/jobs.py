"""Jobs: choose a provider, hold its capacity atomically with the job, and give it back exactly once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from worldland.dal.commands import CommandQueues
from worldland.dal.errors import TransactionCancelled
from worldland.dal.jobs import JobRepository
from worldland.dal.providers import ProviderRepository
from worldland.domain.gpu_models import gpu_label
from worldland.domain.lifecycle import dispatch_start, end_job
from worldland.domain.providers import not_found as provider_not_found
from worldland.domain.retry import ATTEMPTS, backoff
from worldland.errors import Conflict, DomainError, InvalidInput, NotFound
from worldland.models.jobs import ENDED_STATUSES, CreateJobRequest, Job, JobCreated, JobList, JobRecord, JobStatus
from worldland.models.providers import ProviderRecord, ProviderStatus
from worldland.settings import Settings


def _job_not_found(job_id: str) -> NotFound:
    return NotFound("job_not_found", f"No job {job_id}.")


def request_hash(request: CreateJobRequest) -> str:
    # The password stays out: the hash is stored, and must not be a way to test guesses.
    canonical = request.model_dump_json(exclude={"ssh_password"}, exclude_none=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_job(
    request: CreateJobRequest,
    owner: str,
    idempotency_key: str | None,
    jobs: JobRepository,
    providers: ProviderRepository,
    queues: CommandQueues,
    settings: Settings,
    now: datetime,
) -> tuple[JobCreated, bool]:
    """Create the job; returns (job, created). `created` is False for an idempotent replay."""
    key = f"{owner}#{idempotency_key}" if idempotency_key else None
    fingerprint = request_hash(request)
    if key and (replayed := _replay(key, fingerprint, jobs)):
        return replayed, False

    password = request.ssh_password
    if password is None and request.ssh_public_key is None:
        password = secrets.token_urlsafe(12)
    password_hash: str | None = None

    for provider, model in _candidates(request, providers):
        if provider.status != ProviderStatus.AVAILABLE or not _fits(provider, model, request):
            # What we just read cannot fit: skip the transaction (its condition would refuse anyway).
            if request.provider_id:
                return _replay_or_refuse(key, fingerprint, jobs, provider, model)
            continue
        if password and password_hash is None:
            password_hash = _crypt(password)  # deliberately slow: only for a request that may succeed
        job = _job_record(request, owner, provider, model, now, fingerprint, password_hash)
        job.start_by = min(job.expires_at, now + timedelta(seconds=settings.start_timeout_seconds))
        idempotency = (key, int(now.timestamp()) + settings.idempotency_ttl_seconds) if key else None
        outcome = _allocate(job, idempotency, jobs)
        if outcome == "allocated":
            dispatch_start(job, jobs, queues, now)
            generated = password if request.ssh_password is None else None
            return JobCreated(**job.to_public().model_dump(), ssh_password=generated), True
        if outcome == "replayed":
            assert key is not None
            replayed = _replay(key, fingerprint, jobs)
            assert replayed is not None  # the key's record exists: its transaction committed
            return replayed, False
        if request.provider_id:
            fresh = providers.get(request.provider_id)
            assert fresh is not None  # providers are never deleted; it was read a moment ago
            return _replay_or_refuse(key, fingerprint, jobs, fresh, model)
    if key and (replayed := _replay(key, fingerprint, jobs)):
        return replayed, False
    raise Conflict("insufficient_capacity", "No Available provider has that much free capacity right now.")


def _replay_or_refuse(
    key: str | None, fingerprint: str, jobs: JobRepository, provider: ProviderRecord, model: str
) -> tuple[JobCreated, bool]:
    # A twin request with the same key may have taken the capacity we now lack: answer with its job.
    if key and (replayed := _replay(key, fingerprint, jobs)):
        return replayed, False
    raise _refusal(provider, model)


def _allocate(job: JobRecord, idempotency: tuple[str, int] | None, jobs: JobRepository) -> str:
    for attempt in range(ATTEMPTS):
        try:
            jobs.allocate(job, idempotency)
            return "allocated"
        except TransactionCancelled as cancelled:
            if cancelled.failed(JobRepository.IDEMPOTENCY_ITEM):
                return "replayed"
            if cancelled.failed(JobRepository.PROVIDER_ITEM):
                return "refused"
            if not cancelled.conflicted:
                raise
            backoff(attempt)  # TransactionConflict: another transaction held the item
    raise Conflict("allocation_contention", "Too many concurrent requests for this provider; retry shortly.")


def _replay(key: str, fingerprint: str, jobs: JobRepository) -> JobCreated | None:
    recorded = jobs.idempotent_job_id(key)
    if recorded is None:
        return None
    job_id, recorded_hash = recorded
    if recorded_hash != fingerprint:
        raise InvalidInput.on(
            "Idempotency-Key", "was already used with a different request body", code="idempotency_key_reused"
        )
    job = jobs.get(job_id)
    assert job is not None  # written in the same transaction as the key
    return JobCreated(**job.to_public().model_dump())


def _refusal(provider: ProviderRecord, model: str) -> DomainError:
    """Why a named provider cannot take the job, from what was just read of it."""
    if provider.status != ProviderStatus.AVAILABLE:
        return Conflict("provider_unavailable", f"Provider {provider.provider_id} is {provider.status.value}.")
    return Conflict(
        "insufficient_capacity",
        f"Provider {provider.provider_id} has {provider.gpu_available.get(model, 0)} {model} GPUs, "
        f"{provider.cpu_available} CPU cores and {provider.mem_available_mb // 1024} GB free.",
    )


def _candidates(request: CreateJobRequest, providers: ProviderRepository) -> Iterable[tuple[ProviderRecord, str]]:
    """(provider, GPU model) pairs to try, cheapest first; a named provider is the only candidate."""
    wanted = _label(request.gpu_model) if request.gpu_model else None
    if request.provider_id:
        provider = providers.get(request.provider_id)
        if provider is None:
            raise provider_not_found(request.provider_id)
        yield provider, _model_on(provider, wanted, request)
        return
    pool: Iterable[ProviderRecord]
    if wanted:
        pool = providers.batch_get(providers.listings_for_model(wanted)).values()
    else:
        pool = providers.all_by_status(ProviderStatus.AVAILABLE)
    for provider in sorted(pool, key=lambda p: (p.gpu_price_per_hour, p.provider_id)):
        models = [wanted] if wanted else sorted(provider.gpu_available, key=lambda m: -provider.gpu_available[m])
        for model in models:
            if provider.status == ProviderStatus.AVAILABLE and _fits(provider, model, request):
                yield provider, model
                break


def _model_on(provider: ProviderRecord, wanted: str | None, request: CreateJobRequest) -> str:
    if wanted is None:
        # The provider's model with the most free GPUs (most providers have one model).
        wanted = max(sorted(provider.gpu_total), key=lambda m: provider.gpu_available.get(m, 0))
    if wanted not in provider.gpu_total:
        offered = ", ".join(sorted(provider.gpu_total))
        raise InvalidInput.on("gpu_model", f"must be one of this provider's models ({offered})")
    if request.gpu_count > provider.gpu_total[wanted]:
        raise InvalidInput.on("gpu_count", f"must be <= {provider.gpu_total[wanted]} (the provider's {wanted} GPUs)")
    return wanted


def _fits(provider: ProviderRecord, model: str, request: CreateJobRequest) -> bool:
    return (
        provider.gpu_available.get(model, 0) >= request.gpu_count
        and provider.cpu_available >= request.cpu_cores
        and provider.mem_available_mb >= request.memory_gb * 1024
    )


def _label(name: str) -> str:
    try:
        return gpu_label(name)
    except ValueError as exc:
        raise InvalidInput.on("gpu_model", str(exc)) from exc


def _job_record(
    request: CreateJobRequest,
    owner: str,
    provider: ProviderRecord,
    model: str,
    now: datetime,
    fingerprint: str,
    password_hash: str | None,
) -> JobRecord:
    return JobRecord(
        job_id=str(uuid.uuid4()),
        owner=owner,
        provider_id=provider.provider_id,
        status=JobStatus.PENDING,
        gpu_model=model,
        gpu_count=request.gpu_count,
        cpu_cores=request.cpu_cores,
        memory_gb=request.memory_gb,
        storage_gb=request.storage_gb,
        image=request.image,
        duration_hours=request.duration_hours,
        price_per_hour=provider.gpu_price_per_hour * request.gpu_count,
        created_at=now,
        expires_at=now + timedelta(hours=request.duration_hours),
        request_hash=fingerprint,
        ssh_password_hash=password_hash,
        ssh_public_key=request.ssh_public_key,
    )


def _crypt(password: str) -> str:
    # SHA-512 crypt, as /etc/shadow takes it: the agent sets it with `chpasswd -e`, so the
    # platform never stores the password itself.
    from passlib.hash import sha512_crypt

    return str(sha512_crypt.using(rounds=50_000).hash(password))


def get_job(job_id: str, owner: str, jobs: JobRepository) -> JobRecord:
    job = jobs.get(job_id)
    if job is None or job.owner != owner:
        raise _job_not_found(job_id)  # another caller's job is as good as absent
    return job


def list_jobs(owner: str, jobs: JobRepository, limit: int, token: str | None) -> JobList:
    records, next_token = jobs.by_owner(owner, limit, token)
    return JobList(jobs=[r.to_public() for r in records], next_token=next_token)


def delete_job(job_id: str, owner: str, jobs: JobRepository, queues: CommandQueues, now: datetime) -> tuple[Job, bool]:
    """Ask for the job to end and give its resources back. Returns (job, accepted): accepted is
    False when the job had already ended."""
    for _ in range(ATTEMPTS):
        job = get_job(job_id, owner, jobs)
        if job.status in ENDED_STATUSES:
            return job.to_public(), False
        if job.released:
            return job.to_public(), True  # already terminating: deleting again changes nothing
        ended = end_job(job, JobStatus.TERMINATING, None, jobs, queues, now)
        if ended is not None:
            return ended.to_public(), True
        # Another ender (expiry, a failure report) got there first: read it again and answer from that.
    raise Conflict("job_contention", "The job is changing too fast; retry.")
