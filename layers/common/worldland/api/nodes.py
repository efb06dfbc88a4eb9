"""Provider agent routes: POST /nodes/register and /nodes/{id}/heartbeat."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from worldland.api import deps
from worldland.api.app import caller_wallet, json_response
from worldland.domain import providers as domain
from worldland.models.common import ID_PATTERN, utc_now
from worldland.models.providers import HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse
from worldland.observability import logger

router = Router()


@router.post("/api/v1/nodes/register", summary="Register (or re-register) a GPU host", tags=["nodes"])
def register(request: RegisterRequest) -> Response[RegisterResponse]:
    answer = domain.register(request, caller_wallet(router), deps.providers(), utc_now())
    logger.info("provider registered", provider_id=answer.provider_id, status=answer.status.value)
    return json_response(201, answer)


@router.post("/api/v1/nodes/<provider_id>/heartbeat", summary="Report the host alive", tags=["nodes"])
def heartbeat(provider_id: Annotated[str, Path(pattern=ID_PATTERN)], request: HeartbeatRequest) -> HeartbeatResponse:
    return domain.heartbeat(provider_id, caller_wallet(router), request, deps.providers(), utc_now())
