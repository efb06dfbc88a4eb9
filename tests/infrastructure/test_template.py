"""template.yaml is the single source of truth: it validates, and it declares what the code relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure.conftest import FUNCTION, resources
from tests.support import EVENTS, ROOT

SAM = shutil.which("sam", path=str(Path(sys.executable).parent)) or shutil.which("sam")


@pytest.mark.parametrize("lint", [False, True], ids=["validate", "validate-lint"])
def test_sam_validate_passes(lint: bool) -> None:
    assert SAM, "aws-sam-cli must be installed (make setup installs it)"
    command = [SAM, "validate", "--region", "us-east-1", "--template-file", "template.yaml"] + (
        ["--lint"] if lint else []
    )
    env = os.environ | {"SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output
    # The two checks catch different mistakes: make sure each ran (a samconfig `lint = true` would
    # silently turn the plain translation into a second cfn-lint run).
    assert ("basic SAM Validation" in output) is not lint, output


def test_every_function_has_code_a_handler_and_a_sample_event(template: dict[str, Any]) -> None:
    functions = resources(template, FUNCTION)
    assert {"AuthFunction", "AuthorizerFunction", "ProvidersFunction", "JobsFunction", "NodesFunction"} <= set(
        functions
    )
    samples = [p.stem for p in EVENTS.glob("*.json")]
    for name, function in functions.items():
        code = ROOT / function["Properties"]["CodeUri"]
        module, _, handler = function["Properties"]["Handler"].partition(".")
        source = (code / f"{module}.py").read_text()
        # A handler is either a def or a module-level name bound to one (http_handler(router))
        assert re.search(rf"^(def {handler}\(|{handler} = )", source, re.MULTILINE), name
        assert (code / "requirements.txt").exists(), name
        assert any(s.startswith(f"{code.name}_") for s in samples), f"{name} has no events/{code.name}_*.json"


def test_layer_is_built_by_sam_from_its_own_folder(template: dict[str, Any]) -> None:
    (layer,) = resources(template, "AWS::Serverless::LayerVersion").values()
    assert layer["Metadata"]["BuildMethod"].startswith("python3")
    # With BuildMethod python3.x SAM copies ContentUri into python/ itself: the package sits right under it.
    assert (ROOT / layer["Properties"]["ContentUri"] / "worldland" / "__init__.py").exists()


def test_search_by_gpu_model_queries_an_index(template: dict[str, Any]) -> None:
    gpus = template["Resources"]["ProviderGpusTable"]["Properties"]
    (index,) = [i for i in gpus["GlobalSecondaryIndexes"] if i["IndexName"] == "ModelPriceIndex"]
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["gpu_model", "gpu_price_per_hour"]
    providers = template["Resources"]["ProvidersTable"]["Properties"]
    names = [i["IndexName"] for i in providers["GlobalSecondaryIndexes"]]
    assert "StatusPriceIndex" in names


def test_nonces_and_idempotency_keys_expire_by_ttl(template: dict[str, Any]) -> None:
    for table in ("NoncesTable", "IdempotencyTable"):
        ttl = template["Resources"][table]["Properties"]["TimeToLiveSpecification"]
        assert ttl == {"AttributeName": "ttl", "Enabled": True}


def _policy_tables(function: dict[str, Any]) -> dict[str, str]:
    scoped: dict[str, str] = {}
    for policy in function["Properties"].get("Policies", []):
        for name, args in policy.items():
            if name.startswith("DynamoDB"):
                scoped[args["TableName"]["Ref"]] = name
    return scoped


def test_policies_are_scoped_to_the_tables_each_function_uses(template: dict[str, Any]) -> None:
    functions = resources(template, FUNCTION)
    assert _policy_tables(functions["ProvidersFunction"]) == {
        "ProvidersTable": "DynamoDBReadPolicy",
        "ProviderGpusTable": "DynamoDBReadPolicy",
    }
    assert _policy_tables(functions["AuthFunction"]) == {"NoncesTable": "DynamoDBCrudPolicy"}
    assert _policy_tables(functions["AuthorizerFunction"]) == {}
    assert set(_policy_tables(functions["JobsFunction"])) == {
        "JobsTable",
        "ProvidersTable",
        "ProviderGpusTable",
        "IdempotencyTable",
    }
    for function in functions.values():
        for policy in function["Properties"].get("Policies", []):
            assert not isinstance(policy, str) or not policy.endswith("FullAccess"), policy


def test_token_secret_comes_from_secrets_manager(template: dict[str, Any]) -> None:
    secret = template["Resources"]["TokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TOKEN_SECRET_ARN"] == {"Ref": "TokenSecret"}


def test_only_browsing_and_sign_in_routes_skip_the_authorizer(template: dict[str, Any]) -> None:
    public = set()
    for function in resources(template, FUNCTION).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "Api" and event["Properties"].get("Auth", {}).get("Authorizer") == "NONE":
                public.add((event["Properties"]["Method"], event["Properties"]["Path"]))
    assert public == {
        ("POST", "/api/v1/auth/nonce"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/providers"),
        ("GET", "/api/v1/providers/search"),
        ("GET", "/api/v1/providers/gpu-availability"),
        ("GET", "/api/v1/providers/{provider_id}"),
        ("GET", "/api/v1/docs"),
    }
