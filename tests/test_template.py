"""template.yaml rules that lint cannot see: least privilege, DLQs, log retention, Globals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authsync_dev.template import load_template

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


def test_layer_is_built_by_its_makefile_for_the_runtime() -> None:
    layer = RESOURCES["AuthsyncLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/authsync"
    assert layer["Properties"]["CompatibleRuntimes"] == [TEMPLATE["Globals"]["Function"]["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == TEMPLATE["Globals"]["Function"]["Architectures"]


def test_every_queue_has_a_dlq_or_is_one() -> None:
    redrive_targets = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in QUEUES.values()
        if "RedrivePolicy" in q["Properties"]
    }
    schedule_dlqs = {
        e["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        for f in FUNCTIONS.values()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "ScheduleV2"
    }
    stream_dlqs = {  # a stream mapping's on-failure destination
        r["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and "DestinationConfig" in r["Properties"]
    }
    for name, queue in QUEUES.items():
        dlqs = redrive_targets | schedule_dlqs | stream_dlqs
        assert name in dlqs or "RedrivePolicy" in queue["Properties"], name
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name


def test_every_schedule_has_a_retry_policy_and_a_dlq() -> None:
    schedules = [
        e["Properties"]
        for f in FUNCTIONS.values()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "ScheduleV2"
    ]
    assert len(schedules) == 4
    for schedule in schedules:
        assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert "Arn" in schedule["DeadLetterConfig"]


def test_every_alarm_notifies_the_alarm_topic() -> None:
    alarms = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {f"{name.removesuffix('Function')}ErrorsAlarm" for name in FUNCTIONS} <= set(alarms)
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name


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
    inbox = json.dumps({"Fn::GetAtt": ["InboxTable", "Arn"]})
    unmodelled = json.dumps({"Fn::GetAtt": ["UnmodelledCallbacksTable", "Arn"]})
    tables = {inbox, unmodelled}
    assert all("suites/*/config-??????" in r or "suites/*/ticket-??????" in r or r in tables for r in resources)
    kept = [s for s in statements if json.dumps(s["Resource"]) in tables]
    assert len(kept) == 2
    assert all(s["Action"] == "dynamodb:PutItem" for s in kept)  # it only keeps; others read and delete
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in statements)
    config = next(s for s in statements if "config" in json.dumps(s["Resource"]))
    assert config["Action"] == "secretsmanager:GetSecretValue"  # suite config is read-only
    sqs = [p for p in policies if isinstance(p, dict) and "SQSSendMessagePolicy" in p]
    assert sqs == [{"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["AuthEventsQueue", "QueueName"]}}}]


def test_outputs_give_what_users_and_tests_need() -> None:
    assert {"CallbackUrl", "AuthEventsQueueUrl", "AuthEventsDLQUrl", "SuiteSecretPrefix"} <= set(TEMPLATE["Outputs"])


def _policies(function: str) -> list[Any]:
    policies: list[Any] = FUNCTIONS[function]["Properties"]["Policies"]
    return policies


def _sam_policy_targets(function: str) -> dict[str, list[Any]]:
    """SAM policy templates used by ``function`` → the resources they name."""
    out: dict[str, list[Any]] = {}
    for policy in _policies(function):
        if isinstance(policy, dict) and "Statement" not in policy:
            for name, args in policy.items():
                out.setdefault(name, []).append(args)
    return out


def _statements(function: str) -> list[dict[str, Any]]:
    """Every statement, including those granted only under a condition (``Fn::If``)."""
    found = [s for p in _policies(function) if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]
    return [s["Fn::If"][1] if "Fn::If" in s else s for s in found]


def _conditional_statements(function: str) -> dict[str, list[dict[str, Any]]]:
    """Statements granted only under a condition: condition name → statements."""
    found = [s for p in _policies(function) if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]
    out: dict[str, list[dict[str, Any]]] = {}
    for statement in found:
        if "Fn::If" in statement:
            condition, granted, otherwise = statement["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            out.setdefault(condition, []).append(granted)
    return out


UNSCOPABLE = {"ReconcileFunction": ["secretsmanager:ListSecrets"]}
"""The one action IAM cannot scope to a resource, granted alone: secret names and metadata, never a value."""

INDEXES = [
    {"Fn::Sub": "${ExchangeJournalTable.Arn}/index/PendingExchanges"},
    {"Fn::Sub": "${CorpVaultTable.Arn}/index/CodesBySuite"},
]
"""The indexes granted on their own (keys only), without their tables' items."""


