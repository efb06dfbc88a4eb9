"""Provider registration and heartbeats through the real nodes handler."""

from __future__ import annotations

from tests.integration.conftest import Lambdas, proxy_event
from tests.support import job_body, new_wallet, provider_spec, sample_event


def register_event(wallet: str, **body_changes: object) -> dict:
    body = {"spec": provider_spec(), "capacity": {"gpu_price_per_hour": 0.5}, "region": "us-east"} | body_changes
    return proxy_event(sample_event("nodes_register"), body=body, wallet=wallet)


def heartbeat_event(wallet: str, provider_id: str, **body: object) -> dict:
    return proxy_event(
        sample_event("nodes_heartbeat"),
        wallet=wallet,
        path_parameters={"provider_id": provider_id},
        **({"body": body} if body else {}),
    )


def get_provider(lambdas: Lambdas, provider_id: str) -> dict:
    event = proxy_event(sample_event("providers_get"), path_parameters={"provider_id": provider_id})
    answer = lambdas.http("providers", event)
    assert answer.status == 200, answer.body
    return answer.body


def test_registered_host_becomes_available_on_its_first_heartbeat(lambdas: Lambdas) -> None:
    wallet = new_wallet().address
    registered = lambdas.http("nodes", register_event(wallet))
    assert registered.status == 201
    assert registered.body["status"] == "Joined"
    provider_id = registered.body["provider_id"]

    beat = lambdas.http("nodes", heartbeat_event(wallet, provider_id))
    assert beat.status == 200
    assert beat.body["status"] == "Available"

    provider = get_provider(lambdas, provider_id)
    assert provider["status"] == "Available"
    assert provider["wallet_addr"] == wallet
    assert provider["spec"]["gpus"] == [{"name": "NVIDIA GeForce RTX 4090", "memory": 24576}]
    assert provider["capacity"]["available_gpus"] == {"RTX-4090": 4}
    assert provider["capacity"]["total_cpu_cores"] == 32
    assert provider["last_heartbeat"] is not None
    assert provider["joined_at"] is not None


def test_re_registering_the_same_host_updates_it(lambdas: Lambdas, register) -> None:
    wallet = new_wallet().address
    provider_id = register(wallet)
    again = lambdas.http("nodes", register_event(wallet, capacity={"gpu_price_per_hour": 0.75}, region="eu-west"))
    assert again.status == 201
    assert again.body["provider_id"] == provider_id
    provider = get_provider(lambdas, provider_id)
    assert provider["capacity"]["gpu_price_per_hour"] == 0.75
    assert provider["region"] == "eu-west"
    assert provider["status"] == "Available"  # re-registration does not take a live host off the market


def test_re_registration_keeps_what_jobs_hold(lambdas: Lambdas, register) -> None:
    wallet = new_wallet().address
    provider_id = register(wallet)
    created = lambdas.http("jobs", proxy_event(sample_event("jobs_create"), body=job_body(provider_id), wallet=wallet))
    assert created.status == 201
    # Given 1 GPU in use, When the host re-registers with 8 GPUs, Then 7 are available and 1 stays in use
    grown = lambdas.http("nodes", register_event(wallet, spec=provider_spec(gpus=8)))
    assert grown.status == 201
    capacity = get_provider(lambdas, provider_id)["capacity"]
    assert capacity["available_gpus"] == {"RTX-4090": 7}
    assert capacity["in_use_gpus"] == {"RTX-4090": 1}
    assert capacity["available_cpu_cores"] == 24


def test_shrinking_below_what_jobs_hold_is_refused(lambdas: Lambdas, register) -> None:
    wallet = new_wallet().address
    provider_id = register(wallet)
    body = job_body(provider_id, gpu_count=3)
    assert lambdas.http("jobs", proxy_event(sample_event("jobs_create"), body=body, wallet=wallet)).status == 201
    shrunk = lambdas.http("nodes", register_event(wallet, spec=provider_spec(gpus=2)))
    assert shrunk.status == 409
    assert shrunk.body["error"]["code"] == "capacity_in_use"
    assert get_provider(lambdas, provider_id)["capacity"]["available_gpus"] == {"RTX-4090": 1}


def test_only_the_owning_wallet_heartbeats_or_re_registers(lambdas: Lambdas, register) -> None:
    owner, other = new_wallet().address, new_wallet().address
    provider_id = register(owner)
    assert lambdas.http("nodes", heartbeat_event(other, provider_id)).status == 403
    hijack = lambdas.http("nodes", register_event(other, provider_id=provider_id))
    assert hijack.status == 403
    assert get_provider(lambdas, provider_id)["wallet_addr"] == owner


def test_heartbeat_for_unknown_provider_is_404(lambdas: Lambdas) -> None:
    answer = lambdas.http("nodes", heartbeat_event(new_wallet().address, "no-such-provider"))
    assert answer.status == 404
    assert answer.body["error"]["code"] == "provider_not_found"


def test_heartbeat_reports_mining_gpus(lambdas: Lambdas, register) -> None:
    wallet = new_wallet().address
    provider_id = register(wallet)
    mining = {"state": "running", "container_id": "abc", "gpu_count": 3}
    assert lambdas.http("nodes", heartbeat_event(wallet, provider_id, mining=mining)).status == 200
    capacity = get_provider(lambdas, provider_id)["capacity"]
    assert capacity["mining_gpus"] == {"RTX-4090": 3}
    assert capacity["available_gpus"] == {"RTX-4090": 4}  # mining GPUs stay rentable


def test_a_host_with_two_models_lists_both(lambdas: Lambdas) -> None:
    wallet = new_wallet().address
    spec = provider_spec(gpus=3) | {
        "gpus": [
            {"name": "NVIDIA GeForce RTX 4090", "memory": 24576},
            {"name": "NVIDIA GeForce RTX 4090", "memory": 24576},
            {"name": "NVIDIA A100-SXM4-80GB", "memory": 81920},
        ]
    }
    answer = lambdas.http("nodes", register_event(wallet, spec=spec))
    assert answer.status == 201
    capacity = get_provider(lambdas, answer.body["provider_id"])["capacity"]
    assert capacity["available_gpus"] == {"RTX-4090": 2, "A100-80GB": 1}


def test_invalid_registrations_are_422_and_write_nothing(lambdas: Lambdas) -> None:
    wallet = new_wallet().address
    cases = [
        ({"spec": provider_spec() | {"total_gpus": 0}}, "spec.total_gpus"),
        ({"spec": provider_spec() | {"public_ip": "nope"}}, "spec.public_ip"),
        ({"capacity": {"gpu_price_per_hour": -1}}, "capacity.gpu_price_per_hour"),
        ({"runtime": "podman"}, "runtime"),
        ({"provider_id": "has spaces"}, "provider_id"),
    ]
    for change, field in cases:
        answer = lambdas.http("nodes", register_event(wallet, **change))
        assert answer.status == 422, (change, answer.body)
        assert answer.body["error"]["details"][0]["field"] == field
    listed = lambdas.http("providers", sample_event("providers_list"))
    assert listed.body["providers"] == []


def test_prices_too_small_to_store_are_422(lambdas: Lambdas) -> None:
    # Found by fuzzing: 5e-324 passed `> 0` and then underflowed DynamoDB's number range.
    answer = lambdas.http("nodes", register_event(new_wallet().address, capacity={"gpu_price_per_hour": 5e-324}))
    assert answer.status == 422
    assert answer.body["error"]["details"][0]["field"] == "capacity.gpu_price_per_hour"
