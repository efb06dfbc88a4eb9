"""What the host offers besides GPUs: name, CPU cores, memory and disk (no psutil needed)."""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostResources:
    hostname: str
    cpu_cores: int
    total_memory_mb: int
    available_disk_gb: int


def detect_host(disk_path: Path, hostname: str | None = None) -> HostResources:
    """`disk_path` is where rentals' layers land (the Docker root directory when it is readable)."""
    return HostResources(
        hostname=hostname or registrable_hostname(socket.gethostname()),
        cpu_cores=cpu_cores(),
        total_memory_mb=total_memory_mb(),
        available_disk_gb=shutil.disk_usage(disk_path if disk_path.exists() else Path("/")).free // 2**30,
    )


def cpu_cores() -> int:
    # The cores this process may run on (cgroup/affinity aware), which is what containers can get too.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def total_memory_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024  # kB
    raise RuntimeError(f"no MemTotal in {meminfo}")


def registrable_hostname(name: str) -> str:
    """The platform takes [A-Za-z0-9][A-Za-z0-9.-]*: underscores and the like become dashes."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]", "-", name).lstrip(".-")
    return cleaned or "worldland-node"
