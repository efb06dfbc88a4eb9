"""GPU detection: NVML through a lazily imported pynvml, or the --gpu-* flags when there is none."""

from __future__ import annotations

import logging
import sys
import types
from typing import Any

import pytest
from worldland_node.gpus import GpuConfigError, detect_gpus, gpu_metrics, load_nvml

from worldland.models.providers import HeartbeatRequest, ProviderSpec


class _NvmlError(Exception):
    pass


def fake_pynvml(names: list[str], memory_mib: int = 24564) -> types.ModuleType:
    """The calls the agent makes, answering as pynvml does on a host with these GPUs."""
    module = types.ModuleType("pynvml")
    ns: Any = types.SimpleNamespace
    module.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    module.nvmlInit = lambda: None  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(names)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: names[h].encode()  # type: ignore[attr-defined]  # old pynvml: bytes
    module.nvmlDeviceGetMemoryInfo = lambda h: ns(  # type: ignore[attr-defined]
        total=memory_mib * 2**20, used=(1000 + h) * 2**20, free=0
    )
    module.nvmlDeviceGetUtilizationRates = lambda h: ns(gpu=10 * h, memory=5)  # type: ignore[attr-defined]
    module.nvmlDeviceGetTemperature = lambda h, sensor: 40 + h  # type: ignore[attr-defined]
    return module


def test_without_pynvml_the_log_says_so_and_flags_are_required(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given no pynvml module at all
    monkeypatch.setitem(sys.modules, "pynvml", None)
    caplog.set_level(logging.WARNING)
    nvml = load_nvml()
    # Then NVML is reported missing, and without GPU flags the agent refuses to run, saying which flags
    assert nvml is None
    assert "NVML unavailable" in caplog.text
    with pytest.raises(GpuConfigError, match="--gpu-type, --gpu-count and --gpu-memory-gb"):
        detect_gpus(None, None, None, None)
    with pytest.raises(GpuConfigError):
        detect_gpus(None, "NVIDIA GeForce RTX 4090", 4, None)  # all three are needed


def test_without_the_driver_library_nvml_is_reported_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = fake_pynvml([])

    def no_library() -> None:
        raise _NvmlError("NVML Shared Library Not Found")

    module.nvmlInit = no_library  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    caplog.set_level(logging.WARNING)
    assert load_nvml() is None
    assert "NVML Shared Library Not Found" in caplog.text


def test_declared_gpus_register_as_one_entry() -> None:
    inventory = detect_gpus(None, "NVIDIA GeForce RTX 4090", 4, 24)
    assert not inventory.detected
    assert [g.index for g in inventory.gpus] == [0, 1, 2, 3]
    assert inventory.registration() == [{"name": "NVIDIA GeForce RTX 4090", "memory": 24576}]
    assert gpu_metrics(None) == []


def test_nvml_gpus_are_detected_and_their_metrics_fit_the_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a host whose NVML shows two RTX 4090s
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(["NVIDIA GeForce RTX 4090"] * 2))
    nvml = load_nvml()
    assert nvml is not None
    inventory = detect_gpus(nvml, None, None, None)
    # Then the registration spec is what the platform takes
    assert inventory.detected
    spec = ProviderSpec.model_validate(
        {
            "hostname": "h",
            "public_ip": "127.0.0.1",
            "total_gpus": len(inventory.gpus),
            "gpus": inventory.registration(),
            "cpu_cores": 8,
            "total_memory_mb": 65536,
            "available_disk_gb": 100,
        }
    )
    assert spec.gpus[0].name == "NVIDIA GeForce RTX 4090"
    assert spec.gpus[0].memory == 24564
    # And each GPU's metrics have the heartbeat's shape
    metrics = gpu_metrics(nvml)
    assert metrics[1] == {
        "index": 1,
        "name": "NVIDIA GeForce RTX 4090",
        "utilization_pct": 10.0,
        "temperature_c": 41.0,
        "memory_used_mb": 1001,
        "memory_total_mb": 24564,
    }
    HeartbeatRequest.model_validate({"status": "Available", "active_jobs": 0, "gpu_metrics": metrics})


def test_mixed_gpus_register_one_entry_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(["NVIDIA A100-SXM4-80GB", "Tesla T4"]))
    inventory = detect_gpus(load_nvml(), None, None, None)
    assert [e["name"] for e in inventory.registration()] == ["NVIDIA A100-SXM4-80GB", "Tesla T4"]


def test_flags_override_what_nvml_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(["NVIDIA GeForce RTX 4090"] * 2))
    inventory = detect_gpus(load_nvml(), None, 1, 20)
    assert inventory.registration() == [{"name": "NVIDIA GeForce RTX 4090", "memory": 20480}]
    assert len(inventory.gpus) == 1
