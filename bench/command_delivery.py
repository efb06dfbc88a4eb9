"""Command delivery latency on the local stack (job created -> the node's long poll returns it),
and what one heartbeat costs in DynamoDB calls and items written.

    make bench   (or: PYTHONPATH=layers/common .venv/bin/python -m bench.command_delivery [--jobs 100])
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

import requests

from bench.common import local_stack, summary_ms
from tests.e2e.client import ApiClient
from tests.support import job_body


def delivery_latency(api_url: str, jobs: int) -> list[float]:
    provider = ApiClient(api_url).sign_in()
    provider_id = provider.register_provider(
        hostname=f"bench-{uuid.uuid4().hex[:8]}", total_gpus=64, cpu_cores=1024, total_memory_mb=16 * 1024 * 1024
    )
    customer = ApiClient(api_url).sign_in()
    seen: dict[str, float] = {}
    stop = threading.Event()

    def node() -> None:
        poller = ApiClient(api_url, wallet=provider.wallet, token=provider.token)
        while not stop.is_set():
            try:
                answer = poller.call("GET", f"/api/v1/nodes/{provider_id}/commands", params={"wait": 20})
            except requests.RequestException:
                return  # the stack went away under the last poll
            arrived = time.perf_counter()
            if stop.is_set() or answer.status_code != 200:
                return  # the measurement is over and the stack is going away under the last poll
            commands = answer.json()["commands"]
            for command in commands:
                seen.setdefault(command["job_id"], arrived)
            if commands:
                poller.call(
                    "POST",
                    f"/api/v1/nodes/{provider_id}/commands/ack",
                    json={"receipts": [c["receipt"] for c in commands]},
                )

    threading.Thread(target=node, daemon=True).start()
    time.sleep(1.0)  # the long poll is waiting
    latencies: list[float] = []
    for _ in range(jobs):
        sent = time.perf_counter()
        job_id = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id, cpu_cores=2, memory_gb=8)).json()[
            "job_id"
        ]
        while job_id not in seen:
            time.sleep(0.001)
        latencies.append(seen[job_id] - sent)
        customer.call("DELETE", f"/api/v1/jobs/{job_id}")  # keeps capacity free for the next one
        time.sleep(0.05)  # the next create finds the poll waiting again, as a real node's would be
    stop.set()
    return latencies


def heartbeat_cost() -> tuple[dict[str, int], int]:
    """Count the DynamoDB calls one steady-state heartbeat makes, on moto in process."""
    import os

    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from datetime import UTC, datetime

    import boto3
    from moto import mock_aws

    from tests.local_stack.template import load_template
    from tests.support import ROOT, provider_spec
    from worldland.dal import dynamodb
    from worldland.dal.providers import ProviderRepository
    from worldland.domain import providers as domain
    from worldland.models.providers import HeartbeatRequest, RegisterRequest

    template = load_template(ROOT / "template.yaml")
    with mock_aws():
        ddb = boto3.client("dynamodb")
        for name in ("ProvidersTable", "ProviderGpusTable"):
            props = template.resources[name]["Properties"]
            keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
            ddb.create_table(TableName=name, **{k: props[k] for k in keys})
        dynamodb.client.cache_clear()
        repo = ProviderRepository("ProvidersTable", "ProviderGpusTable")
        wallet = "0x" + "ab" * 20
        register = RegisterRequest.model_validate({"spec": provider_spec(), "capacity": {"gpu_price_per_hour": 0.5}})
        provider_id = domain.register(register, wallet, repo, datetime.now(UTC)).provider_id
        domain.heartbeat(provider_id, wallet, HeartbeatRequest(), repo, datetime.now(UTC))  # Joined -> Available
        calls: dict[str, int] = {}
        dynamodb.client().meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.__setitem__(model.name, calls.get(model.name, 0) + 1)
        )
        domain.heartbeat(provider_id, wallet, HeartbeatRequest(), repo, datetime.now(UTC))
        item = ddb.get_item(TableName="ProvidersTable", Key={"provider_id": {"S": provider_id}})["Item"]
        return calls, len(str(item))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    with local_stack() as stack:
        latencies = delivery_latency(stack.api_url, args.jobs)
    print(f"command delivery (POST /jobs sent -> long poll returned start_rental): {summary_ms(latencies)}")
    calls, item_size = heartbeat_cost()
    writes = sum(n for name, n in calls.items() if name in {"UpdateItem", "PutItem", "TransactWriteItems"})
    print(f"one heartbeat: DynamoDB calls {calls}; items written: {writes} (the provider item, ~{item_size} bytes)")


if __name__ == "__main__":
    main()
