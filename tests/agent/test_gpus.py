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


class NVMLError_NotSupported(Exception):  # pynvml's own spelling
    pass


def test_a_metric_a_gpu_does_not_support_is_unknown_not_a_failed_heartbeat(caplog: pytest.LogCaptureFixture) -> None:
    # Given three GPUs: one without utilization, one without a temperature sensor, one NVML cannot open at all
    module = fake_pynvml(["Tesla T4"] * 3)

    def utilization(handle: int) -> Any:
        if handle == 0:
            raise NVMLError_NotSupported("Not Supported")
        return types.SimpleNamespace(gpu=50, memory=5)

    def temperature(handle: int, sensor: int) -> int:
        if handle == 1:
            raise NVMLError_NotSupported("Not Supported")
        return 60

    def handle_by_index(index: int) -> int:
        if index == 2:
            raise _NvmlError("GPU is lost")
        return index

    module.nvmlDeviceGetUtilizationRates = utilization  # type: ignore[attr-defined]
    module.nvmlDeviceGetTemperature = temperature  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = handle_by_index  # type: ignore[attr-defined]
    caplog.set_level(logging.WARNING)
    # When the heartbeat's metrics are read, twice, by one agent
    said: set[str] = set()
    metrics = gpu_metrics(module, said)
    gpu_metrics(module, said)
    # Then each GPU says what is known, None for the rest, and the platform takes it
    assert metrics[0]["utilization_pct"] is None
    assert metrics[0]["temperature_c"] == 60.0
    assert metrics[1]["utilization_pct"] == 50.0
    assert metrics[1]["temperature_c"] is None
    assert metrics[1]["memory_total_mb"] == 24564
    assert metrics[2] == {
        "index": 2,
        "name": None,
        "utilization_pct": None,
        "temperature_c": None,
        "memory_used_mb": None,
        "memory_total_mb": None,
    }
    HeartbeatRequest.model_validate({"status": "Available", "active_jobs": 0, "gpu_metrics": metrics})
    # And each unreadable metric is logged once, not at every heartbeat
    assert caplog.text.count("GPU 0 utilization unreadable") == 1
    assert caplog.text.count("GPU 2 unreadable") == 1


def test_a_reading_outside_what_the_platform_takes_is_unknown() -> None:
    module = fake_pynvml(["Tesla T4"])
    module.nvmlDeviceGetTemperature = lambda h, sensor: 255  # type: ignore[attr-defined]  # a sensor's error value
    (metric,) = gpu_metrics(module)
    assert metric["temperature_c"] is None
    HeartbeatRequest.model_validate({"gpu_metrics": [metric]})


def test_no_gpu_count_means_no_metrics(caplog: pytest.LogCaptureFixture) -> None:
    module = fake_pynvml(["Tesla T4"])

    def count() -> int:
        raise _NvmlError("Unknown Error")

    module.nvmlDeviceGetCount = count  # type: ignore[attr-defined]
    assert gpu_metrics(module) == []
