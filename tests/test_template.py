"""template.yaml rules that lint cannot see: least privilege, DLQs, log retention, Globals."""

from __future__ import annotations

import json
from typing import Any

from devtools.template import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
QUEUES = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"}


def test_globals_carry_runtime_architecture_tracing_and_powertools() -> None:
    function = TEMPLATE["Globals"]["Function"]
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    assert "POWERTOOLS_METRICS_NAMESPACE" in function["Environment"]["Variables"]


def test_layer_is_built_by_sam() -> None:
    layer = RESOURCES["AuthsyncLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert layer["Properties"]["ContentUri"] == "layers/authsync"


def test_every_queue_has_a_dlq_or_is_one() -> None:
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in QUEUES.values()
        if "RedrivePolicy" in q["Properties"]
    }
    for name, queue in QUEUES.items():
        assert name in dlqs or "RedrivePolicy" in queue["Properties"], name
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name


def test_every_function_has_a_log_group_with_retention() -> None:
    groups = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Logs::LogGroup"]
    for name in FUNCTIONS:
        matching = [g for g in groups if g["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}]
        assert len(matching) == 1, name
        assert "RetentionInDays" in matching[0]


def test_callback_ingest_policy_names_only_its_own_secrets_and_queue() -> None:
    policies = FUNCTIONS["CallbackIngestFunction"]["Properties"]["Policies"]
    statements = [s for p in policies if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]
    resources = [json.dumps(s["Resource"]) for s in statements]
    assert all("suites/*/config-??????" in r or "suites/*/ticket-??????" in r for r in resources)
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in statements)
    config = next(s for s in statements if "config" in json.dumps(s["Resource"]))
    assert config["Action"] == "secretsmanager:GetSecretValue"  # suite config is read-only
    sqs = [p for p in policies if isinstance(p, dict) and "SQSSendMessagePolicy" in p]
    assert sqs == [{"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["AuthEventsQueue", "QueueName"]}}}]


def test_outputs_give_what_users_and_tests_need() -> None:
    assert {"CallbackUrl", "AuthEventsQueueUrl", "AuthEventsDLQUrl", "SuiteSecretPrefix"} <= set(TEMPLATE["Outputs"])
