"""The agent against the local stack and the real Docker engine: a customer rents, logs in over SSH, deletes."""

from __future__ import annotations

import io
import os
import socket
import time
import urllib.request
from typing import Any

import docker
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent.conftest import BASE_IMAGE, NOSSH_IMAGE
from tests.e2e.client import ApiClient

pytestmark = pytest.mark.e2e

MEMORY_GB = 8


def rent(customer: ApiClient, provider_id: str, **changes: Any) -> dict[str, Any]:
    body = {
        "provider_id": provider_id,
        "gpu_count": 1,
        "cpu_cores": 2,
        "memory_gb": MEMORY_GB,
        "storage_gb": 20,
        "image": BASE_IMAGE,
        "duration_hours": 1,
    } | changes
    answer = customer.call("POST", "/api/v1/jobs", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def wait_for_status(customer: ApiClient, job_id: str, wanted: set[str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = customer.call("GET", f"/api/v1/jobs/{job_id}").json()
        if job["status"] in wanted:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} is {job.get('status')}, not {wanted}, after {timeout} s: {job}")


def ssh(job: dict[str, Any], password: str | None = None, key: paramiko.PKey | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh container's host key
    client.connect(
        job["ssh"]["host"],
        job["ssh"]["port"],
        username=job["ssh"]["username"],
        password=password,
        pkey=key,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    return client


def run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=30)
    output = stdout.read().decode().strip()
    assert stdout.channel.recv_exit_status() == 0, stderr.read().decode()
    return output


def containers_of(job_id: str) -> list[Any]:
    client = docker.from_env()
    try:
        return client.containers.list(all=True, filters={"label": [f"worldland.job-id={job_id}"]})
    finally:
        client.close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def delete_and_wait(customer: ApiClient, job: dict[str, Any]) -> dict[str, Any]:
    assert customer.call("DELETE", f"/api/v1/jobs/{job['job_id']}").status_code in (200, 202)
    return wait_for_status(customer, job["job_id"], {"Terminated"}, timeout=60)


def test_password_rental_runs_with_root_ssh_and_limits_then_ends(agent_stack, make_agent) -> None:
    # Given an agent that registered this host with 4 declared GPUs, and a customer
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    before = customer.capacity(agent.provider_id)
    assert before["available_gpus"] == {"RTX-4090": 4}
    # When the customer rents 1 GPU with a chosen password
    password = "agent-e2e-Pa55word!"
    job = rent(customer, agent.provider_id, ssh_password=password)
    running = wait_for_status(customer, job["job_id"], {"Running", "Failed"})
    # Then the job runs with an SSH block, and root logs in with the password
    assert running["status"] == "Running", running
    assert running["ssh"]["host"] == "127.0.0.1"
    port = running["ssh"]["port"]
    assert 31000 <= port <= 31049
    with ssh(running, password=password) as session:
        assert run(session, "id -u") == "0"
        assert run(session, "python3 -c 'print(6 * 7)'") == "42"
        # And the memory limit is the rented one (cgroup v1 here; v2 elsewhere)
        limit = run(
            session, "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        )
        assert int(limit) == MEMORY_GB * 2**30
    # And exactly one labelled container runs it
    (container,) = containers_of(job["job_id"])
    assert container.labels["worldland.managed"] == "true"
    assert container.labels["worldland.provider-id"] == agent.provider_id
    assert container.labels["worldland.ssh-port"] == str(port)
    assert customer.capacity(agent.provider_id)["available_gpus"] == {"RTX-4090": 3}

    # When the customer deletes the job
    ended = delete_and_wait(customer, running)
    # Then the container is gone, the port closed, and the capacity back
    assert ended["status"] == "Terminated"
    assert containers_of(job["job_id"]) == []
    assert not port_open(port)
    after = customer.capacity(agent.provider_id)
    assert after["available_gpus"] == before["available_gpus"]
    assert after["available_memory_mb"] == before["available_memory_mb"]


def test_key_rental_logs_in_with_the_key_and_refuses_passwords(agent_stack, make_agent) -> None:
    # Given a customer's ed25519 key
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    openssh_private = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(openssh_private))
    # When they rent with only the key
    job = rent(customer, agent.provider_id, ssh_public_key=public.decode() + " customer@laptop")
    running = wait_for_status(customer, job["job_id"], {"Running", "Failed"})
    assert running["status"] == "Running", running
    # Then root logs in with the key
    with ssh(running, key=key) as session:
        assert run(session, "whoami") == "root"
    # And a password is refused (password authentication is off for a key-only rental)
    with pytest.raises(paramiko.AuthenticationException):
        ssh(running, password="any-password-at-all")
    delete_and_wait(customer, running)
    assert containers_of(job["job_id"]) == []


def test_a_pull_that_fails_fails_the_job_with_the_reason(agent_stack, make_agent) -> None:
    # Given an agent and a customer
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    before = customer.capacity(agent.provider_id)
    # When they rent an image no registry has
    job = rent(customer, agent.provider_id, image="localhost/does-not-exist:1", ssh_password="whatever-Pa55")
    failed = wait_for_status(customer, job["job_id"], {"Failed", "Running"}, timeout=60)
    # Then the job fails, saying why, and its resources come back
    assert failed["status"] == "Failed", failed
    assert "localhost/does-not-exist:1" in failed["failure_reason"]
    assert containers_of(job["job_id"]) == []
    assert customer.capacity(agent.provider_id)["available_gpus"] == before["available_gpus"]


def _debian_reachable_from_containers() -> bool:
    try:
        with urllib.request.urlopen("http://deb.debian.org/debian/dists/bookworm/Release", timeout=5):
            return True
    except OSError:
        return False


def test_an_image_without_sshd_gets_one_installed(agent_stack, make_agent) -> None:
    """Needs deb.debian.org reachable from containers (the entrypoint apt-get installs openssh-server)."""
    if not _debian_reachable_from_containers():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and deb.debian.org is not reachable: the no-sshd path must be tested in CI")
        pytest.skip("deb.debian.org is not reachable: an image without sshd cannot get one installed here")
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    password = "nossh-Pa55word!"
    job = rent(customer, agent.provider_id, image=NOSSH_IMAGE, ssh_password=password)
    running = wait_for_status(customer, job["job_id"], {"Running", "Failed"}, timeout=240)
    assert running["status"] == "Running", running
    with ssh(running, password=password) as session:
        assert run(session, "test -x /usr/sbin/sshd && echo installed") == "installed"
    assert "installing openssh-server" in agent.log_text() or "no sshd" in containers_log(job["job_id"])
    delete_and_wait(customer, running)


def containers_log(job_id: str) -> str:
    return "".join(c.logs().decode(errors="replace") for c in containers_of(job_id))


def test_rentals_outlive_the_agent_and_a_restarted_agent_ends_them(agent_stack, make_agent) -> None:
    # Given a running rental
    agent = make_agent()
    customer = ApiClient(agent_stack.api_url).sign_in()
    password = "restart-Pa55word!"
    job = wait_for_status(
        customer, rent(customer, agent.provider_id, ssh_password=password)["job_id"], {"Running", "Failed"}
    )
    assert job["status"] == "Running", job
    # When the agent is stopped (SIGTERM), as systemd does on restart
    assert agent.stop() == 0
    # Then the rental keeps running, reachable over SSH
    (container,) = containers_of(job["job_id"])
    assert container.status == "running"
    with ssh(job, password=password) as session:
        assert run(session, "echo still-here") == "still-here"
    # And the agent started again (same key, same state dir) is the same provider and ends the rental on delete
    agent.start()
    assert agent.provider_id == job["provider_id"]
    delete_and_wait(customer, job)
    assert containers_of(job["job_id"]) == []
