"""Create-job throughput and latency under contention on the local stack, beside the raw rate of the
same conditional transaction against the same emulation (the ratio is what the API layers cost).

    make bench   (or: PYTHONPATH=layers/common .venv/bin/python -m bench.create_job_contention [--clients 32])
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests

from bench.common import local_stack, summary_ms
from tests.e2e.client import ApiClient
from tests.local_stack.process import RunningStack as Stack
from tests.support import job_body


def api_phase(stack: Stack, clients: int, total: int) -> tuple[float, list[float], dict[int, int]]:
    """`total` creates from `clients` threads at one provider with 64 GPUs: the first 64 win."""
    provider = ApiClient(stack.api_url).sign_in()
    provider_id = provider.register_provider(
        hostname=f"bench-{uuid.uuid4().hex[:8]}", total_gpus=64, cpu_cores=1024, total_memory_mb=16 * 1024 * 1024
    )
    customers = [ApiClient(stack.api_url).sign_in() for _ in range(min(clients, 8))]
    body = job_body(provider_id, cpu_cores=2, memory_gb=8)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def one(i: int) -> None:
        token = customers[i % len(customers)].token
        with requests.Session() as session:
            started = time.perf_counter()
            answer = session.post(
                f"{stack.api_url}/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            latencies.append(time.perf_counter() - started)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    # Warm every worker first (cold starts are not what this measures): 404s for a provider that is not there.
    warm = job_body("warm-up-no-such-provider")
    headers = {"Authorization": f"Bearer {customers[0].token}"}
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(
            pool.map(
                lambda _: requests.post(f"{stack.api_url}/api/v1/jobs", json=warm, headers=headers, timeout=120),
                range(clients * 2),
            )
        )
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(total)))
    return time.perf_counter() - started, latencies, statuses


def raw_phase(stack: Stack, clients: int, total: int) -> float:
    """The allocation transaction itself (JobRepository.allocate), straight at the emulation."""
    os.environ["AWS_ENDPOINT_URL"] = stack.aws_endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = stack.region
    from decimal import Decimal

    from worldland.dal.errors import TransactionCancelled
    from worldland.dal.jobs import JobRepository
    from worldland.dal.providers import ProviderRepository
    from worldland.models.jobs import JobRecord, JobStatus
    from worldland.models.providers import ProviderRecord, ProviderSpec, ProviderStatus

    names = stack.resources
    providers = ProviderRepository(names["ProvidersTable"], names["ProviderGpusTable"])
    jobs = JobRepository(names["JobsTable"], names["ProvidersTable"], names["IdempotencyTable"])
    now = datetime.now(UTC)
    provider_id = f"raw-{uuid.uuid4().hex[:8]}"
    spec = ProviderSpec(
        hostname="raw",
        public_ip="10.0.0.1",
        total_gpus=64,
        gpus=[{"name": "NVIDIA GeForce RTX 4090", "memory": 24576}],
        cpu_cores=1024,
        total_memory_mb=16 * 1024 * 1024,
        available_disk_gb=1,
    )
    providers.create(
        ProviderRecord(
            provider_id=provider_id,
            wallet_addr="0x0",
            status=ProviderStatus.AVAILABLE,
            region="bench",
            spec=spec,
            gpu_price_per_hour=Decimal("0.5"),
            gpu_total={"RTX-4090": 64},
            gpu_available={"RTX-4090": 64},
            gpu_in_use={"RTX-4090": 0},
            cpu_total=1024,
            cpu_available=1024,
            cpu_in_use=0,
            mem_total_mb=spec.total_memory_mb,
            mem_available_mb=spec.total_memory_mb,
            mem_in_use_mb=0,
            registered_at=now,
        )
    )

    def one(_: int) -> None:
        job = JobRecord(
            job_id=str(uuid.uuid4()),
            owner="0x0",
            provider_id=provider_id,
            status=JobStatus.PENDING,
            gpu_model="RTX-4090",
            gpu_count=1,
            cpu_cores=2,
            memory_gb=8,
            storage_gb=20,
            image="x",
            duration_hours=1,
            price_per_hour=Decimal("0.5"),
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
        # Refusals after the 64th are part of the load, as in the API phase.
        with contextlib.suppress(TransactionCancelled):
            jobs.allocate(job)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(total)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with local_stack() as stack:
        api_seconds, latencies, statuses = api_phase(stack, args.clients, args.requests)
        raw_seconds = raw_phase(stack, args.clients, args.requests)
    api_rate, raw_rate = args.requests / api_seconds, args.requests / raw_seconds
    print(f"create-job via the local API: {args.requests} requests from {args.clients} clients at one 64-GPU provider")
    print(f"  statuses: {dict(sorted(statuses.items()))}")
    print(f"  throughput: {api_rate:.1f} req/s   latency: {summary_ms(latencies)}")
    print(f"raw allocation transaction on the same emulation: {raw_rate:.1f} tx/s")
    print(f"ratio API / raw: {api_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
