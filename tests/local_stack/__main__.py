"""`python -m tests.local_stack`: the whole platform on this machine (what `make run` starts)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from tests.local_stack.local_agent import start_local_agent, stop_local_agent
from tests.local_stack.stack import ROOT, LocalStack
from tests.local_stack.template import ParameterError


def main() -> None:
    parser = argparse.ArgumentParser(description="Run template.yaml locally: embedded AWS, API, schedules, queues.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--parameter-overrides",
        default=os.environ.get("PARAMETER_OVERRIDES", ""),
        help='as sam deploy takes them, e.g. "HeartbeatStaleSeconds=20 StalenessCheckSeconds=5"',
    )
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--stack-name", default=os.environ.get("STACK_NAME", "worldland-local"))
    parser.add_argument(
        "--emulator-host",
        default=os.environ.get("EMULATOR_HOST", "127.0.0.1"),
        help="where the embedded AWS listens (0.0.0.0 lets containers reach it)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    try:
        stack = LocalStack(
            template_path=args.template,
            host=args.host,
            port=args.port,
            parameter_overrides=args.parameter_overrides,
            stack_name=args.stack_name,
            emulator_host=args.emulator_host,
            concurrency=int(os.environ.get("LAMBDA_CONCURRENCY", "8")),
        ).start()
    except ParameterError as refused:  # an unknown or invalid override, refused as sam deploy would
        parser.exit(2, f"{parser.prog}: {refused}\n")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    log = logging.getLogger("local_stack")
    log.info("API        %s/api/v1", stack.api_url)
    log.info("OpenAPI    %s/api/v1/docs  (?format=json for the document)", stack.api_url)
    log.info("AWS        %s  (AWS_ENDPOINT_URL for boto3 and the aws CLI)", stack.aws_endpoint)
    if args.parameter_overrides:
        log.info("parameters %s", args.parameter_overrides)
    assert stack.physical is not None
    ready = {
        "api_url": stack.api_url,
        "aws_endpoint": stack.aws_endpoint,
        "region": stack.region,
        "stack_name": stack.stack_name,
        "resources": stack.physical.refs,
    }
    print(f"LOCAL_STACK_READY {json.dumps(ready)}", flush=True)
    agent = start_local_agent(stack.api_url)
    done.wait()
    log.info("stopping")
    stop_local_agent(agent)
    stack.stop()


if __name__ == "__main__":
    main()
