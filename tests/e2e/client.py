"""A small client of the local stack's HTTP API, as a customer's or provider's tool would use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from eth_account.signers.local import LocalAccount

from tests.support import new_wallet, provider_spec, sign_text


@dataclass
class ApiClient:
    base_url: str
    wallet: LocalAccount = field(default_factory=new_wallet)
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def address(self) -> str:
        return self.wallet.address

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, timeout=60, **kwargs)

    def sign_in(self) -> ApiClient:
        issued = self.call("POST", "/api/v1/auth/nonce", json={"address": self.address})
        assert issued.status_code == 200, issued.text
        message = issued.json()["message"]
        login = self.call(
            "POST", "/api/v1/auth/login", json={"message": message, "signature": sign_text(self.wallet, message)}
        )
        assert login.status_code == 200, login.text
        self.token = login.json()["token"]
        return self

    def register_provider(self, *, price: float = 0.5, heartbeat: bool = True, **spec: Any) -> str:
        body = {"spec": provider_spec() | spec, "capacity": {"gpu_price_per_hour": price}, "region": "us-east"}
        answer = self.call("POST", "/api/v1/nodes/register", json=body)
        assert answer.status_code == 201, answer.text
        provider_id = answer.json()["provider_id"]
        if heartbeat:
            beat = self.call("POST", f"/api/v1/nodes/{provider_id}/heartbeat", json={"status": "Available"})
            assert beat.status_code == 200, beat.text
        return provider_id

    def capacity(self, provider_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/v1/providers/{provider_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()["capacity"]
