"""The agent's command queue: GET /nodes/{id}/commands?wait=N (long poll) and POST /nodes/{id}/commands/ack."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from worldland.api import deps
from worldland.api.app import caller_wallet
from worldland.domain.lifecycle import owned_provider
from worldland.models.commands import AckRequest, AckResponse, CommandsResponse
from worldland.models.common import ID_PATTERN

router = Router()

ProviderId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get(
    "/api/v1/nodes/<provider_id>/commands",
    summary="Long-poll the provider's commands; answers as soon as one is queued",
    tags=["nodes"],
)
def poll_commands(
    provider_id: ProviderId,
    wait: Annotated[int, Query(ge=0, le=20, description="Seconds to wait for a command")] = 20,
) -> CommandsResponse:
    owned_provider(provider_id, caller_wallet(router), deps.providers())
    return CommandsResponse(commands=deps.command_queues().receive(provider_id, wait))


@router.post(
    "/api/v1/nodes/<provider_id>/commands/ack",
    summary="Acknowledge handled commands (unacknowledged ones are delivered again)",
    tags=["nodes"],
)
def ack_commands(provider_id: ProviderId, request: AckRequest) -> AckResponse:
    owned_provider(provider_id, caller_wallet(router), deps.providers())
    failed = deps.command_queues().ack(provider_id, request.receipts)
    return AckResponse(acknowledged=len(set(request.receipts)) - len(failed), failed=failed)
