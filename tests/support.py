"""Helpers the test layers share: a test wallet that signs in, and sample events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
# Hardhat / anvil's well-known test account 0: public test key, signs the samples in events/.
SAMPLE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def new_wallet() -> LocalAccount:
    return Account.create()


def sign_text(wallet: LocalAccount, text: str) -> str:
    return "0x" + wallet.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


def sign_typed(wallet: LocalAccount, typed_data: dict[str, Any]) -> str:
    return "0x" + wallet.sign_typed_data(full_message=typed_data).signature.hex().removeprefix("0x")


def provider_spec(
    hostname: str = "gpu-server-01", gpus: int = 4, model: str = "NVIDIA GeForce RTX 4090"
) -> dict[str, Any]:
    """Seed 002's registration example."""
    return {
        "hostname": hostname,
        "public_ip": "123.45.67.89",
        "total_gpus": gpus,
        "gpus": [{"name": model, "memory": 24576}],
        "cpu_cores": 32,
        "total_memory_mb": 131072,
        "available_disk_gb": 500,
    }


def job_body(provider_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """Seed 002's example request: 1 GPU, 8 CPU, 32 GB."""
    body: dict[str, Any] = {
        "gpu_count": 1,
        "cpu_cores": 8,
        "memory_gb": 32,
        "storage_gb": 50,
        "image": "nvidia/cuda:12.0.0-devel-ubuntu22.04",
        "duration_hours": 2,
    }
    if provider_id:
        body["provider_id"] = provider_id
    return body | changes
