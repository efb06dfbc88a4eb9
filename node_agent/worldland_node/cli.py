"""`worldland-node`: flags (or WORLDLAND_* variables) in, agent running until SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from pydantic import ValidationError

from worldland_node import __version__
from worldland_node.agent import Agent
from worldland_node.gpus import GpuConfigError
from worldland_node.redaction import RedactingFilter
from worldland_node.settings import AgentSettings

log = logging.getLogger("worldland_node")


def build_parser() -> argparse.ArgumentParser:
    """One flag per settings field (--private-key-file for private_key_file), help from its description."""
    parser = argparse.ArgumentParser(
        prog="worldland-node",
        description="WorldLand Cloud provider agent. Every flag can also be set as WORLDLAND_<NAME> "
        "(e.g. WORLDLAND_API, WORLDLAND_PRIVATE_KEY_FILE); flags win.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for name, field in AgentSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = f"WORLDLAND_{name.upper()}"
        default = "" if field.is_required() else f" (default: {field.default})"
        if field.annotation is bool:
            # --enable-mining, --enable-mining=false (seed 004's spelling) and --no-enable-mining all work.
            parser.add_argument(
                flag,
                dest=name,
                nargs="?",
                const="true",
                default=argparse.SUPPRESS,
                metavar="true|false",
                help=f"{field.description} [{env}]{default}",
            )
            parser.add_argument(
                "--no-" + flag[2:],
                dest=name,
                action="store_const",
                const="false",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
        else:
            parser.add_argument(
                flag,
                dest=name,
                default=argparse.SUPPRESS,
                metavar=name.split("_")[-1].upper(),
                help=f"{field.description} [{env}]{default}",
            )
    return parser


def load_settings(argv: Sequence[str] | None = None) -> AgentSettings:
    """Flags over environment over defaults; exits with the validation errors (never the values) when invalid."""
    given: dict[str, Any] = vars(build_parser().parse_args(argv))
    try:
        return AgentSettings(**given)
    except ValidationError as error:
        problems = "; ".join(
            f"--{'-'.join(map(str, e['loc'])).replace('_', '-') or 'settings'}: {e['msg']}" for e in error.errors()
        )
        raise SystemExit(f"worldland-node: invalid settings: {problems}") from None


def configure_logging(level: str) -> RedactingFilter:
    """stderr (journald under systemd), every line through the redacting filter, which is returned."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    redactor = RedactingFilter()
    handler.addFilter(redactor)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # The SDKs' debug chatter (urllib3 connection lines, docker API calls) is not the agent's story.
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    return redactor


def main(argv: Sequence[str] | None = None) -> int:
    settings = load_settings(argv)
    agent = Agent(settings, configure_logging(settings.log_level))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received; stopping (rentals keep running)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.start()
    except GpuConfigError as error:
        log.error("%s", error)
        return 2
    except SystemExit:
        return 0
    except Exception as error:
        log.error("could not start: %s", error)
        log.debug("start failure", exc_info=True)
        agent.stop()
        return 1
    while not stop.wait(1):
        pass
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
