"""Mining on idle GPUs (seed 004) on the real engine: a rental takes GPUs from mining, mining comes back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.agent.test_agent_e2e import delete_and_wait, rent, wait_for_status
from tests.e2e.client import ApiClient

pytestmark = pytest.mark.e2e


def mining_container(provider_id: str) -> Any | None:
    client = docker.from_env()
    try:
        found = client.containers.list(
            filters={"label": ["worldland.mining=true", f"worldland.provider-id={provider_id}"]}
        )
        return found[0] if found else None
    finally:
        client.close()


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.2)


def mining_gpus(customer: ApiClient, provider_id: str) -> dict[str, int]:
    return dict(customer.capacity(provider_id)["mining_gpus"])


def test_mining_yields_gpus_to_rentals_and_takes_them_back(agent_stack, make_agent, miner_image, tmp_path) -> None:
    # Given an agent with 4 GPUs and mining on (a stand-in image)
    data_dir: Path = tmp_path / "chain"
    agent = make_agent("--enable-mining", "--mining-image", miner_image, "--mining-data-dir", str(data_dir))
    customer = ApiClient(agent_stack.api_url).sign_in()
    # Then mining runs on all 4 and the platform shows them mining
    miner = eventually(lambda: mining_container(agent.provider_id))
    assert miner.labels["worldland.gpus"] == "0,1,2,3"
    assert eventually(lambda: mining_gpus(customer, agent.provider_id) == {"RTX-4090": 4})

    # When a customer rents 1 GPU
    one = wait_for_status(customer, rent(customer, agent.provider_id, ssh_password="mine-Pa55word!")["job_id"],
                          {"Running", "Failed"})  # fmt: skip
    assert one["status"] == "Running", one
    # Then mining was stopped with SIGTERM and runs again on the other 3; the platform follows
    restarted = eventually(
        lambda: (c := mining_container(agent.provider_id)) and c.labels["worldland.gpus"] == "1,2,3" and c
    )
    assert restarted.id != miner.id
    assert "stopping on SIGTERM (GPUs 0,1,2,3)" in (data_dir / "miner.log").read_text()
    assert eventually(lambda: mining_gpus(customer, agent.provider_id) == {"RTX-4090": 3})
    (rental,) = docker.from_env().containers.list(filters={"label": [f"worldland.job-id={one['job_id']}"]})
    assert rental.labels["worldland.gpus"] == "0"

    # When the other 3 are rented too, Then mining pauses and the platform shows none mining
    three = wait_for_status(
        customer,
        rent(customer, agent.provider_id, gpu_count=3, ssh_password="mine-Pa55word!")["job_id"],
        {"Running", "Failed"},
    )
    assert three["status"] == "Running", three
    assert eventually(lambda: mining_container(agent.provider_id) is None)
    assert eventually(lambda: mining_gpus(customer, agent.provider_id) == {"RTX-4090": 0})
    assert "mining: paused, rentals hold every GPU" in agent.log_text()

    # When both rentals end, Then mining is back on all 4
    delete_and_wait(customer, one)
    delete_and_wait(customer, three)
    back = eventually(lambda: (c := mining_container(agent.provider_id)) and c.labels["worldland.gpus"] == "0,1,2,3")
    assert back
    assert eventually(lambda: mining_gpus(customer, agent.provider_id) == {"RTX-4090": 4})


def test_mining_off_runs_no_mining_container(agent_stack, make_agent, miner_image) -> None:
    # Given an agent started with --enable-mining=false (the fixture's default)
    agent = make_agent("--mining-image", miner_image)
    customer = ApiClient(agent_stack.api_url).sign_in()
    # Then there is no mining container and the heartbeat says stopped
    time.sleep(2)
    assert mining_container(agent.provider_id) is None
    assert mining_gpus(customer, agent.provider_id) == {"RTX-4090": 0}


GRACE = 4  # --stop-grace for the test below: short, but long enough to tell apart from no wait at all
MARGIN = 5  # command delivery, this test's polling, Docker's own stop and remove: what a grace does not cover


def timed_rental(customer: ApiClient, provider_id: str) -> tuple[dict[str, Any], float]:
    """A 1-GPU rental and the seconds from the request to Running."""
    started = time.monotonic()
    job = wait_for_status(
        customer, rent(customer, provider_id, ssh_password="mine-Pa55word!")["job_id"], {"Running", "Failed"}
    )
    assert job["status"] == "Running", job
    return job, time.monotonic() - started


def test_a_miner_ignoring_sigterm_delays_a_rental_by_the_grace_period_at_most(
    agent_stack, make_agent, stubborn_miner_image, tmp_path
) -> None:
    customer = ApiClient(agent_stack.api_url).sign_in()
    # Given how long a rental takes to start where no mining is in the way
    plain = make_agent("--stop-grace", str(GRACE))
    _, baseline = timed_rental(customer, plain.provider_id)
    # And an agent mining on all 4 GPUs with a miner that ignores SIGTERM
    data_dir: Path = tmp_path / "chain"
    agent = make_agent(
        "--enable-mining", "--mining-image", stubborn_miner_image, "--mining-data-dir", str(data_dir),
        "--stop-grace", str(GRACE), port_range="31050-31099",
    )  # fmt: skip
    assert eventually(lambda: (c := mining_container(agent.provider_id)) and c.labels["worldland.gpus"] == "0,1,2,3")

    # When a customer rents 1 GPU
    first, elapsed = timed_rental(customer, agent.provider_id)
    # Then the miner held on through SIGTERM and was killed after the grace, and the rental waited no longer
    assert "ignoring SIGTERM (GPUs 0,1,2,3)" in (data_dir / "miner.log").read_text()
    assert elapsed <= baseline + GRACE + MARGIN, (elapsed, baseline)
    # And mining is back on the other 3, started by the mining loop
    assert eventually(lambda: (c := mining_container(agent.provider_id)) and c.labels["worldland.gpus"] == "1,2,3")

    # When that rental ends and another is asked for at once, while mining moves (another stubborn stop)
    assert customer.call("DELETE", f"/api/v1/jobs/{first['job_id']}").status_code in (200, 202)
    second, elapsed = timed_rental(customer, agent.provider_id)
    # Then that start is not held up beyond the grace period either
    assert elapsed <= baseline + GRACE + MARGIN, (elapsed, baseline)
    assert wait_for_status(customer, first["job_id"], {"Terminated"})["status"] == "Terminated"
    # And mining ends up on exactly the 3 GPUs the rental left
    (rental,) = docker.from_env().containers.list(filters={"label": [f"worldland.job-id={second['job_id']}"]})
    free = ",".join(i for i in "0123" if i not in rental.labels["worldland.gpus"].split(","))
    assert eventually(lambda: (c := mining_container(agent.provider_id)) and c.labels["worldland.gpus"] == free)
    delete_and_wait(customer, second)
