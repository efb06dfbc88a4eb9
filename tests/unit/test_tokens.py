from datetime import UTC, datetime, timedelta

import jwt
import pytest

from worldland.domain import tokens
from worldland.errors import Unauthorized

SECRET = "s" * 64
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"


def test_issued_token_verifies_to_its_wallet() -> None:
    now = datetime.now(UTC)
    token, expires = tokens.issue(WALLET, SECRET, 3600, now)
    principal = tokens.verify(token, SECRET)
    assert principal.address == WALLET
    assert principal.expires_at == expires
    assert timedelta(seconds=3599) <= expires - now <= timedelta(seconds=3600)


def test_expired_token_is_refused() -> None:
    token, _ = tokens.issue(WALLET, SECRET, 60, datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(Unauthorized) as refused:
        tokens.verify(token, SECRET)
    assert refused.value.code == "token_expired"


def test_token_signed_with_another_secret_is_refused() -> None:
    token, _ = tokens.issue(WALLET, "other" * 16, 60, datetime.now(UTC))
    with pytest.raises(Unauthorized):
        tokens.verify(token, SECRET)


def test_unsigned_token_is_refused() -> None:
    forged = jwt.encode({"sub": WALLET, "exp": 9999999999, "iat": 0}, key=None, algorithm="none")
    with pytest.raises(Unauthorized):
        tokens.verify(forged, SECRET)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "token"])
def test_bearer_header_must_carry_a_token(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        tokens.bearer(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert tokens.bearer("bearer abc.def") == "abc.def"
