"""The SAM CLI as a developer runs it: `sam build`, `sam local invoke -e`, `sam local start-api` (in Docker).

Every command runs from the repository root with the repository's samconfig.toml, so its
[default] settings apply (skip_pull_image, ...) exactly as they do for a developer.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support import ROOT

SAM = Path(sys.executable).with_name("sam")
# Containers reach this machine (where the AWS emulation listens) under this name.
DOCKER_HOST_ALIAS = "host.docker.internal"
ADD_HOST = f"{DOCKER_HOST_ALIAS}:host-gateway"
ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
# The image SAM CLI builds python3.12 functions on (`make lambda-base-image` provides it offline).
BASE_IMAGE = f"public.ecr.aws/lambda/python:3.12-{ARCH}"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


def sam_environment() -> dict[str, str]:
    """A clean environment for the SAM CLI.

    SAM lets the shell override any variable a function declares, so nothing of this test
    process's environment leaks in; credentials are fake, python3.12 (for `sam build`) is on PATH.
    """
    keep = ("HOME", "LANG", "LC_ALL", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return (
        env
        | FAKE_CREDENTIALS
        | {
            "PATH": f"{SAM.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "SAM_CLI_TELEMETRY": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )


def docker_problem() -> str | None:
    """Why `sam local` cannot run here, or None when it can."""
    if not shutil.which("docker"):
        return "docker is not installed (make docker-engine)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode:
        return "the Docker engine does not answer (make docker-engine)"
    image = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, timeout=30, check=False)
    if image.returncode:
        return f"the Lambda base image {BASE_IMAGE} is missing (make lambda-base-image)"
    if not SAM.exists():
        return f"the SAM CLI is not installed at {SAM} (make setup)"
    return None


def run_sam(args: list[str], *, timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [str(SAM), *args],
        cwd=ROOT,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and completed.returncode:
        raise AssertionError(f"sam {' '.join(args)} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return completed


def build(build_dir: Path) -> Path:
    """`sam build` into build_dir (dependencies cached under .aws-sam/cache); returns the built template."""
    run_sam(["build", "--build-dir", str(build_dir)], timeout=900)
    template = build_dir / "template.yaml"
    assert template.exists(), f"sam build wrote no {template}"
    return template


class _Loader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: dates such as AWSTemplateFormatVersion stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_template(template: Path) -> dict[str, Any]:
    return yaml.load(template.read_text(), _Loader)


def declare_endpoint_variable(template: Path, variable: str = "AWS_ENDPOINT_URL") -> None:
    """Declare `variable` (empty) for every function of a built template, unless the template does.

    `sam local --env-vars` only overrides variables a function declares; this lets it set where
    boto3 sends requests (AWS_ENDPOINT_URL: the emulation) without changing what deploys.
    """
    document = load_template(template)
    variables = (
        document.setdefault("Globals", {})
        .setdefault("Function", {})
        .setdefault("Environment", {})
        .setdefault("Variables", {})
    )
    if variable not in variables:
        variables[variable] = ""
        template.write_text(yaml.safe_dump(document, sort_keys=False))


def functions(template: Path) -> dict[str, dict[str, Any]]:
    """The built template's functions: logical id -> Properties."""
    resources = load_template(template)["Resources"]
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@dataclass
class Answer:
    """An API Gateway proxy answer, decoded."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Invocation:
    """What `sam local invoke` printed: the function's result on stdout, logs on stderr."""

    function: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def result(self) -> Any:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"{self.function} printed no result:\n{self.stderr[-4000:]}"
        return json.loads(lines[-1])

    @property
    def http(self) -> Answer:
        raw = self.result
        assert isinstance(raw, dict), (self.function, raw)
        assert "statusCode" in raw, f"{self.function} answered no proxy response: {raw}\n{self.stderr[-4000:]}"
        headers = {k: v[-1] for k, v in (raw.get("multiValueHeaders") or {}).items()} | (raw.get("headers") or {})
        body = raw.get("body")
        if raw.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        is_json = headers.get("Content-Type", "").startswith("application/json")
        return Answer(raw["statusCode"], json.loads(body) if body and is_json else body, headers)


@dataclass
class SamLocal:
    """`sam local` on a built template, with an --env-vars file (the functions' environment)."""

    template: Path
    env_vars: Path
    workdir: Path

    def _common(self) -> list[str]:
        # SAM looks for samconfig.toml beside --template; the repository's is the one a developer uses.
        return [
            *("--template", str(self.template), "--config-file", str(ROOT / "samconfig.toml")),
            *("--env-vars", str(self.env_vars), "--add-host", ADD_HOST),
        ]

    def invoke(self, function: str, event: dict[str, Any] | Path, *, timeout: float = 180) -> Invocation:
        if isinstance(event, Path):
            event_file = event
        else:
            event_file = self.workdir / f"event-{function}-{time.monotonic_ns()}.json"
            event_file.write_text(json.dumps(event))
        started = time.monotonic()
        completed = run_sam(
            ["local", "invoke", function, "--event", str(event_file), *self._common()], timeout=timeout, check=False
        )
        invocation = Invocation(
            function, completed.returncode, completed.stdout, completed.stderr, time.monotonic() - started
        )
        assert completed.returncode == 0, f"sam local invoke {function} failed:\n{completed.stderr[-4000:]}"
        return invocation

    @contextmanager
    def start_api(self, *, startup_timeout: float = 180) -> Iterator[str]:
        """`sam local start-api` on a free port; yields its base URL and stops it afterwards."""
        port = free_port()
        before = _lambda_containers()
        log = (self.workdir / f"start-api-{port}.log").open("w")
        process = subprocess.Popen(
            [str(SAM), "local", "start-api", "--port", str(port), "--host", "127.0.0.1", *self._common()],
            cwd=ROOT,
            env=sam_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_http(url, process, Path(log.name), startup_timeout)
            yield url
        finally:
            # SAM stops its warm containers on SIGINT / SIGTERM.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()
            # SAM does not always remove its warm containers when it stops: the ones it started here go.
            left = sorted(_lambda_containers() - before)
            if left:
                subprocess.run(["docker", "rm", "--force", *left], capture_output=True, timeout=60, check=False)


LAMBDA_LABEL = "sam.cli.container.type=lambda"  # what SAM labels the containers it runs functions in


def _lambda_containers() -> set[str]:
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={LAMBDA_LABEL}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return set(listed.stdout.split())


def _wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sam local start-api exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.5)
    raise AssertionError(f"sam local start-api did not answer within {timeout}s:\n{log.read_text()[-4000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
