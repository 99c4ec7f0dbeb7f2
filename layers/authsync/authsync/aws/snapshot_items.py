"""The CorpsTable's snapshot items: their layout, typed codec, UpdateExpression builder and size guard (no I/O).

:class:`authsync.aws.snapshots.SnapshotStore` does the reads and the conditional writes; this
module only says what an item holds and how values become DynamoDB AttributeValues.

Item layout (partition ``pk = "CORP#{suite_id}#{corp_id}"``)::

    sk = "STATE"                       the state item
        suite_id, corp_id              S
        status                         S   "active" | "cancelled"
        active_suite                   S   = suite_id while active, absent otherwise (sparse GSI ActiveCorps)
        created_at, activated_at,      N   store clock (unix s); activated_at = creation or last reactivation
        updated_at
        activations, cancellations     N   counters
        cancelled_at, expires_at       N   tombstone only; expires_at is the table's TTL attribute
        lifecycle_at                   N   WeCom's TimeStamp of the last install/rotation/cancel applied
        for kind in ("auth_info", "chatdata", "license", "orders"):
          {kind}_doc                   S   the latest fetched document, JSON (absent in a tombstone)
          {kind}_version               N   number of the newest version item (kept in a tombstone)
          {kind}_fetched_at            N   when the fetch of the stored document started (kept in a tombstone)
          {kind}_updated_at            N   store clock of the last change (new version)
          {kind}_derived               S   JSON of the caller's derived values, by name: "verification" and
                                           "edition" (auth_info), "chatdata", "license", "orders" (summaries)
          {kind}_fetches               N   accepted fetches, changed or not

    sk = "V#{kind}#{version:010d}"     a version item (zero-padded, so sk order is version order)
        suite_id, corp_id, kind        S
        version                        N
        document                       S   JSON of the document as fetched
        diff                           S   JSON list of {path, op, old, new} against ``diff_base``
        diff_base                      N   the previous version, absent when there was no previous document
        diff_truncated                 BOOL only when old/new values were dropped to fit the item size guard
        fetched_at, recorded_at        N

Documents (and derived dicts) are stored as compact JSON strings rather than DynamoDB maps:
the round trip is exact (ints stay ints, floats stay floats, no ``Decimal``, no empty-set or
float-type rejections) and an item's size is easy to bound. Top-level numbers come back from
DynamoDB as ``Decimal`` and are converted on read. Values are typed AttributeValues, as a
low-level client (``boto3.client("dynamodb")``) takes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from authsync.domain.corp_state import CorpState, KindState, Version
from authsync.domain.diff import Change
from authsync.domain.snapshot_rules import KINDS, CancelAction, CancelDecision, Fetch, Lifecycle, RecordDecision

STATE_SK = "STATE"
ACTIVE_INDEX = "ActiveCorps"

MAX_ITEM_BYTES = 300 * 1024
"""Size guard per item, below DynamoDB's 400 KB limit with room for estimation error."""


class SnapshotTooLargeError(ValueError):
    """An item would exceed :data:`MAX_ITEM_BYTES`; the document is not stored (nothing is written)."""


def state_pk(suite_id: str, corp_id: str) -> str:
    return f"CORP#{suite_id}#{corp_id}"


def corp_of(pk: str) -> tuple[str, str]:
    """``(suite_id, corp_id)`` of a corp's partition key (the inverse of :func:`state_pk`)."""
    _, suite_id, corp_id = pk.split("#", 2)
    return suite_id, corp_id


def version_sk(kind: str, version: int) -> str:
    return f"V#{kind}#{version:010d}"


# -- codec -----------------------------------------------------------------------------------------

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def encode(value: Any) -> Any:
    """A typed AttributeValue; floats go through ``Decimal(repr(x))``, the shortest exact round trip."""
    return _SERIALIZER.serialize(Decimal(repr(value)) if isinstance(value, float) else value)


def encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: encode(value) for name, value in item.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return encode_item({"pk": pk, "sk": sk})


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def dumps(value: Any) -> str:
    """Compact JSON; derived values may be pydantic models (a Verification, a ChatdataSummary): their JSON form."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -- items as read models --------------------------------------------------------------------------


def read_state(state: Mapping[str, Any], suite_id: str, corp_id: str) -> CorpState:
    """The read model of a (decoded) state item."""
    return CorpState(
        suite_id=str(state.get("suite_id", suite_id)),
        corp_id=str(state.get("corp_id", corp_id)),
        status=str(state.get("status", "")),
        created_at=_float(state.get("created_at")),
        activated_at=_float(state.get("activated_at")),
        updated_at=_float(state.get("updated_at")),
        cancelled_at=_float(state.get("cancelled_at")),
        expires_at=_int(state.get("expires_at")),
        activations=_int(state.get("activations")) or 0,
        cancellations=_int(state.get("cancellations")) or 0,
        kinds={kind: _kind_state(state, kind) for kind in KINDS},
        lifecycle_at=_float(state.get("lifecycle_at")),
    )


def _kind_state(state: Mapping[str, Any], kind: str) -> KindState:
    doc = state.get(f"{kind}_doc")
    derived = state.get(f"{kind}_derived")
    return KindState(
        version=_int(state.get(f"{kind}_version")) or 0,
        document=json.loads(doc) if doc is not None else None,
        fetched_at=_float(state.get(f"{kind}_fetched_at")),
        updated_at=_float(state.get(f"{kind}_updated_at")),
        derived=json.loads(derived) if derived is not None else None,
        fetches=_int(state.get(f"{kind}_fetches")) or 0,
    )


def read_version(item: Mapping[str, Any]) -> Version:
    """The read model of a (decoded) version item."""
    return Version(
        kind=str(item["kind"]),
        version=int(item["version"]),
        document=json.loads(item["document"]),
        diff=[Change.from_json(c) for c in json.loads(item["diff"])],
        diff_base=_int(item.get("diff_base")),
        fetched_at=float(item["fetched_at"]),
        recorded_at=float(item["recorded_at"]),
        diff_truncated=bool(item.get("diff_truncated", False)),
    )


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def version_item(suite_id: str, corp_id: str, fetch: Fetch, decision: RecordDecision, doc_json: str) -> dict[str, Any]:
    """A new version's item (plain values); its diff keeps only paths if the values would not fit the size guard."""
    kind, changes = fetch.kind, decision.changes
    item: dict[str, Any] = {
        "pk": state_pk(suite_id, corp_id),
        "sk": version_sk(kind, decision.version),
        "suite_id": suite_id,
        "corp_id": corp_id,
        "kind": kind,
        "version": decision.version,
        "document": doc_json,
        "diff": dumps([c.to_json() for c in changes]),
        "fetched_at": fetch.fetched_at,
        "recorded_at": decision.at,
    }
    if decision.diff_base is not None:
        item["diff_base"] = decision.diff_base
    if item_size(item) > MAX_ITEM_BYTES:
        # A wholesale change of a big list can double the item; keep the paths, drop the values.
        item["diff"] = dumps([{"path": c.path, "op": c.op} for c in changes])
        item["diff_truncated"] = True
    guard_size(item, f"version item ({kind})")
    return item


# -- the size guard --------------------------------------------------------------------------------


