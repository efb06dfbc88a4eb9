"""The Docker engine, through the docker SDK. The only module that imports `docker`."""

from __future__ import annotations

import io
import logging
import queue
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import docker.utils

from worldland_node.engine import OnPullProgress

log = logging.getLogger(__name__)

LABEL_MANAGED = "worldland.managed"
LABEL_JOB = "worldland.job-id"
LABEL_PROVIDER = "worldland.provider-id"
LABEL_PORT = "worldland.ssh-port"
LABEL_GPUS = "worldland.gpus"
LABEL_EXPIRES = "worldland.expires-at"
LABEL_MINING = "worldland.mining"
ENTRYPOINT = "/.worldland/entrypoint.sh"
# How far back the engine's event log is searched for a container's exit, and how long that may take.
EVENTS_LOOKBACK = 24 * 3600
EVENTS_DEADLINE = 10.0


class DockerError(Exception):
    """Anything the engine refused; the message is fit for a job's failure reason."""


class PullFailed(DockerError):
    pass


@dataclass(frozen=True)
class EngineInfo:
    nvidia: bool  # device requests for GPUs will work
    storage_size_opt: bool  # `--storage-opt size=` is likely to work (overlay2 on xfs with pquota, ...)
    root_dir: Path
    cpus: int
    description: str


@dataclass(frozen=True)
class RentalContainer:
    """A managed container as found on the engine."""

    container_id: str
    job_id: str
    status: str  # created, running, exited, ...
    exit_code: int | None
    ssh_port: int | None
    gpu_indices: tuple[int, ...]
    restart_count: int = 0  # restarts by the restart policy since the container (or the engine) last started
    oom_killed: bool = False


@dataclass(frozen=True)
class ExitDetail:
    """A container's latest exit, from the engine's events (its state forgets it once Docker restarts it)."""

    exit_code: int | None
    oom_killed: bool


@dataclass(frozen=True)
class MiningContainer:
    """The provider's mining container as found on the engine."""

    container_id: str
    status: str
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True)
class MiningRequest:
    provider_id: str
    image: str
    data_dir: Path
    gpu_indices: tuple[int, ...]
    use_gpus: bool


@dataclass
class ContainerRequest:
    job_id: str
    provider_id: str
    image: str
    ssh_port: int
    cpus: float
    memory_gb: int
    storage_gb: int
    gpu_indices: list[int]
    use_gpus: bool
    expires_at: str
    # Login material, written into the container's /.worldland/ (mode 0600), never into its config.
    password_hash: str | None = field(default=None, repr=False)
    authorized_keys: str | None = field(default=None, repr=False)
    install_sshd: bool = True


