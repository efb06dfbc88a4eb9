"""The whole API's OpenAPI document (`?format=json`) and Swagger UI, generated from every router."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from worldland.api import auth, commands, jobs, nodes, providers
from worldland.api.app import create_app
from worldland.observability import logger

app = create_app(auth.router, providers.router, jobs.router, nodes.router, commands.router)
app.enable_swagger(
    path="/api/v1/docs",
    title="WorldLand Cloud API",
    version="1.0.0",
    description="Rent GPU containers with root SSH from independent providers. Sign in with a wallet, "
    "then send `Authorization: Bearer <token>`.",
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
