"""callback-ingest (issue #12 item 2): license system events and paid-app order events are enqueued in their
corp's group; a license event is accepted only encrypted for the configured provider corpid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE, event_xml, sign_event
from tests.conftest import put_suite_config
from tests.functions.test_callback_ingest import CORP, handler, log_lines, post, queue_messages
from tests.functions.test_callback_scope_events import unmodelled_items

__all__ = ["handler", "log_lines"]  # fixtures, re-used

SUITE = TEST_SUITE.suite_id
PROVIDER = TEST_SUITE.provider_corpid

LICENSE_DOCUMENTS: dict[str, dict[str, str | int]] = {
    "license_pay_success": {"ServiceCorpId": PROVIDER, "AuthCorpId": CORP, "InfoType": "license_pay_success",
                            "TimeStamp": 1, "OrderId": "LICORDER1", "BuyerUserId": "boss"},
    "license_refund": {"ServiceCorpId": PROVIDER, "AuthCorpId": CORP, "InfoType": "license_refund",
                       "TimeStamp": 1, "OrderId": "LICORDER1", "OrderStatus": 1},
    "auto_activate": {"ServiceCorpId": PROVIDER, "AuthCorpId": CORP, "InfoType": "auto_activate",
                      "TimeStamp": 1, "Scene": 1},
}  # fmt: skip
ORDER_DOCUMENTS: dict[str, dict[str, str | int]] = {
    name: {"SuiteId": SUITE, "PaidCorpId": CORP, "InfoType": name, "TimeStamp": 2, **extra}
    for name, extra in {
        "open_order": {"OrderId": "O1", "OperatorId": "admin"},
        "change_order": {"OldOrderId": "O1", "NewOrderId": "O2"},
        "pay_for_app_success": {"OrderId": "O2"},
        "refund": {"OrderId": "O2"},
        "cancel_order": {"OrderId": "O2"},
        "change_editon": {},
    }.items()
}


def enqueued_for_the_corp(deployment: Deployment, info_type: str) -> None:
    (message,) = queue_messages(deployment)
    assert message["Attributes"]["MessageGroupId"] == f"{SUITE}:{CORP}"
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"kind": "callback", "suite_id": SUITE, "info_type": info_type, "corp_id": CORP}


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize("info_type", sorted(LICENSE_DOCUMENTS))
def test_a_license_system_event_encrypted_for_the_provider_is_enqueued_for_its_corp_under_the_url_suite(
    info_type: str, handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    signed = sign_event(TEST_SUITE.crypto(), event_xml(LICENSE_DOCUMENTS[info_type]), receive_id=PROVIDER)
    response = handler(post(signed))
    assert (response["statusCode"], response["body"]) == (200, "success")
    enqueued_for_the_corp(deployment, info_type)


@pytest.mark.usefixtures("suite")
def test_unlicensed_notify_is_event_style_encrypted_for_the_corp(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    document: dict[str, str | int] = {"ToUserName": CORP, "FromUserName": "sys", "CreateTime": 1_700_000_000,
                                      "MsgType": "event", "Event": "unlicensed_notify", "AgentID": 1000001}  # fmt: skip
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(document), receive_id=CORP)))
    assert response["statusCode"] == 200
    enqueued_for_the_corp(deployment, "unlicensed_notify")


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize("info_type", sorted(ORDER_DOCUMENTS))
def test_each_order_event_is_enqueued_for_the_paying_corp(
    info_type: str, handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(ORDER_DOCUMENTS[info_type]))))
    assert (response["statusCode"], response["body"]) == (200, "success")
    enqueued_for_the_corp(deployment, info_type)


def test_without_a_provider_corpid_a_license_event_is_refused_and_nothing_is_enqueued(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    put_suite_config(deployment, provider_corpid=None)
    document = LICENSE_DOCUMENTS["license_pay_success"]
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(document), receive_id=PROVIDER)))
    assert response["statusCode"] == 403
    assert queue_messages(deployment) == []


@pytest.mark.usefixtures("suite")
def test_an_order_event_missing_its_order_id_is_acknowledged_and_kept_not_retried(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    document = {k: v for k, v in ORDER_DOCUMENTS["pay_for_app_success"].items() if k != "OrderId"}
    response = handler(post(sign_event(TEST_SUITE.crypto(), event_xml(document))))
    assert (response["statusCode"], response["body"]) == (200, "success")
    assert queue_messages(deployment) == []
    (kept,) = unmodelled_items(deployment)
    assert (kept["info_type"]["S"], kept["status"]["S"], kept["corp_id"]["S"]) == (
        "pay_for_app_success",
        "malformed",
        CORP,
    )
