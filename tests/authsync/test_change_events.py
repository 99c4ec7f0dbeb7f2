"""Change events derived from the states the snapshot store really writes (moto), one stored change at a time.

Each write's before and after state (what a DynamoDB stream record of the state item carries) goes
through :func:`derive_events`: the whole life of a corp -- install, chatdata, a no-op fetch, 主体验证,
uninstall, re-install -- yields each event exactly once, with keys that name the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from authsync.aws.snapshots import SnapshotStore
from authsync.domain.change_events import SOURCE, DetailType, derive_events
from authsync.wecom.authinfo import derive_verification
from authsync.wecom.chatdata import summarize
from authsync.wecom.entitlements import license_summary, order_summary
from tests.authsync.test_snapshots import CORP, NOW, SUITE, Clock, auth_doc, chat_doc


def observe(store: SnapshotStore, write: Callable[[], Any]) -> list[tuple[str, str]]:
    """Apply one write; the (detail-type, idempotency key) of the events its stored change means."""
    before = store.get(SUITE, CORP)
    write()
    after = store.get(SUITE, CORP)
    return [
        (e.detail_type.value, e.detail.idempotency_key.removeprefix(f"{SUITE}/{CORP}/"))
        for e in derive_events(before, after)
    ]


CLOCK = Clock()
"""The store's clock, moved to each write's time (it dates activations and cancellations)."""


def timed(when: float, write: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        CLOCK.now = when
        return write()

    return run


def install(store: SnapshotStore, when: float, lifecycle_at: int) -> Callable[[], Any]:
    grant = {"corp_id": CORP, "corp_name": "示例"}
    return timed(
        when, lambda: store.record(SUITE, CORP, "install", grant, when, reactivate=True, lifecycle_at=lifecycle_at)
    )


def auth_info(store: SnapshotStore, when: float, corp_type: str) -> Callable[[], Any]:
    document = auth_doc(corp_type=corp_type)
    derived = {"verification": derive_verification(document, when).model_dump(mode="json")}
    return timed(when, lambda: store.record(SUITE, CORP, "auth_info", document, when, derived=derived))


def chatdata(store: SnapshotStore, when: float, *editions: tuple[int, int]) -> Callable[[], Any]:
    document = chat_doc(*editions)
    derived = {"chatdata": summarize(document).model_dump(mode="json")}
    return timed(when, lambda: store.record(SUITE, CORP, "chatdata", document, when, derived=derived))


def cancel(store: SnapshotStore, when: float, lifecycle_at: int) -> Callable[[], Any]:
    return timed(when, lambda: store.mark_cancelled(SUITE, CORP, when, 86_400, lifecycle_at=lifecycle_at))


@pytest.fixture
def store(deployment: Any) -> SnapshotStore:
    import boto3

    CLOCK.now = NOW
    return SnapshotStore(boto3.client("dynamodb"), deployment.physical["CorpsTable"], clock=CLOCK)


def test_a_corps_life_yields_each_event_once(store: SnapshotStore) -> None:
    assert observe(store, install(store, NOW, 100)) == []  # nothing to announce before its auth info
    assert observe(store, auth_info(store, NOW + 1, "unverified")) == [("Corp Installed", "installed/1")]
    assert observe(store, chatdata(store, NOW + 2, (1, 1))) == [("Corp Chatdata Changed", "chatdata/1")]
    assert observe(store, auth_info(store, NOW + 3, "unverified")) == []  # fetched again, nothing new
    assert observe(store, auth_info(store, NOW + 4, "verified")) == [
        ("Corp Authorization Changed", "auth_info/2"),
        ("Corp Verification Changed", "verification/2"),
    ]
    assert observe(store, chatdata(store, NOW + 5, (1, 1), (2, 1))) == [("Corp Chatdata Changed", "chatdata/2")]
    assert observe(store, cancel(store, NOW + 6, 200)) == [("Corp Cancelled", "cancelled/1")]
    assert observe(store, cancel(store, NOW + 7, 200)) == []  # the same cancel_auth again
    assert observe(store, install(store, NOW + 8, 300)) == []
    assert observe(store, auth_info(store, NOW + 9, "verified")) == [("Corp Installed", "installed/2")]
    assert observe(store, chatdata(store, NOW + 10, (1, 1))) == [("Corp Chatdata Changed", "chatdata/3")]


def test_details_carry_derived_state_and_the_diff_never_a_secret(store: SnapshotStore) -> None:
    install(store, NOW, 100)()
    auth_info(store, NOW + 1, "unverified")()
    before = store.get(SUITE, CORP)
    auth_info(store, NOW + 2, "verified")()
    events = {e.detail_type: e for e in derive_events(before, store.get(SUITE, CORP))}

    verification = events[DetailType.VERIFICATION_CHANGED].detail
    assert (verification.suite_id, verification.corp_id, verification.status) == (SUITE, CORP, "active")
    assert verification.verification is not None
    assert (verification.verification["verified"], verification.verification["customer_cap"]) == (True, None)
    changed = {c.path: (c.old, c.new) for c in verification.changes}
    assert changed["customer_cap"] == (100, None)  # the 微信客服 cap lifts
    assert changed["verified"] == (False, True)
    authorization = events[DetailType.AUTHORIZATION_CHANGED].detail
    assert [c.path for c in authorization.changes] == ["auth_corp_info.corp_type"]
    assert authorization.versions == {"auth_info": 2, "chatdata": 0, "license": 0, "orders": 0}

    entry = events[DetailType.AUTHORIZATION_CHANGED].entry("authsync-bus")
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        SOURCE,
        "Corp Authorization Changed",
        "authsync-bus",
    )
    assert "PERMCODE" not in entry["Detail"]
    assert "permanent_code" not in entry["Detail"]


def test_a_state_that_disappears_means_no_event(store: SnapshotStore) -> None:
    install(store, NOW, 100)()
    assert derive_events(store.get(SUITE, CORP), None) == []  # a tombstone expiring by TTL


def license_section(store: SnapshotStore, when: float, *active: str, paid: int = 0) -> Callable[[], Any]:
    orders = {"OI1": {"order_id": "OI1", "order_status": 1, "account_count": {"base_count": paid}}} if paid else {}
    document = {
        "license_status": int(bool(paid)),
        "trail_info": {"start_time": 1, "end_time": 2},
        "account_list": [{"userid": u, "type": 1, "active_time": 1, "expire_time": 9} for u in active],
        "orders": orders,
    }
    derived = {"license": license_summary(document)}
    return timed(when, lambda: store.record(SUITE, CORP, "license", document, when, derived=derived))


def orders_section(store: SnapshotStore, when: float, status: int) -> Callable[[], Any]:
    document = {"orders": {"O1": {"orderid": "O1", "order_status": status, "edition_id": "pro"}}, "replaced": {}}
    derived = {"orders": order_summary(document)}
    return timed(when, lambda: store.record(SUITE, CORP, "orders", document, when, derived=derived))


def test_license_and_order_sections_yield_their_events_once_per_new_version(store: SnapshotStore) -> None:
    install(store, NOW, 100)()
    auth_info(store, NOW + 1, "verified")()
    assert observe(store, license_section(store, NOW + 2, paid=10)) == [("Corp License Changed", "license/1")]
    assert observe(store, license_section(store, NOW + 3, paid=10)) == []  # read again, nothing new
    assert observe(store, license_section(store, NOW + 4, "zhangsan", paid=10)) == [
        ("Corp License Changed", "license/2")
    ]
    assert observe(store, orders_section(store, NOW + 5, 0)) == [("Corp Order Changed", "orders/1")]
    before = store.get(SUITE, CORP)
    assert observe(store, orders_section(store, NOW + 6, 1)) == [("Corp Order Changed", "orders/2")]
    (paid,) = derive_events(before, store.get(SUITE, CORP))
    assert paid.detail.orders is not None
    assert paid.detail.orders["paid"] == 1
    assert paid.detail.license is not None
    assert paid.detail.license["purchased"]["total"] == 10
    changed = {c.path: (c.old, c.new) for c in paid.detail.changes}
    assert changed["summary.paid"] == (0, 1)
    assert changed["orders.O1.order_status"] == (0, 1)
    assert paid.detail.versions == {"auth_info": 1, "chatdata": 0, "license": 2, "orders": 2}


def test_a_license_event_lists_counts_not_the_accounts_themselves(store: SnapshotStore) -> None:
    install(store, NOW, 100)()
    auth_info(store, NOW + 1, "verified")()
    before = store.get(SUITE, CORP)
    license_section(store, NOW + 2, "zhangsan", "lisi")()
    (event,) = derive_events(before, store.get(SUITE, CORP))
    assert all("account_list" not in c.path for c in event.detail.changes)
    assert event.detail.license is not None
    assert event.detail.license["active"]["total"] == 2
