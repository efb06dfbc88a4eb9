"""Wallet sign-in: issue a single-use nonce, verify a SIWE or EIP-712 signature over it, hand out a token."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from worldland.dal.nonces import NonceRejection, NonceRepository
from worldland.domain import tokens
from worldland.domain.siwe import MalformedMessage, SiweMessage
from worldland.errors import InvalidInput, Unauthorized
from worldland.models.auth import LoginRequest, LoginResponse, NonceResponse
from worldland.models.common import format_time
from worldland.settings import Settings

TYPED_DATA_NAME = "WorldLand Cloud"
TYPED_DATA_VERSION = "1"
LOGIN_TYPE = [
    {"name": "wallet", "type": "address"},
    {"name": "domain", "type": "string"},
    {"name": "nonce", "type": "string"},
    {"name": "issuedAt", "type": "string"},
    {"name": "expiresAt", "type": "string"},
]
DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
]
_REJECTIONS = {
    NonceRejection.USED: ("nonce_used", "This nonce was already used; ask for a new one."),
    NonceRejection.EXPIRED: ("nonce_expired", "This nonce has expired; ask for a new one."),
    NonceRejection.UNKNOWN: ("invalid_nonce", "This nonce was not issued here."),
    NonceRejection.OTHER_ADDRESS: ("invalid_nonce", "This nonce was issued to another address."),
}


def checksum(address: str) -> str:
    from eth_utils.address import to_checksum_address  # loaded only by the sign-in function

    return str(to_checksum_address(address))


def issue_nonce(address: str, settings: Settings, nonces: NonceRepository, now: datetime) -> NonceResponse:
    wallet = checksum(address)
    nonce = secrets.token_hex(16)
    now = now.replace(microsecond=0)
    expires = now + timedelta(seconds=settings.nonce_ttl_seconds)
    nonces.put(nonce, wallet, expires)
    message = SiweMessage(
        domain=settings.siwe_domain,
        address=wallet,
        uri=settings.siwe_uri,
        chain_id=settings.chain_id,
        nonce=nonce,
        issued_at=now,
        expiration_time=expires,
    )
    return NonceResponse(
        nonce=nonce,
        message=message.text(),
        expires_at=expires,
        typed_data=login_typed_data(wallet, nonce, now, expires, settings),
    )


def login_typed_data(
    wallet: str, nonce: str, issued: datetime, expires: datetime, settings: Settings
) -> dict[str, Any]:
    """The EIP-712 alternative to the SIWE text: the same facts as a typed `Login` struct."""
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, "Login": LOGIN_TYPE},
        "primaryType": "Login",
        "domain": {"name": TYPED_DATA_NAME, "version": TYPED_DATA_VERSION, "chainId": settings.chain_id},
        "message": {
            "wallet": wallet,
            "domain": settings.siwe_domain,
            "nonce": nonce,
            "issuedAt": format_time(issued),
            "expiresAt": format_time(expires),
        },
    }


def login(
    request: LoginRequest, settings: Settings, nonces: NonceRepository, secret: str, now: datetime
) -> LoginResponse:
    if request.message is not None:
        wallet, nonce = _verify_siwe(request.message, request.signature, settings, now)
    else:
        assert request.typed_data is not None  # the model requires one of the two
        wallet, nonce = _verify_typed_data(request.typed_data, request.signature, settings, now)
    # Consumed only after the signature checks out, so a forged attempt cannot burn a user's nonce.
    if rejection := nonces.consume(nonce, wallet, now):
        raise Unauthorized(*_REJECTIONS[rejection])
    token, expires = tokens.issue(wallet, secret, settings.token_ttl_seconds, now)
    return LoginResponse(token=token, expires_at=expires, address=wallet)


def _verify_siwe(text: str, signature: str, settings: Settings, now: datetime) -> tuple[str, str]:
    try:
        message = SiweMessage.parse(text)
    except MalformedMessage as exc:
        raise InvalidInput.on("message", str(exc)) from exc
    if message.domain != settings.siwe_domain:
        raise Unauthorized(
            "domain_mismatch", f"The message is for {message.domain!r}; this platform is {settings.siwe_domain!r}."
        )
    _check_chain(message.chain_id, settings)
    _check_window(message.expiration_time, message.not_before, now)
    from eth_account.messages import encode_defunct

    signer = _recover(encode_defunct(text=text), signature)
    if signer != checksum(message.address):
        raise Unauthorized("invalid_signature", "The signature was not made by the address in the message.")
    return signer, message.nonce


def _verify_typed_data(data: dict[str, Any], signature: str, settings: Settings, now: datetime) -> tuple[str, str]:
    types, domain, message = data.get("types"), data.get("domain"), data.get("message")
    if not isinstance(types, dict) or not isinstance(domain, dict) or not isinstance(message, dict):
        raise InvalidInput.on("typed_data", "must hold types, domain and message objects")
    if data.get("primaryType") != "Login" or types.get("Login") != LOGIN_TYPE:
        raise InvalidInput.on("typed_data", "must be the Login struct that /auth/nonce returns")
    if domain.get("name") != TYPED_DATA_NAME or message.get("domain") != settings.siwe_domain:
        raise Unauthorized("domain_mismatch", f"The typed data is not for {settings.siwe_domain!r}.")
    _check_chain(domain.get("chainId"), settings)
    try:
        expires = datetime.fromisoformat(str(message.get("expiresAt")).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput.on("typed_data.message.expiresAt", "must be an ISO 8601 time") from exc
    _check_window(expires, None, now)
    from eth_account.messages import encode_typed_data

    try:
        signable = encode_typed_data(full_message=data)
    except Exception as exc:  # eth-account raises several types for malformed structs
        raise InvalidInput.on("typed_data", f"is not valid EIP-712 data ({exc})") from exc
    signer = _recover(signable, signature)
    if signer != checksum(str(message.get("wallet"))):
        raise Unauthorized("invalid_signature", "The signature was not made by the wallet in the typed data.")
    return signer, str(message.get("nonce"))


def _check_chain(chain_id: Any, settings: Settings) -> None:
    if chain_id != settings.chain_id:
        raise Unauthorized("chain_mismatch", f"Sign in on chain {settings.chain_id}, not {chain_id}.")


def _check_window(expires: datetime | None, not_before: datetime | None, now: datetime) -> None:
    if expires is not None and expires <= now:
        raise Unauthorized("nonce_expired", "The sign-in message has expired; ask for a new nonce.")
    if not_before is not None and not_before > now:
        raise Unauthorized("invalid_signature", "The sign-in message is not valid yet.")


def _recover(signable: Any, signature: str) -> str:
    from eth_account import Account  # ~0.5 s to import: kept out of every other route

    try:
        return str(Account.recover_message(signable, signature=signature))
    except Exception as exc:  # bad r/s/v values surface as assorted errors from eth-keys
        raise Unauthorized("invalid_signature", "The signature could not be verified.") from exc
