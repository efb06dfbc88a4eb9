"""The template as the infrastructure tests read it: one parse per session, and resources by type."""

from __future__ import annotations

from typing import Any

import pytest

from tests.local_stack.template import load_template
from tests.support import ROOT

FUNCTION = "AWS::Serverless::Function"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml").body


def resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}
