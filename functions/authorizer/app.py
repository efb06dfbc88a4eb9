"""API Gateway TOKEN authorizer: verify the bearer token and pass the wallet to the routes.

Imports neither eth-account nor web3: a token check is an HMAC, not a signature recovery.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland.dal.secrets import secret_string
from worldland.domain import tokens
from worldland.errors import Unauthorized
from worldland.observability import logger
from worldland.settings import get_settings


@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerTokenEvent)
def lambda_handler(event: APIGatewayAuthorizerTokenEvent, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    try:
        principal = tokens.verify(
            tokens.bearer(event.authorization_token), secret_string(get_settings().token_secret_arn)
        )
    except Unauthorized as refused:
        logger.info("token refused", reason=refused.code)  # never the token itself
        raise Exception("Unauthorized") from None  # API Gateway's contract for a 401
    arn = event.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=principal.address,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"wallet": principal.address},
    )
    policy.allow_all_routes()
    return policy.asdict()
