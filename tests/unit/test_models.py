import pytest
from pydantic import ValidationError

from tests.support import job_body
from worldland.models.jobs import CreateJobRequest
from worldland.models.providers import ProviderSpec

VALID_JOB = job_body()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpu_count", 0),
        ("cpu_cores", 1),
        ("cpu_cores", 65),
        ("memory_gb", 7),
        ("memory_gb", 257),
        ("storage_gb", 19),
        ("storage_gb", 501),
        ("duration_hours", 0),
        ("duration_hours", 721),
        ("image", "UPPER/case"),
        ("image", "has space"),
        ("ssh_password", "short"),
        ("ssh_public_key", "not a key"),
        ("unknown_field", 1),
    ],
)
def test_job_limits_from_the_seed_are_enforced(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        CreateJobRequest.model_validate(VALID_JOB | {field: value})


@pytest.mark.parametrize(
    "image",
    [
        "pytorch/pytorch:latest",
        "tensorflow/tensorflow:latest-gpu",
        "localhost/worldland-base:latest",
        "registry.example.com:5000/team/img:v1.2",
        "ubuntu",
        "nvidia/cuda@sha256:" + "a" * 64,
    ],
)
def test_common_image_references_are_accepted(image: str) -> None:
    assert CreateJobRequest.model_validate(VALID_JOB | {"image": image}).image == image


@pytest.mark.parametrize(
    ("edge", "value"),
    [("cpu_cores", 2), ("cpu_cores", 64), ("memory_gb", 8), ("memory_gb", 256), ("duration_hours", 720)],
)
def test_range_edges_are_inside(edge: str, value: int) -> None:
    CreateJobRequest.model_validate(VALID_JOB | {edge: value})


def test_gpu_list_must_match_total() -> None:
    spec = {
        "hostname": "h",
        "public_ip": "10.0.0.1",
        "total_gpus": 4,
        "gpus": [{"name": "A", "memory": 1}, {"name": "B", "memory": 1}],
        "cpu_cores": 8,
        "total_memory_mb": 16384,
        "available_disk_gb": 100,
    }
    with pytest.raises(ValidationError, match="one entry per GPU"):
        ProviderSpec.model_validate(spec)


def test_public_ip_must_be_an_address() -> None:
    spec = {
        "hostname": "h",
        "public_ip": "not-an-ip",
        "total_gpus": 1,
        "gpus": [{"name": "Tesla T4", "memory": 15360}],
        "cpu_cores": 8,
        "total_memory_mb": 16384,
        "available_disk_gb": 100,
    }
    with pytest.raises(ValidationError):
        ProviderSpec.model_validate(spec)
