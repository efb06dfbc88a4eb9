"""Every events/ sample replays against its function as `sam local invoke -e` would send it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import Lambdas, proxy_event
from tests.support import EVENTS, sample_event

SAMPLE_WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
# Replayed in this order: later samples use what earlier ones created (as a developer would).
ORDER = [
    "auth_nonce",
    "auth_login",
    "authorizer_token",
    "nodes_register",
    "nodes_heartbeat",
    "providers_list",
    "providers_search",
    "providers_gpu_availability",
    "providers_get",
    "jobs_create",
    "jobs_list",
    "jobs_get",
    "commands_poll",
    "commands_ack",
    "nodes_job_report",
    "jobs_delete",
    "staleness_schedule",
    "expiry_sweep_schedule",
    "expiry_sqs",
    "command_failures_sqs",
    "docs_openapi",
]


def test_every_sample_is_replayed() -> None:
    assert sorted(ORDER) == sorted(p.stem for p in EVENTS.glob("*.json"))


def test_samples_are_api_gateway_proxy_events_for_their_routes() -> None:
    for name in ORDER:
        event = sample_event(name)
        if name.startswith("authorizer"):
            assert event["type"] == "TOKEN"
            assert event["methodArn"].startswith("arn:aws:execute-api:")
            continue
        if name.endswith("_schedule"):
            assert event["detail-type"] == "Scheduled Event"
            continue
        if name.endswith("_sqs"):
            assert all(r["eventSource"] == "aws:sqs" for r in event["Records"])
            continue
        assert event["path"].startswith("/api/v1/"), name
        assert event["requestContext"]["resourcePath"] == event["resource"], name
        for param, value in (event["pathParameters"] or {}).items():
            assert value in event["path"], (name, param)


def _seed_sample_nonce(aws: dict[str, str]) -> None:
    """The login sample is signed by the sample wallet over a fixed nonce: issue that nonce."""
    from worldland.dal.nonces import NonceRepository

    message = sample_event("auth_login")["body"]
    nonce = re.search(r"Nonce: (\w+)", message)
    assert nonce
    NonceRepository(aws["NoncesTable"]).put(nonce.group(1), SAMPLE_WALLET, datetime(2099, 1, 1, tzinfo=UTC))


def test_samples_replay_in_order(lambdas: Lambdas, aws: dict[str, str]) -> None:
    assert lambdas.http("auth", sample_event("auth_nonce")).status == 200

    # The login sample works once its nonce has been issued, and only once.
    assert lambdas.http("auth", sample_event("auth_login")).body["error"]["code"] == "invalid_nonce"
    _seed_sample_nonce(aws)
    login = lambdas.http("auth", sample_event("auth_login"))
    assert login.status == 200, login.body
    assert login.body["address"] == SAMPLE_WALLET

    with pytest.raises(Exception, match=r"^Unauthorized$"):
        lambdas("authorizer", sample_event("authorizer_token"))
    real = sample_event("authorizer_token") | {"authorizationToken": f"Bearer {login.body['token']}"}
    assert lambdas("authorizer", real)["context"]["wallet"] == SAMPLE_WALLET

    registered = lambdas.http("nodes", sample_event("nodes_register"))
    assert registered.status == 201
    provider_id = registered.body["provider_id"]
    assert sample_event("providers_get")["pathParameters"]["provider_id"] == provider_id
    assert lambdas.http("nodes", sample_event("nodes_heartbeat")).body["status"] == "Available"

    assert [p["provider_id"] for p in lambdas.http("providers", sample_event("providers_list")).body["providers"]] == [
        provider_id
    ]
    assert len(lambdas.http("providers", sample_event("providers_search")).body["providers"]) == 1
    assert lambdas.http("providers", sample_event("providers_gpu_availability")).body["gpus"][0]["available"] == 4
    assert lambdas.http("providers", sample_event("providers_get")).body["status"] == "Available"

    created = lambdas.http("jobs", sample_event("jobs_create"))
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    assert [j["job_id"] for j in lambdas.http("jobs", sample_event("jobs_list")).body["jobs"]] == [job_id]
    # The get/delete samples name a job that does not exist until replaced with a real id.
    assert lambdas.http("jobs", sample_event("jobs_get")).status == 404
    real_get = proxy_event(sample_event("jobs_get"), path_parameters={"job_id": job_id})
    assert lambdas.http("jobs", real_get).body["status"] == "Pending"

    (start,) = lambdas.http("commands", sample_event("commands_poll")).body["commands"]
    assert (start["type"], start["job_id"]) == ("start_rental", job_id)
    # The ack sample's receipt is not a live one: it is reported back as failed, nothing else happens.
    acked = lambdas.http("commands", sample_event("commands_ack"))
    assert acked.body == {"acknowledged": 0, "failed": ["AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a0"]}
    assert lambdas.http("nodes", sample_event("nodes_job_report")).status == 404  # the sample job id
    report = sample_event("nodes_job_report")
    real_report = proxy_event(report, path_parameters=report["pathParameters"] | {"job_id": job_id})
    assert lambdas.http("nodes", real_report).body["status"] == "Running"

    real_delete = proxy_event(sample_event("jobs_delete"), path_parameters={"job_id": job_id})
    assert lambdas.http("jobs", real_delete).status == 202

    assert lambdas("staleness", sample_event("staleness_schedule")) == {"offline": 0, "failed_jobs": 0}
    assert lambdas("expiry_sweep", sample_event("expiry_sweep_schedule")) == {"queued": 0}
    # The queue samples name a job that does not exist: handled, nothing to do, no retry asked for.
    assert lambdas("expiry", sample_event("expiry_sqs")) == {"batchItemFailures": []}
    assert lambdas("command_failures", sample_event("command_failures_sqs")) == {"batchItemFailures": []}

    docs = lambdas.http("docs", sample_event("docs_openapi"))
    assert docs.status == 200
    assert "/api/v1/jobs" in docs.body["paths"]
