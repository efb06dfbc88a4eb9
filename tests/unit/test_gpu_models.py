import pytest

from worldland.domain.gpu_models import gpu_label


@pytest.mark.parametrize(
    ("name", "memory_mb", "label"),
    [
        ("NVIDIA GeForce RTX 4090", 24564, "RTX-4090"),
        ("NVIDIA GeForce RTX 3090", 24576, "RTX-3090"),
        ("NVIDIA GeForce RTX 3090 Ti", None, "RTX-3090-Ti"),
        ("Tesla T4", 15360, "Tesla-T4"),
        ("NVIDIA A100-SXM4-80GB", 81920, "A100-80GB"),
        ("NVIDIA A100-PCIE-40GB", 40960, "A100-40GB"),
        ("NVIDIA H100 80GB HBM3", 81559, "H100-80GB"),
        ("NVIDIA H100 PCIe", 81559, "H100-80GB"),
        ("NVIDIA RTX A6000", 49140, "RTX-A6000"),
        ("Tesla V100-SXM2-16GB", None, "Tesla-V100-16GB"),
        ("NVIDIA L4", 23034, "L4"),
    ],
)
def test_nvml_names_become_labels(name: str, memory_mb: int | None, label: str) -> None:
    assert gpu_label(name, memory_mb) == label


@pytest.mark.parametrize("label", ["RTX-4090", "A100-80GB", "Tesla-T4", "RTX-A6000", "H100-80GB"])
def test_labels_are_fixed_points(label: str) -> None:
    # Given a label a customer typed, When it is normalised, Then it is unchanged (search accepts both).
    assert gpu_label(label) == label


def test_case_and_spacing_do_not_matter() -> None:
    assert gpu_label("rtx 4090") == gpu_label("NVIDIA  GeForce RTX 4090") == "RTX-4090"


@pytest.mark.parametrize("name", ["", "   ", "NVIDIA", "NVIDIA GeForce"])
def test_empty_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a GPU model name"):
        gpu_label(name)
