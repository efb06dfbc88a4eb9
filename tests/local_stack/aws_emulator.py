"""The embedded AWS: moto's server, with DynamoDB's atomicity given back.

moto's server loses updates under concurrent conditional writes (checked: a counter of 100
decremented by 200 threads with `avail >= :n` let up to 104 through). DynamoDB never does, so
every DynamoDB request runs under one lock, its response read inside the lock. Other services
stay unlocked, so SQS long polls still return within milliseconds of a send.

    python -m tests.local_stack.aws_emulator [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class DynamoDBSerializer:
    """WSGI middleware: one DynamoDB request at a time, response body read inside the lock."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                return [b"".join(self.app(environ, start_response))]
        return self.app(environ, start_response)


def serve(host: str, port: int) -> None:
    app = DynamoDBSerializer(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    # The parent reads this line to learn the port (port 0 picks a free one).
    print(f"AWS_EMULATOR_PORT {server.server_port}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Embedded AWS (moto) with serialized DynamoDB requests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
