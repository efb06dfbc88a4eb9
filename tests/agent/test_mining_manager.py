"""The mining manager on a fake engine: which GPUs it mines on, when it pauses, and that rentals win."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from worldland_node.docker_runtime import DockerError, MiningContainer, MiningRequest, PullFailed
from worldland_node.engine import OnPullProgress
from worldland_node.loops import Loop
from worldland_node.mining import MiningManager, MiningPolicy

from worldland.models.providers import MiningReport

IMAGE = "localhost/miner:1"


class FakeMiningEngine:
    def __init__(self) -> None:
        self.images = {IMAGE}
        self.container: MiningContainer | None = None
        self.started: list[tuple[int, ...]] = []
        self.removed: list[tuple[str, int]] = []
        self.pull_error: str | None = None
        self.start_error: str | None = None

    def image_present(self, image: str) -> bool:
        return image in self.images

    def pull(
        self,
        image: str,
        on_progress: OnPullProgress,
        timeout: float,
        cancelled: Callable[[], bool],
    ) -> None:
        if self.pull_error:
            raise PullFailed(self.pull_error)
        self.images.add(image)

    def mining(self, provider_id: str) -> MiningContainer | None:
        return self.container

    def start_mining(self, request: MiningRequest) -> str:
        if self.start_error:
            raise DockerError(self.start_error)
        self.started.append(request.gpu_indices)
        self.container = MiningContainer(f"m{len(self.started)}", "running", request.gpu_indices)
        return self.container.container_id

    def remove(self, container_id: str, grace: int) -> None:
        self.removed.append((container_id, grace))
        self.container = None


@pytest.fixture
def engine() -> FakeMiningEngine:
    return FakeMiningEngine()


def manager(engine: FakeMiningEngine, rented: set[int], *, enabled: bool = True, image: str = IMAGE) -> MiningManager:
    policy = MiningPolicy(enabled, image, Path("/tmp/chain"), (0, 1, 2, 3), use_gpus=False, grace=7)
    return MiningManager(engine, "prov-1", policy, rented=lambda: set(rented))


def test_mining_runs_on_the_gpus_no_rental_holds(engine) -> None:
    rented: set[int] = set()
    mining = manager(engine, rented)
    mining.sync()
    assert engine.started == [(0, 1, 2, 3)]
    assert MiningReport.model_validate(mining.report()).gpu_count == 4
    # A rental takes GPU 0: mining leaves it within the grace period, then runs on the other three
    rented.add(0)
    mining.make_room([0])
    assert engine.removed == [("m1", 7)]
    assert mining.report()["state"] == "paused"
    mining.sync()
    assert engine.started[-1] == (1, 2, 3)
    assert mining.report() == {"state": "running", "container_id": "m2", "gpu_count": 3}
    # A sync with nothing changed leaves the container alone
    mining.sync()
    assert len(engine.started) == 2


def test_mining_pauses_when_rentals_hold_every_gpu_and_resumes_after(engine) -> None:
    rented: set[int] = {0, 1, 2, 3}
    mining = manager(engine, rented)
    mining.sync()
    assert engine.started == []
    assert mining.report() == {"state": "paused", "container_id": None, "gpu_count": 0}
    rented.clear()
    mining.sync()
    assert engine.started == [(0, 1, 2, 3)]


def test_make_room_leaves_mining_alone_when_the_rental_needs_other_gpus(engine) -> None:
    rented: set[int] = {0}
    mining = manager(engine, rented)
    mining.sync()
    mining.make_room([0])
    assert engine.removed == []


def test_mining_off_removes_a_mining_container_and_reports_stopped(engine) -> None:
    engine.container = MiningContainer("old", "running", (0, 1, 2, 3))  # left by an earlier run with mining on
    mining = manager(engine, set(), enabled=False)
    mining.sync()
    assert engine.removed == [("old", 7)]
    assert mining.report()["state"] == "stopped"
    mining.make_room([0])  # nothing to do
    assert engine.started == []


def test_an_exited_mining_container_is_replaced(engine) -> None:
    engine.container = MiningContainer("dead", "exited", (0, 1, 2, 3))
    mining = manager(engine, set())
    mining.sync()
    assert engine.removed == [("dead", 7)]
    assert engine.started == [(0, 1, 2, 3)]


def test_an_unavailable_image_stops_mining_and_is_retried(engine, caplog) -> None:
    engine.pull_error = "no route to the registry"
    mining = manager(engine, set(), image="registry.example/miner:2")
    mining.sync()
    mining.sync()
    assert mining.report()["state"] == "stopped"
    # Said once, not at every pass
    assert sum("mining image registry.example/miner:2 unavailable" in r.message for r in caplog.records) == 1
    engine.pull_error = None
    mining.sync()
    assert mining.report()["state"] == "running"


def test_a_change_wakes_the_heartbeat(engine) -> None:
    changes: list[str] = []
    policy = MiningPolicy(True, IMAGE, Path("/tmp/chain"), (0, 1), use_gpus=False)
    mining = MiningManager(engine, "prov-1", policy, rented=set, on_change=lambda: changes.append("x"))
    mining.sync()
    mining.sync()
    assert changes == ["x"]


def test_loops_are_independent_and_survive_failures() -> None:
    # Given one loop whose step hangs, one whose step always fails, and one that works
    stop = threading.Event()
    hang = threading.Event()
    passes: list[str] = []

    def failing() -> None:
        passes.append("failed")
        raise RuntimeError("engine unreachable")

    loops = [
        Loop("stuck", lambda: hang.wait(), 0.01, stop),
        Loop("failing", failing, 0.01, stop),
        Loop("working", lambda: passes.append("ok"), 0.01, stop),
    ]
    for loop in loops:
        loop.start()
    time.sleep(1.6)  # the failing loop backs off 0.5-1 s after its first failure
    stop.set()
    hang.set()
    for loop in loops:
        loop.wake()
        loop.join(2)
    # Then the working loop kept going, and the failing one was retried, not ended
    assert passes.count("ok") > 20
    assert passes.count("failed") >= 2
    assert not any(loop.is_alive() for loop in loops)


class SlowMiningEngine(FakeMiningEngine):
    """A mining container that ignores SIGTERM (its removal takes the whole grace) or an engine that hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.in_engine = threading.Event()

    def remove(self, container_id: str, grace: int) -> None:
        self.in_engine.set()
        self.release.wait(10)
        super().remove(container_id, grace)

    def start_mining(self, request: MiningRequest) -> str:
        if self.started:  # the first start is quick; later ones hang until released
            self.in_engine.set()
            self.release.wait(10)
        return super().start_mining(request)