class DockerRuntime:
    def __init__(self, timeout: float = 60) -> None:
        # One client for the agent's life; the timeout bounds every call, including a stalled pull stream.
        self._client = docker.from_env(timeout=int(timeout))
        self._storage_opt_ok: bool | None = None

    def close(self) -> None:
        self._client.close()

    def info(self) -> EngineInfo:
        info: dict[str, Any] = self._client.info()
        runtimes = info.get("Runtimes") or {}
        # Device requests need NVIDIA's hook (nvidia-container-toolkit); a registered runtime implies it.
        nvidia = "nvidia" in runtimes or bool(shutil.which("nvidia-container-runtime-hook"))
        driver = info.get("Driver", "")
        backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem", "")
        sized = driver in {"devicemapper", "btrfs", "zfs"} or (driver == "overlay2" and backing == "xfs")
        self._storage_opt_ok = sized if self._storage_opt_ok is None else self._storage_opt_ok
        return EngineInfo(
            nvidia=nvidia,
            storage_size_opt=sized,
            root_dir=Path(info.get("DockerRootDir") or "/var/lib/docker"),
            cpus=int(info.get("NCPU") or 1),
            description=f"Docker {info.get('ServerVersion')} ({driver} on {backing or '?'}, "
            f"cgroup v{info.get('CgroupVersion', '?')}, runtimes: {', '.join(sorted(runtimes)) or 'none'})",
        )

    # ------------------------------------------------------------------ images

    def image_present(self, image: str) -> bool:
        try:
            self._client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as error:
            raise DockerError(f"cannot inspect image {image}: {error}") from error
        return True

    def pull(
        self,
        image: str,
        on_progress: OnPullProgress,
        timeout: float,
        cancelled: Callable[[], bool],
    ) -> None:
        """Pulls through the streaming API so progress and errors are seen; raises PullFailed.

        The stream is read on a helper thread, so the deadline and a cancel hold even while the
        engine sends nothing (a stalled registry)."""
        repository, tag = docker.utils.parse_repository_tag(image)
        events: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()

        def read() -> None:
            try:
                for event in self._client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                    events.put(event)
                events.put(None)
            except BaseException as error:
                events.put(error)

        threading.Thread(target=read, name=f"pull {image}", daemon=True).start()
        layers: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PullFailed(f"pulling {image} took longer than {timeout:.0f} s")
            if cancelled():
                raise PullFailed(f"pulling {image} was cancelled")
            try:
                event = events.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if event is None:
                break
            if isinstance(event, BaseException):
                raise PullFailed(f"pulling {image} failed: {_explain(event)}") from event
            if "error" in event:
                raise PullFailed(f"pulling {image} failed: {event['error']}")
            on_progress(_percent(layers, event), str(event.get("status", "")))
        if not self.image_present(image):
            raise PullFailed(f"pulling {image} finished but the image is not there")

    # ------------------------------------------------------------------ containers

    def managed(self, provider_id: str | None = None) -> list[RentalContainer]:
        labels = [f"{LABEL_MANAGED}=true"] + ([f"{LABEL_PROVIDER}={provider_id}"] if provider_id else [])
        return [_rental(c) for c in self._client.containers.list(all=True, filters={"label": labels})]

    def find(self, job_id: str) -> RentalContainer | None:
        found = self._client.containers.list(all=True, filters={"label": [f"{LABEL_JOB}={job_id}"]})
        return _rental(found[0]) if found else None

    def create_and_start(self, request: ContainerRequest) -> str:
        """Creates the rental's container, copies the SSH entrypoint in, starts it; returns its id."""
        container = self._create(request, with_storage_opt=bool(self._storage_opt_ok))
        try:
            if not container.put_archive("/", _bootstrap_archive(request)):
                raise DockerError("could not copy the SSH entrypoint into the container")
            container.start()
        except docker.errors.DockerException as error:
            self.remove(container.id, grace=0)
            raise DockerError(f"the container did not start: {_explain(error)}") from error
        except BaseException:
            self.remove(container.id, grace=0)  # no half-made container keeps the job's name and port
            raise
        return str(container.id)

    def _create(self, request: ContainerRequest, with_storage_opt: bool) -> Any:
        options: dict[str, Any] = {
            "name": f"worldland-{request.job_id}",  # unique: a second create for the same job is refused
            "entrypoint": ["/bin/sh", ENTRYPOINT],
            "command": [],
            "labels": {
                LABEL_MANAGED: "true",
                LABEL_JOB: request.job_id,
                LABEL_PROVIDER: request.provider_id,
                LABEL_PORT: str(request.ssh_port),
                LABEL_GPUS: ",".join(map(str, request.gpu_indices)),
                LABEL_EXPIRES: request.expires_at,
            },
            "hostname": f"rental-{request.job_id[:12]}",
            "ports": {"22/tcp": ("0.0.0.0", request.ssh_port)},  # noqa: S104  # customers connect from anywhere
            "nano_cpus": int(request.cpus * 1e9),
            "mem_limit": f"{request.memory_gb}g",
            "memswap_limit": f"{request.memory_gb}g",  # no swap beyond the limit: the limit is what was rented
            # ML data loaders use /dev/shm heavily; Docker's 64 MB default breaks PyTorch workers.
            "shm_size": f"{max(1, request.memory_gb // 4)}g",
            "init": True,  # reaps the zombies SSH sessions leave behind
            # A host or engine restart brings the rental back (the customer has paid for the time).
            "restart_policy": {"Name": "unless-stopped"},
            "detach": True,
        }
        if request.use_gpus and request.gpu_indices:
            options["device_requests"] = [
                docker.types.DeviceRequest(device_ids=[str(i) for i in request.gpu_indices], capabilities=[["gpu"]])
            ]
        if with_storage_opt:
            options["storage_opt"] = {"size": f"{request.storage_gb}G"}
        try:
            return self._client.containers.create(request.image, **options)
        except docker.errors.APIError as error:
            if with_storage_opt and "storage" in str(error).lower():
                # Needs overlay2 on xfs mounted with pquota (or devicemapper/btrfs/zfs); not worth failing a rental.
                log.warning("the engine refused a disk size limit (%s); rentals run without one", _explain(error))
                self._storage_opt_ok = False
                return self._create(request, with_storage_opt=False)
            raise DockerError(f"the container could not be created: {_explain(error)}") from error
        except docker.errors.DockerException as error:
            raise DockerError(f"the container could not be created: {_explain(error)}") from error

    def mining(self, provider_id: str) -> MiningContainer | None:
        """The mining container (labelled, not a rental: `managed()` never lists it), or None."""
        labels = [f"{LABEL_MINING}=true", f"{LABEL_PROVIDER}={provider_id}"]
        found = self._client.containers.list(all=True, filters={"label": labels})
        if not found:
            return None
        container = found[0]
        gpus = container.labels.get(LABEL_GPUS, "")
        return MiningContainer(
            str(container.id), str(container.status), tuple(int(i) for i in gpus.split(",") if i.isdigit())
        )

    def start_mining(self, request: MiningRequest) -> str:
        """Runs the mining image on the given GPUs, its data directory mounted at /data."""
        gpus = ",".join(map(str, request.gpu_indices))
        request.data_dir.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "name": f"worldland-mining-{request.provider_id}",
            "labels": {LABEL_MINING: "true", LABEL_PROVIDER: request.provider_id, LABEL_GPUS: gpus},
            "environment": {"WORLDLAND_MINING_GPUS": gpus, "WORLDLAND_MINING_GPU_COUNT": str(len(request.gpu_indices))},
            "volumes": {str(request.data_dir): {"bind": "/data", "mode": "rw"}},
            # Mining survives an engine or host restart; the agent re-checks its GPUs when it comes back.
            "restart_policy": {"Name": "unless-stopped"},
            "detach": True,
        }
        if request.use_gpus:
            options["device_requests"] = [
                docker.types.DeviceRequest(device_ids=[str(i) for i in request.gpu_indices], capabilities=[["gpu"]])
            ]
        try:
            return str(self._client.containers.run(request.image, **options).id)
        except docker.errors.DockerException as error:
            raise DockerError(f"the mining container did not start: {_explain(error)}") from error

    def remove(self, container_id: str, grace: int) -> None:
        """Stops (SIGTERM, then SIGKILL after `grace` s) and removes; a container already gone is fine."""
        try:
            container = self._client.containers.get(container_id)
        except docker.errors.NotFound:
            return
        try:
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=grace)
            container.remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            if error.status_code == 409 and "already in progress" in str(error.explanation):
                return  # another thread is removing it (make_room and a mining sync): it is going
            raise DockerError(f"could not remove container {container_id[:12]}: {_explain(error)}") from error
        except docker.errors.DockerException as error:
            raise DockerError(f"could not remove container {container_id[:12]}: {_explain(error)}") from error

    def inspect(self, container_id: str) -> RentalContainer | None:
        """The container as it is now, or None when it is gone."""
        try:
            return _rental(self._client.containers.get(container_id))
        except docker.errors.NotFound:
            return None

    def last_exit(self, container_id: str) -> ExitDetail | None:
        """The container's latest exit code and whether the kernel's OOM killer struck, from the engine's
        event log (kept in memory by the engine: None when it has rolled over or cannot be read)."""
        now = time.time()
        try:
            stream = self._client.events(
                since=int(now) - EVENTS_LOOKBACK,
                until=f"{now:.6f}",  # a time past: the engine sends what it holds and closes (a future one waits)
                filters={"container": container_id, "event": ["oom", "die"]},
                decode=True,
            )
        except docker.errors.DockerException as error:
            log.debug("events of %s unavailable: %s", container_id[:12], error)
            return None
        # The events call has no timeout of its own: closing the stream ends a read that hangs.
        deadline = threading.Timer(EVENTS_DEADLINE, stream.close)
        deadline.start()
        try:
            return _last_exit(list(stream))
        except Exception as error:  # a closed or broken stream: the reason just says less
            log.debug("events of %s unreadable: %s", container_id[:12], error)
            return None
        finally:
            deadline.cancel()
            stream.close()

    def log_tail(self, container_id: str, lines: int = 15) -> str:
        try:
            raw: bytes = self._client.containers.get(container_id).logs(tail=lines)
        except docker.errors.DockerException:
            return ""
        return raw.decode(errors="replace").strip()


