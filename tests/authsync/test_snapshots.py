"""snapshots: versioned corp state in the template's CorpsTable (moto).

The diff and the write rules have their own tests without DynamoDB (test_diff, test_snapshot_rules);
here: the store's items, conditions and races, each race also in a fixed order that runs the
compare-and-swap on every run.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from authsync.aws.snapshot_items import decode_item
from authsync.aws.snapshots import (
    MAX_ITEM_BYTES,
    Change,
    RecordResult,
    SnapshotConflictError,
    SnapshotStore,
    SnapshotTooLargeError,
    item_size,
    state_pk,
)
from authsync.wecom.authinfo import derive_verification
from authsync.wecom.chatdata import summarize
from authsync_dev.template import Deployment
from tests.atomic import Serialized

SUITE = "wwsuite000000001"
OTHER_SUITE = "dksuite000000002"
CORP = "wwcorp0000000001"
NOW = 1_750_000_000.0
PERMANENT_CODE = "PERMCODE-5f1c0e4b8a9d7c6e2f3a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0"
CORP_TOKEN = "CORPTOKEN-a1b2c3d4e5f60718293a4b5c6d7e8f90"


def auth_doc(
    *, corp_type: str = "unverified", allow_user: list[str] | None = None, qr: str = "https://qr/1"
) -> dict[str, Any]:
    return {
        "errcode": 0,
        "errmsg": "ok",
        "auth_corp_info": {
            "corpid": CORP,
            "corp_name": "示例",
            "corp_type": corp_type,
            "corp_user_max": 200,
            "verified_end_time": 0,
            "corp_wxqrcode": qr,
        },
        "auth_info": {
            "agent": [
                {
                    "agentid": 1000002,
                    "name": "Authsync",
                    "privilege": {"level": 1, "allow_party": [1], "allow_user": allow_user or ["zhangsan"]},
                }
            ]
        },
    }


def chat_doc(*editions: tuple[int, int]) -> dict[str, Any]:
    return {
        "auth_edition_list": [
            {
                "edition": number,
                "auth_scope": {"userid_list": ["zhangsan"], "department_id_list": [1], "tag_id_list": []},
                "status": status,
                "begin_time": 1_726_588_800,
                "end_time": 1_729_180_799,
                "msg_duration_days": 90,
                "auth_user_count": 1,
            }
            for number, status in editions
        ]
    }


# -- the size estimate (pure) ---------------------------------------------------------------------


def test_item_size_estimate_counts_utf8_bytes() -> None:
    assert item_size({"pk": "ab"}) == 4
    assert item_size({"s": "示例"}) == 1 + 6
    assert item_size({"n": 1}) == 1 + 21


# -- the store (moto) ------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(deployment: Deployment) -> str:
    return deployment.physical["CorpsTable"]


@pytest.fixture
def client(table: str) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(client: Any, table: str, clock: Clock) -> SnapshotStore:
    return SnapshotStore(client, table, clock=clock)


def all_items(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def corp_items(client: Any, table: str, suite: str = SUITE, corp: str = CORP) -> list[dict[str, Any]]:
    return [i for i in all_items(client, table) if i["pk"]["S"] == state_pk(suite, corp)]


def test_first_record_creates_an_active_corp_with_version_1(store: SnapshotStore) -> None:
    doc = auth_doc()
    verification = derive_verification(doc, NOW).model_dump(mode="json")
    result = store.record(SUITE, CORP, "auth_info", doc, NOW - 1, {"verification": verification})
    assert (result.version, result.changed, result.stale, result.diff) == (1, True, False, [])
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.active
    info = state.kind("auth_info")
    assert (info.version, info.fetched_at, info.fetches, info.document) == (1, NOW - 1, 1, doc)
    assert state.verification == verification
    assert state.verification["customer_cap"] == 100
    assert state.chatdata_authorized is None
    assert (state.created_at, state.activated_at, state.activations) == (NOW, NOW, 1)
    (version,) = store.versions(SUITE, CORP, "auth_info")
    assert (version.version, version.document, version.diff, version.diff_base) == (1, doc, [], None)
    assert list(store.iter_active(SUITE)) == [CORP]
    assert store.get(SUITE, "wwunknown") is None


def test_identical_refetch_writes_no_version_and_only_advances_fetched_at(
    store: SnapshotStore, client: Any, table: str
) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    before = corp_items(client, table)
    # Same facts, a fresh 7-day QR URL: not a change, but the stored document is the fresh one.
    result = store.record(SUITE, CORP, "auth_info", auth_doc(qr="https://qr/2"), 200.0)
    assert (result.version, result.changed, result.stale) == (1, False, False)
    assert len(corp_items(client, table)) == len(before) == 2
    state = store.get(SUITE, CORP)
    assert state is not None
    info = state.kind("auth_info")
    assert (info.version, info.fetched_at, info.fetches) == (1, 200.0, 2)
    assert info.document is not None
    assert info.document["auth_corp_info"]["corp_wxqrcode"] == "https://qr/2"
    assert len(store.versions(SUITE, CORP, "auth_info")) == 1
    # The very same fetch redelivered: nothing at all is written.
    again = store.record(SUITE, CORP, "auth_info", auth_doc(qr="https://qr/2"), 200.0)
    assert (again.version, again.changed, again.stale) == (1, False, False)
    after = store.get(SUITE, CORP)
    assert after is not None
    assert after.kind("auth_info").fetches == 2


def test_a_mutation_adds_exactly_one_version_with_its_diff(store: SnapshotStore, clock: Clock) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    clock.now = NOW + 10
    verified = auth_doc(corp_type="verified")
    derived = {"verification": derive_verification(verified, NOW)}  # a model is stored as its JSON form
    result = store.record(SUITE, CORP, "auth_info", verified, 200.0, derived)
    expected = [Change("auth_corp_info.corp_type", "changed", "unverified", "verified")]
    assert (result.version, result.changed, result.diff) == (2, True, expected)
    versions = store.versions(SUITE, CORP, "auth_info")
    assert [v.version for v in versions] == [1, 2]
    assert (versions[1].diff, versions[1].diff_base, versions[1].recorded_at) == (expected, 1, NOW + 10)
    assert versions[1].document == verified
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.verification is not None
    assert state.verification["verified"] is True
    assert state.verification["customer_cap"] is None
    assert state.kind("auth_info").updated_at == NOW + 10

    # An agent's visible range changes: one more version, diff keyed by agentid.
    widened = auth_doc(corp_type="verified", allow_user=["zhangsan", "lisi"])
    result = store.record(SUITE, CORP, "auth_info", widened, 300.0)
    assert result.version == 3
    assert [c.path for c in result.diff] == ["auth_info.agent[agentid=1000002].privilege.allow_user"]
    assert len(store.versions(SUITE, CORP, "auth_info")) == 3


def test_chatdata_versions_are_independent_of_auth_info(store: SnapshotStore) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    first = chat_doc((1, 1), (2, 1))
    store.record(SUITE, CORP, "chatdata", first, 101.0, {"chatdata": summarize(first)})
    paid = chat_doc((1, 1), (2, 3))
    result = store.record(SUITE, CORP, "chatdata", paid, 150.0, {"chatdata": summarize(paid)})
    assert result.diff == [Change("auth_edition_list[edition=2].status", "changed", 1, 3)]
    more = chat_doc((1, 1), (2, 3), (3, 7))
    result = store.record(SUITE, CORP, "chatdata", more, 160.0, {"chatdata": summarize(more)})
    assert result.version == 3
    assert [(c.path, c.op) for c in result.diff] == [("auth_edition_list[edition=3]", "added")]
    state = store.get(SUITE, CORP)
    assert state is not None
    assert (state.kind("auth_info").version, state.kind("chatdata").version) == (1, 3)
    assert state.chatdata_authorized is True
    assert state.chatdata_summary == summarize(more).model_dump(mode="json")
    assert (state.auth_info_version, state.chatdata_version, state.chatdata_fetched_at) == (1, 3, 160.0)

    # 48002 recorded as the corp's state: a version of its own, not an error.
    refused = {"errcode": 48002, "errmsg": "api forbidden"}
    result = store.record(SUITE, CORP, "chatdata", refused, 170.0, {"chatdata": summarize(refused)})
    assert [(c.path, c.op) for c in result.diff] == [("auth_edition_list", "removed")]
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.chatdata_authorized is False
    assert state.chatdata_summary is not None
    assert state.chatdata_summary["errcode"] == 48002
    assert [v.version for v in store.versions(SUITE, CORP, "chatdata")] == [1, 2, 3, 4]
    assert [v.version for v in store.versions(SUITE, CORP, "auth_info")] == [1]


def test_an_older_fetch_never_regresses_the_snapshot(store: SnapshotStore) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    store.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 300.0)
    # A fetch that started at 200 (before the stored one) lands late, with the old facts.
    late = store.record(SUITE, CORP, "auth_info", auth_doc(), 200.0)
    assert (late.stale, late.changed, late.version) == (True, False, 2)
    late_same = store.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 250.0)
    assert late_same.stale is True
    # Two different fetches with the same start time cannot be ordered: the first one stays.
    tie = store.record(SUITE, CORP, "auth_info", auth_doc(allow_user=["x"]), 300.0)
    assert tie.stale is True
    state = store.get(SUITE, CORP)
    assert state is not None
    info = state.kind("auth_info")
    assert (info.version, info.fetched_at, info.fetches) == (2, 300.0, 2)
    assert info.document == auth_doc(corp_type="verified")
    assert len(store.versions(SUITE, CORP, "auth_info")) == 2


def test_documents_round_trip_exactly(store: SnapshotStore) -> None:
    doc = {
        "ints": [0, -1, 2**63, 10**30],
        "floats": [0.1, 1e-300, 1.7976931348623157e308, -2.5],
        "text": '企业微信 ✓ \u0000 "quoted" \\',
        "flags": [True, False, None],
        "empty": {"list": [], "dict": {}, "str": ""},
        "nested": {"deep": [[{"x": 1.0}]]},
    }
    store.record(SUITE, CORP, "auth_info", doc, 1_750_000_000.123456)
    state = store.get(SUITE, CORP)
    assert state is not None
    stored = state.kind("auth_info").document
    assert stored == doc
    assert json.dumps(stored, sort_keys=True) == json.dumps(doc, sort_keys=True)  # 1.0 stays a float, 2**63 an int
    assert state.kind("auth_info").fetched_at == 1_750_000_000.123456
    (version,) = store.versions(SUITE, CORP, "auth_info")
    assert json.dumps(version.document, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert isinstance(version.fetched_at, float)
    assert isinstance(version.version, int)


def test_no_secret_is_ever_stored_or_shown(store: SnapshotStore, client: Any, table: str) -> None:
    v1 = {**auth_doc(), "permanent_code": PERMANENT_CODE, "access_token": CORP_TOKEN, "expires_in": 7200}
    store.record(SUITE, CORP, "auth_info", v1, 100.0, {"verification": {"x": 1}, "access_token": CORP_TOKEN})
    store.record(SUITE, CORP, "auth_info", {**v1, "auth_corp_info": {"corp_type": "verified"}}, 200.0)
    dumped = json.dumps(all_items(client, table), ensure_ascii=False)
    assert PERMANENT_CODE not in dumped
    assert CORP_TOKEN not in dumped
    state = store.get(SUITE, CORP)
    versions = store.versions(SUITE, CORP, "auth_info")
    for text in (repr(state), repr(versions), repr(store)):
        assert PERMANENT_CODE not in text
        assert CORP_TOKEN not in text
    assert state is not None
    stored = state.kind("auth_info").document
    assert stored is not None
    assert "permanent_code" not in stored
    assert all("permanent_code" not in c.path for v in versions for c in v.diff)


def test_cancel_deletes_versions_and_documents_and_keeps_a_tombstone(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0, {"verification": {"verified": False}})
    store.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 200.0)
    store.record(SUITE, CORP, "chatdata", chat_doc((1, 1)), 210.0, {"chatdata": {"authorized": True}})
    store.record(SUITE, "wwothercorp", "auth_info", auth_doc(), 100.0)
    assert len(corp_items(client, table)) == 4

    clock.now = NOW + 50
    result = store.mark_cancelled(SUITE, CORP, at=NOW + 40, retention_seconds=30 * 86_400)
    assert (result.already_cancelled, result.deleted_versions) == (False, 3)
    assert result.expires_at == NOW + 40 + 30 * 86_400
    (tombstone,) = corp_items(client, table)
    assert tombstone["sk"]["S"] == "STATE"
    assert set(tombstone) == {
        "pk",
        "sk",
        "suite_id",
        "corp_id",
        "status",
        "created_at",
        "activated_at",
        "updated_at",
        "activations",
        "cancelled_at",
        "cancellations",
        "expires_at",
        "auth_info_version",
        "auth_info_fetched_at",
        "auth_info_updated_at",
        "auth_info_fetches",
        "chatdata_version",
        "chatdata_fetched_at",
        "chatdata_updated_at",
        "chatdata_fetches",
    }
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.status == "cancelled"
    assert not state.active
    assert (state.cancelled_at, state.expires_at) == (NOW + 40, result.expires_at)
    assert state.kind("auth_info").document is None
    assert state.kind("auth_info").derived is None
    assert state.verification is None
    assert state.chatdata_summary is None
    assert (state.kind("auth_info").version, state.kind("chatdata").version) == (2, 1)
    assert store.versions(SUITE, CORP, "auth_info") == []
    assert store.versions(SUITE, CORP, "chatdata") == []
    assert list(store.iter_active(SUITE)) == ["wwothercorp"]
    assert len(store.versions(SUITE, "wwothercorp", "auth_info")) == 1

    # A redelivered cancel changes nothing; the first cancellation's times stay.
    again = store.mark_cancelled(SUITE, CORP, at=NOW + 99, retention_seconds=1)
    assert (again.already_cancelled, again.deleted_versions, again.expires_at) == (True, 0, result.expires_at)
    cancelled = store.get(SUITE, CORP)
    assert cancelled is not None
    assert cancelled.cancellations == 1


def test_a_cancelled_corp_ignores_fetches_unless_reactivated(store: SnapshotStore, client: Any, table: str) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    store.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 200.0)
    store.mark_cancelled(SUITE, CORP, at=300.0, retention_seconds=3600)
    before = corp_items(client, table)

    ignored = store.record(SUITE, CORP, "auth_info", auth_doc(), 400.0)
    assert (ignored.ignored, ignored.changed, ignored.version) == (True, False, 2)
    assert store.record(SUITE, CORP, "chatdata", chat_doc((1, 1)), 400.0).ignored is True
    assert corp_items(client, table) == before

    # A new create_auth: versions continue after the tombstone's, with nothing to diff against.
    back = store.record(SUITE, CORP, "auth_info", auth_doc(), 500.0, reactivate=True)
    assert (back.reactivated, back.changed, back.version, back.diff) == (True, True, 3, [])
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.active
    assert (state.cancelled_at, state.expires_at, state.activations, state.cancellations) == (None, None, 2, 1)
    (version,) = store.versions(SUITE, CORP, "auth_info")
    assert (version.version, version.diff_base) == (3, None)
    assert list(store.iter_active(SUITE)) == [CORP]
    # Reactivation is for documents newer than the last accepted fetch only.
    assert store.record(SUITE, CORP, "auth_info", auth_doc(), 450.0, reactivate=True).stale is True


def test_cancel_of_an_unknown_corp_leaves_a_tombstone(store: SnapshotStore) -> None:
    result = store.mark_cancelled(SUITE, CORP, at=NOW, retention_seconds=60)
    assert (result.already_cancelled, result.deleted_versions, result.expires_at) == (False, 0, NOW + 60)
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.status == "cancelled"
    assert store.record(SUITE, CORP, "auth_info", auth_doc(), NOW + 1).ignored is True
    assert list(store.iter_active(SUITE)) == []


class Counting:
    """Delegates to a client and counts calls per method."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attribute(**kwargs)

        return call


