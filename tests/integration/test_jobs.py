"""Jobs through the real jobs handler: allocation, idempotency, release, ownership."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Lambdas, proxy_event
from tests.support import job_body, new_wallet, sample_event


def create(lambdas: Lambdas, wallet: str, body: dict, key: str | None = None):
    event = proxy_event(sample_event("jobs_create"), body=body, wallet=wallet)
    event["headers"].pop("Idempotency-Key", None)
    event["multiValueHeaders"].pop("Idempotency-Key", None)
    if key:
        event = proxy_event(event, headers={"Idempotency-Key": key})
    return lambdas.http("jobs", event)


def capacity(lambdas: Lambdas, provider_id: str) -> dict:
    event = proxy_event(sample_event("providers_get"), path_parameters={"provider_id": provider_id})
    return lambdas.http("providers", event).body["capacity"]


def job_call(lambdas: Lambdas, sample: str, wallet: str, job_id: str):
    return lambdas.http("jobs", proxy_event(sample_event(sample), wallet=wallet, path_parameters={"job_id": job_id}))


def test_seed_example_allocation_and_release(lambdas: Lambdas, register) -> None:
    # Given seed 002's provider: 4 GPUs, 32 cores, 128 GB
    customer = new_wallet().address
    provider_id = register(new_wallet().address)
    # When a customer asks for 1 GPU, 8 CPU, 32 GB
    answer = create(lambdas, customer, job_body(provider_id))
    assert answer.status == 201, answer.body
    job = answer.body
    assert job["status"] == "Pending"
    assert job["owner"] == customer
    assert job["gpu_model"] == "RTX-4090"
    assert job["price_per_hour"] == 0.5
    assert job["ssh"] is None
    assert len(job["ssh_password"]) >= 12  # generated, shown once
    # Then "After Allocation": 3 GPUs, 24 cores, 96 GB available; 1, 8, 32 GB in use
    after = capacity(lambdas, provider_id)
    assert after["available_gpus"] == {"RTX-4090": 3}
    assert after["in_use_gpus"] == {"RTX-4090": 1}
    assert (after["available_cpu_cores"], after["in_use_cpu_cores"]) == (24, 8)
    assert (after["available_memory_mb"], after["in_use_memory_mb"]) == (96 * 1024, 32 * 1024)
    # And the generated password is never shown again
    read = job_call(lambdas, "jobs_get", customer, job["job_id"])
    assert read.status == 200
    assert "ssh_password" not in read.body
    # When the job is deleted, Then it is Terminating and everything comes back
    deleted = job_call(lambdas, "jobs_delete", customer, job["job_id"])
    assert deleted.status == 202
    assert deleted.body["status"] == "Terminating"
    back = capacity(lambdas, provider_id)
    assert back["available_gpus"] == {"RTX-4090": 4}
    assert back["in_use_gpus"] == {"RTX-4090": 0}
    assert (back["available_cpu_cores"], back["available_memory_mb"]) == (32, 128 * 1024)
    # And deleting again releases nothing more
    again = job_call(lambdas, "jobs_delete", customer, job["job_id"])
    assert again.status == 202
    assert capacity(lambdas, provider_id) == back


def test_given_password_is_not_echoed(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    answer = create(lambdas, new_wallet().address, job_body(provider_id, ssh_password="correct-horse-battery"))
    assert answer.status == 201
    assert answer.body.get("ssh_password") is None


def test_public_key_only_job_gets_no_password(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
    answer = create(lambdas, new_wallet().address, job_body(provider_id, ssh_public_key=key))
    assert answer.status == 201
    assert answer.body.get("ssh_password") is None


def test_same_idempotency_key_returns_the_same_job_and_allocates_once(lambdas: Lambdas, register) -> None:
    customer = new_wallet().address
    provider_id = register(new_wallet().address)
    first = create(lambdas, customer, job_body(provider_id), key="order-42")
    second = create(lambdas, customer, job_body(provider_id), key="order-42")
    assert first.status == second.status == 201
    assert second.body["job_id"] == first.body["job_id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert capacity(lambdas, provider_id)["in_use_gpus"] == {"RTX-4090": 1}
    # Another caller's identical key is a different request
    other = create(lambdas, new_wallet().address, job_body(provider_id), key="order-42")
    assert other.body["job_id"] != first.body["job_id"]


def test_reusing_an_idempotency_key_for_another_request_is_refused(lambdas: Lambdas, register) -> None:
    customer = new_wallet().address
    provider_id = register(new_wallet().address)
    assert create(lambdas, customer, job_body(provider_id), key="k1").status == 201
    reused = create(lambdas, customer, job_body(provider_id, gpu_count=2), key="k1")
    assert reused.status == 422
    assert reused.body["error"]["code"] == "idempotency_key_reused"
    assert capacity(lambdas, provider_id)["in_use_gpus"] == {"RTX-4090": 1}


def test_unknown_provider_is_404(lambdas: Lambdas) -> None:
    answer = create(lambdas, new_wallet().address, job_body("no-such-provider"))
    assert answer.status == 404
    assert answer.body["error"]["code"] == "provider_not_found"


def test_provider_that_never_heartbeated_is_unavailable(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address, available=False)
    answer = create(lambdas, new_wallet().address, job_body(provider_id))
    assert answer.status == 409
    assert answer.body["error"]["code"] == "provider_unavailable"


def test_more_than_is_free_is_409_and_holds_nothing(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    customer = new_wallet().address
    assert create(lambdas, customer, job_body(provider_id, gpu_count=3)).status == 201
    answer = create(lambdas, customer, job_body(provider_id, gpu_count=2))
    assert answer.status == 409
    assert answer.body["error"]["code"] == "insufficient_capacity"
    cpu_hog = create(lambdas, customer, job_body(provider_id, cpu_cores=30))
    assert cpu_hog.status == 409
    after = capacity(lambdas, provider_id)
    assert after["in_use_gpus"] == {"RTX-4090": 3}
    assert after["in_use_cpu_cores"] == 8


def test_more_gpus_than_the_provider_has_is_422(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    answer = create(lambdas, new_wallet().address, job_body(provider_id, gpu_count=5))
    assert answer.status == 422
    assert answer.body["error"]["details"] == [
        {"field": "gpu_count", "issue": "must be <= 4 (the provider's RTX-4090 GPUs)"}
    ]


def test_model_the_provider_lacks_is_422(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    answer = create(lambdas, new_wallet().address, job_body(provider_id, gpu_model="A100-80GB"))
    assert answer.status == 422
    assert answer.body["error"]["details"][0]["field"] == "gpu_model"


def test_without_provider_the_cheapest_that_fits_is_picked(lambdas: Lambdas, register) -> None:
    dear = register(new_wallet().address, price=0.9, hostname="dear")
    cheap_small = register(new_wallet().address, price=0.2, hostname="small", total_gpus=1)
    cheap = register(new_wallet().address, price=0.4, hostname="cheap")
    customer = new_wallet().address
    # 2 GPUs: the 0.2 host has only one, so the 0.4 host wins
    answer = create(lambdas, customer, job_body(None, gpu_model="NVIDIA GeForce RTX 4090", gpu_count=2))
    assert answer.status == 201, answer.body
    assert answer.body["provider_id"] == cheap
    assert answer.body["price_per_hour"] == pytest.approx(0.8)
    # 1 GPU with no model named: the cheapest of all
    assert create(lambdas, customer, job_body(None)).body["provider_id"] == cheap_small
    assert dear


def test_nothing_fits_is_409(lambdas: Lambdas, register) -> None:
    register(new_wallet().address)
    answer = create(lambdas, new_wallet().address, job_body(None, gpu_model="A100-80GB"))
    assert answer.status == 409
    assert answer.body["error"]["code"] == "insufficient_capacity"


def test_callers_see_and_change_only_their_own_jobs(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    alice, bob = new_wallet().address, new_wallet().address
    job_id = create(lambdas, alice, job_body(provider_id)).body["job_id"]
    assert job_call(lambdas, "jobs_get", bob, job_id).status == 404
    assert job_call(lambdas, "jobs_delete", bob, job_id).status == 404
    assert capacity(lambdas, provider_id)["in_use_gpus"] == {"RTX-4090": 1}
    bobs = lambdas.http("jobs", proxy_event(sample_event("jobs_list"), wallet=bob))
    assert bobs.body["jobs"] == []
    alices = lambdas.http("jobs", proxy_event(sample_event("jobs_list"), wallet=alice))
    assert [j["job_id"] for j in alices.body["jobs"]] == [job_id]


def test_job_list_pages_newest_first(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address, total_gpus=8, cpu_cores=64)
    customer = new_wallet().address
    ids = [create(lambdas, customer, job_body(provider_id, cpu_cores=2, memory_gb=8)).body["job_id"] for _ in range(5)]
    seen, token = [], None
    while True:
        query = {"limit": "2"} | ({"next_token": token} if token else {})
        page = lambdas.http("jobs", proxy_event(sample_event("jobs_list"), wallet=customer, query=query)).body
        seen += [j["job_id"] for j in page["jobs"]]
        token = page["next_token"]
        if not token:
            break
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gpu_count": 0}, "gpu_count"),
        ({"cpu_cores": 65}, "cpu_cores"),
        ({"memory_gb": 4}, "memory_gb"),
        ({"storage_gb": 1000}, "storage_gb"),
        ({"duration_hours": 721}, "duration_hours"),
        ({"image": ""}, "image"),
        ({"gpu_count": "two"}, "gpu_count"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_out_of_range_jobs_are_422_and_hold_nothing(lambdas: Lambdas, register, change: dict, field: str) -> None:
    provider_id = register(new_wallet().address)
    answer = create(lambdas, new_wallet().address, job_body(provider_id, **change))
    assert answer.status == 422
    assert field in [d["field"] for d in answer.body["error"]["details"]]
    assert capacity(lambdas, provider_id)["in_use_gpus"] == {"RTX-4090": 0}


def test_bad_idempotency_key_is_422(lambdas: Lambdas, register) -> None:
    provider_id = register(new_wallet().address)
    answer = create(lambdas, new_wallet().address, job_body(provider_id), key="x" * 300)
    assert answer.status == 422
    assert answer.body["error"]["details"][0]["field"] == "Idempotency-Key"


def test_missing_caller_is_401(lambdas: Lambdas) -> None:
    event = sample_event("jobs_list")
    event["requestContext"].pop("authorizer")
    assert lambdas.http("jobs", event).status == 401


def test_a_body_that_is_not_utf8_is_422(lambdas: Lambdas) -> None:
    # Found by fuzzing the OpenAPI document: API Gateway hands such bodies over base64-encoded.
    import base64

    event = proxy_event(sample_event("jobs_create"), wallet=new_wallet().address)
    event["body"], event["isBase64Encoded"] = base64.b64encode(b"\xfa\xa5 not text").decode(), True
    answer = lambdas.http("jobs", event)
    assert answer.status == 422
    assert answer.body["error"]["details"] == [{"field": "body", "issue": "must be UTF-8 encoded JSON"}]


def test_a_replay_that_finds_the_provider_full_still_gets_its_job(lambdas: Lambdas, register) -> None:
    # Given a request with a key that took the provider's last GPUs
    customer = new_wallet().address
    provider_id = register(new_wallet().address)
    first = create(lambdas, customer, job_body(provider_id, gpu_count=4), key="all-of-it")
    assert first.status == 201
    # When it is retried, Then the retry answers with the same job, not 409
    again = create(lambdas, customer, job_body(provider_id, gpu_count=4), key="all-of-it")
    assert again.status == 201
    assert again.body["job_id"] == first.body["job_id"]
