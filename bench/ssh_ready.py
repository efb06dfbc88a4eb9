"""Time from `POST /jobs` to a root SSH login, through the local stack and the agent, against `docker run`.

Both sides start the same image (localhost/worldland-base:latest) with the same sshd setup (the
agent's entrypoint script) and end at the same event: a paramiko password login that runs `true`.
The agent's side adds the platform (create transaction, command queue, long poll), the agent's
work (journal, create, copy-in, start, sshd probe, report) and the customer polling the job.

    PYTHONPATH=layers/common .venv/bin/python -m bench.ssh_ready [--runs 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import paramiko
from eth_account import Account
from worldland_node.docker_runtime import ContainerRequest, DockerRuntime
from worldland_node.ssh_probe import ssh_answers

from bench.common import local_stack
from tests.e2e.client import ApiClient
from tests.support import ROOT

IMAGE = "localhost/worldland-base:latest"
PASSWORD = "bench-Pa55word!"
AGENT_PORTS = "31200-31249"
DOCKER_PORT = 31250


def login(port: int, deadline: float) -> None:
    """Waits for sshd's banner (as the agent's probe does), then logs in and runs a command, retrying."""
    while not ssh_answers(port, timeout=1):
        assert time.monotonic() < deadline, f"no sshd on port {port}"
        time.sleep(0.02)
    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # fresh container each run
        try:
            client.connect(
                "127.0.0.1", port, "root", PASSWORD, allow_agent=False, look_for_keys=False, timeout=5, banner_timeout=5
            )
            _, stdout, _ = client.exec_command("true")
            if stdout.channel.recv_exit_status() == 0:
                return
        except (paramiko.SSHException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        finally:
            client.close()


def password_hash() -> str:
    from passlib.hash import sha512_crypt

    return str(sha512_crypt.hash(PASSWORD))


def docker_run_once(hash_: str) -> float:
    """`docker run` with the agent's entrypoint bind-mounted, to the first login."""
    script = resources.files("worldland_node").joinpath("rental_entrypoint.sh").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        boot = Path(tmp)
        (boot / "entrypoint.sh").write_bytes(script)
        (boot / "password_auth").write_text("yes\n")
        (boot / "install_sshd").write_text("1\n")
        (boot / "root_password_hash").write_text(hash_)
        name = f"bench-ssh-ready-{os.getpid()}"
        started = time.monotonic()
        subprocess.run(
            ["docker", "run", "-d", "--name", name, "--init", "-p", f"{DOCKER_PORT}:22", "--memory", "8g",
             "-v", f"{boot}:/.worldland", "--entrypoint", "/bin/sh", IMAGE, "/.worldland/entrypoint.sh"],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            login(DOCKER_PORT, started + 60)
            return time.monotonic() - started
        finally:
            subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)


def sdk_once(runtime: DockerRuntime, hash_: str, run: int) -> float:
    """The agent's own container path (create, copy-in, start) without the platform, to the first login."""
    request = ContainerRequest(
        job_id=f"bench-sdk-{os.getpid()}-{run}", provider_id="bench", image=IMAGE, ssh_port=DOCKER_PORT + 1,
        cpus=1, memory_gb=8, storage_gb=20, gpu_indices=[], use_gpus=False, expires_at="", password_hash=hash_,
    )  # fmt: skip
    started = time.monotonic()
    container_id = runtime.create_and_start(request)
    try:
        login(DOCKER_PORT + 1, started + 60)
        return time.monotonic() - started
    finally:
        runtime.remove(container_id, grace=0)


def agent_once(customer: ApiClient, provider_id: str) -> float:
    body = {
        "provider_id": provider_id,
        "gpu_count": 1,
        "cpu_cores": 2,
        "memory_gb": 8,
        "storage_gb": 20,
        "image": IMAGE,
        "duration_hours": 1,
        "ssh_password": PASSWORD,
    }
    started = time.monotonic()
    answer = customer.call("POST", "/api/v1/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job_id"]
    while True:  # the customer's client polls the job for its SSH block
        job = customer.call("GET", f"/api/v1/jobs/{job_id}").json()
        if job["status"] == "Running":
            break
        assert job["status"] in ("Pending", "Starting"), job
        assert time.monotonic() - started < 120, job
        time.sleep(0.02)
    login(job["ssh"]["port"], started + 60)
    elapsed = time.monotonic() - started
    customer.call("DELETE", f"/api/v1/jobs/{job_id}")
    while customer.call("GET", f"/api/v1/jobs/{job_id}").json()["status"] != "Terminated":
        time.sleep(0.05)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # failed early attempts are expected
    subprocess.run(["bash", str(ROOT / "node_agent/images/build_base_image.sh"), "base"], check=True)
    with local_stack() as stack, tempfile.TemporaryDirectory() as home:
        wallet = Account.create()
        key_file = Path(home) / "key"
        key_file.write_text("0x" + bytes(wallet.key).hex())
        log_path = ROOT / ".local" / "bench-agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "worldland_node", "--api", stack.api_url, "--host", "127.0.0.1",
                 "--private-key-file", str(key_file), "--state-dir", f"{home}/state", "--port-range", AGENT_PORTS,
                 "--hostname", f"bench-{wallet.address[2:10].lower()}", "--cpu-cores", "8", "--enable-mining=false",
                 "--gpu-type", "NVIDIA GeForce RTX 4090", "--gpu-count", "4", "--gpu-memory-gb", "24"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            provider_id = ""
            deadline = time.monotonic() + 60
            while not provider_id:
                ready = [ln for ln in log_path.read_text().splitlines() if "node ready: provider " in ln]
                provider_id = ready[0].split("node ready: provider ")[1].split(",")[0] if ready else ""
                assert agent.poll() is None, log_path.read_text()[-2000:]
                assert time.monotonic() < deadline, log_path.read_text()[-2000:]
                time.sleep(0.1)
            customer = ApiClient(stack.api_url).sign_in()
            hash_ = password_hash()
            agent_once(customer, provider_id)  # warm-up: first sign-ins, connections, page cache
            docker_run_once(hash_)
            runtime = DockerRuntime()
            through_agent, plain_docker, sdk = [], [], []
            for run in range(runs):
                through_agent.append(agent_once(customer, provider_id))
                plain_docker.append(docker_run_once(hash_))
                sdk.append(sdk_once(runtime, hash_, run))
            runtime.close()
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
    agent_median, docker_median = statistics.median(through_agent), statistics.median(plain_docker)
    print(f"image {IMAGE}, {runs} runs each, time to a root SSH login that runs a command")
    print("  through the platform + agent:  " + ", ".join(f"{t * 1000:.0f}" for t in through_agent) + " ms")
    print("  plain docker run (CLI):        " + ", ".join(f"{t * 1000:.0f}" for t in plain_docker) + " ms")
    print("  agent's container path alone:  " + ", ".join(f"{t * 1000:.0f}" for t in sdk) + " ms")
    sdk_median = statistics.median(sdk)
    ms = {name: f"{value * 1000:.0f} ms" for name, value in (("agent", agent_median), ("docker", docker_median))}
    print(f"  median {ms['agent']} vs docker run {ms['docker']}: ratio {agent_median / docker_median:.2f}x")
    added = (agent_median - sdk_median) * 1000
    print(
        f"  vs the agent's container path alone {sdk_median * 1000:.0f} ms: ratio {agent_median / sdk_median:.2f}x, "
        f"so the platform (create, queue, long poll, reports, customer polling) adds {added:.0f} ms"
    )


if __name__ == "__main__":
    main()
