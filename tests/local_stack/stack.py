"""The local stack: the embedded AWS, the template's resources in it, and the application around them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.local_stack.api_gateway import ApiGateway
from tests.local_stack.event_sources import EventSources
from tests.local_stack.lambda_runtime import LambdaRuntime
from tests.local_stack.provision import Physical, provision
from tests.local_stack.template import load_template

log = logging.getLogger("local_stack")
ROOT = Path(__file__).resolve().parents[2]


class _KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any) -> None:  # the gateway logs each request itself
        pass


@dataclass
class LocalStack:
    template_path: Path = ROOT / "template.yaml"
    host: str = "127.0.0.1"
    port: int = 3000
    parameter_overrides: str = ""
    stack_name: str = "worldland-local"
    region: str = "us-east-1"
    emulator_host: str = "127.0.0.1"
    concurrency: int = 8
    aws_endpoint: str = ""
    physical: Physical | None = None
    _emulator: subprocess.Popen[str] | None = None
    _server: Any = None
    _sources: EventSources | None = None
    _runtime: LambdaRuntime | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> LocalStack:
        # Parameters are checked first: like `sam deploy`, an invalid override starts nothing.
        template = load_template(self.template_path, self.parameter_overrides, self.stack_name, self.region)
        # Fake credentials unless real ones are wanted (AWS_ENDPOINT_URL set to something else).
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ["AWS_DEFAULT_REGION"] = self.region
        self.aws_endpoint = os.environ.get("AWS_ENDPOINT_URL") or self._start_emulator()
        os.environ["AWS_ENDPOINT_URL"] = self.aws_endpoint  # boto3 reaches the emulation only through this
        self.physical = provision(template, boto3.client, self.stack_name, self.region)
        functions = template.functions(self.physical)
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "STACK_NAME": self.stack_name,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
            "PYTHONUNBUFFERED": "1",
        }
        self._runtime = LambdaRuntime(functions, base, self.region, self.concurrency)
        gateway = ApiGateway(template, self._runtime, self.region)
        self._server = make_server(self.host, self.port, gateway, threaded=True, request_handler=_KeepAliveHandler)
        serving = threading.Thread(target=self._server.serve_forever, daemon=True, name="api-gateway")
        serving.start()
        arns = {arn: self.physical.refs[lid] for (lid, attr), arn in self.physical.attributes.items() if attr == "Arn"}
        self._sources = EventSources(template, functions, self._runtime, boto3.client("sqs"), arns, self.region)
        self._sources.start(lambda value: template.resolve(value, self.physical))
        return self

    def _start_emulator(self) -> str:
        command = [sys.executable, "-m", "tests.local_stack.aws_emulator", "--host", self.emulator_host, "--port", "0"]
        self._emulator = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self._emulator.stdout
        line = self._emulator.stdout.readline()
        if not line.startswith("AWS_EMULATOR_PORT "):
            raise RuntimeError(f"the AWS emulator did not start: {line!r}")
        port = int(line.split()[1])
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(endpoint)
        return endpoint

    def stop(self) -> None:
        if self._sources:
            self._sources.stop()
        if self._server:
            self._server.shutdown()
        if self._runtime:
            self._runtime.shutdown()
        if self._emulator:
            self._emulator.terminate()
            try:
                self._emulator.wait(10)
            except subprocess.TimeoutExpired:
                self._emulator.kill()


def _wait_until_up(endpoint: str, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the AWS emulator at {endpoint} did not answer")
