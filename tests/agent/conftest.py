"""The provider agent's tests: unit tests need nothing; the rest need a Docker engine and the local stack.

Where CI=true a missing Docker engine fails the run (the agent's container path must be tested
there); elsewhere those tests are skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account

from tests.local_stack.local_agent import docker_problem
from tests.local_stack.process import RunningStack, running_stack
from tests.support import ROOT

BASE_IMAGE = "localhost/worldland-base:latest"
NOSSH_IMAGE = "localhost/worldland-nossh:latest"
MINER_IMAGE = "localhost/worldland-miner-standin:latest"
STUBBORN_MINER_IMAGE = "localhost/worldland-miner-stubborn:latest"
GPU_FLAGS = ["--gpu-type", "NVIDIA GeForce RTX 4090", "--gpu-count", "4", "--gpu-memory-gb", "24"]
# Short enough that an unacknowledged command comes back within a test; sweeps every second.
AGENT_STACK_OVERRIDES = "CommandAckTimeoutSeconds=5 CommandMaxDeliveries=3 ExpirySweepSeconds=1"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {problem}: the agent's Docker tests must run in CI (make docker-engine)")
    pytest.skip(f"{problem}; run `make docker-engine`")


@pytest.fixture(scope="session")
def rental_images(docker_engine: None) -> None:
    """localhost/worldland-base and -nossh, built once from a cached debootstrap (seconds when cached)."""
    script = ROOT / "node_agent" / "images" / "build_base_image.sh"
    result = subprocess.run(["bash", str(script), "all"], capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"building the rental images failed:\n{result.stderr[-3000:]}"


def _build_miner(tag: str, on_sigterm: str) -> str:
    import docker

    client = docker.from_env()
    try:
        client.images.build(
            path=str(Path(__file__).parent / "miner_standin"), tag=tag, rm=True, buildargs={"ON_SIGTERM": on_sigterm}
        )
    finally:
        client.close()
    return tag


@pytest.fixture(scope="session")
def miner_image(rental_images: None) -> str:
    """A stand-in mining image (tests/agent/miner_standin), built on worldland-base."""
    return _build_miner(MINER_IMAGE, "exit")


@pytest.fixture(scope="session")
def stubborn_miner_image(rental_images: None) -> str:
    """The stand-in miner ignoring SIGTERM: stopping it takes the whole grace period, then SIGKILL."""
    return _build_miner(STUBBORN_MINER_IMAGE, "ignore")


@pytest.fixture(scope="session")
def agent_stack() -> Iterator[RunningStack]:
    with running_stack(ROOT / ".local" / "agent-stack.log", AGENT_STACK_OVERRIDES) as running:
        yield running


@dataclass
class AgentProcess:
    """`python -m worldland_node` as a provider would run it, its output in a log file."""

    key_hex: str
    key_file: Path
    state_dir: Path
    log_path: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    provider_id: str = ""
    runs: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 60) -> AgentProcess:
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDLAND_")} | self.extra_env
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worldland_node", *self.args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = [line for line in self.log_text().splitlines() if "node ready: provider " in line]
            if len(ready) >= self.runs:
                self.provider_id = ready[-1].split("node ready: provider ")[1].split(",")[0]
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"the agent exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"the agent was not ready in {timeout} s:\n{self.log_text()[-3000:]}")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the agent can tell."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def remove_containers(provider_id: str) -> None:
    """Test cleanup: rentals outlive the agent by design, so the tests remove what they made."""
    import docker

    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": [f"worldland.provider-id={provider_id}"]}):
            container.remove(force=True)
    finally:
        client.close()


@pytest.fixture
def make_agent(agent_stack: RunningStack, rental_images: None, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Starts agents on the agent stack (fresh wallet each); stops them and removes their containers after."""
    made: list[AgentProcess] = []

    def make(*extra: str, port_range: str = "31000-31049", api_url: str | None = None, **env: str) -> AgentProcess:
        wallet = Account.create()
        key_hex = "0x" + bytes(wallet.key).hex()
        home = tmp_path / f"agent{len(made)}"
        home.mkdir()
        key_file = home / "wallet.key"
        key_file.write_text(key_hex + "\n")
        key_file.chmod(0o600)
        args = [
            "--api", f"{api_url or agent_stack.api_url}/api/v1",
            "--host", "127.0.0.1",
            "--private-key-file", str(key_file),
            "--state-dir", str(home / "state"),
            "--hostname", f"agent-test-{len(made)}-{wallet.address[2:10].lower()}",
            "--port-range", port_range,
            "--heartbeat-interval", "5",
            "--reconcile-interval", "1",
            "--poll-wait", "5",
            "--cpu-cores", "8",  # this test host may have 2: the rentals are capped at what it has
            "--log-level", "DEBUG",
            "--enable-mining=false",  # the mining tests turn it on
            *GPU_FLAGS,
            *extra,
        ]  # fmt: skip
        agent = AgentProcess(key_hex, key_file, home / "state", home / "agent.log", args, extra_env=env)
        made.append(agent)
        return agent.start()

    yield make
    for agent in made:
        if agent.process is not None:
            agent.stop()
        if agent.provider_id:
            remove_containers(agent.provider_id)
