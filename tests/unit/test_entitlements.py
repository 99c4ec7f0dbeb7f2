"""License and paid-app order sync (:mod:`authsync.app.entitlements`) against in-memory fakes of its ports."""

from __future__ import annotations

from typing import Any

import pytest

from authsync.app.sync import PENDING_INSTALL_GRACE, Outcome, RetryLaterError
from authsync.aws.queues import AuthMessage
from authsync.wecom.errors import error_for
from tests.unit.entitlement_fakes import CorpLicenses, FakeEntitlementsApi, FakeProviderTokens, entitled_sync
from tests.unit.fakes import SUITE, Fakes, callback, reconcile
from tests.unit.test_sync import CORP, installed

ORDER = "LICORDER0001"


def license_event(info_type: str, sent_at: float, corp_id: str = CORP, **fields: str | int) -> AuthMessage:
    """A license system event as WeCom sends it: no SuiteId (the suite is the URL's: the message's)."""
    elements = {"ServiceCorpId": "wwprovider", "AuthCorpId": corp_id, "InfoType": info_type, "TimeStamp": int(sent_at)}
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in {**elements, **fields}.items())
    return AuthMessage("callback", SUITE, corp_id, f"<xml>{body}</xml>", sent_at)


def unlicensed_notify(sent_at: float, corp_id: str = CORP) -> AuthMessage:
    """The Event-style ``unlicensed_notify``: ToUserName is the corp, no SuiteId, no InfoType."""
    body = (
        f"<ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(sent_at)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[unlicensed_notify]]></Event><AgentID>1000001</AgentID>"
    )
    return AuthMessage("callback", SUITE, corp_id, f"<xml>{body}</xml>", sent_at)


def paid_license_order(order_id: str = ORDER, base: int = 10, external: int = 2, status: int = 1) -> dict[str, object]:
    return {
        "order_id": order_id,
        "order_type": 1,
        "order_status": status,
        "corpid": CORP,
        "account_count": {"base_count": base, "external_contact_count": external},
    }


def app_order(order_id: str, status: int = 0, at: int = 1_750_000_000, edition: str = "pro") -> dict[str, object]:
    return {
        "orderid": order_id,
        "order_status": status,
        "order_type": 0,
        "paid_corpid": CORP,
        "suiteid": SUITE,
        "edition_id": edition,
        "edition_name": edition.title(),
        "user_count": 50,
        "order_time": at,
    }


World = tuple[Fakes, FakeEntitlementsApi, FakeProviderTokens]


@pytest.fixture
def world() -> World:
    fakes = Fakes()
    installed(fakes)
    return fakes, FakeEntitlementsApi(fakes.log), FakeProviderTokens(fakes)


def test_license_pay_success_records_the_license_section_with_the_order_and_active_accounts(world: World) -> None:
    fakes, api, tokens = world
    api.licenses[CORP] = CorpLicenses(license_status=1)
    api.licenses[CORP].activate("zhangsan")
    api.licenses[CORP].activate("lisi", account_type=2)
    api.license_orders[ORDER] = paid_license_order()
    fakes.clock.advance(5)
    sent = fakes.clock() - 1

    result = entitled_sync(fakes, api, tokens).handle(license_event("license_pay_success", sent, OrderId=ORDER))

    assert (result.outcome, result.version, result.changed, result.detail) == (Outcome.FETCHED, 1, True, "license")
    assert fakes.log.names("api.") == ["api.get_app_license_info", "api.active_accounts", "api.get_license_order"]
    assert fakes.log.args("api.get_app_license_info") == [(CORP, SUITE)]  # the URL's suite
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    license_part = state.kind("license")
    assert license_part.document is not None
    assert [a["userid"] for a in license_part.document["account_list"]] == ["zhangsan", "lisi"]
    assert license_part.document["orders"][ORDER]["order_status"] == 1
    summary = (license_part.derived or {})["license"]
    assert summary["active"] == {"base": 1, "external_contact": 1, "total": 2}
    assert summary["purchased"] == {"base": 10, "external_contact": 2, "total": 12}
    assert summary["license_status"] == 1
    assert summary["next_expire_time"] == 1_750_000_000 + 86400  # until when the active count holds


