"""Bearer tokens: HS256 JWTs naming the wallet, signed with the secret from configuration."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt

from worldland.errors import Unauthorized
from worldland.models.auth import Principal

ISSUER = "worldland"
AUDIENCE = "worldland-api"


def issue(address: str, secret: str, ttl_seconds: int, now: datetime) -> tuple[str, datetime]:
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": address,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256"), expires.replace(microsecond=0)


def verify(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token_expired", "The token has expired; sign in again.") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("invalid_token", "The token is not valid.") from exc
    return Principal(address=claims["sub"], expires_at=datetime.fromtimestamp(claims["exp"], UTC))


def bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("invalid_token", "Send Authorization: Bearer <token>.")
    return token.strip()
