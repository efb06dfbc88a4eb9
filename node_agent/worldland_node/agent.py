"""The agent assembled: detect the host, sign in, register, then heartbeat / command / reconcile loops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from worldland_node.api_client import PlatformClient, PlatformError
from worldland_node.auth import WalletSigner, utc_now
from worldland_node.docker_runtime import DockerRuntime
from worldland_node.gpus import GpuInventory, detect_gpus, gpu_metrics, load_nvml
from worldland_node.host import HostResources, detect_host
from worldland_node.loops import Backoff, Loop, log_failure
from worldland_node.mining import MiningManager, MiningPolicy
from worldland_node.ports import PortAllocator
from worldland_node.redaction import RedactingFilter
from worldland_node.rentals import RentalManager, RentalPolicy
from worldland_node.settings import AgentSettings
from worldland_node.state import StateDir

log = logging.getLogger(__name__)
T = TypeVar("T")


class Agent:
    def __init__(self, settings: AgentSettings, redactor: RedactingFilter | None = None) -> None:
        self.settings = settings
        self._redactor = redactor or RedactingFilter()
        self.stopping = threading.Event()
        self.provider_id: str | None = None
        self.rentals: RentalManager | None = None
        self.mining: MiningManager | None = None
        self._loops: list[Loop] = []
        self._runtime: DockerRuntime | None = None
        self._nvml: ModuleType | None = None
        self._unreadable_metrics: set[str] = set()  # NVML metrics already logged as unreadable

    def start(self) -> None:
        """Everything up to running loops; raises only on what waiting cannot fix (a bad key, no GPUs, the
        platform refusing the host). The engine or the platform away is waited for, as the loops do."""
        settings = self.settings
        key = settings.wallet_key()
        self._redactor.add(key, key.removeprefix("0x"))  # belt and braces: never logged, and if it were, masked
        signer = WalletSigner(key, settings.siwe_domain)
        del key
        client = PlatformClient(settings.api, signer, settings.request_timeout)
        log.info("worldland-node for wallet %s, platform %s", signer.address, settings.api)

        # GPUs first: a host that cannot say what it offers should fail before touching anything else.
        self._nvml = load_nvml()
        inventory = detect_gpus(self._nvml, settings.gpu_type, settings.gpu_count, settings.gpu_memory_gb)
        self._runtime = DockerRuntime()
        engine = self._until_done("reaching the container engine", self._runtime.info)
        log.info("container engine: %s", engine.description)
        use_gpus = engine.nvidia and inventory.detected
        if not use_gpus:
            log.warning(
                "rentals get no GPU devices: %s",
                "no NVML" if not inventory.detected else "no NVIDIA container toolkit in the engine",
            )
        if not engine.storage_size_opt:
            log.info("the engine cannot cap a container's disk (needs overlay2 on xfs, pquota); storage_gb unenforced")
        host = detect_host(engine.root_dir, settings.hostname)
        state = StateDir(settings.state_dir)

        self.provider_id = self._register(client, state, host, inventory)
        provider_id = self.provider_id
        mining = MiningManager(
            self._runtime,
            provider_id,
            MiningPolicy(
                enabled=settings.enable_mining,
                image=settings.mining_image,
                data_dir=settings.mining_data_dir,
                gpu_indices=tuple(g.index for g in inventory.gpus),
                use_gpus=use_gpus,
                grace=settings.stop_grace,
                pull_timeout=settings.pull_timeout,
            ),
            rented=lambda: self.rentals.gpus_in_use() if self.rentals else set(),
            on_change=lambda: self._wake("heartbeat"),  # the platform sees a mining change now
            wake_sync=lambda: self._wake("mining"),  # rentals changed: the mining loop resyncs
        )
        self.mining = mining
        self.rentals = RentalManager(
            self._runtime,
            client,
            state,
            PortAllocator(*settings.ports),
            provider_id,
            RentalPolicy(
                pull_timeout=settings.pull_timeout,
                ssh_ready_timeout=settings.ssh_ready_timeout,
                stop_grace=settings.stop_grace,
                install_sshd=settings.install_sshd,
                use_gpus=use_gpus,
                gpu_indices=tuple(g.index for g in inventory.gpus),
                host_cpus=host.cpu_cores,
            ),
            mining=mining,
        )
        rentals = self.rentals
        self._until_done("recovering this host's rentals", rentals.recover)

        def heartbeat() -> None:
            try:
                client.heartbeat(provider_id, self._heartbeat_body(rentals.active_jobs()))
            except PlatformError as error:
                if error.status == 404:  # the platform lost the provider: register again
                    self._register(client, state, host, inventory)
                raise

        def commands() -> None:
            receipts = []
            for command in client.poll_commands(provider_id, settings.poll_wait):
                try:
                    if rentals.handle(command):
                        receipts.append(command.receipt)
                except Exception:
                    # Not acknowledged: the platform delivers it again after its ack timeout.
                    log.exception("command %s (%s, job %s) failed", command.command_id, command.type, command.job_id)
            if receipts:
                client.ack(provider_id, receipts)

        # Independent threads: one slow or failing (a stuck engine call, the platform away) never stalls the others.
        # Mining starts (or is adopted) on its loop's first pass, so no pull of its image delays the node.
        self._start_loops(
            Loop("reconcile", rentals.reconcile, settings.reconcile_interval, self.stopping),
            Loop("mining", mining.sync, settings.reconcile_interval, self.stopping),
        )
        self._until_done("the first heartbeat", heartbeat)  # Available now, not one interval from now
        self._start_loops(
            Loop("heartbeat", heartbeat, settings.heartbeat_interval, self.stopping, settings.heartbeat_interval),
            Loop("commands", commands, 0, self.stopping),
        )
        log.info(
            "node ready: provider %s, %d GPU(s), SSH ports %s", provider_id, len(inventory.gpus), settings.port_range
        )

    def stop(self, timeout: float = 1) -> None:
        """Stops the loops; rental containers keep running (a restarted agent picks them up)."""
        self.stopping.set()
        if self.mining is not None:
            self.mining.stop()
        for loop in self._loops:
            loop.wake()
        for loop in self._loops:
            loop.join(timeout)  # the command loop may sit in a long poll; it is a daemon thread
        if self.rentals is not None:
            self.rentals.shutdown(wait=True)
        if self._runtime is not None:
            self._runtime.close()
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception as error:  # shutting down anyway
                log.debug("nvmlShutdown: %s", error)
        log.info("stopped; rentals keep running")

    def _start_loops(self, *loops: Loop) -> None:
        for loop in loops:
            self._loops.append(loop)
            loop.start()

    def _wake(self, name: str) -> None:
        """Runs a loop's next pass now (a no-op before it starts: its first pass comes at once anyway)."""
        for loop in list(self._loops):
            if loop.name == name:
                loop.wake()

    def _until_done(self, what: str, step: Callable[[], T]) -> T:
        """A start-up step retried like a loop's pass (logged, backed off with jitter) until it succeeds;
        SIGTERM meanwhile ends the agent cleanly."""
        backoff = Backoff()
        while True:
            try:
                return step()
            except Exception as error:
                delay = backoff.next_delay()
                log_failure(what, error, delay)
            if self.stopping.wait(delay):
                raise SystemExit(0)

    def _register(self, client: PlatformClient, state: StateDir, host: HostResources, inventory: GpuInventory) -> str:
        body = {
            "spec": {
                "hostname": host.hostname,
                "public_ip": self.settings.host,
                "total_gpus": len(inventory.gpus),
                "gpus": inventory.registration(),
                "cpu_cores": self.settings.cpu_cores or host.cpu_cores,
                "total_memory_mb": (
                    self.settings.host_memory_gb * 1024 if self.settings.host_memory_gb else host.total_memory_mb
                ),
                "available_disk_gb": host.available_disk_gb,
            },
            "capacity": {"gpu_price_per_hour": self.settings.price_per_hour},
            "region": self.settings.region,
            "runtime": "docker",
        }
        known = state.provider_id(self.settings.api)
        if known:
            body["provider_id"] = known
        backoff = Backoff()
        while True:
            try:
                provider_id = client.register(body)
                break
            except PlatformError as error:
                if error.status == 403 and "provider_id" in body:
                    # The saved id belongs to another wallet (the key was changed): register afresh.
                    log.warning("saved provider id %s is not this wallet's; registering anew", body.pop("provider_id"))
                    continue
                if 400 <= error.status < 500 and error.status not in (408, 429):
                    raise  # the platform refuses this host's description: retrying will not help
                delay = backoff.next_delay()
                log.warning("registration failed (%s); retrying in %.1f s", error, delay)
            except Exception as error:  # the platform is unreachable: wait for it
                delay = backoff.next_delay()
                log.warning("registration failed (%s); retrying in %.1f s", error, delay)
            if self.stopping.wait(delay):
                raise SystemExit(0)
        if known and known != provider_id:
            log.warning("the platform gave provider id %s (was %s)", provider_id, known)
        state.save_provider_id(self.settings.api, provider_id)
        log.info("registered %s as provider %s", host.hostname, provider_id)
        return provider_id

    def _heartbeat_body(self, active_jobs: int) -> dict[str, Any]:
        return {
            "status": "Available",
            "active_jobs": active_jobs,
            "gpu_metrics": gpu_metrics(self._nvml, self._unreadable_metrics),
            "mining": self.mining.report() if self.mining else {"state": "stopped"},
            "timestamp": utc_now().isoformat().replace("+00:00", "Z"),
        }
