"""`worldland-node`: flags (or WORLDLAND_* variables) in, agent running until SIGTERM / SIGINT.

Seed 004's node took Go-style flags (`-host 1.2.3.4`, `-enable-mining=false`) with some other
names; its command lines keep working and keep their meaning (SEED_* below), or are refused where
the value would be misread.
"""

from __future__ import annotations

import argparse
import logging
import os
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

# Seed 004's names for settings named otherwise here: (the setting, what to tell the user).
SEED_ALIASES: dict[str, tuple[str, str]] = {
    "--hub-http": ("api", "the platform's API"),
    # The seed's --memory-gb was one GPU's memory; host memory offered to rentals is --host-memory-gb.
    "--memory-gb": ("gpu_memory_gb", "one GPU's memory; host memory offered is --host-memory-gb"),
    "--cert-dir": ("state_dir", "where this node keeps its identity"),
}
# Seed 004's flags for what this agent has no use for: accepted and said to be ignored.
SEED_IGNORED: dict[str, str] = {
    "--hub": "it was the seed's mTLS hub address; commands now come over the API (--api, the seed's -hub-http)",
    "--api-port": "it was the seed node's own API port; this agent listens on no port, it long-polls the platform",
}
# Seed 004's flags whose value would be misread here: refused, saying what to use.
SEED_REFUSED: dict[str, str] = {
    "--price-per-sec": "the seed's price was wei per second; this platform prices a GPU-hour: use --price-per-hour",
}
# Set by earlier releases of this agent as host memory; read now it would be ambiguous with seed 004's flag.
AMBIGUOUS_ENV = {
    "WORLDLAND_MEMORY_GB": "set WORLDLAND_HOST_MEMORY_GB (host memory offered) or WORLDLAND_GPU_MEMORY_GB (one GPU's)",
}


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
    for flag, (name, _meaning) in SEED_ALIASES.items():
        target = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=_seed_dest(flag), metavar="VALUE", help=f"seed 004's name for {target}")
    for flag in (*SEED_IGNORED, *SEED_REFUSED):
        parser.add_argument(flag, dest=_seed_dest(flag), metavar="VALUE", help=argparse.SUPPRESS)
    return parser


def _seed_dest(flag: str) -> str:
    return "seed_" + flag[2:].replace("-", "_")


def _long_flags() -> set[str]:
    names = {"--" + name.replace("_", "-") for name in AgentSettings.model_fields}
    negated = {"--no-" + flag[2:] for flag in names}
    return names | negated | set(SEED_ALIASES) | set(SEED_IGNORED) | set(SEED_REFUSED) | {"--help", "--version"}


def double_dashed(argv: Sequence[str]) -> list[str]:
    """Seed 004's Go spelling `-host X` / `-enable-mining=false` as `--host X` (argparse would read `-host`
    as -h). Only known flag names are touched, and nothing after a bare `--`."""
    known, out = _long_flags(), list[str]()
    for position, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[position:])
        single = arg.startswith("-") and not arg.startswith("--")
        out.append("-" + arg if single and "-" + arg.split("=", 1)[0] in known else arg)
    return out


def _apply_seed_flags(given: dict[str, Any], notes: list[str]) -> None:
    """Seed 004's flags into this agent's settings, keeping the seed's meaning; `notes` says what was done."""
    for flag, why in SEED_REFUSED.items():
        if given.pop(_seed_dest(flag), None) is not None:
            raise SystemExit(f"worldland-node: {flag} is not taken: {why}")
    for flag, (name, meaning) in SEED_ALIASES.items():
        value = given.pop(_seed_dest(flag), None)
        if value is None:
            continue
        target = "--" + name.replace("_", "-")
        if name in given and given[name] != value:
            raise SystemExit(f"worldland-node: {flag} (seed 004's {target}) and {target} disagree; give one")
        given[name] = value
        notes.append(f"{flag} (seed 004) read as {target}: {meaning}")
    ignored = [flag for flag in SEED_IGNORED if given.pop(_seed_dest(flag), None) is not None]
    if "--hub" in ignored and "api" not in given and "WORLDLAND_API" not in os.environ:
        raise SystemExit(f"worldland-node: --hub is not used: {SEED_IGNORED['--hub']}")
    notes.extend(f"{flag} (seed 004) ignored: {SEED_IGNORED[flag]}" for flag in ignored)


def load_settings(argv: Sequence[str] | None = None, notes: list[str] | None = None) -> AgentSettings:
    """Flags over environment over defaults; exits with the validation errors (never the values) when invalid.

    `notes` receives what was made of seed 004's flags, for the log once it is set up."""
    for name, instead in AMBIGUOUS_ENV.items():
        if name in os.environ:
            raise SystemExit(f"worldland-node: {name} is not read (ambiguous): {instead}")
    arguments = double_dashed(sys.argv[1:] if argv is None else argv)
    given: dict[str, Any] = vars(build_parser().parse_args(arguments))
    _apply_seed_flags(given, notes if notes is not None else [])
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
    notes: list[str] = []
    settings = load_settings(argv, notes)
    agent = Agent(settings, configure_logging(settings.log_level))
    for note in notes:
        log.warning("%s", note)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received; stopping (rentals keep running)", signal.Signals(signum).name)
        stop.set()
        agent.stopping.set()  # start-up steps waiting for the engine or the platform give up too

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.start()
    except GpuConfigError as error:
        log.error("%s", error)
        return 2
    except SystemExit:  # stopped while start-up waited for the platform or the engine
        agent.stop()
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
