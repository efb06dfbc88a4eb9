"""Rentals: start_rental / stop_rental commands turned into containers, and the reports that follow.

Rules the code keeps:
- a command is acknowledged once it is journaled (state.py), then carried out on a worker thread;
- one job, one container: the journal, the container's name and its `worldland.job-id` label all
  dedupe a start delivered twice; work on one job is serialized by a per-job lock;
- a stop interrupts a start in progress (a long pull), then removes whatever was made;
- the agent stopping (SIGTERM) leaves rentals running; a restart picks the journal up again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import requests

from worldland_node.api_client import IllegalTransition, NotFound, PlatformError
from worldland_node.auth import utc_now
from worldland_node.docker_runtime import ContainerRequest, DockerError, ExitDetail, RentalContainer
from worldland_node.engine import Images
from worldland_node.models import FINAL_STATES, Command, RentalRecord, RentalSpec
from worldland_node.ports import NoFreePort, PortAllocator
from worldland_node.ssh_probe import ssh_answers
from worldland_node.state import StateDir

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between pull progress reports
TOMBSTONE = timedelta(hours=1)  # how long an ended rental's journal entry outlives it


class Runtime(Images, Protocol):
    """What rentals need from the container engine (docker_runtime.DockerRuntime; fakes in tests)."""

    def managed(self, provider_id: str | None = None) -> list[RentalContainer]: ...
    def find(self, job_id: str) -> RentalContainer | None: ...
    def create_and_start(self, request: ContainerRequest) -> str: ...
    def remove(self, container_id: str, grace: int) -> None: ...
    def inspect(self, container_id: str) -> RentalContainer | None: ...
    def last_exit(self, container_id: str) -> ExitDetail | None: ...
    def log_tail(self, container_id: str, lines: int = 15) -> str: ...


class MiningHooks(Protocol):
    """Mining gives GPUs up before a rental takes them and comes back after (mining.MiningManager).

    A rental only ever waits for `make_room` (bounded by the grace period); mining's own restart
    (and any image pull) happens on the mining loop, which `request_sync` wakes."""

    def make_room(self, gpus: list[int]) -> None: ...
    def request_sync(self) -> None: ...


class Reports(Protocol):
    def report(self, provider_id: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]: ...


class Delivered(Enum):
    CONFIRMED = "confirmed"
    MOVED_ON = "moved_on"  # 409: the platform is past this state
    UNSENT = "unsent"  # network or server trouble; reconcile sends it again


@dataclass(frozen=True)
class RentalPolicy:
    pull_timeout: float = 1800
    ssh_ready_timeout: float = 300
    stop_grace: int = 10
    install_sshd: bool = True
    use_gpus: bool = False  # the NVIDIA container toolkit is there and NVML saw the GPUs
    gpu_indices: tuple[int, ...] = ()
    host_cpus: int = 1
    ssh_probe: Callable[[int], bool] = ssh_answers


class StartFailed(Exception):
    """The rental cannot run; the message is the job's failure reason."""


class StartInterrupted(Exception):
    """A stop arrived, or the agent is shutting down: leave the rest to the stop, or to the next run."""


