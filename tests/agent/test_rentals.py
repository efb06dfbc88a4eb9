"""Rental handling on a fake engine and a fake platform: idempotency, stops, failures, expiry, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from worldland_node.api_client import IllegalTransition
from worldland_node.docker_runtime import ContainerRequest, DockerError, ExitDetail, PullFailed, RentalContainer
from worldland_node.engine import OnPullProgress
from worldland_node.models import Command
from worldland_node.ports import PortAllocator
from worldland_node.rentals import RentalManager, RentalPolicy
from worldland_node.state import StateDir

from worldland.models.commands import CommandDelivery, JobReport

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HASH = "$6$saltsalt$" + "x" * 86
PROVIDER = "prov-1"


class FakeEngine:
    """The docker_runtime surface rentals use, in memory."""

    def __init__(self, images: tuple[str, ...] = ("localhost/worldland-base:latest",)) -> None:
        self.images = set(images)
        self.containers: dict[str, dict[str, Any]] = {}
        self.requests: list[ContainerRequest] = []
        self.pull_gate: threading.Event | None = None
        self.pull_error: str | None = None
        self.pulls = 0

    def image_present(self, image: str) -> bool:
        return image in self.images

    def pull(
        self,
        image: str,
        on_progress: OnPullProgress,
        timeout: float,
        cancelled: Callable[[], bool],
    ) -> None:
        self.pulls += 1
        on_progress(50.0, "Downloading")
        if self.pull_error:
            raise PullFailed(f"pulling {image} failed: {self.pull_error}")
        while self.pull_gate is not None and not self.pull_gate.wait(0.01):
            if cancelled():
                raise PullFailed(f"pulling {image} was cancelled")
        self.images.add(image)

    def managed(self, provider_id: str | None = None) -> list[RentalContainer]:
        return [self._view(cid) for cid in self.containers]

    def find(self, job_id: str) -> RentalContainer | None:
        found = [cid for cid, c in self.containers.items() if c["request"].job_id == job_id]
        return self._view(found[0]) if found else None

    def create_and_start(self, request: ContainerRequest) -> str:
        if any(c["request"].job_id == request.job_id for c in self.containers.values()):
            raise DockerError("Conflict: the container name is already in use")
        self.requests.append(request)
        cid = f"c{len(self.requests):03d}" + "0" * 60
        self.containers[cid] = {"request": request, "status": "running", "exit": None, "restarts": 0, "oom": False}
        return cid

    def remove(self, container_id: str, grace: int) -> None:
        self.containers.pop(container_id, None)

    def inspect(self, container_id: str) -> RentalContainer | None:
        return self._view(container_id) if container_id in self.containers else None

    def last_exit(self, container_id: str) -> ExitDetail | None:
        c = self.containers.get(container_id)
        return c.get("last_exit") if c else None

    def exits_by_itself(self, container_id: str, exit_code: int, oom: bool = False) -> None:
        """As Docker's restart policy shows it: running again, one restart more, the exit only in its events."""
        c = self.containers[container_id]
        c["restarts"] += 1
        c["last_exit"] = ExitDetail(exit_code, oom)

    def log_tail(self, container_id: str, lines: int = 15) -> str:
        return "worldland: starting sshd"

    def _view(self, cid: str) -> RentalContainer:
        c = self.containers[cid]
        r: ContainerRequest = c["request"]
        return RentalContainer(
            cid, r.job_id, c["status"], c["exit"], r.ssh_port, tuple(r.gpu_indices), c["restarts"], c["oom"]
        )


