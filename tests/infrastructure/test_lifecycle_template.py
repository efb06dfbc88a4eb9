"""The rental lifecycle as template.yaml declares it: queues, dead-letter queues, schedules, SQS event
sources, and the command-queue permissions each function holds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure.conftest import FUNCTION, resources
from tests.support import ROOT

# Per-provider queues are created at run time under this prefix (COMMAND_QUEUE_PREFIX + digest + .fifo).
COMMAND_QUEUES_ARN = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-cmd-*"

# What each function's code path does on command queues (worldland.dal.commands), as IAM actions:
# DeleteMessageBatch is authorized as sqs:DeleteMessage, SendMessageBatch as sqs:SendMessage.
COMMAND_QUEUE_ACTIONS = {
    "NodesFunction": {"sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:SetQueueAttributes"},  # ensure()
    "CommandsFunction": {"sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"},  # receive(), ack()
    "JobsFunction": {"sqs:GetQueueUrl", "sqs:SendMessage"},  # start_rental, stop_rental on delete
    "StalenessFunction": {"sqs:GetQueueUrl", "sqs:SendMessage"},  # stop_rental for lost providers' jobs
    "ExpiryFunction": {"sqs:GetQueueUrl", "sqs:SendMessage"},  # stop_rental for expired jobs
}

SCHEDULED = {"StalenessFunction": "StalenessCheckSeconds", "ExpirySweepFunction": "ExpirySweepSeconds"}
SQS_CONSUMERS = {"ExpiryFunction": "ExpiryQueue", "CommandFailuresFunction": "CommandsDeadLetterQueue"}


def timeout(template: dict[str, Any], function: str) -> int:
    own = template["Resources"][function]["Properties"].get("Timeout")
    return int(own if own is not None else template["Globals"]["Function"]["Timeout"])


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found += policy["Statement"]
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def command_queue_actions(function: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in statements(function):
        if any(r == {"Fn::Sub": COMMAND_QUEUES_ARN} for r in _listed(statement["Resource"])):
            assert statement["Effect"] == "Allow"
            actions |= set(_listed(statement["Action"]))
    return actions


# ---------------------------------------------------------------- permissions
def test_each_function_has_exactly_the_command_queue_actions_its_code_needs(template: dict[str, Any]) -> None:
    for name, function in resources(template, FUNCTION).items():
        assert command_queue_actions(function) == COMMAND_QUEUE_ACTIONS.get(name, set()), name


def test_command_queue_permissions_are_scoped_to_the_stack_prefix(template: dict[str, Any]) -> None:
    # The prefix the code creates queues under is the one the policies name.
    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["COMMAND_QUEUE_PREFIX"]
    assert prefix == {"Fn::Sub": "${AWS::StackName}-cmd-"}
    assert COMMAND_QUEUES_ARN.endswith(":" + prefix["Fn::Sub"] + "*")
    for name, function in resources(template, FUNCTION).items():
        for statement in statements(function):
            sqs_actions = [a for a in _listed(statement["Action"]) if a.startswith("sqs:")]
            if not sqs_actions:
                continue
            assert not any(a in ("sqs:*", "*") or a.endswith("*") for a in sqs_actions), (name, sqs_actions)
            assert "*" not in _listed(statement["Resource"]), (name, statement)


def test_queue_creation_is_left_to_registration_only(template: dict[str, Any]) -> None:
    functions = resources(template, FUNCTION)
    creators = [name for name, f in functions.items() if "sqs:CreateQueue" in command_queue_actions(f)]
    assert creators == ["NodesFunction"]


# ---------------------------------------------------------------- queues and dead letters
def test_every_consumed_queue_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for consumer, queue in SQS_CONSUMERS.items():
        redrive = resources[queue]["Properties"]["RedrivePolicy"]
        dead_letter = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert resources[dead_letter]["Type"] == "AWS::SQS::Queue", consumer
        assert 1 <= int(redrive["maxReceiveCount"]) <= 10, consumer
        # A FIFO source needs a FIFO dead-letter queue, a standard one a standard one.
        fifo = resources[queue]["Properties"].get("FifoQueue", False)
        assert resources[dead_letter]["Properties"].get("FifoQueue", False) == fifo, consumer
        # Dead letters are kept long enough to be looked at (the maximum, 14 days).
        assert resources[dead_letter]["Properties"]["MessageRetentionPeriod"] == 1209600


def test_command_dead_letter_queue_is_fifo_as_the_provider_queues_are(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["COMMANDS_DLQ_ARN"] == {"Fn::GetAtt": ["CommandsDeadLetterQueue", "Arn"]}
    assert template["Resources"]["CommandsDeadLetterQueue"]["Properties"]["FifoQueue"] is True
    # The provider queues' redrive limit and ack timeout are parameters the code reads.
    assert variables["COMMAND_MAX_DELIVERIES"] == {"Ref": "CommandMaxDeliveries"}
    assert variables["COMMAND_ACK_TIMEOUT_SECONDS"] == {"Ref": "CommandAckTimeoutSeconds"}


@pytest.mark.parametrize(("consumer", "queue"), sorted(SQS_CONSUMERS.items()))
def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(
    template: dict[str, Any], consumer: str, queue: str
) -> None:
    visibility = int(template["Resources"][queue]["Properties"].get("VisibilityTimeout", 30))  # SQS default
    assert visibility >= 6 * timeout(template, consumer)


# ---------------------------------------------------------------- event sources and schedules
@pytest.mark.parametrize(("consumer", "queue"), sorted(SQS_CONSUMERS.items()))
def test_sqs_event_sources_report_partial_batch_failures(template: dict[str, Any], consumer: str, queue: str) -> None:
    events = template["Resources"][consumer]["Properties"]["Events"]
    (source,) = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
    assert source["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= source["BatchSize"] <= 10  # FIFO sources allow at most 10
    handler = (ROOT / template["Resources"][consumer]["Properties"]["CodeUri"] / "app.py").read_text()
    assert "process_partial_response" in handler  # the function does report them


def test_no_other_function_consumes_a_queue(template: dict[str, Any]) -> None:
    consumers = {
        name
        for name, function in resources(template, FUNCTION).items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    assert consumers == set(SQS_CONSUMERS)


@pytest.mark.parametrize(("function", "period"), sorted(SCHEDULED.items()))
def test_schedules_run_each_minute_with_the_period_inside(template: dict[str, Any], function: str, period: str) -> None:
    events = template["Resources"][function]["Properties"]["Events"]
    (schedule,) = [e["Properties"] for e in events.values() if e["Type"] == "Schedule"]
    assert schedule["Schedule"] == "rate(1 minute)"  # EventBridge's finest rate
    parameter = template["Parameters"][period]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (1, 60)
    # The last check of a minute runs up to 59 s in; the invocation needs that plus the 5 s margin.
    assert timeout(template, function) >= 60 + 5


def test_the_lifecycle_knobs_are_parameters(template: dict[str, Any]) -> None:
    assert {
        "HeartbeatStaleSeconds",
        "StalenessCheckSeconds",
        "ExpirySweepSeconds",
        "CommandAckTimeoutSeconds",
        "CommandMaxDeliveries",
        "ProviderLossGraceSeconds",
    } <= set(template["Parameters"])
