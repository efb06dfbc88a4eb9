"""Mining on the GPUs nobody rents (seed 004): started at start-up, moved off GPUs a rental takes,
resumed on the GPUs a rental gives back.

Rentals always win: `make_room` stops the mining container within the grace period before a
rental's container is created and never waits on anything slower. `sync` (run only by the agent's
mining loop, which rentals wake with `request_sync`) restarts mining on whatever GPUs are left; an
image pull happens there, outside every lock, so no rental ever waits on one.

Two locks: `_engine_lock` serializes changes to the mining container (held for one engine call at
a time: a stop within the grace, or a start); `_state_lock` guards what `report` reads and is never
held across an engine call, so a heartbeat never waits on Docker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from worldland_node.docker_runtime import DockerError, MiningContainer, MiningRequest
from worldland_node.engine import Images

log = logging.getLogger(__name__)

MiningState = Literal["running", "paused", "stopped"]
# How much longer than the grace `make_room` waits for a sync's engine call in progress.
LOCK_SLACK = 5.0


class MiningEngine(Images, Protocol):
    """What mining needs from the container engine (docker_runtime.DockerRuntime; fakes in tests)."""

    def mining(self, provider_id: str) -> MiningContainer | None: ...
    def start_mining(self, request: MiningRequest) -> str: ...
    def remove(self, container_id: str, grace: int) -> None: ...


@dataclass(frozen=True)
class MiningPolicy:
    enabled: bool
    image: str
    data_dir: Path
    gpu_indices: tuple[int, ...]
    use_gpus: bool
    grace: int = 10
    pull_timeout: float = 1800


class MiningManager:
    def __init__(
        self,
        engine: MiningEngine,
        provider_id: str,
        policy: MiningPolicy,
        rented: Callable[[], set[int]],
        on_change: Callable[[], None] = lambda: None,
        wake_sync: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._provider_id = provider_id
        self._policy = policy
        self._rented = rented  # GPUs rentals hold, including a start in progress
        self._on_change = on_change  # e.g. wake the heartbeat so the platform sees it now
        self._wake_sync = wake_sync  # wakes the mining loop, which runs `sync`
        self._engine_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._state: MiningState = "stopped"
        self._container: MiningContainer | None = None
        self._last_problem = ""
        self._pause_said = False  # "paused" is logged once per pause, not at every pass
        self._stopping = threading.Event()

    def report(self) -> dict[str, Any]:
        """The heartbeat's `mining` block: the last published state, never waiting on the engine."""
        with self._state_lock:
            state, container = self._state, self._container
        return {
            "state": state,
            "container_id": container.container_id if container else None,
            "gpu_count": len(container.gpu_indices) if container and state == "running" else 0,
        }

    def request_sync(self) -> None:
        """Rentals changed (a container started or ended): the mining loop resyncs now, on its own thread."""
        self._wake_sync()

    def make_room(self, gpus: list[int]) -> None:
        """Before a rental's container is created: mining leaves `gpus` (SIGTERM, SIGKILL after the grace).

        The rental's GPUs are already counted in `rented`, so a sync running meanwhile never starts
        mining on them; waiting for it costs at most its one engine call in progress."""
        if not self._policy.enabled or not gpus:
            return
        grace = self._policy.grace
        locked = self._engine_lock.acquire(timeout=grace + LOCK_SLACK)
        if not locked:
            # Only a slow engine holds a sync this long: a rental does not queue behind it.
            log.warning("mining: a mining change is taking long; making room for the rental regardless")
        try:
            current = self._engine.mining(self._provider_id)
            if current is None or not set(current.gpu_indices) & set(gpus):
                return
            log.info("mining: stopping on GPUs %s for a rental (grace %d s)", _gpus(current.gpu_indices), grace)
            self._engine.remove(current.container_id, grace=grace)
            self._set("paused", None)
        finally:
            if locked:
                self._engine_lock.release()
        self.request_sync()  # mining comes back on the GPUs this rental leaves

    def sync(self) -> None:
        """Mining runs on exactly the GPUs no rental holds (or is paused when there are none, stopped when off)."""
        if not self._policy.enabled:
            with self._engine_lock:
                current = self._engine.mining(self._provider_id)
                if current is not None:
                    self._engine.remove(current.container_id, grace=self._policy.grace)
            self._set("stopped", None)
            return
        if self._settled():
            return
        if not self._image_ready():  # outside the lock: a pull must never hold up a rental's make_room
            self._set("stopped", None)
            return
        self._start_on_free_gpus()

    def stop(self) -> None:
        """The agent is shutting down: interrupt a pull in progress (the container keeps running)."""
        self._stopping.set()

    def _settled(self) -> bool:
        """Keeps a container on the right GPUs (True), or removes a wrong one; True too when none are free."""
        with self._engine_lock:
            current = self._engine.mining(self._provider_id)
            free = self._free()
            if current is not None and current.status in ("running", "restarting") and current.gpu_indices == free:
                self._set("running", current)  # as it should be (also: adopted after an agent restart)
                return True
            if current is not None:
                why = "it exited" if current.status not in ("running", "restarting") else "rentals changed"
                log.info("mining: replacing the container on GPUs %s (%s)", _gpus(current.gpu_indices), why)
                self._engine.remove(current.container_id, grace=self._policy.grace)
        if not free:
            if not self._pause_said:
                log.info("mining: paused, rentals hold every GPU")
                self._pause_said = True
            self._set("paused", None)
            return True
        return False

    def _start_on_free_gpus(self) -> None:
        with self._engine_lock:
            free = self._free()  # again: a rental may have taken GPUs during the pull
            if not free or self._engine.mining(self._provider_id) is not None:
                return  # a rental took the GPUs meanwhile, or another sync started it: the next sync decides
            request = MiningRequest(
                self._provider_id, self._policy.image, self._policy.data_dir, free, self._policy.use_gpus
            )
            try:
                container_id = self._engine.start_mining(request)
            except DockerError as error:
                self._problem(str(error))
                self._set("stopped", None)
                return
        self._last_problem, self._pause_said = "", False
        log.info("mining: running %s on GPUs %s", self._policy.image, _gpus(free))
        self._set("running", MiningContainer(container_id, "running", free))

    def _free(self) -> tuple[int, ...]:
        rented = self._rented()
        return tuple(i for i in self._policy.gpu_indices if i not in rented)

    def _image_ready(self) -> bool:
        image = self._policy.image
        try:
            if self._engine.image_present(image):
                return True
            log.info("mining: pulling %s", image)
            self._engine.pull(image, lambda _p, _s: None, self._policy.pull_timeout, self._stopping.is_set)
        except DockerError as error:
            self._problem(f"mining image {image} unavailable: {error}")
            return False
        return True

    def _set(self, state: MiningState, container: MiningContainer | None) -> None:
        with self._state_lock:
            changed = (state, container and container.gpu_indices) != (
                self._state,
                self._container and self._container.gpu_indices,
            )
            self._state, self._container = state, container
        if changed:
            self._on_change()

    def _problem(self, problem: str) -> None:
        # Said once per distinct problem, not at every reconcile pass.
        if problem != self._last_problem:
            log.warning("mining: %s; retrying at the next check", problem)
            self._last_problem = problem


def _gpus(indices: tuple[int, ...]) -> str:
    return ",".join(map(str, indices)) or "none"
