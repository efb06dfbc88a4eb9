"""The host's GPUs through NVML (pynvml, imported lazily), or as the --gpu-* flags declare them."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class GpuConfigError(Exception):
    """No GPUs can be known: NVML is missing and the flags do not describe them."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mb: int


@dataclass(frozen=True)
class GpuInventory:
    gpus: tuple[Gpu, ...]
    detected: bool  # True when NVML saw them; False when they come from flags

    def registration(self) -> list[dict[str, Any]]:
        """The spec's `gpus`: one entry when all GPUs are the same model, else one per GPU (as the API takes)."""
        entries = [{"name": g.name, "memory": g.memory_mb} for g in self.gpus]
        return entries[:1] if all(e == entries[0] for e in entries) else entries


def load_nvml() -> ModuleType | None:
    """pynvml initialised, or None (with the reason logged) when the bindings or the driver are missing."""
    try:
        pynvml = importlib.import_module("pynvml")
    except ImportError:
        log.warning("NVML unavailable: the pynvml module (pip install nvidia-ml-py) is not installed")
        return None
    try:
        pynvml.nvmlInit()
    except Exception as error:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...: all mean "no NVML here"
        log.warning("NVML unavailable: %s (is the NVIDIA driver installed? `nvidia-smi` should work)", error)
        return None
    return pynvml


def detect_gpus(
    nvml: ModuleType | None, gpu_type: str | None, gpu_count: int | None, gpu_memory_gb: int | None
) -> GpuInventory:
    """NVML's GPUs, with any flag overriding what NVML says; without NVML, the flags are required."""
    if nvml is not None:
        found = _nvml_gpus(nvml)
        if found and not gpu_type and not gpu_count and not gpu_memory_gb:
            return GpuInventory(found, detected=True)
        if found:
            count = gpu_count or len(found)
            name = gpu_type or found[0].name
            memory = gpu_memory_gb * 1024 if gpu_memory_gb else found[0].memory_mb
            log.info("GPU flags override NVML: %d x %s, %d MiB", count, name, memory)
            return GpuInventory(tuple(Gpu(i, name, memory) for i in range(count)), detected=True)
        log.warning("NVML reports no GPUs")
    if not (gpu_type and gpu_count and gpu_memory_gb):
        raise GpuConfigError(
            "no GPUs detected through NVML; to run anyway, declare them with --gpu-type, --gpu-count and "
            "--gpu-memory-gb (WORLDLAND_GPU_TYPE, WORLDLAND_GPU_COUNT, WORLDLAND_GPU_MEMORY_GB)"
        )
    log.warning(
        "using the declared GPUs without NVML: %d x %s (%d GB); rentals get no GPU devices and heartbeats no metrics",
        gpu_count,
        gpu_type,
        gpu_memory_gb,
    )
    return GpuInventory(tuple(Gpu(i, gpu_type, gpu_memory_gb * 1024) for i in range(gpu_count)), detected=False)


def gpu_metrics(nvml: ModuleType | None, said: set[str] | None = None) -> list[dict[str, Any]]:
    """Per-GPU utilization, temperature and memory for the heartbeat; [] without NVML.

    Each metric is read on its own: a GPU that does not support one (NVMLError_NotSupported is common
    for utilization and temperature on some boards) reports None for it, never failing the heartbeat.
    `said` (the caller's, kept across heartbeats) holds the metrics already logged as unreadable, so
    each is said once rather than every 30 s."""
    if nvml is None:
        return []
    said = set() if said is None else said
    count = _read("GPU count", lambda: int(nvml.nvmlDeviceGetCount()), said)
    return [_one_gpu(nvml, index, said) for index in range(count or 0)]


def _one_gpu(nvml: ModuleType, index: int, said: set[str]) -> dict[str, Any]:
    metrics: dict[str, Any] = {"index": index} | dict.fromkeys(
        ("name", "utilization_pct", "temperature_c", "memory_used_mb", "memory_total_mb")
    )
    handle = _read(f"GPU {index}", lambda: nvml.nvmlDeviceGetHandleByIndex(index), said)
    if handle is None:
        return metrics
    metrics["name"] = _read(f"GPU {index} name", lambda: _text(nvml.nvmlDeviceGetName(handle))[:128], said)
    utilization = _read(f"GPU {index} utilization", lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu), said)
    metrics["utilization_pct"] = _within(utilization, 0, 100)
    temperature = _read(
        f"GPU {index} temperature",
        lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
        said,
    )
    metrics["temperature_c"] = _within(temperature, -50, 150)
    memory = _read(f"GPU {index} memory", lambda: _memory_mb(nvml.nvmlDeviceGetMemoryInfo(handle)), said)
    if memory is not None:
        metrics["memory_used_mb"], metrics["memory_total_mb"] = memory
    return metrics


def _read(what: str, read: Callable[[], T], said: set[str]) -> T | None:
    try:
        return read()
    except Exception as error:  # NVMLError_NotSupported, _GpuIsLost, _Unknown, ...: that metric is unknown
        if what not in said:
            said.add(what)
            log.warning("NVML: %s unreadable (%s: %s); reported as unknown", what, type(error).__name__, error)
        return None


def _within(value: float | None, low: float, high: float) -> float | None:
    # A reading outside what the platform accepts (a sensor's error value) is unknown, not a failed heartbeat.
    return value if value is not None and low <= value <= high else None


def _memory_mb(memory: Any) -> tuple[int, int]:
    """(used, total) in MiB."""
    return int(memory.used) // 2**20, int(memory.total) // 2**20


def _nvml_gpus(nvml: ModuleType) -> tuple[Gpu, ...]:
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        gpus.append(
            Gpu(index, _text(nvml.nvmlDeviceGetName(handle)), int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // 2**20)
        )
    return tuple(gpus)


def _text(value: str | bytes) -> str:
    # Older pynvml releases return bytes.
    return value.decode() if isinstance(value, bytes) else value
