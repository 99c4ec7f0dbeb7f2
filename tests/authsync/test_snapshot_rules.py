"""snapshot_rules: the write rules as decisions, without DynamoDB (expected diffs written out by hand)."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any

import pytest

from authsync.domain.corp_state import CorpState, KindState
from authsync.domain.diff import Change
from authsync.domain.snapshot_rules import (
    Action,
    CancelAction,
    CancelResult,
    Fetch,
    Kind,
    Lifecycle,
    RecordDecision,
    RecordResult,
    comparable,
    decide_cancel,
    decide_record,
)

NOW = 1_750_000_000.0
CORP_TYPE = Change("auth_corp_info.corp_type", "changed", "unverified", "verified")


def auth_doc(*, corp_type: str = "unverified", qr: str = "https://qr/1", errmsg: str = "ok") -> dict[str, Any]:
    return {
        "errcode": 0,
        "errmsg": errmsg,
        "auth_corp_info": {"corpid": "wwcorp", "corp_type": corp_type, "corp_wxqrcode": qr},
        "auth_info": {"agent": [{"agentid": 1000002, "privilege": {"allow_user": ["zhangsan"]}}]},
    }


def corp(
    status: str = "active",
    *,
    kind: Kind = "auth_info",
    version: int = 3,
    fetched_at: float | None = 100.0,
    document: dict[str, Any] | None = None,
    expires_at: int | None = None,
    other: KindState | None = None,
) -> CorpState:
    """A stored state; a tombstone (status cancelled) keeps versions and fetch times but no document."""
    if document is None and status == "active":
        document = auth_doc()
    kinds: dict[str, KindState] = {
        kind: KindState(version=version, document=document, fetched_at=fetched_at, fetches=version)
    }
    if other is not None:
        kinds["chatdata" if kind == "auth_info" else "auth_info"] = other
    return CorpState(
        suite_id="wwsuite",
        corp_id="wwcorp",
        status=status,
        created_at=1.0,
        activated_at=1.0,
        updated_at=2.0,
        cancelled_at=50.0 if status == "cancelled" else None,
        expires_at=expires_at,
        activations=1,
        cancellations=1 if status == "cancelled" else 0,
        kinds=kinds,
    )


def fetch(document: dict[str, Any], fetched_at: float, *, kind: Kind = "auth_info", reactivate: bool = False) -> Fetch:
    return Fetch(kind, document, fetched_at, reactivate)


# -- recording a fetch -----------------------------------------------------------------------------


def test_a_corp_never_seen_is_created_at_version_1_with_nothing_to_diff() -> None:
    decision = decide_record(None, fetch(auth_doc(), 100.0), NOW)
    assert decision == RecordDecision(Action.NEW_VERSION, 1, NOW, Lifecycle.CREATE, (), None)
    assert (decision.writes, decision.changed) == (True, True)
    assert decision.result() == RecordResult(version=1, changed=True)


def test_a_changed_newer_fetch_writes_version_n_plus_1_with_its_diff() -> None:
    decision = decide_record(corp(version=3), fetch(auth_doc(corp_type="verified"), 200.0), NOW)
    assert decision == RecordDecision(Action.NEW_VERSION, 4, NOW, Lifecycle.UPDATE, (CORP_TYPE,), 3)
    assert decision.result() == RecordResult(version=4, changed=True, diff=[CORP_TYPE])


def test_an_identical_newer_fetch_refreshes_the_state_without_a_version() -> None:
    # A new 7-day QR URL and another errmsg are not changes (VOLATILE_PATHS).
    newer = auth_doc(qr="https://qr/2", errmsg="ok, again")
    decision = decide_record(corp(version=3), fetch(newer, 200.0), NOW)
    assert decision == RecordDecision(Action.REFRESHED, 3, NOW, Lifecycle.UPDATE)
    assert (decision.writes, decision.changed) == (True, False)
    assert decision.result() == RecordResult(version=3, changed=False)


@pytest.mark.parametrize("document", [auth_doc(), auth_doc(corp_type="verified")], ids=["identical", "changed"])
def test_an_older_fetch_is_stale(document: dict[str, Any]) -> None:
    decision = decide_record(corp(version=3, fetched_at=300.0), fetch(document, 299.999), NOW)
    assert decision == RecordDecision(Action.STALE, 3, NOW)
    assert not decision.writes
    assert decision.result() == RecordResult(version=3, changed=False, stale=True)


def test_the_same_fetch_redelivered_writes_nothing() -> None:
    decision = decide_record(corp(version=3, fetched_at=300.0), fetch(auth_doc(qr="https://qr/9"), 300.0), NOW)
    assert decision == RecordDecision(Action.REDELIVERED, 3, NOW)
    assert not decision.writes
    assert decision.result() == RecordResult(version=3, changed=False)


def test_two_different_fetches_started_at_once_cannot_be_ordered_the_first_stays() -> None:
    decision = decide_record(corp(version=3, fetched_at=300.0), fetch(auth_doc(corp_type="verified"), 300.0), NOW)
    assert decision == RecordDecision(Action.STALE, 3, NOW)
    assert decision.result().stale


@pytest.mark.parametrize("fetched_at", [10.0, 100.0, 500.0], ids=["older", "equal", "newer"])
def test_a_cancelled_corp_ignores_fetches(fetched_at: float) -> None:
    tombstone = corp("cancelled", version=3, fetched_at=100.0)
    decision = decide_record(tombstone, fetch(auth_doc(), fetched_at), NOW)
    assert decision == RecordDecision(Action.IGNORED, 3, NOW)
    assert decision.result() == RecordResult(version=3, changed=False, ignored=True)
    chatdata = decide_record(tombstone, fetch({"x": 1}, fetched_at, kind="chatdata"), NOW)
    assert chatdata == RecordDecision(Action.IGNORED, 0, NOW)


def test_reactivation_continues_the_version_numbers_with_nothing_to_diff() -> None:
    tombstone = corp("cancelled", version=3, fetched_at=100.0)
    decision = decide_record(tombstone, fetch(auth_doc(), 500.0, reactivate=True), NOW)
    assert decision == RecordDecision(Action.NEW_VERSION, 4, NOW, Lifecycle.REACTIVATE, (), None)
    assert decision.result() == RecordResult(version=4, changed=True, reactivated=True)


@pytest.mark.parametrize("fetched_at", [99.0, 100.0], ids=["older", "equal"])
def test_reactivation_needs_a_fetch_newer_than_the_last_accepted_one(fetched_at: float) -> None:
    # Equal: the tombstone holds no document, so the fetch counts as different facts: stale.
    tombstone = corp("cancelled", version=3, fetched_at=100.0)
    decision = decide_record(tombstone, fetch(auth_doc(), fetched_at, reactivate=True), NOW)
    assert decision == RecordDecision(Action.STALE, 3, NOW)
    assert decision.result() == RecordResult(version=3, changed=False, stale=True)


def test_reactivating_an_active_corp_is_an_ordinary_update() -> None:
    decision = decide_record(corp(version=3), fetch(auth_doc(corp_type="verified"), 200.0, reactivate=True), NOW)
    assert decision == RecordDecision(Action.NEW_VERSION, 4, NOW, Lifecycle.UPDATE, (CORP_TYPE,), 3)
    assert decision.result().reactivated is False


def test_a_tombstone_without_fetch_times_can_be_reactivated() -> None:
    # A cancel_auth for a corp never fetched leaves a tombstone with no kind state at all.
    tombstone = corp("cancelled", version=0, fetched_at=None)
    decision = decide_record(tombstone, fetch(auth_doc(), 1.0, reactivate=True), NOW)
    assert decision == RecordDecision(Action.NEW_VERSION, 1, NOW, Lifecycle.REACTIVATE, (), None)


def test_kinds_are_decided_independently() -> None:
    chatdata = KindState(version=2, document={"auth_edition_list": []}, fetched_at=900.0)
    state = corp(version=3, fetched_at=100.0, other=chatdata)
    # An auth_info fetch older than the chatdata one is not stale, and the first chatdata
    # fetch of a corp is a first version, with no diff base.
    assert decide_record(state, fetch(auth_doc(corp_type="verified"), 200.0), NOW).action is Action.NEW_VERSION
    first = decide_record(corp(version=3), fetch({"auth_edition_list": []}, 50.0, kind="chatdata"), NOW)
    assert first == RecordDecision(Action.NEW_VERSION, 1, NOW, Lifecycle.UPDATE, (), None)
    edition = {"edition": 2, "status": 3}
    later = decide_record(state, fetch({"auth_edition_list": [edition]}, 901.0, kind="chatdata"), NOW)
    added = Change("auth_edition_list[edition=2]", "added", None, edition)
    assert later == RecordDecision(Action.NEW_VERSION, 3, NOW, Lifecycle.UPDATE, (added,), 2)


def test_the_chatdata_envelope_is_volatile_too() -> None:
    stored = KindState(version=1, document={"errcode": 0, "errmsg": "ok", "a": 1}, fetched_at=1.0)
    state = corp(version=3, other=stored)
    decision = decide_record(state, fetch({"errcode": 0, "errmsg": "fine", "a": 1}, 2.0, kind="chatdata"), NOW)
    assert decision.action is Action.REFRESHED
    # ...so a 48002 refusal is a change by its not_authorized marker, not by its errcode.
    refused = {"not_authorized": True, "errcode": 48002}
    assert decide_record(state, fetch(refused, 3.0, kind="chatdata"), NOW).changes == (
        Change("a", "removed", 1, None),
        Change("not_authorized", "added", None, True),
    )


def test_decisions_do_not_touch_their_inputs() -> None:
    state = corp(version=3)
    document = auth_doc(corp_type="verified")
    before = (copy.deepcopy(state), copy.deepcopy(document))
    decide_record(state, fetch(document, 200.0), NOW)
    assert (state, document) == before


# -- comparison ------------------------------------------------------------------------------------


def test_comparable_drops_the_volatile_paths_per_kind() -> None:
    document = auth_doc()
    assert comparable("auth_info", document) == {
        "auth_corp_info": {"corpid": "wwcorp", "corp_type": "unverified"},
        "auth_info": {"agent": [{"agentid": 1000002, "privilege": {"allow_user": ["zhangsan"]}}]},
    }
    assert document == auth_doc()  # not modified
    assert comparable("chatdata", {"errcode": 0, "errmsg": "ok", "auth_corp_info": {"corp_wxqrcode": "q"}}) == {
        "auth_corp_info": {"corp_wxqrcode": "q"}
    }
    assert comparable("auth_info", {"auth_corp_info": "not an object"}) == {"auth_corp_info": "not an object"}
    assert comparable("auth_info", {}) == {}
    assert comparable("contacts", {"errcode": 0}) == {"errcode": 0}


# -- cancellation ----------------------------------------------------------------------------------


def test_cancelling_an_active_corp_makes_a_tombstone_and_deletes_every_version_read() -> None:
    state = corp(version=3, other=KindState(version=2, document={}, fetched_at=5.0))
    decision = decide_cancel(state, 100.25, 60, NOW)
    assert decision.action is CancelAction.TOMBSTONE
    assert (decision.cancelled_at, decision.expires_at, decision.at) == (100.25, 161, NOW)  # ceil(100.25 + 60)
    assert decision.delete_through == {"install": 0, "auth_info": 3, "chatdata": 2, "license": 0, "orders": 0}
    assert decision.result(5) == CancelResult(already_cancelled=False, deleted_versions=5, expires_at=161)


def test_cancelling_a_corp_never_seen_still_leaves_a_tombstone() -> None:
    decision = decide_cancel(None, 100.0, 0, NOW)
    assert decision.action is CancelAction.TOMBSTONE_UNSEEN
    assert (decision.expires_at, decision.delete_through) == (
        100,
        {"install": 0, "auth_info": 0, "chatdata": 0, "license": 0, "orders": 0},
    )
    assert decision.result(0) == CancelResult(False, 0, 100)


@pytest.mark.parametrize(("expires_at", "reported"), [(777, 777), (None, 0)])
def test_cancelling_a_cancelled_corp_keeps_the_first_cancellation(expires_at: int | None, reported: int) -> None:
    tombstone = corp("cancelled", version=4, expires_at=expires_at)
    decision = decide_cancel(tombstone, 999.0, 1, NOW)
    assert decision.action is CancelAction.ALREADY_CANCELLED
    assert decision.expires_at == reported
    assert decision.delete_through == {
        "install": 0,
        "auth_info": 4,
        "chatdata": 0,
        "license": 0,
        "orders": 0,
    }  # finishes a crashed deletion
    assert decision.result(0) == CancelResult(True, 0, reported)


def test_expiry_rounds_up_to_a_whole_second() -> None:
    assert decide_cancel(None, 0.000001, 0, NOW).expires_at == 1
    assert decide_cancel(None, 1.5, 86_400, NOW).expires_at == math.ceil(86_401.5)


# -- rule 0: lifecycle order ---------------------------------------------------------------------------


def test_an_install_older_than_the_last_lifecycle_event_is_superseded_whatever_the_status() -> None:
    for status in ("active", "cancelled"):
        stored = replace(corp(status), lifecycle_at=500.0)
        older = decide_record(stored, Fetch("install", {"state": "x"}, 900.0, reactivate=True, lifecycle_at=400.0), NOW)
        tied = decide_record(stored, Fetch("install", {"state": "x"}, 900.0, reactivate=True, lifecycle_at=500.0), NOW)
        assert older.action is Action.SUPERSEDED
        assert older.result().superseded
        assert not older.writes
        assert tied.action is not Action.SUPERSEDED  # equal times: arrival order


def test_a_plain_fetch_is_not_ordered_by_lifecycle() -> None:
    stored = replace(corp(), lifecycle_at=500.0)
    assert decide_record(stored, Fetch("auth_info", {"a": 1}, 900.0), NOW).action is not Action.SUPERSEDED


def test_a_cancel_older_than_the_last_install_is_superseded_and_deletes_nothing() -> None:
    stored = replace(corp(version=3), lifecycle_at=500.0)
    decision = decide_cancel(stored, 100.0, 60, NOW, lifecycle_at=400.0)
    assert decision.action is CancelAction.SUPERSEDED
    assert decision.delete_through == {}
    assert decision.result(0).superseded


def test_a_later_cancel_of_a_cancelled_corp_advances_its_lifecycle_time_only() -> None:
    tombstone = replace(corp("cancelled", version=4), lifecycle_at=500.0)
    newer = decide_cancel(tombstone, 999.0, 1, NOW, lifecycle_at=800.0)
    same = decide_cancel(tombstone, 999.0, 1, NOW, lifecycle_at=500.0)
    assert (newer.action, newer.lifecycle_at) == (CancelAction.ALREADY_CANCELLED, 800.0)
    assert (same.action, same.lifecycle_at) == (CancelAction.ALREADY_CANCELLED, None)  # nothing to write
