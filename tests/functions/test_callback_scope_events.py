"""callback-ingest (issue #12): the authorization-scope InfoTypes are enqueued for their corp; unknown
and unroutable callbacks are acknowledged, kept (secrets redacted, bounded, 30 days) and counted by type."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from authsync.domain.unmodelled import MAX_KEPT_BYTES, REDACTED, UNMODELLED_RETENTION
from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE, event_xml, sign_event
from tests.functions.test_callback_ingest import CORP, handler, log_lines, post, queue_messages

__all__ = ["handler", "log_lines"]  # fixtures, re-used

SUITE = TEST_SUITE.suite_id
SECRET = "AUTHCODE-MUST-NOT-BE-KEPT-0123456789abcdef0123456789abcdef0123456789abcdef"

SCOPE_DOCUMENTS: dict[str, dict[str, str | int]] = {
    "change_app_admin": {
        "ToUserName": CORP,
        "FromUserName": "sys",
        "CreateTime": 1348831860,
        "MsgType": "event",
        "Event": "change_app_admin",
        "AgentID": 1,
    },
    "share_agent_change": {"SuiteId": SUITE, "InfoType": "share_agent_change", "TimeStamp": 1, "AppId": 11,
                           "CorpId": CORP, "AgentId": 11},
    "corp_arch_auth": {"SuiteId": SUITE, "InfoType": "corp_arch_auth", "TimeStamp": 1, "AuthCorpId": CORP},
    "approve_special_auth": {"SuiteId": SUITE, "InfoType": "approve_special_auth", "TimeStamp": 1,
                             "AuthCorpId": CORP, "AuthType": "customer_acquisition"},
    "cancel_special_auth": {"SuiteId": SUITE, "InfoType": "cancel_special_auth", "TimeStamp": 1,
                            "AuthCorpId": CORP, "AuthType": "customer_acquisition"},
}  # fmt: skip


@pytest.fixture
def metrics_lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The EMF metric documents the handler printed."""

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]

    return read


def unmodelled_items(deployment: Deployment) -> list[dict[str, Any]]:
    table = deployment.physical["UnmodelledCallbacksTable"]
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return items


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize("info_type", sorted(SCOPE_DOCUMENTS))
def test_each_scope_info_type_enqueues_one_auth_event_for_its_corp(
    info_type: str, handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(SCOPE_DOCUMENTS[info_type]))))
    assert (response["statusCode"], response["body"]) == (200, "success")
    (message,) = queue_messages(deployment)
    assert message["Attributes"]["MessageGroupId"] == f"{SUITE}:{CORP}"  # the corp's own group
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"kind": "callback", "suite_id": SUITE, "info_type": info_type, "corp_id": CORP}
    assert unmodelled_items(deployment) == []


@pytest.mark.usefixtures("suite")
def test_an_unknown_info_type_is_kept_redacted_for_30_days_and_counted_by_type(
    handler: Callable[..., dict[str, Any]],
    deployment: Deployment,
    log_lines: Callable[[], list[dict[str, Any]]],
    metrics_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    document = (
        f"<xml><SuiteId><![CDATA[{SUITE}]]></SuiteId><InfoType><![CDATA[brand_new_feature]]></InfoType>"
        f"<TimeStamp>1</TimeStamp><AuthCorpId><![CDATA[{CORP}]]></AuthCorpId>"
        f"<AuthCode><![CDATA[{SECRET}]]></AuthCode>"
        f"<Nested><AccessToken>{SECRET}</AccessToken><Plain><![CDATA[visible]]></Plain></Nested></xml>"
    )
    before = time.time()
    for _ in range(2):  # WeCom's re-send (re-encrypted) is the same item
        response = handler(post(sign_event(TEST_SUITE.crypto(), document)))
        assert (response["statusCode"], response["body"]) == (200, "success")
    assert queue_messages(deployment) == []
    (item,) = unmodelled_items(deployment)
    assert (item["info_type"]["S"], item["status"]["S"], item["corp_id"]["S"]) == (
        "brand_new_feature",
        "unmodelled",
        CORP,
    )
    assert SECRET not in json.dumps(item)
    assert f"<AuthCode>{REDACTED}</AuthCode>" in item["document"]["S"]
    assert "<Plain><![CDATA[visible]]></Plain>" in item["document"]["S"]  # the rest verbatim
    assert sorted(v["S"] for v in item["redacted"]["L"]) == ["AccessToken", "AuthCode"]
    expires = int(item["expires_at"]["N"])
    assert before + UNMODELLED_RETENTION - 5 <= expires <= time.time() + UNMODELLED_RETENTION
    (line, _) = [entry for entry in log_lines() if entry.get("message") == "callback unmodelled"]
    assert (line["info_type"], line["stored"], line["level"]) == ("brand_new_feature", True, "WARNING")
    counted = [m for m in metrics_lines() if "CallbacksUnmodelled" in m]
    assert [m["info_type"] for m in counted] == ["brand_new_feature", "brand_new_feature"]


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize(
    "fields",
    [
        {"SuiteId": SUITE, "InfoType": "change_auth", "TimeStamp": 1},
        {"SuiteId": SUITE, "InfoType": "corp_arch_auth", "TimeStamp": 1},
        {"FromUserName": "sys", "CreateTime": 1, "MsgType": "event", "Event": "change_app_admin"},
    ],
    ids=["change_auth", "corp_arch_auth", "change_app_admin"],
)
def test_a_known_event_without_its_corp_is_acknowledged_kept_and_counted_as_malformed(
    fields: dict[str, Any],
    handler: Callable[..., dict[str, Any]],
    deployment: Deployment,
    metrics_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(fields))))
    assert (response["statusCode"], response["body"]) == (200, "success")  # never a retry loop
    assert queue_messages(deployment) == []
    (item,) = unmodelled_items(deployment)
    info_type = fields.get("InfoType") or fields["Event"]
    assert (item["status"]["S"], item["info_type"]["S"]) == ("malformed", info_type)
    assert "AuthCorpId" in item["problem"]["S"]
    printed = metrics_lines()
    (counted,) = [m for m in printed if "CallbacksMalformed" in m]
    assert counted["info_type"] == info_type
    assert any(m.get("CallbacksNotRoutable") == [1.0] for m in printed)  # what MalformedCallbacksAlarm watches