def test_iter_active_pages_through_only_active_corps(client: Any, table: str, clock: Clock) -> None:
    counting: Any = Counting(client)
    store = SnapshotStore(counting, table, clock=clock)
    corps = [f"wwcorp{i:04d}" for i in range(23)]
    for corp in corps:
        store.record(SUITE, corp, "auth_info", {"auth_corp_info": {"corpid": corp}}, 100.0)
    for corp in corps[::6]:
        store.mark_cancelled(SUITE, corp, at=200.0, retention_seconds=60)
    store.record(OTHER_SUITE, "wwcorp9999", "auth_info", {}, 100.0)
    counting.calls.clear()
    listed = list(store.iter_active(SUITE, page_size=5))
    assert listed == sorted(set(corps) - set(corps[::6]))
    assert counting.calls["query"] >= 4  # 19 corps, 5 a page
    assert list(store.iter_active(OTHER_SUITE)) == ["wwcorp9999"]
    assert list(store.iter_active("wwnosuch")) == []


def test_fractional_times_and_derived_values_round_trip(store: SnapshotStore) -> None:
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.5)
    derived = {"verification": {"verified": True}}
    result = store.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 200.25, derived)
    assert result.version == 2
    state = store.get(SUITE, CORP)
    assert state is not None
    assert state.kind("auth_info").fetched_at == 200.25
    assert state.verification == {"verified": True}
    assert [(v.version, v.fetched_at) for v in store.versions(SUITE, CORP, "auth_info")] == [(1, 100.5), (2, 200.25)]
    assert list(store.iter_active(SUITE)) == [CORP]
    assert store.mark_cancelled(SUITE, CORP, at=300.0, retention_seconds=10).deleted_versions == 2
    assert store.versions(SUITE, CORP, "auth_info") == []