def test_a_license_event_sent_before_the_stored_read_is_fresh_unless_it_names_an_order_not_read(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    api.license_orders[ORDER] = paid_license_order()
    sent = fakes.clock() - 1
    assert sync.handle(license_event("auto_activate", sent, Scene=1)).outcome is Outcome.FETCHED
    fakes.log.clear()

    assert sync.handle(unlicensed_notify(sent)).outcome is Outcome.FRESH
    assert fakes.log.names("api.") == []
    # Sent before the read too, but its order was never read: read now (the order is the news).
    assert sync.handle(license_event("license_pay_success", sent, OrderId=ORDER)).outcome is Outcome.FETCHED
    assert fakes.log.names("api.")[-1] == "api.get_license_order"


def test_a_refund_keeps_the_order_history_and_counts_only_paid_orders(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    api.license_orders[ORDER] = paid_license_order()
    sync.handle(license_event("license_pay_success", fakes.clock() - 1, OrderId=ORDER))
    api.license_orders[ORDER] = paid_license_order(status=5)  # refunded
    fakes.clock.advance(10)

    result = sync.handle(license_event("license_refund", fakes.clock() - 1, OrderId=ORDER, OrderStatus=1))

    assert (result.outcome, result.version, result.changed) == (Outcome.FETCHED, 2, True)
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    summary = (state.kind("license").derived or {})["license"]
    assert summary["purchased"]["total"] == 0
    assert summary["orders"] == 1


def test_a_provider_token_wecom_refuses_is_renewed_once_and_the_read_retried(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    sync.handle(license_event("auto_activate", fakes.clock() - 1))
    api.expired_tokens.add("provider-token-1")
    fakes.clock.advance(10)

    result = sync.handle(license_event("auto_activate", fakes.clock() - 1))

    assert result.outcome is Outcome.FETCHED
    assert tokens.issued == 2


def test_license_events_without_a_provider_configured_are_counted_not_retried(world: World) -> None:
    fakes, api, _ = world
    tokens = FakeProviderTokens(fakes, configured=False)

    result = entitled_sync(fakes, api, tokens).handle(license_event("auto_activate", fakes.clock() - 1))

    assert (result.outcome, result.detail) == (Outcome.PROVIDER_NOT_CONFIGURED, "auto_activate")
    assert fakes.log.names("api.") == []


def test_an_unknown_corp_is_retried_during_the_install_grace_then_reported(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    with pytest.raises(RetryLaterError):
        sync.handle(license_event("auto_activate", fakes.clock(), corp_id="wwnotinstalled"))
    fakes.clock.advance(PENDING_INSTALL_GRACE + 1)
    result = sync.handle(license_event("auto_activate", fakes.clock() - PENDING_INSTALL_GRACE - 1, corp_id="wwx"))
    assert result.outcome is Outcome.UNKNOWN_CORP
    assert fakes.log.names("api.") == []


def test_a_cancelled_corp_reads_nothing(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    sync.handle(callback("cancel_auth", fakes.clock(), AuthCorpId=CORP))
    fakes.clock.advance(5)

    assert sync.handle(license_event("auto_activate", fakes.clock())).outcome is Outcome.SKIPPED_CANCELLED
    assert sync.handle(callback("open_order", fakes.clock(), PaidCorpId=CORP, OrderId="A1")).outcome is (
        Outcome.SKIPPED_CANCELLED
    )
    assert fakes.log.names("api.") == []


def test_orders_are_read_by_id_kept_as_history_and_a_changed_order_replaces_the_old_id(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    api.app_orders["A1"] = app_order("A1")
    assert sync.handle(callback("open_order", fakes.clock(), PaidCorpId=CORP, OrderId="A1")).version == 1
    fakes.clock.advance(5)
    api.app_orders["A2"] = app_order("A2", at=1_750_000_100)
    changed = sync.handle(callback("change_order", fakes.clock(), PaidCorpId=CORP, OldOrderId="A1", NewOrderId="A2"))
    fakes.clock.advance(5)
    api.app_orders["A2"] = app_order("A2", status=1, at=1_750_000_100)
    paid = sync.handle(callback("pay_for_app_success", fakes.clock(), PaidCorpId=CORP, OrderId="A2"))

    assert (changed.outcome, changed.version, paid.version, paid.detail) == (Outcome.FETCHED, 2, 3, "orders")
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    document = state.kind("orders").document
    assert document is not None
    assert sorted(document["orders"]) == ["A1", "A2"]
    assert document["replaced"] == {"A1": "A2"}
    summary = (state.kind("orders").derived or {})["orders"]
    assert (summary["orders"], summary["paid"], summary["latest"]["orderid"]) == (2, 1, "A2")
    assert fakes.log.args("api.get_app_order") == [("A1",), ("A2",), ("A2",)]


def test_a_redelivered_order_event_is_fresh_and_a_failed_write_is_retried_whole(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    api.app_orders["A1"] = app_order("A1")
    message = callback("open_order", fakes.clock() - 1, PaidCorpId=CORP, OrderId="A1")
    original = fakes.snapshots.record
    calls = {"n": 0}

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("function died after reading the order")
        return original(*args, **kwargs)

    fakes.snapshots.record = dies_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        sync.handle(message)
    assert sync.handle(message).outcome is Outcome.FETCHED  # the retry reads again: nothing was half-written
    fakes.log.clear()
    assert sync.handle(message).outcome is Outcome.FRESH  # a third delivery costs nothing
    assert fakes.log.names("api.") == []


def test_change_editon_re_fetches_auth_info_whose_derived_state_names_the_edition(world: World) -> None:
    fakes, api, tokens = world
    fakes.clock.advance(5)

    result = entitled_sync(fakes, api, tokens).handle(callback("change_editon", fakes.clock() - 1, PaidCorpId=CORP))

    assert result.outcome is Outcome.FETCHED
    assert fakes.log.names("wecom.") == ["wecom.get_auth_info"]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.kind("auth_info").derived or {}).get("edition") is None  # the fake corp's app is free


def test_without_the_entitlement_sync_license_and_order_events_are_ignored_by_kind() -> None:
    fakes = Fakes()
    installed(fakes)
    result = fakes.authorization_sync().handle(callback("open_order", fakes.clock(), PaidCorpId=CORP, OrderId="A1"))
    assert (result.outcome, result.detail) == (Outcome.IGNORED, "open_order")


def test_the_open_corpid_is_looked_up_once_and_carried_over_on_later_fetches(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    for _ in range(2):
        fakes.clock.advance(10)
        assert sync.handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP)).outcome is Outcome.FETCHED

    assert fakes.log.args("api.open_corpid") == [(CORP,)]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.kind("auth_info").derived or {})["ids"] == {"corpid": CORP, "open_corpid": f"wp{CORP}"}


def test_a_refused_open_corpid_lookup_is_not_repeated_and_never_fails_the_fetch(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)

    def refuses(provider_token: str, corp_id: str) -> str:
        fakes.log.add("api.open_corpid", corp_id)
        raise error_for("service/corpid_to_opencorpid", 40013)

    api.open_corpid = refuses  # type: ignore[method-assign]
    for _ in range(2):
        fakes.clock.advance(10)
        assert sync.handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP)).outcome is Outcome.FETCHED

    assert fakes.log.args("api.open_corpid") == [(CORP,)]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.kind("auth_info").derived or {})["ids"] == {
        "corpid": CORP,
        "open_corpid": None,
        "lookup_error": 40013,
    }


def test_without_provider_credentials_the_open_corpid_is_unknown_and_asked_again_later(world: World) -> None:
    fakes, api, _ = world
    tokens = FakeProviderTokens(fakes, configured=False)
    sync = entitled_sync(fakes, api, tokens)
    fakes.clock.advance(10)
    sync.handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))
    tokens.configured = True
    fakes.clock.advance(10)
    sync.handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))

    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.kind("auth_info").derived or {})["ids"]["open_corpid"] == f"wp{CORP}"


