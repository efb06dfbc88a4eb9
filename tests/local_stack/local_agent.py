"""`make run`'s provider agent for this machine, so a newcomer can rent a container end to end.

Started when a Docker engine answers (not with NO_AGENT=1): the local rental image
`localhost/worldland-base:latest` is built once (cached debootstrap), a provider wallet is made
once under `.local/agent/`, and `python -m worldland_node` runs against the local API. On a
machine without NVML it declares LOCAL_AGENT_GPUS (default: one 24 GB RTX 4090) and its rentals
get no GPU devices, which its log says.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from tests.local_stack.stack import ROOT

log = logging.getLogger("local_stack")

HOME = ROOT / ".local" / "agent"
BASE_IMAGE_SCRIPT = ROOT / "node_agent" / "images" / "build_base_image.sh"
# "MODEL:COUNT:MEMORY_GB", the GPUs a machine without NVML advertises.
DEFAULT_GPUS = "NVIDIA GeForce RTX 4090:1:24"
PORT_RANGE = "32000-32099"


def start_local_agent(api_url: str) -> subprocess.Popen[bytes] | None:
    """The agent process, or None (with the reason logged) when this machine cannot run rentals."""
    if os.environ.get("NO_AGENT", "") not in ("", "0"):
        log.info("agent      not started (NO_AGENT is set)")
        return None
    problem = docker_problem()
    if problem:
        log.warning("agent      not started: %s (make docker-engine, or NO_AGENT=1 to silence this)", problem)
        return None
    built = subprocess.run(["bash", str(BASE_IMAGE_SCRIPT), "base"], capture_output=True, text=True, check=False)
    if built.returncode:
        log.warning("agent      not started: building %s failed:\n%s", "localhost/worldland-base", built.stderr[-2000:])
        return None
    HOME.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "worldland_node",
        "--api", f"{api_url}/api/v1",
        "--host", "127.0.0.1",
        "--private-key-file", str(_wallet_key_file()),
        "--state-dir", str(HOME / "state"),
        "--port-range", os.environ.get("LOCAL_AGENT_PORT_RANGE", PORT_RANGE),
        "--region", "local",
        "--enable-mining=false",  # no mining image can be had offline, and no GPUs to mine on
        *_gpu_flags(),
    ]  # fmt: skip
    log_path = HOME / "agent.log"
    with log_path.open("ab") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    log.info("agent      pid %d, log %s (rent image localhost/worldland-base:latest)", process.pid, log_path)
    return process


def stop_local_agent(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, as systemd would: the agent stops, its rentals keep running until deleted."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def docker_problem() -> str | None:
    """Why no Docker engine can be used from here, or None when one answers."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:
        return f"no Docker engine answers ({type(error).__name__})"
    return None


def _wallet_key_file() -> Path:
    """This machine's provider wallet, made once: the same provider across `make run`s."""
    key_file = HOME / "wallet.key"
    if not key_file.exists():
        from eth_account import Account

        key_file.touch(mode=0o600)
        key_file.write_text("0x" + bytes(Account.create().key).hex() + "\n")
    return key_file


def _gpu_flags() -> list[str]:
    """Declared GPUs where NVML cannot see any (the agent detects them itself where it can)."""
    from worldland_node.gpus import load_nvml

    nvml = load_nvml()
    if nvml is not None:
        nvml.nvmlShutdown()
        return []
    model, count, memory_gb = os.environ.get("LOCAL_AGENT_GPUS", DEFAULT_GPUS).rsplit(":", 2)
    return ["--gpu-type", model, "--gpu-count", count, "--gpu-memory-gb", memory_gb]
