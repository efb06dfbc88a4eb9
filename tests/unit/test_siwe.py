from datetime import UTC, datetime, timedelta

import pytest

from worldland.domain.siwe import MalformedMessage, SiweMessage

ISSUED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def message(**changes: object) -> SiweMessage:
    fields: dict[str, object] = {
        "domain": "localhost:3000",
        "address": "0x52908400098527886E0F7030069857D2E4169EE7",
        "uri": "http://localhost:3000",
        "chain_id": 11155111,
        "nonce": "a1b2c3d4e5f60718",
        "issued_at": ISSUED,
        "expiration_time": ISSUED + timedelta(minutes=5),
    }
    return SiweMessage(**(fields | changes))  # type: ignore[arg-type]


def test_text_follows_eip4361_layout() -> None:
    text = message().text()
    assert text.splitlines() == [
        "localhost:3000 wants you to sign in with your Ethereum account:",
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "",
        "Sign in to WorldLand Cloud.",
        "",
        "URI: http://localhost:3000",
        "Version: 1",
        "Chain ID: 11155111",
        "Nonce: a1b2c3d4e5f60718",
        "Issued At: 2026-11-24T12:00:00.000Z",
        "Expiration Time: 2026-11-24T12:05:00.000Z",
    ]


def test_parse_round_trips_every_optional_field() -> None:
    original = message(
        not_before=ISSUED,
        request_id="req-1",
        resources=["https://example.com/a", "ipfs://b"],
        scheme="https",
    )
    parsed = SiweMessage.parse(original.text())
    assert parsed == original


def test_parse_accepts_a_message_without_statement() -> None:
    parsed = SiweMessage.parse(message(statement=None).text())
    assert parsed.statement is None
    assert parsed.nonce == "a1b2c3d4e5f60718"


@pytest.mark.parametrize(
    "broken",
    [
        "hello",
        message().text().replace("Version: 1", "Version: 2"),
        message().text().replace("Nonce: a1b2c3d4e5f60718", "Nonce: short"),
        message().text().replace("Issued At: 2026-11-24T12:00:00.000Z", "Issued At: yesterday"),
        message().text().replace("0x52908400098527886E0F7030069857D2E4169EE7", "0x1234"),
    ],
)
def test_malformed_messages_are_refused(broken: str) -> None:
    with pytest.raises(MalformedMessage):
        SiweMessage.parse(broken)
