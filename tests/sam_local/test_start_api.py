"""`sam local start-api` serves the template's API (authorizer included) as a developer runs it."""

from __future__ import annotations

import pytest

from tests.e2e.client import ApiClient
from tests.sam_local.sam import SamLocal
from tests.support import job_body

pytestmark = pytest.mark.sam_local


def test_sign_in_register_rent_and_read_through_start_api(sam: SamLocal) -> None:
    with sam.start_api() as url:
        # Given a provider signed in with its wallet (SIWE) that registered a host and heartbeats
        provider = ApiClient(url).sign_in()
        provider_id = provider.register_provider(hostname="start-api-host")
        # When a customer signs in and rents one GPU on it
        customer = ApiClient(url).sign_in()
        created = customer.call("POST", "/api/v1/jobs", json=job_body(provider_id))
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        # Then the customer reads it back, the capacity moved, and the token authorizer guards the route
        read = customer.call("GET", f"/api/v1/jobs/{job_id}")
        assert read.status_code == 200, read.text
        assert (read.json()["status"], read.json()["provider_id"]) == ("Pending", provider_id)
        assert provider.capacity(provider_id)["available_gpus"] == {"RTX-4090": 3}
        anonymous = ApiClient(url).call("GET", f"/api/v1/jobs/{job_id}")
        assert anonymous.status_code == 401, anonymous.text
