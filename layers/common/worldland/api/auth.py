"""POST /auth/nonce and /auth/login."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from worldland import clock
from worldland.api import deps
from worldland.dal.secrets import secret_string
from worldland.domain import signin
from worldland.models.auth import LoginRequest, LoginResponse, NonceRequest, NonceResponse
from worldland.settings import get_settings

router = Router()


@router.post("/api/v1/auth/nonce", summary="Get a single-use nonce and the SIWE message to sign", tags=["auth"])
def create_nonce(request: NonceRequest) -> NonceResponse:
    return signin.issue_nonce(request.address, get_settings(), deps.nonces(), clock.now())


@router.post(
    "/api/v1/auth/login",
    summary="Exchange a signed SIWE message or EIP-712 typed data for a bearer token",
    tags=["auth"],
    responses={401: {"description": "invalid_signature, nonce_used, nonce_expired, domain_mismatch"}},
)
def login(request: LoginRequest) -> LoginResponse:
    settings = get_settings()
    secret = secret_string(settings.token_secret_arn)
    return signin.login(request, settings, deps.nonces(), secret, clock.now())
