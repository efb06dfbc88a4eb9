"""The local stack as a child process, for tests and benchmarks: started, awaited, stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.local_stack.stack import ROOT

READY = "LOCAL_STACK_READY "


@dataclass
class RunningStack:
    api_url: str
    aws_endpoint: str
    region: str
    resources: dict[str, str]
    log_path: Path

    def boto3_client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def running_stack(
    log_path: Path,
    parameter_overrides: str = "",
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
    port: int = 0,
) -> Iterator[RunningStack]:
    """`python -m tests.local_stack` (on a free port unless `port`) until its ready line; its output goes to `log_path`.

    No agent of its own (NO_AGENT=1): tests and benches start the agents they need."""
    env = (
        {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
        | {"PYTHONUNBUFFERED": "1", "NO_AGENT": "1"}
        | (extra_env or {})
    )
    command = [
        *(sys.executable, "-m", "tests.local_stack"),
        *("--port", str(port), "--parameter-overrides", parameter_overrides),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    # Append mode: the child's stderr and the drain thread both write; O_APPEND keeps them from clobbering.
    log = log_path.open("a", buffering=1)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    ready: dict[str, Any] = {}
    found = threading.Event()

    def drain() -> None:
        # Keep reading so the pipe never fills; handler logs go on to the log file.
        assert process.stdout
        for line in process.stdout:
            if line.startswith(READY) and not found.is_set():
                ready.update(json.loads(line[len(READY) :]))
                found.set()
            else:
                log.write(line)
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not found.wait(timeout) or not ready:
            raise RuntimeError(f"the local stack did not start; its output is in {log_path}:\n{_tail(log_path)}")
        yield RunningStack(ready["api_url"], ready["aws_endpoint"], ready["region"], ready["resources"], log_path)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(path: Path, lines: int = 40) -> str:
    log_lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(log_lines[-lines:])