def test_the_store_takes_a_low_level_client_only(table: str) -> None:
    resource = boto3.resource("dynamodb", region_name="us-east-1")
    for not_a_client in (resource, resource.Table(table)):
        with pytest.raises(TypeError, match="low-level DynamoDB client"):
            SnapshotStore(not_a_client, table)  # type: ignore[arg-type]


def test_the_size_guard_refuses_oversized_documents(store: SnapshotStore, client: Any, table: str) -> None:
    # A list the store does not page (the member list is paged: see below) still meets the guard.
    huge = {"auth_scope": {"userid_list": [f"user{i:027d}" for i in range(12_000)]}}
    with pytest.raises(SnapshotTooLargeError, match="limit is"):
        store.record(SUITE, CORP, "chatdata", huge, 100.0)
    assert all_items(client, table) == []


def test_a_diff_too_big_for_the_version_item_keeps_paths_only(store: SnapshotStore) -> None:
    # ~120 KB of ids in a plain list: replacing them all would store old + new + document.
    old = {"auth_scope": {"userid_list": [f"old{i:07d}" for i in range(9_000)]}}
    new = {"auth_scope": {"userid_list": [f"new{i:07d}" for i in range(9_000)]}}
    size = item_size({"d": json.dumps(old, separators=(",", ":"))})
    assert size * 3 > MAX_ITEM_BYTES > size * 2
    store.record(SUITE, CORP, "chatdata", old, 100.0)
    result = store.record(SUITE, CORP, "chatdata", new, 200.0)
    assert result.changed
    assert result.diff[0].new == new["auth_scope"]["userid_list"]
    latest = store.versions(SUITE, CORP, "chatdata")[-1]
    assert latest.diff_truncated is True
    assert latest.diff == [Change("auth_scope.userid_list", "changed")]
    assert latest.document == new