def test_listing_secret_names_is_granted_only_with_a_secret_per_corp() -> None:
    """With the default store (the vault) reconcile's code holders come from the vault's index instead."""
    assert TEMPLATE["Parameters"]["CorpCredentialStore"]["Default"] == "DynamoDBKMS"
    assert TEMPLATE["Conditions"]["CorpSecretsInSecretsManager"] == {
        "Fn::Equals": [{"Ref": "CorpCredentialStore"}, "SecretsManager"]
    }
    listed = [s for f in FUNCTIONS for s in _statements(f) if "secretsmanager:ListSecrets" in s["Action"]]
    assert listed == _conditional_statements("ReconcileFunction")["CorpSecretsInSecretsManager"]
    assert [s["Action"] for s in listed] == ["secretsmanager:ListSecrets"]
    assert all(not _conditional_statements(f) for f in FUNCTIONS if f != "ReconcileFunction")


def test_no_statement_grants_a_wildcard_action_or_resource() -> None:
    for function in FUNCTIONS:
        for statement in _statements(function):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(a != "*" and not a.endswith(":*") for a in actions), function
            if actions == UNSCOPABLE.get(function) and statement["Resource"] == "*":
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                assert resource != "*", function
                if any(a.startswith(("sqs:", "kms:", "dynamodb:", "events:")) for a in actions):  # its own, by ARN
                    text = json.dumps(resource)
                    if resource in INDEXES or resource == {"Fn::GetAtt": ["CorpsTable", "StreamArn"]}:
                        continue
                    assert resource == {"Fn::GetAtt": [resource["Fn::GetAtt"][0], "Arn"]}, text
                else:
                    assert "wecom-authsync/${Stage}/" in json.dumps(resource), function


def test_fetch_functions_touch_only_their_own_queues_and_tables() -> None:
    assert _sam_policy_targets("AuthInfoFunction") == {
        "DynamoDBCrudPolicy": [
            {"TableName": {"Ref": t}} for t in ("CorpVaultTable", "CorpsTable", "LeasesTable", "IdempotencyTable")
        ],
        "SQSSendMessagePolicy": [{"QueueName": {"Fn::GetAtt": ["ChatdataQueue", "QueueName"]}}],
    }
    assert _sam_policy_targets("ChatdataFunction") == {
        "DynamoDBCrudPolicy": [{"TableName": {"Ref": t}} for t in ("CorpVaultTable", "CorpsTable", "LeasesTable")],
    }
    consumed = {
        f: [s["Resource"]["Fn::GetAtt"][0] for s in _statements(f) if "sqs:ReceiveMessage" in s["Action"]]
        for f in FUNCTIONS
    }
    assert {f: q for f, q in consumed.items() if q} == {
        "AuthInfoFunction": ["AuthEventsQueue"],
        "ChatdataFunction": ["ChatdataQueue"],
    }
    assert _sam_policy_targets("CorpQueryFunction") == {"DynamoDBReadPolicy": [{"TableName": {"Ref": "CorpsTable"}}]}
    assert _statements("CorpQueryFunction") == []
    # Only auth-info may delete corp credentials (cancel_auth); chatdata only reads and renews them.
    deletes = {f for f in FUNCTIONS for s in _statements(f) if "secretsmanager:DeleteSecret" in s["Action"]}
    assert deletes == {"AuthInfoFunction"}


def _queue_mappings() -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] in QUEUES
    ]


