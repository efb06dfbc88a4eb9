"""Sign-in with the provider's wallet (SIWE, personal_sign) and the bearer token it yields."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from eth_account import Account
from eth_account.messages import encode_defunct

from worldland_node.models import parse_time

log = logging.getLogger(__name__)

# Sign in again this long before the token's expiry, so no request carries a token that lapses in flight.
REFRESH_MARGIN = timedelta(minutes=2)


class SignInError(Exception):
    """The platform refused the sign-in, or the message names a domain this agent must not sign for."""


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: datetime

    def fresh(self, now: datetime) -> bool:
        return now < self.expires_at - REFRESH_MARGIN


class WalletSigner:
    """Holds the key; only the address leaves it. repr() shows the address, never the key."""

    def __init__(self, private_key_hex: str, siwe_domain: str | None = None) -> None:
        self._account = Account.from_key(private_key_hex)
        self._siwe_domain = siwe_domain

    def __repr__(self) -> str:
        return f"WalletSigner({self.address})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_in(self, session: requests.Session, origin: str, timeout: float) -> Token:
        """POST /auth/nonce, personal_sign the SIWE message, POST /auth/login."""
        issued = session.post(f"{origin}/api/v1/auth/nonce", json={"address": self.address}, timeout=timeout)
        if issued.status_code != 200:
            raise SignInError(f"nonce request answered {issued.status_code}: {issued.text[:300]}")
        message: str = issued.json()["message"]
        self._check_domain(message)
        signed = self._account.sign_message(encode_defunct(text=message))
        signature = "0x" + signed.signature.hex().removeprefix("0x")
        login = session.post(
            f"{origin}/api/v1/auth/login", json={"message": message, "signature": signature}, timeout=timeout
        )
        if login.status_code != 200:
            # The body is an error object (code + message), never the signature.
            raise SignInError(f"login answered {login.status_code}: {login.text[:300]}")
        body = login.json()
        log.info("signed in as %s; token valid until %s", self.address, body["expires_at"])
        return Token(body["token"], parse_time(body["expires_at"]))

    def _check_domain(self, message: str) -> None:
        # EIP-4361's first line: "[scheme://]domain wants you to sign in with your Ethereum account:".
        first = message.split("\n", 1)[0]
        domain = first.split(" ", 1)[0].split("://")[-1]
        if self._siwe_domain and domain != self._siwe_domain:
            raise SignInError(
                f"domain mismatch: the platform asked to sign for {domain!r}, expected {self._siwe_domain!r}"
            )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