def test_the_report_never_waits_on_the_engine() -> None:
    # Given mining whose container is being stopped, slowly
    engine = SlowMiningEngine()
    mining = manager(engine, set())
    mining.sync()
    stopping = threading.Thread(target=mining.make_room, args=([0],))
    stopping.start()
    assert engine.in_engine.wait(5)
    # When the heartbeat asks for the mining block meanwhile, Then it answers at once with the last known state
    started = time.monotonic()
    assert mining.report() == {"state": "running", "container_id": "m1", "gpu_count": 4}
    assert time.monotonic() - started < 0.5
    engine.release.set()
    stopping.join(5)
    assert mining.report()["state"] == "paused"


def test_make_room_does_not_queue_behind_a_hung_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a sync stuck in an engine call (a hung start of the mining container)
    monkeypatch.setattr("worldland_node.mining.LOCK_SLACK", 0.3)
    engine = SlowMiningEngine()
    rented: set[int] = set()
    mining = MiningManager(
        engine, "prov-1", MiningPolicy(True, IMAGE, Path("/tmp/chain"), (0, 1), use_gpus=False, grace=0),
        rented=lambda: set(rented),
    )  # fmt: skip
    mining.sync()
    engine.container = None  # the first container died; the next start hangs
    syncing = threading.Thread(target=mining.sync)
    syncing.start()
    assert engine.in_engine.wait(5)
    # When a rental needs GPU 0, Then making room returns after the grace and the slack, not after the engine
    rented.add(0)
    started = time.monotonic()
    mining.make_room([0])
    assert time.monotonic() - started < 2
    engine.release.set()
    syncing.join(5)


def test_a_rental_change_wakes_the_mining_loop_rather_than_syncing_itself(engine) -> None:
    wakes: list[str] = []
    rented: set[int] = set()
    policy = MiningPolicy(True, IMAGE, Path("/tmp/chain"), (0, 1), use_gpus=False)
    mining = MiningManager(engine, "prov-1", policy, rented=lambda: set(rented), wake_sync=lambda: wakes.append("x"))
    mining.sync()
    rented.add(0)
    mining.make_room([0])
    # Then the container left the GPUs, nothing was started on the rental's thread, and the loop was woken
    assert engine.started == [(0, 1)]
    assert engine.container is None
    assert wakes == ["x"]
    mining.request_sync()
    assert wakes == ["x", "x"]