# ---------------------------------------------------------------------- helpers


def _rental(container: Any) -> RentalContainer:
    labels = container.labels
    port = labels.get(LABEL_PORT)
    gpus = labels.get(LABEL_GPUS, "")
    state = container.attrs.get("State") or {}
    return RentalContainer(
        container_id=str(container.id),
        job_id=labels.get(LABEL_JOB, ""),
        status=str(container.status),
        exit_code=state.get("ExitCode"),
        ssh_port=int(port) if port and port.isdigit() else None,
        gpu_indices=tuple(int(i) for i in gpus.split(",") if i.isdigit()),
        restart_count=int(container.attrs.get("RestartCount") or 0),
        oom_killed=bool(state.get("OOMKilled")),
    )


def _last_exit(events: list[dict[str, Any]]) -> ExitDetail | None:
    """The last `die` event's exit code, OOM-killed when an `oom` event came since the `die` before it."""
    last: ExitDetail | None = None
    oom = False
    for event in events:
        action = event.get("Action") or event.get("status")
        if action == "oom":
            oom = True
        elif action == "die":
            code = (event.get("Actor") or {}).get("Attributes", {}).get("exitCode")
            last = ExitDetail(int(code) if str(code).lstrip("-").isdigit() else None, oom)
            oom = False
    return last


