"""Public browsing and search through the real providers handler."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Lambdas, proxy_event
from tests.support import new_wallet, sample_event


def search(lambdas: Lambdas, **query: str):
    return lambdas.http("providers", proxy_event(sample_event("providers_search"), query=query))


def ids(answer) -> list[str]:
    assert answer.status == 200, answer.body
    return [p["provider_id"] for p in answer.body["providers"]]


@pytest.fixture
def market(register) -> dict[str, str]:
    """Four hosts: two RTX 4090 hosts at different prices and regions, an A100 host, and one offline."""
    return {
        "cheap": register(new_wallet().address, price=0.3, region="us-east", hostname="cheap"),
        "dear": register(
            new_wallet().address, price=0.9, region="eu-west", hostname="dear", total_gpus=8, cpu_cores=64
        ),
        "a100": register(
            new_wallet().address,
            price=2.0,
            region="us-east",
            hostname="a100",
            total_gpus=2,
            gpus=[{"name": "NVIDIA A100-SXM4-80GB", "memory": 81920}],
        ),
        "silent": register(new_wallet().address, available=False, price=0.1, hostname="silent"),
    }


def test_search_by_label_or_full_name_finds_the_same_hosts_cheapest_first(lambdas: Lambdas, market) -> None:
    by_label = ids(search(lambdas, gpu_model="RTX-4090"))
    by_name = ids(search(lambdas, gpu_model="NVIDIA GeForce RTX 4090"))
    assert by_label == by_name == [market["cheap"], market["dear"]]


def test_search_filters(lambdas: Lambdas, market) -> None:
    assert ids(search(lambdas, gpu_model="RTX-4090", min_gpus="5")) == [market["dear"]]
    assert ids(search(lambdas, gpu_model="RTX-4090", max_price="0.5")) == [market["cheap"]]
    assert ids(search(lambdas, region="eu-west")) == [market["dear"]]
    assert ids(search(lambdas, min_cpu_cores="40")) == [market["dear"]]
    assert ids(search(lambdas, min_memory_gb="200")) == []
    assert ids(search(lambdas, gpu_model="A100-80GB")) == [market["a100"]]
    assert ids(search(lambdas, gpu_model="Tesla-T4")) == []
    assert ids(search(lambdas, status="Joined")) == [market["silent"]]


def test_search_sorts(lambdas: Lambdas, market) -> None:
    assert ids(search(lambdas)) == [market["cheap"], market["dear"], market["a100"]]
    assert ids(search(lambdas, sort="-price")) == [market["a100"], market["dear"], market["cheap"]]
    assert ids(search(lambdas, sort="gpus"))[0] == market["dear"]


def test_search_pages(lambdas: Lambdas, market) -> None:
    first = search(lambdas, limit="2")
    assert ids(first) == [market["cheap"], market["dear"]]
    rest = search(lambdas, limit="2", next_token=first.body["next_token"])
    assert ids(rest) == [market["a100"]]
    assert rest.body["next_token"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"min_gpus": "0"}, "min_gpus"),
        ({"min_gpus": "many"}, "min_gpus"),
        ({"max_price": "-1"}, "max_price"),
        ({"status": "Sleeping"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"limit": "101"}, "limit"),
        ({"next_token": "bogus"}, "next_token"),
    ],
)
def test_bad_search_queries_are_422(lambdas: Lambdas, query: dict, field: str) -> None:
    answer = search(lambdas, **query)
    assert answer.status == 422
    assert answer.body["error"]["details"][0]["field"] == field


def test_gpu_availability_counts_available_providers_only(lambdas: Lambdas, market) -> None:
    answer = lambdas.http("providers", sample_event("providers_gpu_availability"))
    assert answer.status == 200
    assert answer.body["gpus"] == [
        {"gpu_model": "A100-80GB", "available": 2, "in_use": 0, "mining": 0, "providers": 1, "min_price_per_hour": 2.0},
        {"gpu_model": "RTX-4090", "available": 12, "in_use": 0, "mining": 0, "providers": 2, "min_price_per_hour": 0.3},
    ]


def test_list_pages_through_every_provider(lambdas: Lambdas, market) -> None:
    seen, token = [], None
    while True:
        query = {"limit": "3"} | ({"next_token": token} if token else {})
        answer = lambdas.http("providers", proxy_event(sample_event("providers_list"), query=query))
        seen += ids(answer)
        token = answer.body["next_token"]
        if not token:
            break
    assert sorted(seen) == sorted(market.values())


def test_unknown_provider_is_404(lambdas: Lambdas) -> None:
    event = proxy_event(sample_event("providers_get"), path_parameters={"provider_id": "nope"})
    answer = lambdas.http("providers", event)
    assert answer.status == 404
    assert answer.body["error"] == {"code": "provider_not_found", "message": "No provider nope.", "details": []}
