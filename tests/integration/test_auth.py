"""Sign-in through the real auth and authorizer handlers on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tests.integration.conftest import Lambdas, proxy_event
from tests.support import new_wallet, sample_event, sign_text, sign_typed


def get_nonce(lambdas: Lambdas, address: str) -> dict:
    answer = lambdas.http("auth", proxy_event(sample_event("auth_nonce"), body={"address": address}))
    assert answer.status == 200, answer.body
    return answer.body


def login(lambdas: Lambdas, body: dict):
    return lambdas.http("auth", proxy_event(sample_event("auth_login"), body=body))


def test_siwe_sign_in_gives_a_token_once_per_nonce(lambdas: Lambdas) -> None:
    # Given a nonce issued for a wallet, and the SIWE message signed with personal_sign
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address.lower())
    assert issued["nonce"] in issued["message"]
    assert wallet.address in issued["message"]  # EIP-55 checksummed, whatever case was sent
    signature = sign_text(wallet, issued["message"])
    # When it logs in
    first = login(lambdas, {"message": issued["message"], "signature": signature})
    # Then it gets a bearer token for its checksummed address
    assert first.status == 200, first.body
    assert first.body["token_type"] == "Bearer"
    assert first.body["address"] == wallet.address
    # And the same nonce never works twice
    second = login(lambdas, {"message": issued["message"], "signature": signature})
    assert second.status == 401
    assert second.body["error"]["code"] == "nonce_used"


def test_eip712_sign_in(lambdas: Lambdas) -> None:
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address)
    answer = login(lambdas, {"typed_data": issued["typed_data"], "signature": sign_typed(wallet, issued["typed_data"])})
    assert answer.status == 200, answer.body
    assert answer.body["address"] == wallet.address


def test_signature_from_another_wallet_is_refused_and_keeps_the_nonce(lambdas: Lambdas) -> None:
    owner, thief = new_wallet(), new_wallet()
    issued = get_nonce(lambdas, owner.address)
    forged = login(lambdas, {"message": issued["message"], "signature": sign_text(thief, issued["message"])})
    assert forged.status == 401
    assert forged.body["error"]["code"] == "invalid_signature"
    # The owner can still use the nonce: a forged attempt does not burn it.
    genuine = login(lambdas, {"message": issued["message"], "signature": sign_text(owner, issued["message"])})
    assert genuine.status == 200


def test_message_for_another_domain_is_refused(lambdas: Lambdas) -> None:
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address)
    phished = issued["message"].replace("localhost:3000 wants", "evil.example wants")
    answer = login(lambdas, {"message": phished, "signature": sign_text(wallet, phished)})
    assert answer.status == 401
    assert answer.body["error"]["code"] == "domain_mismatch"


def test_message_for_another_chain_is_refused(lambdas: Lambdas) -> None:
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address)
    other_chain = issued["message"].replace("Chain ID: 11155111", "Chain ID: 1")
    answer = login(lambdas, {"message": other_chain, "signature": sign_text(wallet, other_chain)})
    assert answer.status == 401
    assert answer.body["error"]["code"] == "chain_mismatch"


def test_expired_nonce_is_refused(lambdas: Lambdas, aws: dict[str, str]) -> None:
    # Given a nonce whose expiry has passed (TTL deletes late, so the code must check)
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address)
    past = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())
    boto3.client("dynamodb").update_item(
        TableName=aws["NoncesTable"],
        Key={"nonce": {"S": issued["nonce"]}},
        UpdateExpression="SET #t = :past",
        ExpressionAttributeNames={"#t": "ttl"},
        ExpressionAttributeValues={":past": {"N": str(past)}},
    )
    answer = login(lambdas, {"message": issued["message"], "signature": sign_text(wallet, issued["message"])})
    assert answer.status == 401
    assert answer.body["error"]["code"] == "nonce_expired"


def test_nonce_never_issued_is_refused(lambdas: Lambdas) -> None:
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address)
    made_up = issued["message"].replace(issued["nonce"], "f" * 32)
    answer = login(lambdas, {"message": made_up, "signature": sign_text(wallet, made_up)})
    assert answer.status == 401
    assert answer.body["error"]["code"] == "invalid_nonce"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"address": "0x123"}, "address"),
        ({}, "address"),
        ({"address": "0x" + "g" * 40}, "address"),
    ],
)
def test_bad_nonce_requests_are_422(lambdas: Lambdas, body: dict, field: str) -> None:
    answer = lambdas.http("auth", proxy_event(sample_event("auth_nonce"), body=body))
    assert answer.status == 422
    assert answer.body["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        {"signature": "0x" + "a" * 130},
        {"message": "x", "typed_data": {}, "signature": "0x" + "a" * 130},
        {"message": "not siwe", "signature": "0x" + "a" * 130},
        {"message": "x", "signature": "0x1234"},
        "{not json",
    ],
)
def test_bad_login_requests_are_422(lambdas: Lambdas, body: object) -> None:
    answer = lambdas.http("auth", proxy_event(sample_event("auth_login"), body=body))
    assert answer.status == 422, answer.body
    assert answer.body["error"]["code"] == "validation_error"


def test_authorizer_passes_the_wallet_of_a_valid_token(lambdas: Lambdas) -> None:
    wallet = new_wallet()
    issued = get_nonce(lambdas, wallet.address)
    token = login(lambdas, {"message": issued["message"], "signature": sign_text(wallet, issued["message"])}).body
    event = sample_event("authorizer_token") | {"authorizationToken": f"Bearer {token['token']}"}
    policy = lambdas("authorizer", event)
    assert policy["principalId"] == wallet.address
    assert policy["context"] == {"wallet": wallet.address}
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "", "Basic dXNlcjpwYXNz"])
def test_authorizer_refuses_bad_tokens_with_unauthorized(lambdas: Lambdas, header: str) -> None:
    event = sample_event("authorizer_token") | {"authorizationToken": header}
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        lambdas("authorizer", event)
