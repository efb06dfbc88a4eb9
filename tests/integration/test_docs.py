"""The OpenAPI document is the full reference (API.md): every route the template serves is in it."""

from __future__ import annotations

from tests.integration.conftest import Lambdas
from tests.local_stack.template import load_template
from tests.support import ROOT, sample_event


def test_every_template_route_is_documented(lambdas: Lambdas) -> None:
    # Given the routes API Gateway serves, read from the template
    served = {(r.method.lower(), r.path) for r in load_template(ROOT / "template.yaml").routes()}
    # When the docs function generates the document
    docs = lambdas.http("docs", sample_event("docs_openapi"))
    assert docs.status == 200
    documented = {(method, path) for path, item in docs.body["paths"].items() for method in item}
    # Then each of them is there, with its method (the docs route documents the others, not itself)
    missing = {route for route in served if not route[1].startswith("/api/v1/docs")} - documented
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