def guard_size(item: Mapping[str, Any], what: str) -> None:
    """Refuse (:class:`SnapshotTooLargeError`) an item estimated over :data:`MAX_ITEM_BYTES`."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise SnapshotTooLargeError(f"{what} would be about {size} bytes; the limit is {MAX_ITEM_BYTES}")


def item_size(item: Mapping[str, Any]) -> int:
    """An upper estimate of a DynamoDB item's size: names plus values, numbers counted at 21 bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray):
        return len(value)
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | Decimal):
        return 21
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode()) + _value_size(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(_value_size(v) + 1 for v in value)
    return len(str(value).encode())


# -- update expressions ----------------------------------------------------------------------------


class Expression:
    """An UpdateExpression with its condition, every name and value behind a placeholder."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._sets: list[str] = []
        self._removes: list[str] = []
        self._conditions: list[str] = []
        self.assigned: dict[str, Any] = {}
        """Attribute → value this update sets (for the size guard)."""

    def _name(self, attribute: str) -> str:
        for placeholder, name in self._names.items():
            if name == attribute:
                return placeholder
        placeholder = f"#n{len(self._names)}"
        self._names[placeholder] = attribute
        return placeholder

    def _value(self, value: Any) -> str:
        placeholder = f":v{len(self._values)}"
        self._values[placeholder] = encode(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self._sets.append(f"{self._name(attribute)} = {self._value(value)}")
        self.assigned[attribute] = value

    def add(self, attribute: str, amount: int) -> None:
        name = self._name(attribute)
        self._sets.append(f"{name} = if_not_exists({name}, {self._value(0)}) + {self._value(amount)}")
        self.assigned.setdefault(attribute, amount)

    def remove(self, attribute: str) -> None:
        self._removes.append(self._name(attribute))

    def require_absent(self, attribute: str) -> None:
        self._conditions.append(f"attribute_not_exists({self._name(attribute)})")

    def require_equal(self, attribute: str, value: Any) -> None:
        self._conditions.append(f"{self._name(attribute)} = {self._value(value)}")

    def require_equal_or_absent(self, attribute: str, value: Any) -> None:
        """Equal to what was read, or still absent if it was absent."""
        if value is None:
            self.require_absent(attribute)
        else:
            self.require_equal(attribute, value)

    def kwargs(self) -> dict[str, Any]:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        result: dict[str, Any] = {
            "UpdateExpression": " ".join(parts),
            "ExpressionAttributeNames": dict(self._names),
            "ExpressionAttributeValues": dict(self._values),
        }
        if self._conditions:
            result["ConditionExpression"] = " AND ".join(self._conditions)
        return result


@dataclass(frozen=True, slots=True)
class Incoming:
    """A fetch on its way into :meth:`SnapshotStore.record`, serialized once for every attempt."""

    suite_id: str
    corp_id: str
    fetch: Fetch
    doc_json: str = field(repr=False)
    derived_json: str | None = field(repr=False)
    externals: tuple[tuple[str, dict[str, Any], list[Any]], ...] = field(default=(), repr=False)
    """Lists stored in pages (:mod:`authsync.aws.list_pages`): (name, reference, items); the document holds the
    references."""


def state_update(incoming: Incoming, decision: RecordDecision, state: Mapping[str, Any]) -> Expression:
    """The state item's update for a writing ``decision`` on ``state`` (as read), and its condition.

    The condition is the compare-and-swap that makes concurrent writers safe: a creation
    requires that no state item exists; an update that the corp is still active, a
    reactivation that the status is still the one read (the tombstone's); both that the
    kind's version and fetched_at are still what was read (or still absent). A write that
    lands therefore was decided on the state it replaces. Each part alone stops one race
    (a cancellation, another kind's reactivation, a refresh: the fixed-order twins in
    tests/authsync/test_snapshots.py); the version check backs up fetched_at, which every
    write of the kind advances.
    """
    suite_id, kind, now = incoming.suite_id, incoming.fetch.kind, decision.at
    update = Expression()
    update.set(f"{kind}_doc", incoming.doc_json)
    update.set(f"{kind}_fetched_at", incoming.fetch.fetched_at)
    update.set("updated_at", now)
    update.add(f"{kind}_fetches", 1)
    if incoming.derived_json is not None:
        update.set(f"{kind}_derived", incoming.derived_json)
    if decision.changed:
        update.set(f"{kind}_version", decision.version)
        update.set(f"{kind}_updated_at", now)
    if decision.lifecycle is Lifecycle.CREATE:
        if incoming.fetch.lifecycle_at is not None:
            update.set("lifecycle_at", incoming.fetch.lifecycle_at)
        update.set("suite_id", suite_id)
        update.set("corp_id", incoming.corp_id)
        update.set("status", "active")
        update.set("active_suite", suite_id)
        update.set("created_at", now)
        update.set("activated_at", now)
        update.add("activations", 1)
        update.require_absent("pk")
        return update
    if decision.lifecycle is Lifecycle.REACTIVATE:
        update.set("status", "active")
        update.set("active_suite", suite_id)
        update.set("activated_at", now)
        update.add("activations", 1)
        update.remove("cancelled_at")
        update.remove("expires_at")
        update.require_equal("status", state.get("status"))
    else:
        update.require_equal("status", "active")
    update.require_equal_or_absent(f"{kind}_version", state.get(f"{kind}_version"))
    update.require_equal_or_absent(f"{kind}_fetched_at", state.get(f"{kind}_fetched_at"))
    if incoming.fetch.lifecycle_at is not None:  # rule 0, decided on the lifecycle time read
        update.set("lifecycle_at", incoming.fetch.lifecycle_at)
        update.require_equal_or_absent("lifecycle_at", state.get("lifecycle_at"))
    return update


def tombstone_update(suite_id: str, corp_id: str, decision: CancelDecision, state: Mapping[str, Any]) -> Expression:
    """The state item's update into a tombstone, conditioned on the status and versions read (or on no item).

    For a corp already cancelled, only a newer cancellation's ``lifecycle_at`` (rule 0), on the same condition.
    """
    update = Expression()
    if decision.action is CancelAction.ALREADY_CANCELLED:
        update.set("lifecycle_at", decision.lifecycle_at)
        update.set("updated_at", decision.at)
        update.require_equal("status", "cancelled")
        update.require_equal_or_absent("lifecycle_at", state.get("lifecycle_at"))
        return update
    update.set("status", "cancelled")
    update.set("cancelled_at", decision.cancelled_at)
    update.set("expires_at", decision.expires_at)
    update.set("updated_at", decision.at)
    update.add("cancellations", 1)
    update.remove("active_suite")
    if decision.lifecycle_at is not None:  # rule 0, decided on the lifecycle time read
        update.set("lifecycle_at", decision.lifecycle_at)
    for kind in KINDS:
        update.remove(f"{kind}_doc")
        update.remove(f"{kind}_derived")
    if decision.action is CancelAction.TOMBSTONE_UNSEEN:
        update.set("suite_id", suite_id)
        update.set("corp_id", corp_id)
        update.set("created_at", decision.at)
        update.require_absent("pk")
    else:
        update.require_equal("status", state.get("status"))
        for kind in KINDS:
            update.require_equal_or_absent(f"{kind}_version", state.get(f"{kind}_version"))
        update.require_equal_or_absent("lifecycle_at", state.get("lifecycle_at"))
    return update
