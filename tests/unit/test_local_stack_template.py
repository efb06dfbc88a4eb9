"""The local stack reads template.yaml as CloudFormation and SAM do."""

from __future__ import annotations

import pytest

from tests.local_stack.api_gateway import _allows
from tests.local_stack.event_sources import rate_seconds
from tests.local_stack.template import ParameterError, check_parameter, load_template, parse_overrides
from tests.support import ROOT

TEMPLATE = ROOT / "template.yaml"


def refs(logical_id: str, attribute: str | None) -> str:
    return f"<{logical_id}{'.' + attribute if attribute else ''}>"


def test_overrides_in_both_sam_syntaxes() -> None:
    assert parse_overrides('A=1 B="two words"') == {"A": "1", "B": "two words"}
    assert parse_overrides("ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue=x") == {"A": "1", "B": "x"}
    with pytest.raises(ValueError, match="not a parameter override"):
        parse_overrides("loose")


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="NoSuchParameter"):
        load_template(TEMPLATE, "NoSuchParameter=1")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("HeartbeatStaleSeconds=3", "Parameter 'HeartbeatStaleSeconds' must be a number not less than 5"),
        ("StalenessCheckSeconds=61", "Parameter 'StalenessCheckSeconds' must be a number not greater than 60"),
        ("CommandMaxDeliveries=two", "Parameter 'CommandMaxDeliveries' must be a number"),
        ("LogLevel=TRACE", "Parameter 'LogLevel' must be one of AllowedValues: DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_overrides_outside_the_declared_constraints_are_refused_like_cloudformation(
    override: str, message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        load_template(TEMPLATE, override)


def test_every_refused_parameter_is_named_at_once() -> None:
    with pytest.raises(ParameterError) as refused:
        load_template(TEMPLATE, "HeartbeatStaleSeconds=0 ExpirySweepSeconds=0")
    assert "'HeartbeatStaleSeconds'" in str(refused.value)
    assert "'ExpirySweepSeconds'" in str(refused.value)


def test_values_on_the_bounds_and_the_template_defaults_are_accepted() -> None:
    template = load_template(TEMPLATE, "HeartbeatStaleSeconds=5 StalenessCheckSeconds=60 LogLevel=DEBUG")
    assert template.parameters["HeartbeatStaleSeconds"] == "5"
    assert load_template(TEMPLATE).parameters["CommandMaxDeliveries"] == "5"


def test_string_constraints_and_the_constraint_description() -> None:
    spec = {"Type": "String", "AllowedPattern": "[a-z]+", "MinLength": 2, "MaxLength": 4}
    assert check_parameter("P", spec, "abc") is None
    assert check_parameter("P", spec, "abc1") == "Parameter 'P' must match pattern [a-z]+"  # the whole value
    assert check_parameter("P", spec, "a") == "Parameter 'P' must contain at least 2 characters"
    assert check_parameter("P", spec, "abcde") == "Parameter 'P' must contain at most 4 characters"
    described = spec | {"ConstraintDescription": "lower-case letters"}
    assert check_parameter("P", described, "A") == "Parameter 'P' failed to satisfy constraint: lower-case letters"
    numbers = {"Type": "List<Number>", "MinValue": 1}
    assert check_parameter("L", numbers, "1,2") is None
    assert check_parameter("L", numbers, "1,0") == "Parameter 'L' must be a number not less than 1 (got 0)"


def test_globals_parameters_and_intrinsics_reach_a_functions_environment() -> None:
    template = load_template(TEMPLATE, "HeartbeatStaleSeconds=20", stack_name="s1")
    jobs = template.functions(refs)["JobsFunction"]
    assert jobs.environment["HEARTBEAT_STALE_SECONDS"] == "20"  # override
    assert jobs.environment["TOKEN_TTL_SECONDS"] == "3600"  # default
    assert jobs.environment["JOBS_TABLE"] == "<JobsTable>"  # !Ref
    assert jobs.environment["COMMANDS_DLQ_ARN"] == "<CommandsDeadLetterQueue.Arn>"  # !GetAtt
    assert jobs.environment["COMMAND_QUEUE_PREFIX"] == "s1-cmd-"  # !Sub with a pseudo parameter
    assert jobs.environment["POWERTOOLS_SERVICE_NAME"] == "worldland"  # Globals
    assert jobs.timeout == 10  # Globals
    assert template.functions(refs)["CommandsFunction"].timeout == 28  # the function's own wins
    assert [p.name for p in jobs.layers] == ["common"]


def test_routes_with_their_authorizer() -> None:
    routes = {(r.method, r.path): r for r in load_template(TEMPLATE).routes()}
    assert routes[("POST", "/api/v1/jobs")].function == "JobsFunction"
    assert routes[("POST", "/api/v1/jobs")].authorizer == "WalletTokenAuthorizer"
    assert routes[("POST", "/api/v1/auth/nonce")].authorizer is None
    assert routes[("GET", "/api/v1/providers/{provider_id}")].pattern().match("/api/v1/providers/abc")


def test_literal_paths_are_matched_before_parameters() -> None:
    order = [r.path for r in load_template(TEMPLATE).routes()]
    assert order.index("/api/v1/providers/search") < order.index("/api/v1/providers/{provider_id}")


def test_authorizer_and_gateway_responses() -> None:
    template = load_template(TEMPLATE)
    (authorizer,) = template.authorizers().values()
    assert (authorizer.function, authorizer.payload_type, authorizer.reauthorize_every) == (
        "AuthorizerFunction",
        "TOKEN",
        0,
    )
    status, body = template.gateway_responses()["MISSING_AUTHENTICATION_TOKEN"]
    assert status == 404
    assert '"not_found"' in (body or "")


@pytest.mark.parametrize(
    ("expression", "seconds"), [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200)]
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_policy_evaluation_like_iam() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/api/v1/jobs"
    allow_all = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": ["arn:aws:execute-api:us-east-1:123456789012:local/prod/*/*"],
            }
        ]
    }
    assert _allows(allow_all, arn)
    deny = {"Statement": [*allow_all["Statement"], {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": arn}]}
    assert not _allows(deny, arn)
    assert not _allows({"Statement": []}, arn)
