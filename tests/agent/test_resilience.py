"""What the seed could not survive, on the real engine and the local stack: the platform restarting
under the agent, the agent's own crash (with and without its journal), a container dying behind its back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import pytest
import requests

from tests.agent.conftest import AGENT_STACK_OVERRIDES
from tests.agent.test_agent_e2e import containers_of, delete_and_wait, rent, run, ssh, wait_for_status
from tests.e2e.client import ApiClient
from tests.local_stack.process import RunningStack, running_stack
from tests.sam_local.sam import free_port
from tests.support import ROOT

pytestmark = pytest.mark.e2e

PASSWORD = "resilient-Pa55word!"
HEARTBEAT = timedelta(seconds=30)  # the agent's default heartbeat interval
# Inside a rental: SIGKILL the listening sshd (the one whose parent is docker-init, PID 1), as a crash would.
CRASH_SSHD = (
    "for d in /proc/[0-9]*; do "
    '[ "$(cat $d/comm)" = sshd ] && [ "$(cut -d" " -f4 $d/stat)" = 1 ] && kill -KILL "${d#/proc/}"; '
    "done"
)


def running_rental(customer: ApiClient, provider_id: str, **changes: Any) -> dict[str, Any]:
    job = wait_for_status(
        customer, rent(customer, provider_id, ssh_password=PASSWORD, **changes)["job_id"], {"Running", "Failed"}
    )
    assert job["status"] == "Running", job
    return job


@pytest.fixture
def emulator() -> Iterator[str]:
    """An embedded AWS of its own, so the platform in front of it can restart without losing its data."""
    command = [sys.executable, "-m", "tests.local_stack.aws_emulator", "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout
    line = process.stdout.readline()
    assert line.startswith("AWS_EMULATOR_PORT "), line
    yield f"http://127.0.0.1:{line.split()[1]}"
    process.terminate()
    process.wait(10)


def test_the_platform_restarting_under_the_agent_needs_no_agent_restart(emulator, make_agent, tmp_path) -> None:
    port = free_port()

    def platform() -> AbstractContextManager[RunningStack]:
        log = tmp_path / f"platform-{time.monotonic_ns()}.log"
        return running_stack(log, AGENT_STACK_OVERRIDES, extra_env={"AWS_ENDPOINT_URL": emulator}, port=port)

    # Given an agent long-polling a platform, with a running rental
    with platform() as first:
        agent = make_agent(api_url=first.api_url)
        customer = ApiClient(first.api_url).sign_in()
        before = running_rental(customer, agent.provider_id)
        token = customer.token
    # When the platform goes away for a while
    time.sleep(6)
    # Then the agent keeps running, and so does the rental
    assert agent.process is not None
    assert agent.process.poll() is None
    with ssh(before, password=PASSWORD) as session:
        assert run(session, "echo alive") == "alive"
    assert "failed (ConnectionError" in agent.log_text()

    # When the platform is back (same address, same data)
    with platform() as second:
        customer = ApiClient(second.api_url, wallet=customer.wallet, token=token)
        heartbeat_before = customer.call("GET", f"/api/v1/providers/{agent.provider_id}").json()["last_heartbeat"]
        # Then the agent heartbeats again by itself and takes new rentals
        deadline = time.monotonic() + 90
        while (
            customer.call("GET", f"/api/v1/providers/{agent.provider_id}").json()["last_heartbeat"] == heartbeat_before
        ):
            assert time.monotonic() < deadline, agent.log_text()[-3000:]
            time.sleep(0.5)
        after = running_rental(customer, agent.provider_id)
        assert after["ssh"]["port"] != before["ssh"]["port"]
        # And it still ends the rental from before the restart
        delete_and_wait(customer, before)
        delete_and_wait(customer, after)
        assert containers_of(before["job_id"]) == containers_of(after["job_id"]) == []
    assert agent.runs == 1  # never restarted


def test_a_crashed_agent_reconciles_its_containers_with_the_platform(agent_stack, make_agent) -> None:
    # Given three running rentals (8 GB each: more memory offered than this test host may have)
    agent = make_agent("--host-memory-gb", "64")
    customer = ApiClient(agent_stack.api_url).sign_in()
    keep, ended, dies = (running_rental(customer, agent.provider_id) for _ in range(3))
    # When the agent crashes (SIGKILL) and loses its journal besides,
    agent.kill()
    shutil.rmtree(agent.state_dir / "rentals")
    # while one job is deleted and another's container dies
    assert customer.call("DELETE", f"/api/v1/jobs/{ended['job_id']}").status_code == 202
    (dying,) = containers_of(dies["job_id"])
    dying.kill()
    # And the agent is started again
    agent.start()
    # Then it adopts the rental that should run (one container, still reachable) ...
    assert wait_for_status(customer, keep["job_id"], {"Running"})["status"] == "Running"
    with ssh(keep, password=PASSWORD) as session:
        assert run(session, "echo adopted") == "adopted"
    # ... stops the one that should not ...
    assert wait_for_status(customer, ended["job_id"], {"Terminated"})["status"] == "Terminated"
    assert containers_of(ended["job_id"]) == []
    # ... and reports the one that died, whose job fails with the reason
    failed = wait_for_status(customer, dies["job_id"], {"Failed"})
    assert "container stopped" in failed["failure_reason"]
    assert containers_of(dies["job_id"]) == []
    assert len(containers_of(keep["job_id"])) == 1
    assert "adopted container" in agent.log_text()
    # And the capacity holds exactly the one rental left
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 3}
    delete_and_wait(customer, keep)
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 4}


def test_a_container_killed_behind_the_agents_back_fails_its_job_once(agent_stack, make_agent) -> None:
    # Given a running rental
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    job = running_rental(customer, agent.provider_id)
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 3}
    # When its container is killed by someone else
    (container,) = containers_of(job["job_id"])
    killed_at = datetime.now().astimezone()
    docker.from_env().containers.get(container.id).kill()
    # Then within a heartbeat interval the job is Failed with the reason, and its GPU is back (once)
    failed = wait_for_status(customer, job["job_id"], {"Failed"}, timeout=30)
    assert "exit code 137" in failed["failure_reason"], failed
    assert datetime.fromisoformat(failed["ended_at"].replace("Z", "+00:00")) - killed_at < HEARTBEAT
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 4}
    assert containers_of(job["job_id"]) == []
    time.sleep(3)  # further reconcile passes change nothing
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 4}


def test_a_container_whose_main_process_exits_by_itself_fails_its_job(agent_stack, make_agent) -> None:
    # Given a running rental (its container runs with Docker's unless-stopped policy, to survive reboots)
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    job = running_rental(customer, agent.provider_id)
    (container,) = containers_of(job["job_id"])
    # When its main process crashes: sshd (under docker-init) dies from inside the container, no `docker kill`
    # or `stop`, so the restart policy brings the container straight back, with the customer's sessions gone
    exited_at = datetime.now().astimezone()
    container.exec_run(["sh", "-c", CRASH_SSHD], detach=True)
    # Then within a heartbeat interval the job is Failed with what happened, and its GPU is back (once)
    failed = wait_for_status(customer, job["job_id"], {"Failed"}, timeout=30)
    assert "exited by itself" in failed["failure_reason"], failed
    assert "exit code 137" in failed["failure_reason"], failed  # 128 + SIGKILL, from the engine's events
    assert "Docker restarted it" in failed["failure_reason"], failed
    assert datetime.fromisoformat(failed["ended_at"].replace("Z", "+00:00")) - exited_at < HEARTBEAT
    assert containers_of(job["job_id"]) == []
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 4}
    time.sleep(3)  # further reconcile passes change nothing
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 4}


class FlakyPlatform(ThreadingHTTPServer):
    """Forwards to the platform, but answers 503 to the first `failures` heartbeats."""

    daemon_threads = True

    def __init__(self, upstream: str, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.failures = failures
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def refuse(self, path: str) -> bool:
        with self.lock:
            if path.split("?")[0].endswith("/heartbeat") and self.failures > 0:
                self.failures -= 1
                return True
            return False


class _Forward(BaseHTTPRequestHandler):
    server: FlakyPlatform

    def do_GET(self) -> None:  # http.server's naming
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.refuse(self.path):
            self._answer(503, b'{"error": {"code": "unavailable", "message": "try again"}}')
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        answer = requests.request(
            self.command, self.server.upstream + self.path, headers=headers, data=body or None, timeout=60
        )
        self._answer(answer.status_code, answer.content)

    def _answer(self, status: int, content: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


@pytest.fixture
def flaky_platform(agent_stack) -> Iterator[FlakyPlatform]:
    server = FlakyPlatform(agent_stack.api_url, failures=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_platform_failure_before_the_first_heartbeat_is_waited_out(agent_stack, make_agent, flaky_platform) -> None:
    # Given a platform that registers the host but fails its first two heartbeats
    # When the agent starts, Then it retries the heartbeat rather than exiting, and becomes ready by itself
    agent = make_agent(api_url=flaky_platform.url)
    assert agent.process is not None
    assert agent.process.poll() is None
    assert agent.runs == 1
    assert "the first heartbeat failed (PlatformError: 503" in agent.log_text()
    assert flaky_platform.failures == 0
    customer = ApiClient(agent_stack.api_url).sign_in()
    assert customer.call("GET", f"/api/v1/providers/{agent.provider_id}").json()["status"] == "Available"