class RentalManager:
    def __init__(
        self,
        runtime: Runtime,
        platform: Reports,
        state: StateDir,
        ports: PortAllocator,
        provider_id: str,
        policy: RentalPolicy,
        clock: Callable[[], datetime] = utc_now,
        workers: int = 16,
        mining: MiningHooks | None = None,
    ) -> None:
        self._runtime = runtime
        self._platform = platform
        self._state = state
        self._ports = ports
        self._provider_id = provider_id
        self._policy = policy
        self._clock = clock
        self._mining = mining
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rental")
        # Taking a command on must never wait for a job's work (a pull can take many minutes): the
        # accept lock covers only journal reads and writes; the per-job locks serialize the work itself.
        self._accept_lock = threading.Lock()
        self._guard = threading.Lock()  # protects the dicts below
        self._job_locks: dict[str, threading.Lock] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._work: dict[str, Future[None]] = {}
        self._gpus_taken: dict[str, list[int]] = {}
        self._shutting_down = threading.Event()

    # ------------------------------------------------------------------ commands

    def handle(self, command: Command) -> bool:
        """Takes a command on; True when it may be acknowledged (it is journaled, or done)."""
        if command.type == "start_rental":
            return self._accept_start(command)
        return self._accept_stop(command)

    def _accept_start(self, command: Command) -> bool:
        job_id = command.job_id
        if command.rental is None:
            log.error("start_rental for job %s carries no rental; acknowledging it as unusable", job_id)
            self._send(RentalRecord(job_id=job_id, state="failed"), {"state": "failed", "reason": "no rental spec"})
            return True
        # Looked up before the lock: the accept lock covers journal reads and writes, never engine calls.
        existing = self._runtime.find(job_id) if self._state.load(job_id) is None else None
        with self._accept_lock:
            record = self._state.load(job_id)
            if record is not None:
                # A second delivery (an ack that was lost or late): the first one's work stands.
                log.info(
                    "job %s: start delivered again (delivery %d); already %s", job_id, command.delivery, record.state
                )
            else:
                record = RentalRecord(job_id=job_id, rental=command.rental)
                if existing is not None:
                    # The journal was lost but the container is there: adopt it rather than start another.
                    log.info("job %s: adopting existing container %s", job_id, existing.container_id[:12])
                    record.state, record.container_id = "starting", existing.container_id
                    record.ssh_port, record.gpu_indices = existing.ssh_port, list(existing.gpu_indices)
                    record.restart_count = existing.restart_count
                self._state.save(record)
                log.info("job %s: start accepted (%s)", job_id, _describe(command.rental))
        if record.state in ("accepted", "starting") and not record.stop_requested:
            self._schedule(job_id, self._start)  # no-op while the first delivery's start is in progress
        return True

    def _accept_stop(self, command: Command) -> bool:
        job_id = command.job_id
        # Engine and platform calls stay outside the accept lock: workers' journal writes wait on it.
        unknown = self._state.load(job_id) is None and self._runtime.find(job_id) is None
        with self._accept_lock:
            record = self._state.load(job_id)
            if record is not None or not unknown:
                record = record or RentalRecord(job_id=job_id, state="starting")
                record.stop_requested = True
                record.stop_reason = record.stop_reason or "stop_rental"
                self._state.save(record)
        if record is None:
            # Never started here (or long forgotten): nothing to remove; the platform accepts "ended".
            log.info("job %s: stop for a rental this host does not run; reporting it ended", job_id)
            outcome = self._send(RentalRecord(job_id=job_id), {"state": "ended"})
            return outcome is not Delivered.UNSENT  # unsent: let the command come back and try again
        self._cancel_event(job_id).set()  # a start in progress gives up at its next step
        log.info("job %s: stop accepted", job_id)
        self._schedule(job_id, self._stop, after_current=True)  # runs once the start (if any) gives up
        return True

    # ------------------------------------------------------------------ periodic

    def recover(self) -> None:
        """At start-up: ports and GPUs held by existing containers are taken; then reconcile."""
        for container in self._runtime.managed(self._provider_id):
            if container.ssh_port:
                self._ports.reserve(container.ssh_port)
            with self._guard:
                self._gpus_taken[container.job_id] = list(container.gpu_indices)
        self.reconcile()
        self._mining_changed()

    def reconcile(self) -> None:
        """Journal against engine: resume, expire, re-report, notice dead containers, forget old entries."""
        now = self._clock()
        containers = {c.job_id: c for c in self._runtime.managed(self._provider_id)}
        journal = self._state.all()
        for record in journal:
            if self._busy(record.job_id):
                continue
            if record.state in FINAL_STATES:
                self._settle(record, now)
            elif record.stop_requested:
                self._schedule(record.job_id, self._stop)
            elif record.rental is not None and record.rental.expires_at <= now:
                log.info("job %s: expired at %s; stopping it", record.job_id, record.rental.expires_at.isoformat())
                self._request_stop(record.job_id, "expired")
            elif record.state in ("accepted", "starting"):
                self._schedule(record.job_id, self._start)  # resumed after a restart, or retried
            else:
                self._check_running(record, containers.get(record.job_id))
        known = {r.job_id for r in journal}
        for job_id, container in containers.items():
            if job_id and job_id not in known:
                self._adopt(container)

    def gpus_in_use(self) -> set[int]:
        """GPUs rentals hold, a start in progress included (mining keeps off them)."""
        with self._guard:
            return {i for taken in self._gpus_taken.values() for i in taken}

    def active_jobs(self) -> int:
        return sum(1 for r in self._state.all() if r.state in ("starting", "running"))

    def shutdown(self, wait: bool = True) -> None:
        """Interrupts starts in progress (they resume on the next run); running rentals keep running."""
        self._shutting_down.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def wait_idle(self, timeout: float) -> bool:
        """For tests: until no rental work is in progress."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(self._busy(j) for j in list(self._work)):
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ start

    def _start(self, job_id: str) -> None:
        with self._job_lock(job_id):
            record = self._state.load(job_id)
            if record is None or record.state not in ("accepted", "starting") or record.stop_requested:
                return
            if record.rental is None:
                return
            try:
                self._bring_up(record, record.rental)
            except StartInterrupted as why:
                log.info("job %s: start interrupted (%s)", job_id, why)
            except StartFailed as error:
                log.warning("job %s: failed: %s", job_id, error)
                self._tear_down(record)
                record.state, record.reason = "failed", str(error)[:1000]
                self._save(record)
                self._send(record, {"state": "failed", "reason": record.reason})

    def _bring_up(self, record: RentalRecord, rental: RentalSpec) -> None:
        job_id = record.job_id
        existing = self._runtime.find(job_id)
        if existing is not None and _running_as_started(existing, record.restart_count):
            record.container_id, record.ssh_port = existing.container_id, existing.ssh_port
            record.gpu_indices = list(existing.gpu_indices)
        else:
            if existing is not None:  # half-made (created, or exited before sshd answered): start over
                self._runtime.remove(existing.container_id, grace=0)
            self._provide_image(record, rental)
            self._create(record, rental)
        record.state = "starting"
        self._save(record)
        if record.ssh_port is None or record.container_id is None:
            raise StartFailed("the rental's container carries no SSH port label")
        self._progress(job_id, "starting", None, "waiting for sshd")
        self._wait_for_ssh(job_id, record.container_id, record.ssh_port, record.restart_count)
        record.state = "running"
        self._save(record)
        log.info("job %s: running; SSH on port %d", job_id, record.ssh_port)
        if self._send(record, {"state": "running", "ssh_port": record.ssh_port}) is Delivered.MOVED_ON:
            # The job ended on the platform meanwhile (deleted, expired, failed): nobody will use this one.
            log.info("job %s: the platform has ended the job; removing its container", job_id)
            self._request_stop(job_id, "ended on the platform")

    def _provide_image(self, record: RentalRecord, rental: RentalSpec) -> None:
        job_id, image = record.job_id, rental.image
        try:
            if self._runtime.image_present(image):
                log.info("job %s: image %s is present", job_id, image)
                return
            log.info("job %s: pulling %s", job_id, image)
            self._progress(job_id, "pulling", 0, f"pulling {image}")
            last = [0.0]

            def progress(percent: float | None, status: str) -> None:
                if time.monotonic() - last[0] >= PROGRESS_EVERY:
                    last[0] = time.monotonic()
                    self._progress(job_id, "pulling", percent, status or f"pulling {image}")

            self._runtime.pull(image, progress, self._policy.pull_timeout, lambda: self._interrupted(job_id))
        except DockerError as error:
            self._raise_if_interrupted(job_id)
            raise StartFailed(str(error)) from error
        self._progress(job_id, "pulling", 100, f"pulled {image}")

    def _create(self, record: RentalRecord, rental: RentalSpec) -> None:
        job_id = record.job_id
        self._raise_if_interrupted(job_id)
        self._progress(job_id, "creating", None, "creating the container")
        gpus = self._take_gpus(job_id, rental.gpu_count)
        self._make_room(gpus)
        cpus = min(float(rental.cpu_cores), float(self._policy.host_cpus))
        if cpus < rental.cpu_cores:
            log.warning(
                "job %s: %d CPU cores asked, the host has %d; limiting to those", job_id, rental.cpu_cores, cpus
            )
        for attempt in range(3):
            try:
                port = self._ports.allocate()
            except NoFreePort as error:
                raise StartFailed(str(error)) from error
            request = ContainerRequest(
                job_id=job_id,
                provider_id=self._provider_id,
                image=rental.image,
                ssh_port=port,
                cpus=cpus,
                memory_gb=rental.memory_gb,
                storage_gb=rental.storage_gb,
                gpu_indices=gpus,
                use_gpus=self._policy.use_gpus,
                expires_at=rental.expires_at.isoformat(),
                password_hash=rental.ssh_password_hash.get_secret_value() if rental.ssh_password_hash else None,
                authorized_keys=rental.ssh_public_key.get_secret_value() if rental.ssh_public_key else None,
                install_sshd=self._policy.install_sshd,
            )
            try:
                record.container_id = self._runtime.create_and_start(request)
            except DockerError as error:
                self._ports.release(port)
                if "port is already allocated" in str(error) and attempt < 2:
                    continue  # something took the port between the check and the publish
                raise StartFailed(str(error)) from error
            record.ssh_port, record.gpu_indices, record.restart_count = port, gpus, 0
            # The container has the login material now; the journal need not keep it.
            record.rental = rental.model_copy(update={"ssh_password_hash": None, "ssh_public_key": None})
            self._save(record)
            log.info("job %s: container %s started, SSH port %d", job_id, record.container_id[:12], port)
            self._mining_changed()  # mining resumes on the GPUs left free, on its own loop: no wait here
            return

    def _wait_for_ssh(self, job_id: str, container_id: str, port: int, restart_count: int) -> None:
        deadline = time.monotonic() + self._policy.ssh_ready_timeout
        while not self._policy.ssh_probe(port):
            self._raise_if_interrupted(job_id)
            # A main process that exits (say, sshd cannot be installed) is restarted by Docker's policy:
            # a crash loop, not a slow start, so it fails now rather than at the deadline.
            died = self._why_died(self._runtime.inspect(container_id), restart_count)
            if died is not None:
                tail = self._runtime.log_tail(container_id)
                raise StartFailed(f"the container stopped before sshd answered ({died}): {tail}")
            if time.monotonic() > deadline:
                tail = self._runtime.log_tail(container_id)
                raise StartFailed(f"sshd did not answer within {self._policy.ssh_ready_timeout:.0f} s: {tail}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ stop

    def _request_stop(self, job_id: str, reason: str) -> None:
        with self._accept_lock:
            record = self._state.load(job_id)
            if record is not None and not record.stop_requested:
                record.stop_requested, record.stop_reason = True, reason
                self._state.save(record)
        self._cancel_event(job_id).set()
        self._schedule(job_id, self._stop, after_current=True)

    def _stop(self, job_id: str) -> None:
        with self._job_lock(job_id):
            record = self._state.load(job_id) or RentalRecord(job_id=job_id, state="starting")
            if record.state in FINAL_STATES and record.reported == record.state:
                return
            try:
                self._tear_down(record)
            except DockerError as error:
                log.error("job %s: could not remove its container (%s); will retry", job_id, error)
                return
            if record.state != "failed":
                record.state = "ended"
            self._save(record)
            log.info("job %s: stopped (%s)", job_id, record.stop_reason or "stop")
            body: dict[str, Any] = {"state": record.state}
            if record.state == "failed" and record.reason:
                body["reason"] = record.reason
            self._send(record, body)

    def _tear_down(self, record: RentalRecord) -> None:
        """Removes the job's container (found by label, so a half-made one goes too), frees port and GPUs."""
        container = self._runtime.find(record.job_id)
        if container is not None:
            self._runtime.remove(container.container_id, grace=self._policy.stop_grace)
            self._ports.release(container.ssh_port)
        self._ports.release(record.ssh_port)
        with self._guard:
            self._gpus_taken.pop(record.job_id, None)
        self._mining_changed()  # mining takes the freed GPUs back, on its own loop: the report goes now

    def _make_room(self, gpus: list[int]) -> None:
        """Mining leaves the rental's GPUs (within the grace period); its trouble never fails a rental."""
        if self._mining is None:
            return
        try:
            self._mining.make_room(gpus)
        except Exception:
            log.exception("mining: could not leave GPUs %s; the rental goes on", gpus)

    def _mining_changed(self) -> None:
        if self._mining is not None:
            self._mining.request_sync()

    def _adopt(self, container: RentalContainer) -> None:
        """A container labelled as this provider's rental that the journal does not know (the journal was
        lost, or the agent died between create and journal): journal it as running and let the platform
        say whether it should run. A report it refuses (the job ended, or is unknown) stops it."""
        job_id = container.job_id
        with self._accept_lock:
            if self._state.load(job_id) is not None:
                return
            record = RentalRecord(
                job_id=job_id,
                state="running",
                container_id=container.container_id,
                ssh_port=container.ssh_port,
                gpu_indices=list(container.gpu_indices),
                restart_count=container.restart_count,  # restarts before the adoption are not held against it
            )
            self._state.save(record)
        if container.ssh_port:
            self._ports.reserve(container.ssh_port)
        with self._guard:
            self._gpus_taken[job_id] = list(container.gpu_indices)
        self._mining_changed()
        log.info("job %s: adopted container %s found by its labels", job_id, container.container_id[:12])
        self._check_running(record, container)

    def _check_running(self, record: RentalRecord, container: RentalContainer | None) -> None:
        detail = self._why_died(container, record.restart_count)
        if detail is None:
            assert container is not None  # a missing container has a reason
            if container.restart_count < record.restart_count:
                # The engine restarted (its restart counts start again from 0): a lower count is the new normal.
                record.restart_count = container.restart_count
                self._save(record)
            if record.reported != "running" and record.ssh_port is not None:
                sent = self._send(record, {"state": "running", "ssh_port": record.ssh_port})
                if sent is Delivered.MOVED_ON:
                    log.info("job %s: the platform says it should not run; stopping it", record.job_id)
                    self._request_stop(record.job_id, "ended on the platform")
            return
        with self._job_lock(record.job_id):
            log.warning("job %s: its container stopped (%s); reporting the rental failed", record.job_id, detail)
            self._tear_down(record)
            record.state, record.reason = "failed", f"the rental's container stopped ({detail})"
            self._save(record)
            self._send(record, {"state": "failed", "reason": record.reason})

    def _why_died(self, container: RentalContainer | None, restart_count: int) -> str | None:
        """Why the container is no longer the one the rental started, or None while it still is.

        Rentals run with Docker's `unless-stopped` policy so a host or engine restart brings them back
        (the engine then counts restarts from 0 again); a restart by the policy itself means the main
        process exited on its own, which the customer's session does not survive: the rental failed."""
        if container is None:
            return "removed outside the agent"
        if _running_as_started(container, restart_count):
            return None
        if container.status not in ("running", "restarting"):
            return _exit_text(container.exit_code, container.oom_killed)
        # Restarted, its state no longer holds the exit; the engine's events still do.
        last = self._runtime.last_exit(container.container_id)
        exit_text = _exit_text(last.exit_code, last.oom_killed) if last else "exit code unknown"
        restarts = container.restart_count - restart_count
        again = f"Docker restarted it {restarts} time(s)" if restarts > 0 else "Docker is restarting it"
        return f"its main process exited by itself, {exit_text}; {again}"

    def _settle(self, record: RentalRecord, now: datetime) -> None:
        if record.reported != record.state:
            body: dict[str, Any] = {"state": record.state}
            if record.state == "failed" and record.reason:
                body["reason"] = record.reason
            self._send(record, body)
        elif record.finished_at is not None and now - record.finished_at > TOMBSTONE:
            self._state.delete(record.job_id)
            self._forget(record.job_id)

    # ------------------------------------------------------------------ reports

    def _send(self, record: RentalRecord, body: dict[str, Any]) -> Delivered:
        """Reports to the platform; a confirmed final report is journaled (reconcile re-sends the others)."""
        try:
            self._platform.report(self._provider_id, record.job_id, body)
            outcome = Delivered.CONFIRMED
        except (IllegalTransition, NotFound) as error:
            # 409: the job is past this state; 404: the platform does not know the job at all.
            log.info("job %s: report %s refused, the platform has moved on (%s)", record.job_id, body["state"], error)
            outcome = Delivered.MOVED_ON
        except (PlatformError, requests.RequestException) as error:
            log.warning("job %s: report %s not delivered (%s); will retry", record.job_id, body["state"], error)
            return Delivered.UNSENT
        if body["state"] in ("running", *FINAL_STATES) and self._state.load(record.job_id) is not None:
            record.reported = body["state"]
            if body["state"] in FINAL_STATES:
                record.finished_at = self._clock()
            self._save(record)
        return outcome

    def _progress(self, job_id: str, phase: str, percent: float | None, message: str) -> None:
        body = {"state": "starting", "progress": {"phase": phase, "percent": percent, "message": message[:500]}}
        try:
            self._platform.report(self._provider_id, job_id, body)
        except (PlatformError, requests.RequestException) as error:
            # Progress is informative; the final report is what must arrive.
            log.debug("job %s: progress report dropped (%s)", job_id, error)

    # ------------------------------------------------------------------ bookkeeping

    def _save(self, record: RentalRecord) -> None:
        """A worker's save: a stop accepted meanwhile (journaled by the command thread) is kept, not overwritten."""
        with self._accept_lock:
            on_disk = self._state.load(record.job_id)
            if on_disk is not None and on_disk.stop_requested:
                record.stop_requested = True
                record.stop_reason = record.stop_reason or on_disk.stop_reason
            self._state.save(record)

    def _take_gpus(self, job_id: str, count: int) -> list[int]:
        with self._guard:
            held = {i for j, taken in self._gpus_taken.items() if j != job_id for i in taken}
            free = [i for i in self._policy.gpu_indices if i not in held]
            if len(free) < count and self._policy.use_gpus:
                raise StartFailed(f"{count} GPU(s) asked, {len(free)} free on this host")
            chosen = free[:count]
            self._gpus_taken[job_id] = chosen
        if not self._policy.use_gpus:
            log.warning("job %s: no NVIDIA container runtime here; the container gets no GPU devices", job_id)
        return chosen

    def _schedule(self, job_id: str, work: Callable[[str], None], after_current: bool = False) -> None:
        with self._guard:
            if self._shutting_down.is_set():
                return
            current = self._work.get(job_id)
            if current is not None and not current.done() and not after_current:
                return  # the job's work in progress covers this
            try:
                self._work[job_id] = self._pool.submit(self._run, job_id, work)
            except RuntimeError:  # the pool is shut down
                return

    def _run(self, job_id: str, work: Callable[[str], None]) -> None:
        try:
            work(job_id)
        except Exception:
            # Reconcile tries again; one job's trouble must not take the worker down.
            log.exception("job %s: unexpected error in %s", job_id, getattr(work, "__name__", work))

    def _busy(self, job_id: str) -> bool:
        with self._guard:
            current = self._work.get(job_id)
            return current is not None and not current.done()

    def _interrupted(self, job_id: str) -> bool:
        return self._shutting_down.is_set() or self._cancel_event(job_id).is_set()

    def _raise_if_interrupted(self, job_id: str) -> None:
        if self._shutting_down.is_set():
            raise StartInterrupted("the agent is shutting down")
        if self._cancel_event(job_id).is_set():
            raise StartInterrupted("a stop was requested")

    def _cancel_event(self, job_id: str) -> threading.Event:
        with self._guard:
            return self._cancel.setdefault(job_id, threading.Event())

    @contextmanager
    def _job_lock(self, job_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._job_locks.setdefault(job_id, threading.Lock())
        with lock:
            yield

    def _forget(self, job_id: str) -> None:
        with self._guard:
            for table in (self._job_locks, self._cancel, self._work, self._gpus_taken):
                table.pop(job_id, None)


def _running_as_started(container: RentalContainer, restart_count: int) -> bool:
    """Running, and not restarted by Docker's policy since the agent started or adopted it."""
    return container.status == "running" and container.restart_count <= restart_count


def _exit_text(exit_code: int | None, oom_killed: bool) -> str:
    code = f"exit code {exit_code}" if exit_code is not None else "exit code unknown"
    return f"killed for lack of memory (OOM), {code}" if oom_killed else code


def _describe(rental: RentalSpec) -> str:
    # What is safe to log: no password hash, no key.
    login = "+".join(n for n, v in (("password", rental.ssh_password_hash), ("key", rental.ssh_public_key)) if v)
    return (
        f"{rental.image}, {rental.gpu_count} x {rental.gpu_model}, {rental.cpu_cores} CPU, {rental.memory_gb} GB, "
        f"{rental.storage_gb} GB disk, until {rental.expires_at.isoformat()}, login by {login or 'nothing?'}"
    )
