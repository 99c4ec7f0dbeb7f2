"""License and paid-app order callbacks (:mod:`authsync.wecom.entitlement_events`): WeCom's documented samples."""

from __future__ import annotations

from typing import Any

import pytest

from authsync.wecom.callbacks import MalformedEventError, parse_event
from authsync.wecom.entitlement_events import (
    AutoActivate,
    CancelOrder,
    ChangeEdition,
    ChangeOrder,
    LicenseEvent,
    LicensePaySuccess,
    LicenseRefund,
    OpenOrder,
    OrderEvent,
    PayForAppSuccess,
    Refund,
    UnlicensedNotify,
)
from tests.authsync.test_callbacks import CORP, SUITE, document

PROVIDER = "wwprovider00000001"


def license_doc(info_type: str, **extra: Any) -> bytes:
    """A license system event (D-95716 style): ServiceCorpId and AuthCorpId, no SuiteId."""
    return document({"ServiceCorpId": PROVIDER, "AuthCorpId": CORP, "InfoType": info_type, "TimeStamp": 1, **extra})


def order_doc(info_type: str, **extra: Any) -> bytes:
    """An order event (D-91929 style): SuiteId and PaidCorpId."""
    return document({"SuiteId": SUITE, "PaidCorpId": CORP, "InfoType": info_type, "TimeStamp": 2, **extra})


@pytest.mark.parametrize(
    ("message", "model", "order_id"),
    [
        (license_doc("license_pay_success", OrderId="OI1", BuyerUserId="boss"), LicensePaySuccess, "OI1"),
        (license_doc("license_refund", OrderId="OI1", OrderStatus=1), LicenseRefund, "OI1"),
        (license_doc("auto_activate", Scene=1), AutoActivate, None),
    ],
)
def test_license_events_take_the_suite_of_the_url_and_name_their_corp(
    message: bytes, model: type[Any], order_id: str | None
) -> None:
    event = parse_event(message, suite_id=SUITE)
    assert type(event) is model
    assert isinstance(event, LicenseEvent)
    assert event.queued
    assert (event.suite_id, event.corp_id, event.order_id) == (SUITE, CORP, order_id)
    assert event.service_corp_id == PROVIDER
    assert "SuiteId" not in event.raw  # kept as WeCom sent it


def test_a_license_event_with_no_suite_anywhere_cannot_be_routed() -> None:
    with pytest.raises(MalformedEventError, match="SuiteId"):
        parse_event(license_doc("auto_activate"))


def test_auto_activate_with_its_account_list_parses() -> None:
    accounts = "".join(
        f"<AccountList><ActiveCode><![CDATA[code{i}]]></ActiveCode><Type>1</Type><ExpireTime>9</ExpireTime>"
        f"<UserId><![CDATA[user{i}]]></UserId></AccountList>"
        for i in range(2)
    )
    message = license_doc("auto_activate", Scene=1).replace(b"</xml>", accounts.encode() + b"</xml>")
    event = parse_event(message, suite_id=SUITE)
    assert isinstance(event, AutoActivate)
    assert event.scene == 1


@pytest.mark.parametrize(
    ("info_type", "missing"), [("license_pay_success", "OrderId"), ("auto_activate", "AuthCorpId")]
)
def test_a_license_event_missing_what_routes_it_is_malformed(info_type: str, missing: str) -> None:
    fields = {"ServiceCorpId": PROVIDER, "AuthCorpId": CORP, "InfoType": info_type, "TimeStamp": 1, "OrderId": "O"}
    del fields[missing]
    with pytest.raises(MalformedEventError, match=missing) as caught:
        parse_event(document(fields), suite_id=SUITE)
    assert caught.value.info_type == info_type


def test_unlicensed_notify_is_event_style_for_the_corp() -> None:
    message = document(
        {
            "ToUserName": CORP,
            "FromUserName": "sys",
            "CreateTime": 1_700_000_000,
            "MsgType": "event",
            "Event": "unlicensed_notify",
            "AgentID": 1000001,
        }
    )
    event = parse_event(message, suite_id=SUITE)
    assert type(event) is UnlicensedNotify
    assert (event.suite_id, event.corp_id, event.info_type, event.timestamp) == (
        SUITE,
        CORP,
        "unlicensed_notify",
        1_700_000_000,
    )
    assert event.agent_id == "1000001"


@pytest.mark.parametrize(
    ("message", "model", "order_id", "replaces"),
    [
        (order_doc("open_order", OrderId="O1", OperatorId="admin"), OpenOrder, "O1", None),
        (order_doc("change_order", OldOrderId="O1", NewOrderId="O2"), ChangeOrder, "O2", "O1"),
        (order_doc("pay_for_app_success", OrderId="O2"), PayForAppSuccess, "O2", None),
        (order_doc("refund", OrderId="O2"), Refund, "O2", None),
        (order_doc("cancel_order", OrderId="O2"), CancelOrder, "O2", None),
        (order_doc("change_editon"), ChangeEdition, None, None),
    ],
)
def test_order_events_name_the_paying_corp_and_their_order(
    message: bytes, model: type[Any], order_id: str | None, replaces: str | None
) -> None:
    event = parse_event(message, suite_id=SUITE)
    assert type(event) is model
    assert isinstance(event, OrderEvent)
    assert (event.suite_id, event.corp_id, event.order_id, event.replaces) == (SUITE, CORP, order_id, replaces)


def test_change_order_without_the_new_id_is_malformed_and_never_echoes_values() -> None:
    with pytest.raises(MalformedEventError, match="NewOrderId") as caught:
        parse_event(order_doc("change_order", OldOrderId="SECRET-LOOKING-ID"), suite_id=SUITE)
    assert "SECRET-LOOKING-ID" not in str(caught.value)


def test_an_order_id_longer_than_wecom_issues_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match="OrderId"):
        parse_event(order_doc("open_order", OrderId="x" * 65), suite_id=SUITE)


def test_an_order_event_naming_another_suite_keeps_its_own_suite() -> None:
    event = parse_event(order_doc("open_order", OrderId="O1"), suite_id="wwothersuite")
    assert event.suite_id == SUITE  # callback-ingest refuses the mismatch (403), the parser does not hide it
