"""GPU model labels (`RTX-4090`, `A100-80GB`, `Tesla-T4`) derived from NVML names."""

from __future__ import annotations

import re

_VENDOR_WORDS = {"NVIDIA", "GEFORCE"}
# Form-factor and memory-type words say nothing a renter chooses by.
_NOISE = re.compile(r"^(PCIE|PCI-E|SXM\d*|HBM\d*E?|NVL|MIG|DGX)$", re.IGNORECASE)
_MEMORY = re.compile(r"^(\d+)\s*GB$", re.IGNORECASE)
# Parts sold in several memory sizes: the size is part of what a renter asks for.
_SIZED_PARTS = {"A100", "A800", "H100", "H200", "H800", "V100"}
_ACRONYMS = {"RTX", "GTX"}


def gpu_label(name: str, memory_mb: int | None = None) -> str:
    """Turn an NVML product name into the label used as a capacity key and search filter.

    Data-centre parts that come in several memory sizes carry it (`A100-80GB`); the memory is
    taken from the name, or from `memory_mb` when the name lacks it. Labels are idempotent:
    `gpu_label("RTX-4090") == "RTX-4090"`.
    """
    words = [w for w in re.split(r"[\s_]+|-(?=[A-Za-z]*\d)|(?<=\d)-", name.strip()) if w]
    words = [w for w in words if w.upper() not in _VENDOR_WORDS and not _NOISE.match(w)]
    memory = next((m.group(1) for w in words if (m := _MEMORY.match(w))), None)
    words = [w for w in words if not _MEMORY.match(w)]
    if not words:
        raise ValueError(f"not a GPU model name: {name!r}")
    label_words = [_canonical(w) for w in words]
    if any(w in _SIZED_PARTS for w in label_words):
        if memory is None and memory_mb:
            memory = str(round(memory_mb / 1024))
        if memory:
            label_words.append(f"{memory}GB")
    return "-".join(label_words)


def _canonical(word: str) -> str:
    # Model codes are upper case ("a6000" -> "A6000"); words are capitalised ("Tesla", "Ti").
    if word.isalpha() and word.upper() not in _ACRONYMS:
        return word[0].upper() + word[1:].lower()
    return word.upper()
