"""sam_local layer: `sam build` once, the emulated AWS with the template's resources, `sam local` in Docker.

Where Docker is expected (CI=true) a missing engine or base image fails the suite; elsewhere the
suite is skipped with the reason (`make docker-engine lambda-base-image` sets both up).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sam_local import stack
from tests.sam_local.sam import DOCKER_HOST_ALIAS, SamLocal, build, declare_endpoint_variable, docker_problem
from tests.sam_local.stack import Emulation

__all__ = ["Emulation"]

# Scheduled functions repeat their check within the minute; once per invocation is enough here.
PARAMETER_OVERRIDES = {"StalenessCheckSeconds": "60", "ExpirySweepSeconds": "60"}


@pytest.fixture(scope="session")
def docker_ready() -> None:
    reason = docker_problem()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"sam local needs Docker and CI=true expects it: {reason}", pytrace=False)
    pytest.skip(f"sam local cannot run here: {reason}")


@pytest.fixture(scope="session")
def built_template(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` once per session, into a temporary build directory."""
    started = time.monotonic()
    template = build(tmp_path_factory.mktemp("sam") / "build")
    declare_endpoint_variable(template)
    print(f"\nsam build: {time.monotonic() - started:.1f}s")
    return template


@pytest.fixture(scope="session")
def emulation(docker_ready: None) -> Iterator[Emulation]:
    """The embedded AWS on 0.0.0.0 (containers reach it over the Docker bridge), provisioned from the template."""
    with stack.emulation(PARAMETER_OVERRIDES) as running:
        yield running


@pytest.fixture(scope="session")
def sam(built_template: Path, emulation: Emulation, tmp_path_factory: pytest.TempPathFactory) -> SamLocal:
    """`sam local` with each function's template environment pointed at the emulation (--env-vars)."""
    workdir = tmp_path_factory.mktemp("sam-local")
    endpoint = f"http://{DOCKER_HOST_ALIAS}:{emulation.port}"
    env_vars = {
        logical_id: variables | {"AWS_ENDPOINT_URL": endpoint}
        for logical_id, variables in emulation.function_environments.items()
    }
    env_file = workdir / "env-vars.json"
    env_file.write_text(json.dumps(env_vars, indent=2))
    return SamLocal(built_template, env_file, workdir)