def test_sqs_consumers_use_explicit_mappings_with_partial_batch_failures() -> None:
    """A SAM `Events: SQS` would attach a managed policy with Resource "*"; mappings avoid it."""
    for function in FUNCTIONS.values():
        events = function["Properties"].get("Events", {})
        assert all(e["Type"] not in ("SQS", "DynamoDB") for e in events.values())
    mappings = {properties["FunctionName"]["Ref"]: properties for properties in _queue_mappings()}
    assert set(mappings) == {"AuthInfoFunction", "ChatdataFunction"}
    for properties in mappings.values():
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert properties["BatchSize"] <= 10


def test_queue_visibility_covers_six_function_timeouts() -> None:
    """AWS's guidance for SQS-triggered Lambdas: visibility >= 6 x the function timeout."""
    for mapping in _queue_mappings():
        queue = QUEUES[mapping["EventSourceArn"]["Fn::GetAtt"][0]]
        function = FUNCTIONS[mapping["FunctionName"]["Ref"]]
        timeout = function["Properties"].get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])
        assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_change_events_come_from_the_corps_stream_retried_bisected_and_never_dropped() -> None:
    """The stream is the outbox (issue #12): state items only, partial failures, bisect, then the DLQ (alarmed)."""
    (mapping,) = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and "StreamArn" in r["Properties"]["EventSourceArn"]["Fn::GetAtt"]
    ]
    assert RESOURCES["CorpsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["CorpsTable", "StreamArn"]}
    assert mapping["FunctionName"] == {"Ref": "ChangePublisherFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["ChangeEventsDLQ", "Arn"]}
    assert json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"]) == {
        "dynamodb": {"Keys": {"sk": {"S": ["STATE"]}}}
    }
    alarms = {
        r["Properties"].get("MetricName"): r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert alarms["IteratorAge"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ChangePublisherFunction"}}
    ]
    assert TEMPLATE["Outputs"]["EventBusName"]["Value"] == {"Ref": "ChangeEventBus"}


def test_query_route_is_iam_authorized() -> None:
    events = FUNCTIONS["CorpQueryFunction"]["Properties"]["Events"]
    assert all(e["Properties"]["Auth"]["Authorizer"] == "AWS_IAM" for e in events.values())


def test_broker_routes_are_iam_authorized() -> None:
    events = FUNCTIONS["TokenBrokerFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values()}
    assert routes == {
        ("GET", "/corps/{suite_id}/{corp_id}/token"),
        ("POST", "/corps/{suite_id}/{corp_id}/token/invalidate"),
    }
    assert all(e["Type"] == "HttpApi" and e["Properties"]["ApiId"] == {"Ref": "CallbackApi"} for e in events.values())
    assert all(e["Properties"]["Auth"]["Authorizer"] == "AWS_IAM" for e in events.values())


def test_the_broker_role_grants_only_the_calls_the_broker_makes() -> None:
    """No SAM policy template (they grant whole CRUD sets): one scoped statement per resource."""
    assert _sam_policy_targets("TokenBrokerFunction") == {}
    tables = {
        s["Resource"]["Fn::GetAtt"][0]: sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        for s in _statements("TokenBrokerFunction")
        if "dynamodb" in json.dumps(s["Action"])
    }
    assert tables == {
        "CorpsTable": ["dynamodb:GetItem"],  # the snapshot: is the corp active?
        "LeasesTable": ["dynamodb:DeleteItem", "dynamodb:PutItem"],  # renewal lease and the invalidation limit
        "CorpVaultTable": ["dynamodb:GetItem", "dynamodb:PutItem"],  # no delete: only auth-info forgets a corp
    }
    assert not any("secretsmanager:DeleteSecret" in json.dumps(s) for s in _statements("TokenBrokerFunction"))
    broker_env = FUNCTIONS["TokenBrokerFunction"]["Properties"]["Environment"]["Variables"]
    refresh_env = FUNCTIONS["TokenRefreshFunction"]["Properties"]["Environment"]["Variables"]
    assert {k: v for k, v in broker_env.items() if k != "POWERTOOLS_SERVICE_NAME"} == {
        k: v for k, v in refresh_env.items() if k != "POWERTOOLS_SERVICE_NAME"
    }


def test_tables_are_on_demand_with_point_in_time_recovery() -> None:
    tables = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 7
    for table in tables:
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_unmodelled_callbacks_expire_are_encrypted_and_named_to_the_ingests() -> None:
    table = RESOURCES["UnmodelledCallbacksTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk"]
    for name in ("CallbackIngestFunction", "InboxDrainFunction"):
        variables = FUNCTIONS[name]["Properties"]["Environment"]["Variables"]
        assert variables["UNMODELLED_TABLE"] == {"Ref": "UnmodelledCallbacksTable"}


def test_the_exchange_journal_is_kept_long_enough_and_its_pending_index_is_sparse() -> None:
    journal = RESOURCES["ExchangeJournalTable"]["Properties"]
    assert journal["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (index,) = journal["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "PendingExchanges"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["pending_suite", "obtained_at"]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["entry_key"]}
    key = RESOURCES["CredentialsKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_a_lost_install_alarms() -> None:
    alarm = RESOURCES["InstallLostAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("WecomAuthsync", "AuthEvents_install_lost")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "auth-info"}]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_auth_events_queue_gives_up_where_the_auth_code_retry_schedule_ends() -> None:
    from authsync.aws.queues import AUTH_CODE_MAX_RECEIVES, AUTH_CODE_RETRY_DELAYS

    policy = RESOURCES["AuthEventsQueue"]["Properties"]["RedrivePolicy"]
    assert policy["maxReceiveCount"] == AUTH_CODE_MAX_RECEIVES
    assert sum(AUTH_CODE_RETRY_DELAYS) < 600 / 2  # DLQ and alarm well inside the AuthCode's 10 minutes


@pytest.mark.parametrize(
    ("alarm", "namespace", "metric"),
    [
        ("CallbackServerErrorsAlarm", "AWS/ApiGateway", "5xx"),
        ("AuthCodeRetriesExhaustedAlarm", "WecomAuthsync", "AuthCodeRetriesExhausted"),
        ("TokenRefreshFailuresAlarm", "WecomAuthsync", "TokenRenewalFailures"),
        ("InstallLostAlarm", "WecomAuthsync", "AuthEvents_install_lost"),
        ("UnmodelledCallbacksNotStoredAlarm", "WecomAuthsync", "CallbacksUnmodelledNotStored"),
        ("MalformedCallbacksAlarm", "WecomAuthsync", "CallbacksNotRoutable"),
    ],
)
def test_failures_that_lose_data_alarm(alarm: str, namespace: str, metric: str) -> None:
    properties = RESOURCES[alarm]["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == (namespace, metric)
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0


def test_credential_failures_and_tampering_are_alarmed_for_every_function_that_opens_the_vault() -> None:
    """KMS refusing (CredentialSealFailures) and a moved ciphertext (CredentialsTampered) page someone, whichever
    function met them: each alarm sums its metric over every function granted the vault's KMS purpose."""
    openers = {
        FUNCTIONS[f]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for f in FUNCTIONS
        for s in _statements(f)
        if "corp-credential" in json.dumps(s.get("Condition", {}))
    }
    assert openers == {"auth-info", "chatdata", "token-refresh"} | ({"token-broker"} & openers)
    for alarm, metric in (
        ("CredentialSealFailuresAlarm", "CredentialSealFailures"),
        ("CredentialsTamperedAlarm", "CredentialsTampered"),
    ):
        properties = RESOURCES[alarm]["Properties"]
        stats = [m["MetricStat"] for m in properties["Metrics"] if "MetricStat" in m]
        assert {s["Metric"]["MetricName"] for s in stats} == {metric}
        assert {d["Value"] for s in stats for d in s["Metric"]["Dimensions"]} == openers
        (total,) = [m for m in properties["Metrics"] if m.get("ReturnData")]
        assert total["Expression"] == f"SUM([{', '.join(m['Id'] for m in properties['Metrics'] if 'MetricStat' in m)}])"
        assert properties["Threshold"] == 0
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
