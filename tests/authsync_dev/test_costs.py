"""The cost model of ``bench/economy.py`` (``authsync_dev.costs``): request units, call counting, the month."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.handlers import BUILTIN_HANDLERS

from authsync_dev.costs import (
    DUE_FRACTION,
    REFRESH_RUNS,
    AwsCalls,
    PerRun,
    Usage,
    dollars,
    request_units,
    runs_per_month,
    steady_month,
)


def test_reads_cost_4kb_units_halved_when_eventually_consistent() -> None:
    small = {"Item": {"pk": {"S": "x"}}}
    big = {"Item": {"pk": {"S": "x"}, "blob": {"B": b"\0" * 5000}}}
    assert request_units("GetItem", {"ConsistentRead": True}, small, frozenset()) == (1.0, 0.0)
    assert request_units("GetItem", {}, big, frozenset()) == (1.0, 0.0)  # 2 units, halved
    assert request_units("GetItem", {}, {}, frozenset()) == (0.5, 0.0)  # a miss still costs
    # Index queries are eventually consistent whatever the request says.
    assert request_units("Query", {"ConsistentRead": True, "IndexName": "i"}, {"Items": []}, frozenset())[0] == 0.5


def test_writes_cost_1kb_units_plus_one_on_a_table_with_an_index() -> None:
    put = {"TableName": "t", "Item": {"pk": {"S": "x"}, "v": {"S": "y" * 1500}}}
    assert request_units("PutItem", put, {}, frozenset()) == (0.0, 2.0)
    assert request_units("PutItem", put, {}, frozenset({"t"})) == (0.0, 3.0)
    transact = {"TransactItems": [{"Put": {"TableName": "t", "Item": {"pk": {"S": "x"}}}}] * 2}
    assert request_units("TransactWriteItems", transact, {}, frozenset()) == (0.0, 4.0)


def test_rates_become_runs_per_30_day_month() -> None:
    assert runs_per_month("rate(10 minutes)") == REFRESH_RUNS == 4320
    assert runs_per_month("rate(6 hours)") == 120
    assert runs_per_month("rate(1 day)") == 30


def test_a_month_charges_a_typical_refresh_run_and_amortizes_the_deployment() -> None:
    idle = PerRun(Usage(secrets_calls=1), Usage(kms_calls=1))
    due = PerRun(Usage(secrets_calls=1), Usage(kms_calls=12))
    month = steady_month(
        refresh_idle=idle,
        refresh_due=due,
        reconcile=PerRun(Usage(), Usage(sqs_requests=2)),
        reconcile_runs=120,
        events=Usage(api_requests=3),
        storage=PerRun(Usage(secrets=3), Usage(secrets=2)),
        deployment=Usage(kms_keys=1),
    )
    one = month.usage(1)
    assert one.kms_calls == pytest.approx(REFRESH_RUNS * (1 + 11 * DUE_FRACTION))
    assert one.secrets == 5
    assert one.sqs_requests == 240
    ten = month.usage(10)
    assert ten.secrets == 23
    assert ten.kms_keys == 1
    assert month.per_corp_month(10) == pytest.approx(sum(dollars(ten).values()) / 10)
    assert dollars(Usage(secrets=1, secrets_calls=10_000))["Secrets Manager"] == pytest.approx(0.45)


@pytest.fixture
def counted(aws: None) -> Iterator[AwsCalls]:
    calls = AwsCalls("wwcorp")
    hooks = [("before-call", calls.before), ("after-call", calls.after)]
    BUILTIN_HANDLERS.extend(hooks)  # read when a session is made: the test's own session gets them
    try:
        yield calls
    finally:
        for hook in hooks:
            BUILTIN_HANDLERS.remove(hook)


def test_calls_are_counted_inside_a_function_only_and_split_by_whether_they_name_a_corp(counted: AwsCalls) -> None:
    secrets = boto3.session.Session(region_name="us-east-1").client("secretsmanager")
    secrets.create_secret(Name="suites/s/config", SecretString="{}")  # outside: not counted
    counted.phase = "p"
    with counted.inside("f"):
        secrets.create_secret(Name="corps/s/wwcorp1/access-token", SecretString="{}")
        secrets.get_secret_value(SecretId="suites/s/config")
        secrets.list_secrets()  # the answer names the corp's secret
    assert counted.count("p", service="secrets-manager") == 3
    assert counted.count("p", scope="corp") == 2
    assert counted.operations("p", "secrets-manager") == {"CreateSecret": 1, "GetSecretValue": 1, "ListSecrets": 1}
