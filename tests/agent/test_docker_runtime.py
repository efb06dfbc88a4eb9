"""The rental path on the real Docker engine (no platform: reports go to a recorder)."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from worldland_node.docker_runtime import ContainerRequest, DockerRuntime, ExitDetail, PullFailed, _bootstrap_archive
from worldland_node.ports import PortAllocator
from worldland_node.rentals import RentalManager, RentalPolicy
from worldland_node.state import StateDir

from tests.agent.conftest import BASE_IMAGE
from tests.agent.test_rentals import HASH, FakePlatform, command

PROVIDER = "runtime-test-provider"


@pytest.fixture
def runtime(rental_images: None) -> Any:
    engine = DockerRuntime()
    yield engine
    for container in engine.managed(PROVIDER):
        engine.remove(container.container_id, grace=0)
    engine.close()


def test_a_start_handled_twice_at_once_makes_one_container(runtime: DockerRuntime, tmp_path: Path) -> None:
    # Given a rental manager on the real engine
    platform = FakePlatform()
    manager = RentalManager(
        runtime, platform, StateDir(tmp_path / "state"), PortAllocator(31100, 31109), PROVIDER,
        RentalPolicy(gpu_indices=(0, 1), host_cpus=1, ssh_ready_timeout=60),
    )  # fmt: skip
    job = f"dup-{tmp_path.name[-8:]}".replace("_", "-")
    start = command("start_rental", job_id=job, image=BASE_IMAGE, memory_gb=8, cpu_cores=2)
    # When the same start_rental is handled by two threads at once, then once more
    threads = [threading.Thread(target=manager.handle, args=(start,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert manager.wait_idle(60)
    manager.handle(start)
    assert manager.wait_idle(60)
    try:
        # Then one container runs, labelled, with its CPU capped to the host's, and the platform heard "running" once
        (container,) = [c for c in runtime.managed(PROVIDER) if c.job_id == job]
        assert container.status == "running"
        assert platform.states(job) == ["running"]
        # When it is stopped, it is gone
        manager.handle(command("stop_rental", job_id=job))
        assert manager.wait_idle(60)
        assert runtime.find(job) is None
        assert platform.states(job) == ["running", "ended"]
    finally:
        manager.shutdown()


def test_pulling_an_image_no_registry_has_fails_with_its_name(runtime: DockerRuntime) -> None:
    with pytest.raises(PullFailed, match="localhost/does-not-exist:1"):
        runtime.pull("localhost/does-not-exist:1", lambda *_: None, timeout=60, cancelled=lambda: False)


def test_the_bootstrap_archive_holds_the_login_material_private() -> None:
    request = ContainerRequest(
        job_id="j", provider_id="p", image=BASE_IMAGE, ssh_port=31000, cpus=1, memory_gb=8, storage_gb=20,
        gpu_indices=[], use_gpus=False, expires_at="", password_hash=HASH, authorized_keys="ssh-ed25519 AAAA x",
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(_bootstrap_archive(request))) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert members[".worldland"].mode == 0o700
        assert members[".worldland/root_password_hash"].mode == 0o600
        assert members[".worldland/authorized_keys"].mode == 0o600
        assert members[".worldland/entrypoint.sh"].mode == 0o755
        extracted = archive.extractfile(".worldland/password_auth")
        assert extracted is not None
        assert extracted.read() == b"yes\n"
    assert HASH not in repr(request)


def test_an_exit_docker_restarted_is_still_told_by_the_engine(runtime: DockerRuntime, tmp_path: Path) -> None:
    # Given a rental container (unless-stopped, so a host reboot brings it back)
    request = ContainerRequest(
        job_id=f"exit-{tmp_path.name[-8:]}".replace("_", "-"), provider_id=PROVIDER, image=BASE_IMAGE,
        ssh_port=31110, cpus=1, memory_gb=1, storage_gb=20, gpu_indices=[], use_gpus=False, expires_at="",
        password_hash=HASH,
    )  # fmt: skip
    container_id = runtime.create_and_start(request)
    seen = runtime.inspect(container_id)
    assert seen is not None
    assert (seen.status, seen.restart_count) == ("running", 0)
    # When its main process exits by itself (sshd told to stop from inside), and Docker restarts it
    runtime._client.containers.get(container_id).exec_run(["sh", "-c", "kill -TERM 1"], detach=True)
    deadline = time.monotonic() + 30
    while (seen := runtime.inspect(container_id)) is not None and seen.restart_count == 0:
        assert time.monotonic() < deadline, "Docker did not restart the container"
        time.sleep(0.1)
    # Then the restart is counted, and the exit it hides is still known from the engine's events
    assert seen is not None
    assert seen.restart_count == 1
    assert runtime.last_exit(container_id) == ExitDetail(exit_code=143, oom_killed=False)
