"""The agent's start-up: what the platform or the engine being away does to it (nothing fatal)."""

from __future__ import annotations

import logging

import pytest
from worldland_node.agent import Agent
from worldland_node.api_client import PlatformError
from worldland_node.docker_runtime import DockerError
from worldland_node.loops import Backoff
from worldland_node.settings import AgentSettings

KEY = "0x" + "33" * 32


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Agent:
    monkeypatch.setattr(Backoff, "next_delay", lambda self: 0.01)  # the retries' timing is not under test
    return Agent(AgentSettings(api="http://127.0.0.1:9", host="127.0.0.1", private_key=KEY))


def test_a_startup_step_is_retried_until_it_succeeds(agent: Agent, caplog: pytest.LogCaptureFixture) -> None:
    # Given a step that fails as the engine and the platform do while they restart
    failures: list[Exception] = [DockerError("engine restarting"), PlatformError(503, "unavailable", "try again")]

    def step() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    caplog.set_level(logging.WARNING)
    # When the agent runs it at start-up, Then it is retried, each failure said, until it succeeds
    assert agent._until_done("the first heartbeat", step) == "done"
    assert "the first heartbeat failed (DockerError: engine restarting)" in caplog.text
    assert "the first heartbeat failed (PlatformError: 503 unavailable: try again)" in caplog.text


def test_sigterm_while_a_startup_step_waits_ends_the_agent_cleanly(agent: Agent) -> None:
    def step() -> None:
        agent.stopping.set()  # SIGTERM arrives meanwhile
        raise DockerError("engine unreachable")

    with pytest.raises(SystemExit) as exited:
        agent._until_done("recovering this host's rentals", step)
    assert exited.value.code == 0
