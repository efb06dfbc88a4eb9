"""What the seed could not survive, on the real engine and the local stack: the platform restarting
under the agent, the agent's own crash (with and without its journal), a container dying behind its back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import docker
import pytest

from tests.agent.conftest import AGENT_STACK_OVERRIDES
from tests.agent.test_agent_e2e import containers_of, delete_and_wait, rent, run, ssh, wait_for_status
from tests.e2e.client import ApiClient
from tests.local_stack.process import RunningStack, running_stack
from tests.sam_local.sam import free_port
from tests.support import ROOT

pytestmark = pytest.mark.e2e

PASSWORD = "resilient-Pa55word!"
HEARTBEAT = timedelta(seconds=30)  # the agent's default heartbeat interval


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
    agent = make_agent("--memory-gb", "64")
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
