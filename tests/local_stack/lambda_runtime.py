"""Run handlers as Lambda runs them: per function, warm worker processes ("containers") holding exactly
that function's environment, its code and its layers on sys.path, called with an event and a context."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import sys
import time
import traceback
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from tests.local_stack.template import ACCOUNT_ID, Function

log = logging.getLogger("local_stack.lambda")


@dataclass
class LambdaContext:
    """The context object Lambda passes to handlers (picklable: it crosses into the worker)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


class LambdaError(Exception):
    """The function failed (raised, or timed out), as Lambda reports it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


_handler: Any = None


def _start_container(environment: dict[str, str], paths: list[str], handler: str) -> None:
    """Worker initializer: the function's environment and code, imported once (the cold start)."""
    global _handler
    os.environ.clear()
    os.environ.update(environment)
    sys.path[:0] = paths
    module_name, _, function_name = handler.rpartition(".")
    _handler = getattr(importlib.import_module(module_name), function_name)


def _invoke(event: dict[str, Any], context: LambdaContext) -> tuple[str, Any]:
    try:
        return "ok", _handler(event, context)
    except Exception as exc:
        traceback.print_exc()
        return "error", {"errorType": type(exc).__name__, "errorMessage": str(exc)}


class LambdaRuntime:
    def __init__(
        self, functions: dict[str, Function], base_environment: dict[str, str], region: str, concurrency: int = 8
    ) -> None:
        self.functions = functions
        self.base_environment = base_environment
        self.region = region
        self.concurrency = concurrency
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._context = multiprocessing.get_context("spawn")

    def _environment(self, function: Function) -> dict[str, str]:
        name = f"{self.base_environment.get('STACK_NAME', 'worldland-local')}-{function.logical_id}"
        return (
            self.base_environment
            | {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "LAMBDA_TASK_ROOT": str(function.code_uri),
                "_HANDLER": function.handler,
                # No X-Ray daemon here.
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            | function.environment
        )

    def _pool(self, logical_id: str) -> ProcessPoolExecutor:
        if logical_id not in self._pools:
            function = self.functions[logical_id]
            paths = [str(function.code_uri), *(str(p) for p in function.layers)]
            self._pools[logical_id] = ProcessPoolExecutor(
                max_workers=self.concurrency,
                mp_context=self._context,
                initializer=_start_container,
                initargs=(self._environment(function), paths, function.handler),
            )
        return self._pools[logical_id]

    def submit(self, logical_id: str, event: dict[str, Any]) -> Future[tuple[str, Any]]:
        function = self.functions[logical_id]
        context = LambdaContext(
            function_name=function.logical_id,
            memory_limit_in_mb=function.memory,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function.logical_id}",
            aws_request_id=str(uuid.uuid4()),
            deadline=time.time() + function.timeout,
            log_group_name=f"/aws/lambda/{function.logical_id}",
        )
        return self._pool(logical_id).submit(_invoke, event, context)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """The handler's result; LambdaError when it raised or ran past its Timeout."""
        function = self.functions[logical_id]
        future = self.submit(logical_id, event)
        try:
            # A cold start (spawning the worker and importing) is not counted against Timeout here.
            status, value = future.result(timeout=function.timeout + 30)
        except FutureTimeout as exc:
            raise LambdaError("TimeoutError", f"{logical_id} timed out after {function.timeout} s") from exc
        if status == "error":
            raise LambdaError(value["errorType"], value["errorMessage"])
        return value

    def shutdown(self) -> None:
        for pool in self._pools.values():
            # Workers may sit in a long poll; they are containers, so stop them outright.
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
