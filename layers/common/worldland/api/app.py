"""The resolver every function uses: validation on, every error answered in API.md's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from worldland.dal.errors import BadPageToken, StorageError
from worldland.errors import DomainError, Unauthorized
from worldland.models.common import FORMAT_HINTS, ErrorDetail, ErrorInfo, ErrorResponse
from worldland.observability import logger, metrics, tracer


def error_response(status: int, code: str, message: str, details: list[ErrorDetail] | None = None) -> Response[str]:
    body = ErrorResponse(error=ErrorInfo(code=code, message=message, details=details or []))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


def json_response[M: BaseModel](status: int, body: M) -> Response[M]:
    # The model itself: Powertools validates it against the route's Response[...] type and serializes it.
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _field(loc: tuple[Any, ...]) -> str:
    # Powertools locations look like ("body", "gpu_count") or ("query", "limit").
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "body"


_ISSUES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "enum": "must be one of {expected}",
    "literal_error": "must be one of {expected}",
}


def _issue(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind == "string_pattern_mismatch":
        return FORMAT_HINTS.get(str(error.get("loc", ("",))[-1]), "has an invalid format")
    if template := _ISSUES.get(kind):
        try:
            return template.format(**(error.get("ctx") or {}))
        except (KeyError, IndexError):
            pass
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def create_app(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response[str]:
        details = [ErrorDetail(field=d.field, issue=d.issue) for d in error.details]
        return error_response(error.status, error.code, error.message, details)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[str]:
        details = [ErrorDetail(field=_field(tuple(e.get("loc", ()))), issue=_issue(e)) for e in error.errors()]
        summary = "; ".join(f"{d.field} {d.issue}" for d in details[:3])
        return error_response(422, "validation_error", f"The request is invalid: {summary}.", details)

    @app.exception_handler(UnicodeDecodeError)
    def _not_text(_: UnicodeDecodeError) -> Response[str]:
        issue = "must be UTF-8 encoded JSON"
        return error_response(422, "validation_error", f"The body {issue}.", [ErrorDetail(field="body", issue=issue)])

    @app.exception_handler(BadPageToken)
    def _bad_token(_: BadPageToken) -> Response[str]:
        issue = "is not a token this list handed out"
        return error_response(
            422, "invalid_page_token", f"next_token {issue}.", [ErrorDetail(field="next_token", issue=issue)]
        )

    @app.exception_handler(StorageError)
    def _storage(_: StorageError) -> Response[str]:
        logger.exception("storage failed")
        return error_response(503, "service_unavailable", "Storage is busy or unavailable; retry shortly.")

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[str]:
        return error_response(404, "not_found", "No such route.")

    for router in routers:
        app.include_router(router)
    return app


def http_handler(*routers: Router) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of an HTTP function: its routers behind the shared resolver, with the
    request id as correlation id in every log line, tracing, and metrics flushed per call."""
    app = create_app(*routers)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler


def caller_wallet(app: APIGatewayRestResolver | Router) -> str:
    """The wallet the authorizer verified; never taken from the request itself."""
    authorizer = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    wallet = authorizer.get("wallet")
    if not wallet:
        raise Unauthorized("unauthorized", "A valid bearer token is required.")
    return str(wallet)
