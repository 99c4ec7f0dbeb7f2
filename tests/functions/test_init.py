"""Every function initialises from template.yaml's environment alone, and a bad one fails init clearly.

Handlers validate their settings and build their clients at import (Lambda's init
phase). A variable the template forgot, or a malformed one, must fail that init with
one structured log line naming the variable, not a ``KeyError`` on the first request,
and never echo a value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from authsync.settings import SettingsError
from authsync_dev.template import Deployment
from tests.handlers import fresh

MODULES = {
    "CallbackIngestFunction": "callback_ingest.app",
    "AuthInfoFunction": "auth_info.app",
    "ChatdataFunction": "chatdata.app",
    "CorpQueryFunction": "corp_query.app",
    "TokenRefreshFunction": "token_refresh.app",
    "TokenBrokerFunction": "token_broker.app",
    "ReconcileFunction": "reconcile.app",
    "TicketMonitorFunction": "ticket_monitor.app",
    "InboxDrainFunction": "inbox_drain.app",
    "ChangePublisherFunction": "change_publisher.app",
}
# What each function cannot start without (the template sets all of them).
REQUIRED = {
    "CallbackIngestFunction": ["SUITE_SECRET_PREFIX", "EVENTS_QUEUE_URL", "INBOX_TABLE"],
    "AuthInfoFunction": [
        "SUITE_SECRET_PREFIX",
        "CORP_SECRET_PREFIX",
        "CORPS_TABLE",
        "LEASES_TABLE",
        "IDEMPOTENCY_TABLE",
        "CHATDATA_QUEUE_URL",
        "EVENTS_QUEUE_URL",
        "JOURNAL_TABLE",
        "CREDENTIALS_KEY",
    ],
    "ChatdataFunction": ["SUITE_SECRET_PREFIX", "CORP_SECRET_PREFIX", "CORPS_TABLE", "LEASES_TABLE"],
    "CorpQueryFunction": ["CORPS_TABLE"],
    "TokenRefreshFunction": ["SUITE_SECRET_PREFIX", "CORP_SECRET_PREFIX", "CORPS_TABLE", "LEASES_TABLE"],
    "TokenBrokerFunction": ["SUITE_SECRET_PREFIX", "CORP_SECRET_PREFIX", "CORPS_TABLE", "LEASES_TABLE"],
    "ReconcileFunction": ["CORPS_TABLE", "JOURNAL_TABLE", "EVENTS_QUEUE_URL"],
    "TicketMonitorFunction": ["SUITE_SECRET_PREFIX"],
    "InboxDrainFunction": ["SUITE_SECRET_PREFIX", "EVENTS_QUEUE_URL", "INBOX_TABLE"],
    "ChangePublisherFunction": ["EVENT_BUS_NAME"],
}


def set_environment(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name in {n for names in REQUIRED.values() for n in names} | {"SUITE_IDS", "WECOM_API_BASE"}:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def init_log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The init failure lines (a re-imported handler's Logger keeps its first stream, so read records)."""
    return [
        {"level": r.levelname, "problems": getattr(r, "problems", None), "text": json.dumps(r.__dict__, default=str)}
        for r in caplog.records
        if r.getMessage() == "function configuration invalid"
    ]


def test_every_function_of_the_template_is_covered() -> None:
    from authsync_dev.template import load_template

    resources = load_template()["Resources"]
    assert {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"} == set(MODULES)


@pytest.mark.parametrize("function", sorted(MODULES))
def test_the_template_environment_is_enough_to_initialise(
    function: str, deployment: Deployment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_environment(monkeypatch, deployment.function_environment(function))
    module = fresh(MODULES[function])
    assert callable(module.lambda_handler)
    assert init_log_lines(caplog) == []


@pytest.mark.parametrize(("function", "variable"), [(f, v) for f, names in REQUIRED.items() for v in names])
def test_a_missing_variable_fails_init_with_one_line_naming_it(
    function: str,
    variable: str,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environment = deployment.function_environment(function)
    assert variable in environment, "the template must set it"
    del environment[variable]
    set_environment(monkeypatch, environment)
    with pytest.raises(SettingsError) as raised:
        fresh(MODULES[function])
    assert raised.value.problems == [f"{variable}: missing"]
    (line,) = init_log_lines(caplog)
    assert line["level"] == "ERROR"
    assert line["problems"] == [f"{variable}: missing"]


def test_a_malformed_variable_is_named_without_its_value(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    environment = deployment.function_environment("ChatdataFunction")
    environment["WECOM_API_BASE"] = "qyapi.weixin.qq.com-without-scheme"
    environment["CORP_SECRET_PREFIX"] = "no-trailing-slash"
    set_environment(monkeypatch, environment)
    with pytest.raises(SettingsError) as raised:
        fresh("chatdata.app")
    (line,) = init_log_lines(caplog)
    assert [p.split(":")[0] for p in line["problems"]] == ["CORP_SECRET_PREFIX", "WECOM_API_BASE"]
    for value in ("qyapi.weixin.qq.com-without-scheme", "no-trailing-slash"):
        assert value not in line["text"]
        assert value not in str(raised.value)