def test_reconcile_re_reads_the_license_section_only_once_an_account_it_counts_has_expired(world: World) -> None:
    fakes, api, tokens = world
    sync = entitled_sync(fakes, api, tokens)
    api.licenses[CORP] = CorpLicenses(license_status=1)
    api.licenses[CORP].activate("zhangsan", at=int(fakes.clock()))  # expires a day later
    sync.handle(license_event("auto_activate", fakes.clock() - 1))
    fakes.clock.advance(3600)
    fakes.log.clear()

    sync.handle(reconcile(CORP, fakes.clock() - 1))
    assert fakes.log.names("api.get_app_license_info") == []  # nothing expired: no license call
    assert fakes.log.names("snapshots.get") == ["snapshots.get"]  # one read decides auth info and licenses

    fakes.clock.advance(86400)
    api.licenses[CORP].accounts.clear()  # WeCom no longer lists the expired account; no callback said so
    sync.handle(reconcile(CORP, fakes.clock() - 1))
    assert fakes.log.names("api.get_app_license_info") == ["api.get_app_license_info"]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    summary = (state.kind("license").derived or {})["license"]
    assert (summary["active"]["total"], summary["next_expire_time"]) == (0, None)

    fakes.log.clear()
    fakes.clock.advance(86400)
    sync.handle(reconcile(CORP, fakes.clock() - 1))
    assert fakes.log.names("api.get_app_license_info") == []  # nothing left to expire