class FakePlatform:
    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.refuse: set[str] = set()  # states answered 409
        self.down = False

    def report(self, provider_id: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        # Every report the agent sends must be one the platform's route accepts.
        JobReport.model_validate(body)
        if self.down:
            raise requests.ConnectionError("platform unreachable")
        if body["state"] in self.refuse:
            raise IllegalTransition(409, "illegal_transition", "the job is Terminated")
        self.reports.append((job_id, body))
        return {}

    def states(self, job_id: str) -> list[str]:
        return [b["state"] for j, b in self.reports if j == job_id and b["state"] != "starting"]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_manager(
    engine: FakeEngine, platform: FakePlatform, clock: Clock, tmp_path: Path
) -> Callable[[], RentalManager]:
    made: list[RentalManager] = []

    def make() -> RentalManager:
        manager = RentalManager(
            engine,
            platform,
            StateDir(tmp_path / "state"),
            PortAllocator(30000, 30009, is_free=lambda _: True),
            PROVIDER,
            RentalPolicy(gpu_indices=(0, 1, 2, 3), host_cpus=16, ssh_probe=lambda _: True),
            clock=clock,
        )
        made.append(manager)
        return manager

    yield make  # type: ignore[misc]
    for manager in made:
        manager.shutdown()


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def command(kind: str, job_id: str = "job-1", delivery: int = 1, **rental: Any) -> Command:
    body: dict[str, Any] = {
        "command_id": f"{kind}-{job_id}",
        "type": kind,
        "job_id": job_id,
        "provider_id": PROVIDER,
        "issued_at": "2026-01-01T12:00:00Z",
        "receipt": f"r-{kind}-{delivery}",
        "delivery": delivery,
        "rental": None,
    }
    if kind == "start_rental":
        body["rental"] = {
            "image": "localhost/worldland-base:latest",
            "gpu_model": "RTX-4090",
            "gpu_count": 1,
            "cpu_cores": 8,
            "memory_gb": 32,
            "storage_gb": 50,
            "expires_at": "2026-01-01T14:00:00Z",
            "ssh_password_hash": HASH,
            "ssh_public_key": None,
        } | rental
    # Through the platform's own model and its JSON, as the commands route sends it.
    sent = CommandDelivery.model_validate(body).model_dump(mode="json")
    return Command.model_validate(sent)


def test_a_start_delivered_twice_starts_one_container(make_manager, engine, platform) -> None:
    manager = make_manager()
    # When the same start arrives twice (the first ack was lost), even while the first is being handled
    assert manager.handle(command("start_rental"))
    assert manager.handle(command("start_rental", delivery=2))
    assert manager.wait_idle(5)
    assert manager.handle(command("start_rental", delivery=3))
    assert manager.wait_idle(5)
    # Then one container runs, and the platform heard "running" once
    assert len(engine.requests) == 1
    assert platform.states("job-1") == ["running"]
    request = engine.requests[0]
    assert request.password_hash == HASH
    assert request.cpus == 8
    assert request.memory_gb == 32
    assert len(request.gpu_indices) == 1


def test_the_journal_drops_login_material_once_the_container_has_it(make_manager, tmp_path) -> None:
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    assert HASH not in (tmp_path / "state" / "rentals" / "job-1.json").read_text()


def test_a_stop_removes_the_container_frees_the_port_and_reports_ended(make_manager, engine, platform) -> None:
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    port = engine.requests[0].ssh_port
    assert manager.handle(command("stop_rental"))
    assert manager.wait_idle(5)
    assert engine.containers == {}
    assert platform.states("job-1") == ["running", "ended"]
    assert port not in manager._ports.taken
    # And a late duplicate of the start does not bring it back
    manager.handle(command("start_rental", delivery=4))
    assert manager.wait_idle(5)
    assert engine.containers == {}


def test_a_stop_for_a_job_never_started_reports_ended(make_manager, platform) -> None:
    manager = make_manager()
    assert manager.handle(command("stop_rental", job_id="job-unknown"))
    assert platform.states("job-unknown") == ["ended"]
    # When the platform cannot be told, the command is not acknowledged (it comes back)
    platform.down = True
    assert not manager.handle(command("stop_rental", job_id="job-other"))


def test_a_stop_during_a_pull_cancels_it_and_no_container_is_made(make_manager, engine, platform) -> None:
    engine.pull_gate = threading.Event()  # the pull never finishes by itself
    manager = make_manager()
    manager.handle(command("start_rental", image="example.org/big/image:1"))
    wait_until(lambda: engine.pulls == 1)
    manager.handle(command("stop_rental"))
    assert manager.wait_idle(5)
    assert engine.requests == []
    assert platform.states("job-1") == ["ended"]
    progress = [b["progress"] for j, b in platform.reports if b["state"] == "starting"]
    assert progress[0]["phase"] == "pulling"


def test_a_failed_pull_fails_the_job_with_the_reason(make_manager, engine, platform) -> None:
    engine.pull_error = "manifest unknown"
    manager = make_manager()
    manager.handle(command("start_rental", image="localhost/does-not-exist:1"))
    assert manager.wait_idle(5)
    (failed,) = [b for j, b in platform.reports if b["state"] == "failed"]
    assert "localhost/does-not-exist:1" in failed["reason"]
    assert "manifest unknown" in failed["reason"]
    assert engine.requests == []
    assert manager._ports.taken == set()


def test_a_rental_is_stopped_at_its_expiry(make_manager, engine, platform, clock) -> None:
    manager = make_manager()
    manager.handle(command("start_rental", expires_at="2026-01-01T13:00:00Z"))
    assert manager.wait_idle(5)
    manager.reconcile()
    assert manager.wait_idle(5)
    assert len(engine.containers) == 1  # not yet
    clock.now = NOW + timedelta(hours=1, seconds=1)
    manager.reconcile()
    assert manager.wait_idle(5)
    assert engine.containers == {}
    assert platform.states("job-1") == ["running", "ended"]


def test_a_running_report_the_platform_refuses_removes_the_container(make_manager, engine, platform) -> None:
    # Given a job the platform has already ended (a very late start)
    platform.refuse = {"running"}
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    assert manager.wait_idle(5)
    # Then nobody's container is left running
    assert engine.containers == {}
    assert platform.states("job-1") == ["ended"]


def test_reports_the_platform_missed_are_sent_again(make_manager, engine, platform) -> None:
    platform.down = True
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    assert len(engine.containers) == 1
    platform.down = False
    manager.reconcile()
    assert platform.states("job-1") == ["running"]
    manager.reconcile()
    assert platform.states("job-1") == ["running"]  # confirmed: not sent again


def test_a_container_that_dies_fails_the_job(make_manager, engine, platform) -> None:
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    (container,) = engine.containers.values()
    container["status"], container["exit"] = "exited", 137
    manager.reconcile()
    (failed,) = [b for j, b in platform.reports if b["state"] == "failed"]
    assert "exit code 137" in failed["reason"]
    assert engine.containers == {}


def test_a_restarted_agent_keeps_the_rental_and_can_stop_it(make_manager, engine, platform) -> None:
    first = make_manager()
    first.handle(command("start_rental"))
    assert first.wait_idle(5)
    port = engine.requests[0].ssh_port
    first.shutdown()
    # When a new manager starts on the same state dir and engine
    second = make_manager()
    second.recover()
    assert second.wait_idle(5)
    # Then the rental's port stays taken, nothing is started twice, and a stop still works
    assert port in second._ports.taken
    assert len(engine.requests) == 1
    second.handle(command("stop_rental"))
    assert second.wait_idle(5)
    assert engine.containers == {}
    assert platform.states("job-1") == ["running", "ended"]


def test_a_start_interrupted_by_shutdown_resumes_on_the_next_run(make_manager, engine, platform) -> None:
    engine.pull_gate = threading.Event()
    first = make_manager()
    first.handle(command("start_rental", image="example.org/big/image:1"))
    first.shutdown()
    assert engine.requests == []
    engine.pull_gate = None
    second = make_manager()
    second.recover()
    assert second.wait_idle(5)
    assert len(engine.requests) == 1
    assert platform.states("job-1") == ["running"]


def test_gpus_are_not_given_twice(make_manager, engine) -> None:
    manager = make_manager()
    for job in ("a", "b", "c"):
        manager.handle(command("start_rental", job_id=job, gpu_count=1))
    assert manager.wait_idle(5)
    assert sorted(i for r in engine.requests for i in r.gpu_indices) == [0, 1, 2]


def test_a_container_docker_restarted_after_its_process_exited_fails_the_job(make_manager, engine, platform) -> None:
    # Given a running rental
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    (cid,) = engine.containers
    # When its main process exits by itself and Docker's restart policy brings the container back
    engine.exits_by_itself(cid, 143)
    manager.reconcile()
    # Then the job fails, saying what happened, and the container is removed
    (failed,) = [b for j, b in platform.reports if b["state"] == "failed"]
    assert "exited by itself" in failed["reason"]
    assert "exit code 143" in failed["reason"]
    assert "restarted it 1 time" in failed["reason"]
    assert engine.containers == {}


def test_an_oom_kill_is_named_in_the_reason(make_manager, engine, platform) -> None:
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    (cid,) = engine.containers
    engine.exits_by_itself(cid, 137, oom=True)
    manager.reconcile()
    (failed,) = [b for j, b in platform.reports if b["state"] == "failed"]
    assert "OOM" in failed["reason"]
    assert "exit code 137" in failed["reason"]


def test_a_crash_looping_container_is_not_healthy(make_manager, engine, platform) -> None:
    manager = make_manager()
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    (container,) = engine.containers.values()
    container["status"] = "restarting"  # between two of Docker's restarts
    manager.reconcile()
    (failed,) = [b for j, b in platform.reports if b["state"] == "failed"]
    assert "Docker is restarting it" in failed["reason"]


def test_restarts_before_adoption_or_an_engine_restart_are_not_failures(
    make_manager, engine, platform, tmp_path
) -> None:
    # Given a container the journal lost, which Docker had restarted twice before the agent came back
    first = make_manager()
    first.handle(command("start_rental"))
    assert first.wait_idle(5)
    first.shutdown()
    (cid,) = engine.containers
    engine.containers[cid]["restarts"] = 2
    for entry in (tmp_path / "state" / "rentals").iterdir():
        entry.unlink()
    # When a new agent adopts it, Then it keeps running
    second = make_manager()
    second.recover()
    second.reconcile()
    assert engine.containers
    # When the engine restarts (its restart counts start from 0 again), Then still nothing is wrong
    engine.containers[cid]["restarts"] = 0
    second.reconcile()
    assert engine.containers
    assert not [b for j, b in platform.reports if b["state"] == "failed"]
    # When it then dies on its own once, Then that is noticed
    engine.exits_by_itself(cid, 1)
    second.reconcile()
    assert [b for j, b in platform.reports if b["state"] == "failed"]


def test_a_start_whose_container_crash_loops_fails_at_once_not_at_the_ssh_deadline(engine, platform, tmp_path) -> None:
    # Given sshd that never answers, because the container's main process keeps exiting
    original = engine.create_and_start

    def crashing(request: ContainerRequest) -> str:
        cid = original(request)
        engine.exits_by_itself(cid, 1)
        return cid

    engine.create_and_start = crashing  # type: ignore[method-assign]
    manager = RentalManager(
        engine, platform, StateDir(tmp_path / "state"), PortAllocator(30000, 30009, is_free=lambda _: True), PROVIDER,
        RentalPolicy(gpu_indices=(0,), host_cpus=16, ssh_probe=lambda _: False, ssh_ready_timeout=60),
    )  # fmt: skip
    started = time.monotonic()
    manager.handle(command("start_rental"))
    # Then the job fails within seconds, saying why
    assert manager.wait_idle(5)
    assert time.monotonic() - started < 5
    (failed,) = [b for j, b in platform.reports if b["state"] == "failed"]
    assert "before sshd answered" in failed["reason"]
    assert "exit code 1" in failed["reason"]
    manager.shutdown()


class RecordingMining:
    """The mining hooks a rental uses, recording what it asked."""

    def __init__(self) -> None:
        self.made_room: list[list[int]] = []
        self.sync_requests = 0

    def make_room(self, gpus: list[int]) -> None:
        self.made_room.append(gpus)

    def request_sync(self) -> None:
        self.sync_requests += 1


def test_a_rental_asks_mining_for_room_and_leaves_the_resync_to_the_mining_loop(engine, platform, tmp_path) -> None:
    mining = RecordingMining()
    manager = RentalManager(
        engine, platform, StateDir(tmp_path / "state"), PortAllocator(30000, 30009, is_free=lambda _: True), PROVIDER,
        RentalPolicy(gpu_indices=(0, 1), host_cpus=16, ssh_probe=lambda _: True), mining=mining,
    )  # fmt: skip
    manager.handle(command("start_rental"))
    assert manager.wait_idle(5)
    # Then mining made room on the rental's GPU before its container, and was only woken after
    assert mining.made_room == [engine.requests[0].gpu_indices]
    assert mining.sync_requests == 1
    manager.handle(command("stop_rental"))
    assert manager.wait_idle(5)
    assert mining.sync_requests == 2
    assert platform.states("job-1") == ["running", "ended"]
    manager.shutdown()


def test_a_stop_reports_outside_the_accept_lock(make_manager, platform) -> None:
    # Given a platform that takes its time answering a report
    manager = make_manager()
    answering = threading.Event()
    proceed = threading.Event()
    report = platform.report

    def slow_report(provider_id: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        answering.set()
        proceed.wait(5)
        return report(provider_id, job_id, body)

    platform.report = slow_report  # type: ignore[method-assign]
    # When a stop for a job this host never ran is being reported
    stopping = threading.Thread(target=manager.handle, args=(command("stop_rental", job_id="job-unknown"),))
    stopping.start()
    assert answering.wait(5)
    # Then journal writes (other commands, workers) are not held up by it
    assert manager._accept_lock.acquire(timeout=1)
    manager._accept_lock.release()
    proceed.set()
    stopping.join(5)
    assert platform.states("job-unknown") == ["ended"]
