"""Randomized: thousands of interleaved creates, deletes, reports, expiries, heartbeat losses and
duplicate deliveries against the real handlers, checking after every step that capacity is
conserved and that no job holds resources once it has ended."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.integration.conftest import Lambdas, proxy_event
from tests.integration.lifecycle_support import Clock, Node, OneTickContext, install_clock, receive_all, sqs_event
from tests.support import job_body, new_wallet, sample_event

HOLDING = {"AwaitingPayment", "Pending", "Starting", "Running"}


@dataclass
class World:
    lambdas: Lambdas
    clock: Clock
    register: object
    aws: dict[str, str]


def lifecycle_machine(world: World) -> type[RuleBasedStateMachine]:
    lambdas = world.lambdas

    class Lifecycle(RuleBasedStateMachine):
        @initialize()
        def market(self) -> None:
            # Each example gets its own providers; the tables are shared, the checks are per provider.
            self.nodes = []
            for _ in range(2):
                wallet = new_wallet().address
                self.nodes.append(Node(lambdas, wallet, world.register(wallet, hostname=f"h-{uuid.uuid4().hex[:8]}")))
            self.customers = [new_wallet().address for _ in range(2)]
            self.jobs: dict[str, tuple[str, Node]] = {}
            self.last_report: tuple[Node, str, dict] | None = None

        # ------------------------------------------------------------ customer actions
        @rule(
            node=st.integers(0, 1),
            customer=st.integers(0, 1),
            gpus=st.integers(1, 3),
            cpus=st.integers(2, 16),
            memory=st.sampled_from([8, 16, 32, 64]),
            hours=st.integers(1, 3),
        )
        def create(self, node: int, customer: int, gpus: int, cpus: int, memory: int, hours: int) -> None:
            body = job_body(
                self.nodes[node].provider_id, gpu_count=gpus, cpu_cores=cpus, memory_gb=memory, duration_hours=hours
            )
            event = proxy_event(sample_event("jobs_create"), body=body, wallet=self.customers[customer])
            del event["headers"]["Idempotency-Key"], event["multiValueHeaders"]["Idempotency-Key"]
            answer = lambdas.http("jobs", event)
            assert answer.status in (201, 409), answer.body
            if answer.status == 201:
                self.jobs[answer.body["job_id"]] = (self.customers[customer], self.nodes[node])

        @precondition(lambda self: self.jobs)
        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(list(self.jobs)))
            owner, _ = self.jobs[job_id]
            event = proxy_event(sample_event("jobs_delete"), wallet=owner, path_parameters={"job_id": job_id})
            assert lambdas.http("jobs", event).status in (200, 202)

        # ------------------------------------------------------------ node actions
        @precondition(lambda self: self.jobs)
        @rule(data=st.data(), state=st.sampled_from(["starting", "running", "failed", "ended"]))
        def report(self, data: st.DataObject, state: str) -> None:
            job_id = data.draw(st.sampled_from(list(self.jobs)))
            _, node = self.jobs[job_id]
            report = {"state": state} | ({"ssh_port": 30000 + len(job_id)} if state == "running" else {})
            assert node.report(job_id, **report).status in (200, 409)
            self.last_report = (node, job_id, report)

        @precondition(lambda self: self.last_report is not None)
        @rule()
        def duplicate_report(self) -> None:
            assert self.last_report is not None
            node, job_id, report = self.last_report
            assert node.report(job_id, **report).status in (200, 409)

        @rule(node=st.integers(0, 1), ack=st.booleans())
        def poll(self, node: int, ack: bool) -> None:
            commands = self.nodes[node].poll()
            if ack and commands:
                assert self.nodes[node].ack(*(c["receipt"] for c in commands)).status == 200

        @rule(node=st.integers(0, 1))
        def heartbeat(self, node: int) -> None:
            assert self.nodes[node].heartbeat().status == 200

        # ------------------------------------------------------------ time and the platform's workers
        @rule(seconds=st.sampled_from([30, 121, 700, 3601, 7300]))
        def time_passes(self, seconds: int) -> None:
            world.clock.advance(seconds)

        @rule()
        def staleness_check(self) -> None:
            lambdas("staleness", {}, OneTickContext())

        @rule(twice=st.booleans())
        def expiry(self, twice: bool) -> None:
            lambdas("expiry_sweep", {}, OneTickContext())
            messages = receive_all(world.aws["ExpiryQueue"])
            if messages:
                event = sqs_event(world.aws["ExpiryQueue"], messages)
                for _ in range(2 if twice else 1):  # a duplicate delivery
                    assert lambdas("expiry", event) == {"batchItemFailures": []}
                boto3.client("sqs").delete_message_batch(
                    QueueUrl=world.aws["ExpiryQueue"],
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )

        @precondition(lambda self: self.jobs)
        @rule(data=st.data())
        def start_dead_lettered(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(list(self.jobs)))
            _, node = self.jobs[job_id]
            command = {
                "command_id": str(uuid.uuid4()),
                "type": "start_rental",
                "job_id": job_id,
                "provider_id": node.provider_id,
                "issued_at": "2026-11-24T12:00:00.000Z",
            }
            event = sample_event("command_failures_sqs")
            event["Records"][0]["body"] = json.dumps(command)
            assert lambdas("command_failures", event) == {"batchItemFailures": []}

        # ------------------------------------------------------------ what must always hold
        @invariant()
        def capacity_is_conserved_and_ended_jobs_hold_nothing(self) -> None:
            from worldland.api import deps

            providers, jobs = deps.providers(), deps.jobs()
            for node in self.nodes:
                provider = providers.get(node.provider_id)
                assert provider is not None
                held = {"gpu": 0, "cpu": 0, "mem": 0}
                for job in jobs.holding_on_provider(node.provider_id):
                    assert not job.released, job
                    held["gpu"] += job.gpu_count
                    held["cpu"] += job.cpu_cores
                    held["mem"] += job.memory_gb * 1024
                for model, total in provider.gpu_total.items():
                    assert provider.gpu_available[model] + provider.gpu_in_use[model] == total
                    assert provider.gpu_available[model] >= 0
                assert provider.cpu_available + provider.cpu_in_use == provider.cpu_total
                assert provider.mem_available_mb + provider.mem_in_use_mb == provider.mem_total_mb
                assert provider.cpu_available >= 0
                assert provider.mem_available_mb >= 0
                assert sum(provider.gpu_in_use.values()) == held["gpu"]
                assert provider.cpu_in_use == held["cpu"]
                assert provider.mem_in_use_mb == held["mem"]
            for job_id in self.jobs:
                job = jobs.get(job_id)
                assert job is not None
                assert job.released == (job.status.value not in HOLDING), job

    return Lifecycle


def test_capacity_is_conserved_under_random_interleavings(
    lambdas: Lambdas, register, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(lambdas, install_clock(monkeypatch), register, aws)
    run_state_machine_as_test(
        lifecycle_machine(world),
        settings=settings(
            max_examples=50,
            stateful_step_count=70,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