def _percent(layers: dict[str, tuple[int, int]], event: dict[str, Any]) -> float | None:
    """Bytes downloaded over bytes known, across the layers seen so far."""
    layer, status = event.get("id"), str(event.get("status", ""))
    detail = event.get("progressDetail") or {}
    if layer and status == "Downloading" and detail.get("total"):
        layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
    elif layer and status in ("Download complete", "Pull complete", "Already exists", "Verifying Checksum"):
        _, total = layers.get(layer, (1, 1))
        layers[layer] = (total, total)
    total = sum(t for _, t in layers.values())
    return round(100 * sum(c for c, _ in layers.values()) / total, 1) if total else None


def _bootstrap_archive(request: ContainerRequest) -> bytes:
    script = resources.files("worldland_node").joinpath("rental_entrypoint.sh").read_bytes()
    files: list[tuple[str, bytes, int]] = [
        ("entrypoint.sh", script, 0o755),
        ("password_auth", b"yes\n" if request.password_hash else b"no\n", 0o644),
        ("install_sshd", b"1\n" if request.install_sshd else b"0\n", 0o644),
    ]
    if request.password_hash:
        files.append(("root_password_hash", request.password_hash.encode(), 0o600))
    if request.authorized_keys:
        files.append(("authorized_keys", request.authorized_keys.strip().encode() + b"\n", 0o600))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directory = tarfile.TarInfo(".worldland")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o700
        archive.addfile(directory)
        for name, data, mode in files:
            member = tarfile.TarInfo(f".worldland/{name}")
            member.size, member.mode = len(data), mode
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _explain(error: BaseException) -> str:
    if isinstance(error, docker.errors.APIError) and error.explanation:
        return str(error.explanation)
    return str(error) or type(error).__name__