@pytest.mark.usefixtures("suite")
def test_a_malformed_event_naming_another_suite_is_still_refused(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    fields: dict[str, str | int] = {"SuiteId": "wwsomeothersuite0001", "InfoType": "change_auth", "TimeStamp": 1}
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(fields))))
    assert (response["statusCode"], response["body"]) == (403, "suite_mismatch")
    assert unmodelled_items(deployment) == []


@pytest.mark.usefixtures("suite")
def test_an_oversized_unknown_callback_is_cut_and_flagged(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    big = "x" * (MAX_KEPT_BYTES + 1000)
    fields: dict[str, str | int] = {"SuiteId": SUITE, "InfoType": "brand_new_feature", "TimeStamp": 1, "Payload": big}
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(fields))))
    assert response["body"] == "success"
    (item,) = unmodelled_items(deployment)
    assert item["truncated"]["BOOL"] is True
    assert len(item["document"]["S"].encode()) == MAX_KEPT_BYTES
    assert int(item["size"]["N"]) > MAX_KEPT_BYTES


@pytest.mark.usefixtures("suite")
def test_when_the_store_fails_the_callback_is_still_acknowledged_and_counted(
    handler: Callable[..., dict[str, Any]],
    deployment: Deployment,
    log_lines: Callable[[], list[dict[str, Any]]],
    metrics_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    boto3.client("dynamodb").delete_table(TableName=deployment.physical["UnmodelledCallbacksTable"])
    fields: dict[str, str | int] = {"SuiteId": SUITE, "InfoType": "brand_new_feature", "TimeStamp": 1}
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(fields))))
    assert (response["statusCode"], response["body"]) == (200, "success")
    (line,) = [entry for entry in log_lines() if entry.get("message") == "callback unmodelled"]
    assert (line["stored"], line["reason"]) == (False, "ResourceNotFoundException")
    printed = metrics_lines()
    assert any("CallbacksUnmodelledNotStored" in m for m in printed)
    assert any("CallbacksUnmodelled" in m for m in printed)


@pytest.mark.usefixtures("suite")
def test_change_app_admin_encrypted_for_the_corp_it_names_is_accepted(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    # D-95038 pushes it to the 数据回调 URL: its receiveid is the corp's id, not the suite's.
    document = event_xml(SCOPE_DOCUMENTS["change_app_admin"])
    response = handler(post(sign_event(TEST_SUITE.crypto(), document, receive_id=CORP)))
    assert (response["statusCode"], response["body"]) == (200, "success")
    (message,) = queue_messages(deployment)
    assert message["MessageAttributes"]["corp_id"]["StringValue"] == CORP


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize(
    "fields",
    [
        {**SCOPE_DOCUMENTS["change_app_admin"], "ToUserName": "wwsomeothercorp"},  # names another corp
        {"SuiteId": SUITE, "InfoType": "change_auth", "TimeStamp": 1, "AuthCorpId": CORP},  # not Event-style
        {"SuiteId": SUITE, "InfoType": "change_auth", "TimeStamp": 1},  # malformed too
    ],
    ids=["other corp", "infotype document", "malformed infotype document"],
)
def test_any_other_foreign_receive_id_is_still_refused(
    fields: dict[str, str | int], handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(fields), receive_id=CORP)))
    assert (response["statusCode"], response["body"]) == (403, "receiveid")
    assert queue_messages(deployment) == []
    assert unmodelled_items(deployment) == []
