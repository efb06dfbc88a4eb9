"""Command delivery latency on the local stack (job created -> the node's long poll returns it),
and what one heartbeat costs in DynamoDB: calls, table items and index entries written, write units.

    make bench   (or: PYTHONPATH=layers/common .venv/bin/python -m bench.command_delivery [--jobs 100])
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from bench.common import local_stack, summary_ms
from bench.dynamodb_cost import Index, WriteCost, write_cost
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


@dataclass
class HeartbeatCost:
    calls: dict[str, int]
    writes: list[WriteCost]

    def line(self) -> str:
        puts = [w for cost in self.writes for w in cost.index_writes]
        by_index = ", ".join(
            f"{name} {sum(1 for w in puts if w.index == name and w.kind == 'put')} put"
            f"+{sum(1 for w in puts if w.index == name and w.kind == 'delete')} delete"
            for name in dict.fromkeys(w.index for w in puts)
        )
        table = sum(c.table_units for c in self.writes)
        index = sum(c.index_units for c in self.writes)
        sizes = "/".join(str(c.item_size) for c in self.writes)
        return (
            f"DynamoDB calls {self.calls}; table items written {len(self.writes)} "
            f"(provider item {sizes} bytes by DynamoDB sizing); "
            f"GSI entries written {len(puts)} ({by_index or 'none'}); "
            f"write units {table} table + {index} index = {table + index}"
        )


def heartbeat_costs() -> dict[str, HeartbeatCost]:
    """One steady-state heartbeat and one that brings an Offline provider back, on moto in process:
    the calls the domain makes, and what each write costs by DynamoDB's rules (bench.dynamodb_cost)."""
    import os

    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto import mock_aws

    from tests.local_stack.provision import provision
    from tests.local_stack.template import load_template
    from tests.support import ROOT, provider_spec
    from worldland.dal import dynamodb
    from worldland.dal.providers import ProviderRepository
    from worldland.domain import providers as domain
    from worldland.models.providers import HeartbeatRequest, RegisterRequest

    template = load_template(ROOT / "template.yaml")
    props = template.resources["ProvidersTable"]["Properties"]
    table_keys = tuple(k["AttributeName"] for k in props["KeySchema"])
    indexes = [Index.from_template(i) for i in props.get("GlobalSecondaryIndexes", [])]
    with mock_aws():
        tables = provision(template, boto3.client, "bench", "us-east-1").refs  # as the local stack does
        ddb = boto3.client("dynamodb")  # not the domain's client: reading images is not counted
        dynamodb.client.cache_clear()
        repo = ProviderRepository(tables["ProvidersTable"], tables["ProviderGpusTable"])
        wallet = "0x" + "ab" * 20
        register = RegisterRequest.model_validate({"spec": provider_spec(), "capacity": {"gpu_price_per_hour": 0.5}})
        now = datetime.now(UTC)
        provider_id = domain.register(register, wallet, repo, now).provider_id
        domain.heartbeat(provider_id, wallet, HeartbeatRequest(), repo, now)  # Joined -> Available

        calls: dict[str, int] = {}
        writes: list[WriteCost] = []
        pending: dict[str, Any] = {}

        def image(params: dict[str, Any]) -> dict[str, Any] | None:
            got = ddb.get_item(TableName=params["TableName"], Key=params["Key"], ConsistentRead=True)
            return got.get("Item")

        def before(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls[model.name] = calls.get(model.name, 0) + 1
            if model.name in ("PutItem", "TransactWriteItems", "BatchWriteItem"):
                raise NotImplementedError(f"the cost of {model.name} is not derived here")
            if model.name in ("UpdateItem", "DeleteItem"):
                pending.update(params=params, image=image(params))

        def after(model: Any, **_: Any) -> None:
            if model.name in ("UpdateItem", "DeleteItem"):
                written = image(pending["params"])
                if written != pending["image"]:  # a refused conditional write changes nothing
                    writes.append(write_cost(pending["image"], written, table_keys, indexes))

        events = dynamodb.client().meta.events
        events.register("before-parameter-build.dynamodb.*", before)
        events.register("after-call.dynamodb.*", after)

        def measure(beat_at: datetime) -> HeartbeatCost:
            calls.clear()
            writes.clear()
            domain.heartbeat(provider_id, wallet, HeartbeatRequest(), repo, beat_at)
            return HeartbeatCost(dict(calls), list(writes))

        steady = measure(now + timedelta(seconds=30))
        seen = ddb.get_item(TableName=tables["ProvidersTable"], Key={"provider_id": {"S": provider_id}})["Item"]
        went_offline = repo.mark_offline(provider_id, seen["last_heartbeat"]["S"], now + timedelta(seconds=200))
        assert went_offline, "the provider should have gone Offline"
        returning = measure(now + timedelta(seconds=210))
        return {"steady (Available)": steady, "Offline -> Available": returning}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    with local_stack() as stack:
        latencies = delivery_latency(stack.api_url, args.jobs)
    print(f"command delivery (POST /jobs sent -> long poll returned start_rental): {summary_ms(latencies)}")
    for case, cost in heartbeat_costs().items():
        print(f"one heartbeat, {case}: {cost.line()}")


if __name__ == "__main__":
    main()
