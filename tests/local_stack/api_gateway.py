"""The template's REST API served as API Gateway's Lambda proxy integration serves it: routes, the
TOKEN authorizer, gateway responses, proxy events in and proxy responses out (no stage prefix in
paths, as with `sam local start-api`)."""

from __future__ import annotations

import base64
import fnmatch
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from tests.local_stack.lambda_runtime import LambdaError, LambdaRuntime
from tests.local_stack.template import ACCOUNT_ID, Template

log = logging.getLogger("local_stack.api")

API_ID = "local"
# API Gateway's own status codes for its responses, used where the template sets none.
_DEFAULT_STATUS = {
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "AUTHORIZER_FAILURE": 500,
    "INTEGRATION_FAILURE": 502,
    "INTEGRATION_TIMEOUT": 504,
}
_DEFAULT_MESSAGE = {
    "UNAUTHORIZED": "Unauthorized",
    "ACCESS_DENIED": "User is not authorized to access this resource",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "AUTHORIZER_FAILURE": "Internal server error",
    "INTEGRATION_FAILURE": "Internal server error",
    "INTEGRATION_TIMEOUT": "Endpoint request timed out",
}


class ApiGateway:
    def __init__(self, template: Template, runtime: LambdaRuntime, region: str) -> None:
        self.runtime = runtime
        self.region = region
        self.stage = template.stage()
        self.routes = [(route, route.pattern()) for route in template.routes()]
        self.authorizers = template.authorizers()
        self.responses = template.gateway_responses()
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        response = self.handle(request, request_id)
        response.headers["x-amzn-RequestId"] = request_id
        log.info(
            "%s %s -> %s (%.0f ms)",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response(environ, start_response)

    def handle(self, request: Request, request_id: str) -> Response:
        matched = [(route, m) for route, pattern in self.routes if (m := pattern.match(request.path))]
        found = next(((r, m) for r, m in matched if r.method in (request.method, "ANY")), None)
        if found is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN")
        route, match = found
        authorizer_context: dict[str, Any] | None = None
        if route.authorizer:
            outcome = self.authorize(route.authorizer, request, route.path)
            if isinstance(outcome, Response):
                return outcome
            authorizer_context = outcome
        event = self.proxy_event(request, route.path, match.groupdict(), authorizer_context, request_id)
        try:
            result = self.runtime.invoke(route.function, event)
        except LambdaError as error:
            log.error("%s failed: %s: %s", route.function, error.error_type, error.message)
            return self.gateway_response(
                "INTEGRATION_TIMEOUT" if error.error_type == "TimeoutError" else "INTEGRATION_FAILURE"
            )
        return self.proxy_response(result)

    # ---------------------------------------------------------------- authorizer
    def authorize(self, name: str, request: Request, resource: str) -> dict[str, Any] | Response:
        authorizer = self.authorizers[name]
        token = request.headers.get(authorizer.header, "")
        if not token.strip():
            return self.gateway_response("UNAUTHORIZED")
        method_arn = (
            f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{API_ID}/{self.stage}/{request.method}{request.path}"
        )
        cached = self._cached(name, token)
        if cached is None:
            event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
            try:
                policy = self.runtime.invoke(authorizer.function, event)
            except LambdaError as error:
                if error.message == "Unauthorized":
                    return self.gateway_response("UNAUTHORIZED")
                log.error("authorizer failed: %s: %s", error.error_type, error.message)
                return self.gateway_response("AUTHORIZER_FAILURE")
            cached = policy
            if authorizer.reauthorize_every > 0:
                with self._cache_lock:
                    self._cache[(name, token)] = (time.monotonic() + authorizer.reauthorize_every, policy)
        if not _allows(cached.get("policyDocument", {}), method_arn):
            return self.gateway_response("ACCESS_DENIED")
        return {"principalId": cached.get("principalId"), **(cached.get("context") or {})}

    def _cached(self, name: str, token: str) -> dict[str, Any] | None:
        with self._cache_lock:
            entry = self._cache.get((name, token))
            if entry and entry[0] > time.monotonic():
                return entry[1]
            self._cache.pop((name, token), None)
        return None

    # ---------------------------------------------------------------- proxy integration
    def proxy_event(
        self,
        request: Request,
        resource: str,
        path_parameters: dict[str, str],
        authorizer: dict[str, Any] | None,
        request_id: str,
    ) -> dict[str, Any]:
        headers = dict(request.headers.items())
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            multi_headers.setdefault(key, []).append(value)
        query = {k: request.args.getlist(k)[-1] for k in request.args}
        body_bytes = request.get_data()
        body: str | None
        try:
            body, encoded = (body_bytes.decode("utf-8") if body_bytes else None), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(body_bytes).decode(), True
        now = datetime.now(UTC)
        context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, resource).hex[:6],
            "resourcePath": resource,
            "httpMethod": request.method,
            "path": f"/{self.stage}{request.path}",
            "stage": self.stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "domainName": request.host,
            "identity": {"sourceIp": request.remote_addr, "userAgent": request.user_agent.string},
        }
        if authorizer is not None:
            context["authorizer"] = authorizer
        return {
            "resource": resource,
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": context,
            "body": body,
            "isBase64Encoded": encoded,
        }

    def proxy_response(self, result: Any) -> Response:
        if not isinstance(result, dict) or "statusCode" not in result:
            log.error("malformed proxy response: %r", result)
            return self.gateway_response("INTEGRATION_FAILURE")
        headers = Headers()
        for key, value in (result.get("headers") or {}).items():
            headers[key] = str(value)
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers.remove(key)
            for value in values:
                headers.add(key, str(value))
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return Response(data, status=int(result["statusCode"]), headers=headers)

    def gateway_response(self, kind: str) -> Response:
        status, template = self.responses.get(kind, (None, None))
        if template is None and kind != "DEFAULT_4XX":
            family = "DEFAULT_5XX" if _DEFAULT_STATUS.get(kind, 500) >= 500 else "DEFAULT_4XX"
            template = self.responses.get(family, (None, None))[1]
        body = template or f'{{"message": "{_DEFAULT_MESSAGE.get(kind, kind)}"}}'
        return Response(body, status=status or _DEFAULT_STATUS.get(kind, 500), content_type="application/json")


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation for execute-api:Invoke: an explicit Deny wins, else some Allow must match."""
    allowed = False
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