def test_bad_input_is_rejected(store: SnapshotStore) -> None:
    with pytest.raises(ValueError, match="unknown snapshot kind"):
        store.record(SUITE, CORP, "contacts", {}, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.record(SUITE, CORP, "auth_info", [1, 2], 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        store.record(SUITE, CORP, "auth_info", {}, float("nan"))


# -- concurrency -----------------------------------------------------------------------------------

ALLOW_USER = "auth_info.agent[agentid=1000002].privilege.allow_user"


def facts(doc: dict[str, Any]) -> tuple[str, list[str]]:
    """What the race test's documents differ in: corp_type and the agent's allow_user."""
    return doc["auth_corp_info"]["corp_type"], doc["auth_info"]["agent"][0]["privilege"]["allow_user"]


def expected_diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The diff between two of the race test's documents, written out (not computed by :func:`diff`)."""
    (old_type, old_users), (new_type, new_users) = facts(old), facts(new)
    changes = []
    if old_type != new_type:
        changes.append(Change("auth_corp_info.corp_type", "changed", old_type, new_type))
    if sorted(old_users) != sorted(new_users):
        changes.append(Change(ALLOW_USER, "changed", old_users, new_users))
    return changes


def test_concurrent_writers_leave_a_consistent_version_chain(client: Any, table: str) -> None:
    rng = random.Random(20250301)
    pool = [
        auth_doc(),
        auth_doc(corp_type="verified"),
        auth_doc(allow_user=["a", "b"]),
        auth_doc(corp_type="verified", allow_user=["c"]),
        auth_doc(qr="https://qr/other"),  # same facts as pool[0]
    ]
    fetches = [(100.0 + t, pool[rng.randrange(len(pool))]) for t in rng.sample(range(1000), 48)]
    threads_count = 6
    results: list[Any] = []
    errors: list[BaseException] = []
    lost: list[str] = []
    start = threading.Barrier(threads_count)

    def writer(index: int) -> None:
        serialized: Any = Serialized(client, random.Random(index), pause=0.0005, errors=lost)
        store = SnapshotStore(serialized, table, sleep=lambda _: None)
        start.wait()
        try:
            for fetched_at, doc in fetches[index::threads_count]:
                while True:
                    try:
                        results.append((fetched_at, store.record(SUITE, CORP, "auth_info", doc, fetched_at)))
                        break
                    except SnapshotConflictError:
                        continue  # what an SQS redelivery would do
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(results) == len(fetches)
    # The race really happened: conditions were lost (and re-decided), late fetches were refused.
    assert lost
    assert set(lost) <= {"ConditionalCheckFailedException", "TransactionCanceledException"}
    assert any(r.stale for _, r in results)

    store = SnapshotStore(client, table)
    versions = store.versions(SUITE, CORP, "auth_info")
    numbers = [v.version for v in versions]
    assert numbers == list(range(1, len(versions) + 1)), "gaps or duplicates in the chain"
    assert sum(1 for _, r in results if r.changed) == len(versions)
    assert sorted(r.version for _, r in results if r.changed) == numbers
    for previous, current in itertools.pairwise(versions):
        assert current.fetched_at > previous.fetched_at, "a version went back in time"
        assert current.diff_base == previous.version
        assert current.diff == expected_diff(previous.document, current.document) != []

    newest_at, newest_doc = max(fetches, key=lambda f: f[0])
    state = store.get(SUITE, CORP)
    assert state is not None
    info = state.kind("auth_info")
    assert (info.fetched_at, info.document, info.version) == (newest_at, newest_doc, versions[-1].version)
    assert facts(versions[-1].document) == facts(newest_doc)
    assert info.fetches == sum(1 for _, r in results if not r.stale)  # fetch times are distinct: no redeliveries


# .. the same races in a fixed order ...............................................................
#
# The threaded test above catches a broken condition only when the race happens to hit it.
# Here the other writer always gets in at the same point: right after this writer's read
# (its GetItem) and before its conditional write, so the condition is exercised every run.
# Each twin is the one a single condition guards alone (checked by dropping the condition).


class Interleaved:
    """A client that runs ``between`` once, right after the first GetItem it served; records failed calls."""

    def __init__(self, inner: Any, between: Callable[[], object]) -> None:
        self._inner = inner
        self._between: Callable[[], object] | None = between
        self.calls: list[str] = []
        self.lost: list[tuple[str, list[str]]] = []
        """(error code, cancellation reason per transaction item) of every failed call."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            try:
                response = attribute(**kwargs)
            except ClientError as exc:
                reasons = [str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])]
                self.lost.append((exc.response["Error"]["Code"], reasons))
                raise
            if name == "get_item" and self._between is not None:
                between, self._between = self._between, None
                between()
            return response

        return call


def interleaved(client: Any, table: str, clock: Clock, between: Callable[[], object]) -> tuple[SnapshotStore, Any]:
    wrapper: Any = Interleaved(client, between)
    return SnapshotStore(wrapper, table, clock=clock, sleep=lambda _: None), wrapper


@pytest.mark.parametrize("existing", [True, False], ids=["existing-corp", "first-fetch"])
def test_a_writer_that_read_before_another_wrote_loses_and_retries_onto_the_new_version(
    store: SnapshotStore, client: Any, table: str, clock: Clock, existing: bool
) -> None:
    # A reads, B reads and writes a new version, A writes: A's transaction must lose both its
    # conditions (the version item exists; the state is not what A read), and A's retry must
    # diff against B's version, not against what it first read.
    base, middle, last = auth_doc(), auth_doc(corp_type="verified"), auth_doc(corp_type="verified", allow_user=["x"])
    if existing:
        store.record(SUITE, CORP, "auth_info", base, 100.0)
    others: list[RecordResult] = []
    writer, wrapper = interleaved(
        client, table, clock, lambda: others.append(store.record(SUITE, CORP, "auth_info", middle, 200.0))
    )
    result = writer.record(SUITE, CORP, "auth_info", last, 300.0)

    n = 1 if existing else 0  # versions before the race
    corp_type = [Change("auth_corp_info.corp_type", "changed", "unverified", "verified")]
    assert others == [RecordResult(n + 1, True, diff=corp_type if existing else [])]
    assert wrapper.lost == [("TransactionCanceledException", ["ConditionalCheckFailed", "ConditionalCheckFailed"])]
    assert wrapper.calls == ["get_item", "transact_write_items", "get_item", "transact_write_items"]
    allow_user = [Change(ALLOW_USER, "changed", ["zhangsan"], ["x"])]
    assert result == RecordResult(n + 2, True, diff=allow_user)
    versions = store.versions(SUITE, CORP, "auth_info")
    chain = [(v.version, v.diff_base, v.fetched_at, v.diff) for v in versions]
    assert chain == [
        *([(1, None, 100.0, [])] if existing else []),
        (n + 1, n or None, 200.0, corp_type if existing else []),
        (n + 2, n + 1, 300.0, allow_user),
    ]
    assert versions[-1].document == last
    state = store.get(SUITE, CORP)
    assert state is not None
    info = state.kind("auth_info")
    assert (info.version, info.fetched_at, info.document, info.fetches) == (n + 2, 300.0, last, n + 2)
    assert state.activations == 1


def test_a_write_that_read_before_a_newer_refresh_is_refused_as_stale(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    # B's identical re-fetch moves fetched_at only: A's version item is new and the version
    # A read is still current, so the fetched_at condition alone keeps A's older facts out.
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    refreshed = auth_doc(qr="https://qr/2")
    writer, wrapper = interleaved(
        client, table, clock, lambda: store.record(SUITE, CORP, "auth_info", refreshed, 300.0)
    )
    result = writer.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 200.0)
    assert result == RecordResult(1, False, stale=True)
    assert wrapper.lost == [("TransactionCanceledException", ["None", "ConditionalCheckFailed"])]
    assert [v.version for v in store.versions(SUITE, CORP, "auth_info")] == [1]
    state = store.get(SUITE, CORP)
    assert state is not None
    info = state.kind("auth_info")
    assert (info.version, info.fetched_at, info.document, info.fetches) == (1, 300.0, refreshed, 2)


def test_a_write_that_read_before_a_cancellation_is_ignored(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    # The tombstone keeps the version and fetched_at A read: only the status condition stops
    # A from writing a cancelled corp's document (and a version item) back.
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    writer, wrapper = interleaved(
        client, table, clock, lambda: store.mark_cancelled(SUITE, CORP, at=150.0, retention_seconds=60)
    )
    result = writer.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 200.0)
    assert result == RecordResult(1, False, ignored=True)
    assert wrapper.lost == [("TransactionCanceledException", ["None", "ConditionalCheckFailed"])]
    (tombstone,) = corp_items(client, table)
    assert tombstone["status"] == {"S": "cancelled"}
    assert "auth_info_doc" not in tombstone
    assert tombstone["auth_info_version"] == {"N": "1"}


def test_a_cancellation_that_read_before_a_new_version_deletes_that_version_too(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    # The corp stays active through B's write: only the version condition makes the
    # cancellation re-read, so that it deletes versions 1..2 and not just 1..1.
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    canceller, wrapper = interleaved(
        client, table, clock, lambda: store.record(SUITE, CORP, "auth_info", auth_doc(corp_type="verified"), 200.0)
    )
    result = canceller.mark_cancelled(SUITE, CORP, at=300.0, retention_seconds=60)
    assert (result.already_cancelled, result.deleted_versions) == (False, 2)
    assert wrapper.lost == [("ConditionalCheckFailedException", [])]
    (tombstone,) = corp_items(client, table)
    assert tombstone["status"] == {"S": "cancelled"}
    assert tombstone["auth_info_version"] == {"N": "2"}


@pytest.mark.parametrize("existing", [True, False], ids=["active-corp", "unseen-corp"])
def test_a_cancellation_that_read_before_another_one_keeps_the_first_cancellations_times(
    store: SnapshotStore, client: Any, table: str, clock: Clock, existing: bool
) -> None:
    # A redelivered cancel_auth racing the first: the versions did not move, so the status
    # (or, for a corp never seen, the item's absence) alone decides who cancelled first.
    if existing:
        store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    first: list[Any] = []
    canceller, wrapper = interleaved(
        client, table, clock, lambda: first.append(store.mark_cancelled(SUITE, CORP, at=150.0, retention_seconds=60))
    )
    result = canceller.mark_cancelled(SUITE, CORP, at=300.0, retention_seconds=1)
    assert (first[0].already_cancelled, first[0].expires_at) == (False, 210)
    assert (result.already_cancelled, result.deleted_versions, result.expires_at) == (True, 0, 210)
    assert wrapper.lost == [("ConditionalCheckFailedException", [])]
    state = store.get(SUITE, CORP)
    assert state is not None
    assert (state.cancelled_at, state.expires_at, state.cancellations) == (150.0, 210, 1)


def test_a_reactivation_that_read_before_another_kinds_reactivation_becomes_an_update(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    # The other kind's reactivation leaves this kind's version and fetched_at as read: only
    # the condition on the tombstone's status keeps the corp from being reactivated twice.
    store.record(SUITE, CORP, "auth_info", auth_doc(), 100.0)
    store.record(SUITE, CORP, "chatdata", chat_doc((1, 1)), 110.0)
    store.mark_cancelled(SUITE, CORP, at=200.0, retention_seconds=60)
    others: list[RecordResult] = []
    writer, wrapper = interleaved(
        client,
        table,
        clock,
        lambda: others.append(store.record(SUITE, CORP, "chatdata", chat_doc((1, 1)), 510.0, reactivate=True)),
    )
    result = writer.record(SUITE, CORP, "auth_info", auth_doc(), 500.0, reactivate=True)
    assert others == [RecordResult(2, True, reactivated=True)]
    assert wrapper.lost == [("TransactionCanceledException", ["None", "ConditionalCheckFailed"])]
    assert result == RecordResult(2, True)  # the corp was active again by then: an ordinary first version
    state = store.get(SUITE, CORP)
    assert state is not None
    assert (state.status, state.activations, state.cancellations) == ("active", 2, 1)
    assert (state.auth_info_version, state.chatdata_version) == (2, 2)


# .. lifecycle order (rule 0): WeCom's TimeStamp, then arrival ..........................................


def test_lifecycle_events_older_than_the_last_applied_change_nothing(
    store: SnapshotStore, client: Any, table: str
) -> None:
    store.record(SUITE, CORP, "install", {"state": "a"}, 100.0, reactivate=True, lifecycle_at=1_000)
    store.record(SUITE, CORP, "auth_info", auth_doc(), 101.0)
    before = corp_items(client, table)

    late_cancel = store.mark_cancelled(SUITE, CORP, at=200.0, retention_seconds=60, lifecycle_at=900)
    late_install = store.record(SUITE, CORP, "install", {"state": "b"}, 300.0, reactivate=True, lifecycle_at=950)

    assert (late_cancel.superseded, late_cancel.deleted_versions) == (True, 0)
    assert late_install.superseded
    assert corp_items(client, table) == before
    state = store.get(SUITE, CORP)
    assert state is not None
    assert (state.status, state.lifecycle_at) == ("active", 1_000)


def test_a_cancel_that_read_before_a_newer_reinstall_is_superseded(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    # The re-install writes the same install document (a refresh: no version moves) and keeps the
    # corp active: only the condition on lifecycle_at stops the older cancel from deleting it.
    store.record(SUITE, CORP, "install", {"state": "a"}, 100.0, reactivate=True, lifecycle_at=1_000)
    canceller, wrapper = interleaved(
        client,
        table,
        clock,
        lambda: store.record(SUITE, CORP, "install", {"state": "a"}, 200.0, reactivate=True, lifecycle_at=3_000),
    )
    result = canceller.mark_cancelled(SUITE, CORP, at=250.0, retention_seconds=60, lifecycle_at=2_000)
    assert result.superseded
    assert wrapper.lost == [("ConditionalCheckFailedException", [])]
    state = store.get(SUITE, CORP)
    assert state is not None
    assert (state.status, state.lifecycle_at) == ("active", 3_000)


def test_an_install_that_read_before_a_newer_cancel_of_a_cancelled_corp_is_superseded(
    store: SnapshotStore, client: Any, table: str, clock: Clock
) -> None:
    # The corp is a tombstone throughout (status and versions as read): only lifecycle_at, which the
    # second cancellation advances, keeps the older install from reactivating it.
    store.record(SUITE, CORP, "install", {"state": "a"}, 100.0, reactivate=True, lifecycle_at=1_000)
    store.mark_cancelled(SUITE, CORP, at=150.0, retention_seconds=60, lifecycle_at=2_000)
    installer, wrapper = interleaved(
        client,
        table,
        clock,
        lambda: store.mark_cancelled(SUITE, CORP, at=160.0, retention_seconds=60, lifecycle_at=4_000),
    )
    result = installer.record(SUITE, CORP, "install", {"state": "b"}, 300.0, reactivate=True, lifecycle_at=3_000)
    assert result.superseded
    assert wrapper.lost == [("TransactionCanceledException", ["None", "ConditionalCheckFailed"])]
    state = store.get(SUITE, CORP)
    assert state is not None
    assert (state.status, state.lifecycle_at, state.activations) == ("cancelled", 4_000, 1)


# .. lists that grow with the corp: pages beside the snapshot .....................................................


def members(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    return [{"userid": f"user{i:027d}", "edition_list": [1, 2]} for i in range(start, start + n)]  # 32-char ids


def test_a_corp_with_100000_members_is_stored_in_pages_and_its_diff_names_who_came_and_went(
    store: SnapshotStore, client: Any, table: str
) -> None:
    big = members(100_000)
    first = store.record(SUITE, CORP, "chatdata", {"auth_edition_list": [], "auth_user_list": big}, 100.0)

    state = store.get(SUITE, CORP)
    assert state is not None
    document = state.kind("chatdata").document
    assert document is not None
    assert document["auth_user_list"]["$list"]["count"] == 100_000  # a reference, not the list
    (state_item,) = [i for i in corp_items(client, table) if i["sk"]["S"] == "STATE"]
    assert item_size(decode_item(state_item)) < 10_000
    assert store.list_items(SUITE, CORP, "chatdata", "auth_user_list") == big
    pages = [i for i in corp_items(client, table) if i["sk"]["S"].startswith("L#")]
    assert 25 <= len(pages) <= 40

    changed = [m for m in big[2:] if m["userid"] != big[500]["userid"]] + members(3, start=100_000)
    changed[10] = {**changed[10], "edition_list": [1]}
    second = store.record(SUITE, CORP, "chatdata", {"auth_edition_list": [], "auth_user_list": changed}, 200.0)

    assert (first.version, second.version, second.changed) == (1, 2, True)
    ops = sorted((c.op, c.path) for c in second.diff)
    assert ops == sorted(
        [("removed", f"auth_user_list[userid={big[i]['userid']}]") for i in (0, 1, 500)]
        + [("added", f"auth_user_list[userid={m['userid']}]") for m in members(3, start=100_000)]
        + [("changed", f"auth_user_list[userid={changed[10]['userid']}].edition_list")]
    )
    (version,) = [v for v in store.versions(SUITE, CORP, "chatdata") if v.version == 2]
    assert len(version.diff) == 7
    assert store.list_items(SUITE, CORP, "chatdata", "auth_user_list") == changed
    tags = {i["sk"]["S"].split("#")[2] for i in corp_items(client, table) if i["sk"]["S"].startswith("L#")}
    assert len(tags) == 1  # the old list's pages are gone

    store.mark_cancelled(SUITE, CORP, at=300.0, retention_seconds=60)
    assert [i["sk"]["S"] for i in corp_items(client, table)] == ["STATE"]  # pages deleted with the data


def test_a_wholesale_member_change_keeps_a_bounded_diff(store: SnapshotStore) -> None:
    from authsync.aws.snapshots import MAX_LIST_CHANGES

    store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(3_000)}, 100.0)
    result = store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(3_000, start=3_000)}, 200.0)
    assert len(result.diff) == MAX_LIST_CHANGES + 1
    assert result.diff[-1] == Change("auth_user_list", "changed", {"count": 3_000}, {"count": 3_000})


def test_pages_of_a_snapshot_that_never_landed_are_dropped_by_the_next_write(
    store: SnapshotStore, client: Any, table: str
) -> None:
    store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(10)}, 100.0)
    orphan = members(5, start=50)
    store._pages.write(state_pk(SUITE, CORP), "auth_user_list", "f" * 64, orphan)  # a crashed writer's pages
    store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(11)}, 200.0)
    tags = {i["sk"]["S"].split("#")[2] for i in corp_items(client, table) if i["sk"]["S"].startswith("L#")}
    assert len(tags) == 1
    assert "f" * 16 not in tags


def test_a_refetch_with_the_same_members_rewrites_no_page(client: Any, table: str, clock: Clock) -> None:
    counting: Any = Counting(client)
    store = SnapshotStore(counting, table, clock=clock)
    store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(5_000)}, 100.0)
    written = counting.calls.get("put_item", 0)
    assert written >= 2  # the pages of the first fetch

    refreshed = store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(5_000)}, 200.0)
    other = store.record(SUITE, CORP, "chatdata", {"auth_user_list": members(5_000), "x": 1}, 300.0)

    assert (refreshed.changed, other.changed) == (False, True)
    assert counting.calls.get("put_item", 0) == written  # the referenced pages are already there
    assert store.list_items(SUITE, CORP, "chatdata", "auth_user_list") == members(5_000)
