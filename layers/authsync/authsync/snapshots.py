"""Versioned snapshots of each corp's authorization in the ``CorpsTable`` (issue 4, item 5).

Per (suite_id, corp_id) the table holds one *state* item (the current documents and what
is derived from them) and a history of *version* items, one per meaningful change, each
with a field-level diff from the version before it.

Item layout (partition ``pk = "CORP#{suite_id}#{corp_id}"``)::

    sk = "STATE"                       the state item
        suite_id, corp_id              S
        status                         S   "active" | "cancelled"
        active_suite                   S   = suite_id while active, absent otherwise (sparse GSI ActiveCorps)
        created_at, activated_at,      N   store clock (unix s); activated_at = creation or last reactivation
        updated_at
        activations, cancellations     N   counters
        cancelled_at, expires_at       N   tombstone only; expires_at is the table's TTL attribute
        for kind in ("auth_info", "chatdata"):
          {kind}_doc                   S   the latest fetched document, JSON (absent in a tombstone)
          {kind}_version               N   number of the newest version item (kept in a tombstone)
          {kind}_fetched_at            N   when the fetch of the stored document started (kept in a tombstone)
          {kind}_updated_at            N   store clock of the last change (new version)
          {kind}_derived               S   JSON of the caller's derived values, by name: "verification"
                                           (auth_info), "chatdata" (the chatdata summary); models are dumped
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
DynamoDB as ``Decimal`` and are converted on read. Credentials (:data:`authinfo.SECRET_KEYS`)
are stripped from every document before it is stored.

Rules of :meth:`SnapshotStore.record`:

* An identical re-fetch (per :func:`diff`, ignoring :data:`VOLATILE_PATHS`) writes no version;
  it advances ``fetched_at`` and refreshes the stored document (e.g. the 7-day QR URL).
* A changed document writes version n+1 and the state in one ``TransactWriteItems``: the
  version item must not exist, the state's version and fetched_at for that kind must be what
  was read. Losing a condition means re-read and decide again (bounded attempts).
* A fetch that started before the stored one (``fetched_at`` smaller) never overwrites it
  (``stale``); on a tie the first writer wins unless the documents are equal.
* A cancelled corp ignores fetches unless the caller passes ``reactivate=True`` (a new
  ``create_auth``). Version numbers continue across a cancellation, never reused.

Cancellation (:meth:`SnapshotStore.mark_cancelled`): WeCom requires providers to delete a
cancelled corp's data. The state item becomes a *tombstone* — status, cancelled_at, the last
version numbers and fetch times, counters; no document, no derived data, no ``active_suite``
— with ``expires_at = cancelled_at + retention`` so DynamoDB's TTL removes it after the
audit period; every version item is deleted at once. The tombstone is what lets a late,
stale fetch be recognized as such instead of recreating the corp.

⚠️ Cancellation is not ordered against fetches by timestamps (WeCom's and Lambda's clocks
differ): callers rely on the per-corp FIFO ordering of the authorization queue.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from authsync.authinfo import strip_secrets

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource, Table

__all__ = [
    "ACTIVE_INDEX",
    "KINDS",
    "MAX_ITEM_BYTES",
    "NATURAL_KEYS",
    "VOLATILE_PATHS",
    "CancelResult",
    "Change",
    "CorpState",
    "Kind",
    "KindState",
    "RecordResult",
    "SnapshotConflictError",
    "SnapshotStore",
    "SnapshotTooLargeError",
    "Version",
    "diff",
    "item_size",
    "state_pk",
    "version_sk",
]

Kind = Literal["auth_info", "chatdata"]
KINDS: tuple[Kind, ...] = ("auth_info", "chatdata")

STATE_SK = "STATE"
ACTIVE_INDEX = "ActiveCorps"

MAX_ITEM_BYTES = 300 * 1024
"""Size guard per item, below DynamoDB's 400 KB limit with room for estimation error."""

VOLATILE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    # corp_wxqrcode is a QR URL valid for 7 days (and v2 omits it): a new one is not a change.
    "auth_info": (("auth_corp_info", "corp_wxqrcode"), ("errcode",), ("errmsg",)),
    "chatdata": (("errcode",), ("errmsg",)),
}
"""Paths excluded from comparison and diffs, per kind."""

NATURAL_KEYS = ("agentid", "edition", "userid")
"""Lists of objects that all carry one of these (unique) keys are matched element by element on it."""

_ATTEMPTS = 8
_BATCH = 25


class SnapshotConflictError(RuntimeError):
    """Lost the conditional write more often than plausible; the caller should fail so the message is retried."""


class SnapshotTooLargeError(ValueError):
    """An item would exceed :data:`MAX_ITEM_BYTES`; the document is not stored (nothing is written)."""


# -- diff ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One field-level difference. ``old`` is None for "added", ``new`` for "removed"."""

    path: str
    op: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(str(data["path"]), data["op"], data.get("old"), data.get("new"))


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Field-level differences from ``old`` to ``new``, in a deterministic order.

    Objects are compared key by key (keys in sorted order). A list whose elements are all
    objects carrying one of :data:`NATURAL_KEYS`, unique within each list, is matched by that
    key (path ``auth_info.agent[agentid=1000002].privilege``); any other list is compared as
    a whole value, ignoring element order (WeCom's ordering of ids is not a change). ``True``
    and ``1`` are different values.
    """
    changes: list[Change] = []
    _diff_value("", old, new, changes)
    return changes


def _diff_value(path: str, old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(Change(sub, "added", None, new[key]))
            elif key not in new:
                out.append(Change(sub, "removed", old[key], None))
            else:
                _diff_value(sub, old[key], new[key], out)
        return
    if isinstance(old, list) and isinstance(new, list):
        natural = _natural_key(old, new)
        if natural is None:
            if _multiset(old) != _multiset(new):
                out.append(Change(path, "changed", old, new))
            return
        old_by = {element[natural]: element for element in old}
        new_by = {element[natural]: element for element in new}
        for value in sorted(set(old_by) | set(new_by), key=_id_order):
            sub = f"{path}[{natural}={value}]"
            if value not in old_by:
                out.append(Change(sub, "added", None, new_by[value]))
            elif value not in new_by:
                out.append(Change(sub, "removed", old_by[value], None))
            else:
                _diff_value(sub, old_by[value], new_by[value], out)
        return
    if not _same(old, new):
        out.append(Change(path, "changed", old, new))


def _same(old: Any, new: Any) -> bool:
    return isinstance(old, bool) == isinstance(new, bool) and bool(old == new)


def _natural_key(old: list[Any], new: list[Any]) -> str | None:
    elements = [*old, *new]
    if not elements or not all(isinstance(e, Mapping) for e in elements):
        return None
    for key in NATURAL_KEYS:
        if not all(_is_id(e.get(key)) for e in elements):
            continue
        if len({e[key] for e in old}) == len(old) and len({e[key] for e in new}) == len(new):
            return key
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _id_order(value: str | int) -> tuple[int, int, str]:
    return (0, value, "") if isinstance(value, int) else (1, 0, value)


def _multiset(values: list[Any]) -> list[str]:
    return sorted(json.dumps(v, sort_keys=True, ensure_ascii=False, default=str) for v in values)


def _comparable(kind: str, document: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(document)
    for path in VOLATILE_PATHS.get(kind, ()):
        result = _without(result, path)
    return result


def _without(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    head = path[0]
    if head not in document:
        return document
    if len(path) == 1:
        return {k: v for k, v in document.items() if k != head}
    child = document[head]
    if not isinstance(child, Mapping):
        return document
    return {**document, head: _without(dict(child), path[1:])}


# -- results and read models -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What :meth:`SnapshotStore.record` did.

    ``version`` is the corp's version for the kind afterwards. ``stale``: an older fetch,
    nothing written. ``ignored``: the corp is cancelled, nothing written. ``diff`` lists the
    changes of a new version (empty for a first version: there is nothing to compare with).
    """

    version: int
    changed: bool
    stale: bool = False
    ignored: bool = False
    reactivated: bool = False
    diff: list[Change] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CancelResult:
    already_cancelled: bool
    deleted_versions: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Version:
    kind: str
    version: int
    document: dict[str, Any] = field(repr=False)
    diff: list[Change] = field(repr=False)
    diff_base: int | None
    fetched_at: float
    recorded_at: float
    diff_truncated: bool = False


@dataclass(frozen=True, slots=True)
class KindState:
    """One kind's part of the state item."""

    version: int = 0
    document: dict[str, Any] | None = field(default=None, repr=False)
    fetched_at: float | None = None
    updated_at: float | None = None
    derived: dict[str, Any] | None = field(default=None, repr=False)
    fetches: int = 0


@dataclass(frozen=True, slots=True)
class CorpState:
    suite_id: str
    corp_id: str
    status: str
    created_at: float | None
    activated_at: float | None
    updated_at: float | None
    cancelled_at: float | None
    expires_at: int | None
    activations: int
    cancellations: int
    kinds: dict[str, KindState]

    @property
    def active(self) -> bool:
        return self.status == "active"

    def kind(self, kind: str) -> KindState:
        return self.kinds.get(kind) or KindState()

    @property
    def auth_info_version(self) -> int:
        return self.kind("auth_info").version

    @property
    def auth_info_fetched_at(self) -> float | None:
        return self.kind("auth_info").fetched_at

    @property
    def chatdata_version(self) -> int:
        return self.kind("chatdata").version

    @property
    def chatdata_fetched_at(self) -> float | None:
        return self.kind("chatdata").fetched_at

    @property
    def verification(self) -> dict[str, Any] | None:
        """``derived["verification"]`` of the auth_info kind (a dumped :class:`authinfo.Verification`)."""
        return _named(self.kind("auth_info").derived, "verification")

    @property
    def chatdata_summary(self) -> dict[str, Any] | None:
        """``derived["chatdata"]`` of the chatdata kind (a dumped :class:`chatdata.ChatdataSummary`)."""
        return _named(self.kind("chatdata").derived, "chatdata")

    @property
    def chatdata_authorized(self) -> bool | None:
        """Whether 数据与智能专区 is authorized, per the chatdata summary; None before any chatdata fetch."""
        summary = self.chatdata_summary
        if summary is None or "authorized" not in summary:
            return None
        return bool(summary["authorized"])


def _named(derived: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    value = (derived or {}).get(name)
    return value if isinstance(value, dict) else None


# -- the store -------------------------------------------------------------------------------------


def state_pk(suite_id: str, corp_id: str) -> str:
    return f"CORP#{suite_id}#{corp_id}"


def version_sk(kind: str, version: int) -> str:
    return f"V#{kind}#{version:010d}"


class SnapshotStore:
    """Read and write corp snapshots in the CorpsTable (layout in the module docstring)."""

    def __init__(
        self,
        table: DynamoDBClient | DynamoDBServiceResource | Table,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        attempts: int = _ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # A resource (or Table) carries its low-level client; TransactWriteItems needs the client.
        # That client has boto3's high-level (de)serialization hooked in, so it takes plain
        # Python values where a bare client takes typed AttributeValues: the codec follows.
        meta_client = getattr(getattr(table, "meta", None), "client", None)
        self._client = cast("DynamoDBClient", meta_client if meta_client is not None else table)
        self._codec = _Codec(typed=meta_client is None)
        self._table = table_name
        self._clock = clock
        self._attempts = attempts
        self._sleep = sleep
        self._jitter = random.Random()  # noqa: S311 - backoff jitter, not security

    # .. writes ....................................................................................

    def record(  # noqa: PLR0917 - the documented call shape: record(suite, corp, kind, doc, fetched_at, derived)
        self,
        suite_id: str,
        corp_id: str,
        kind: Kind,
        document: Mapping[str, Any],
        fetched_at: float,
        derived: Mapping[str, Any] | None = None,
        *,
        reactivate: bool = False,
    ) -> RecordResult:
        """Store a freshly fetched document; see the module docstring for the rules."""
        _check_kind(kind)
        if not isinstance(document, Mapping):
            raise TypeError("document must be a JSON object")
        if not math.isfinite(fetched_at):
            raise ValueError("fetched_at must be a finite number")
        stored = strip_secrets(document)
        doc_json = _dumps(stored)
        derived_json = _dumps(strip_secrets(derived)) if derived is not None else None
        incoming = _Incoming(suite_id, corp_id, kind, doc_json, _comparable(kind, stored), fetched_at, derived_json)
        for attempt in range(self._attempts):
            if attempt:
                self._backoff(attempt)
            result = self._try_record(incoming, reactivate=reactivate)
            if result is not None:
                return result
        raise SnapshotConflictError(f"snapshot write for {kind} kept losing its condition ({self._attempts} attempts)")

    def _try_record(self, incoming: _Incoming, *, reactivate: bool) -> RecordResult | None:
        """One read-decide-write round; None when a condition was lost (re-read and decide again)."""
        suite_id, corp_id, kind, fetched_at = incoming.suite_id, incoming.corp_id, incoming.kind, incoming.fetched_at
        doc_json, derived_json = incoming.doc_json, incoming.derived_json
        pk = state_pk(suite_id, corp_id)
        state = self._get_item(pk, STATE_SK)
        current = _kind_state(state, kind) if state is not None else KindState()
        reactivating = False
        if state is not None and state.get("status") != "active":
            if not reactivate:
                return RecordResult(version=current.version, changed=False, ignored=True)
            reactivating = True
        if current.fetched_at is not None and fetched_at < current.fetched_at:
            return RecordResult(version=current.version, changed=False, stale=True)

        changes: list[Change] = []
        if current.document is None:
            changed = True
        else:
            changes = diff(_comparable(kind, current.document), incoming.view)
            changed = bool(changes)
        if current.fetched_at is not None and fetched_at == current.fetched_at:
            # The same fetch redelivered (nothing to do), or two fetches we cannot order (first wins).
            return RecordResult(version=current.version, changed=False, stale=changed)

        now = self._clock()
        new_version = current.version + 1 if changed else current.version
        update = _Expression(self._codec)
        update.set(f"{kind}_doc", doc_json)
        update.set(f"{kind}_fetched_at", fetched_at)
        update.set("updated_at", now)
        update.add(f"{kind}_fetches", 1)
        if derived_json is not None:
            update.set(f"{kind}_derived", derived_json)
        if changed:
            update.set(f"{kind}_version", new_version)
            update.set(f"{kind}_updated_at", now)
        if state is None:
            update.set("suite_id", suite_id)
            update.set("corp_id", corp_id)
            update.set("status", "active")
            update.set("active_suite", suite_id)
            update.set("created_at", now)
            update.set("activated_at", now)
            update.add("activations", 1)
            update.require_absent("pk")
        else:
            if reactivating:
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

        projected = dict(state or {})
        projected.update({name: value for name, value in update.assigned.items()})
        _guard_size(projected, f"state item ({kind})")

        if not changed:
            try:
                self._client.update_item(TableName=self._table, Key=self._codec.key(pk, STATE_SK), **update.kwargs())
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    return None
                raise
            return RecordResult(version=new_version, changed=False, reactivated=reactivating)

        base = current.version if current.document is not None else None
        version_item = _version_item(incoming, version=new_version, changes=changes, base=base, recorded_at=now)
        state_update: Any = {"TableName": self._table, "Key": self._codec.key(pk, STATE_SK), **update.kwargs()}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._codec.item(version_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Update": state_update},
                ]
            )
        except ClientError as exc:
            if _lost_transaction(exc):
                return None
            raise
        return RecordResult(version=new_version, changed=True, reactivated=reactivating, diff=changes)

    def mark_cancelled(self, suite_id: str, corp_id: str, at: float, retention_seconds: int) -> CancelResult:
        """Turn the corp into a tombstone and delete its version items (see the module docstring).

        Idempotent: a repeated call keeps the first cancellation's times and finishes any
        deletion a crashed earlier call left behind.
        """
        if retention_seconds < 0 or not math.isfinite(at):
            raise ValueError("retention_seconds must be >= 0 and at finite")
        pk = state_pk(suite_id, corp_id)
        for attempt in range(self._attempts):
            if attempt:
                self._backoff(attempt)
            state = self._get_item(pk, STATE_SK)
            last = {kind: _kind_state(state, kind).version if state else 0 for kind in KINDS}
            if state is not None and state.get("status") == "cancelled":
                deleted = self._delete_versions(pk, last)
                expires = state.get("expires_at")
                return CancelResult(True, deleted, int(expires) if expires is not None else 0)
            expires_at = math.ceil(at + retention_seconds)
            update = _Expression(self._codec)
            update.set("status", "cancelled")
            update.set("cancelled_at", at)
            update.set("expires_at", expires_at)
            update.set("updated_at", self._clock())
            update.add("cancellations", 1)
            update.remove("active_suite")
            for kind in KINDS:
                update.remove(f"{kind}_doc")
                update.remove(f"{kind}_derived")
            if state is None:
                # Never seen: a tombstone still records that this install ended.
                update.set("suite_id", suite_id)
                update.set("corp_id", corp_id)
                update.set("created_at", self._clock())
                update.require_absent("pk")
            else:
                update.require_equal("status", state.get("status"))
                for kind in KINDS:
                    update.require_equal_or_absent(f"{kind}_version", state.get(f"{kind}_version"))
            try:
                self._client.update_item(TableName=self._table, Key=self._codec.key(pk, STATE_SK), **update.kwargs())
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    continue
                raise
            return CancelResult(False, self._delete_versions(pk, last), expires_at)
        raise SnapshotConflictError(f"cancellation kept losing its condition ({self._attempts} attempts)")

    def _delete_versions(self, pk: str, last: Mapping[Kind, int]) -> int:
        """Delete version items 1..last per kind (a reactivation's newer versions are never touched)."""
        codec = self._codec
        keys: list[dict[str, Any]] = []
        for kind, version in last.items():
            if version < 1:
                continue
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": codec.value(pk),
                    ":lo": codec.value(version_sk(kind, 0)),
                    ":hi": codec.value(version_sk(kind, version)),
                },
                ProjectionExpression="pk, sk",
                ConsistentRead=True,
            ):
                keys.append({"pk": item["pk"], "sk": item["sk"]})
        for start in range(0, len(keys), _BATCH):
            requests: list[Any] = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + _BATCH]]
            for attempt in range(self._attempts):
                if attempt:
                    self._backoff(attempt)
                response = self._client.batch_write_item(RequestItems={self._table: requests})
                requests = list(response.get("UnprocessedItems", {}).get(self._table, []))
                if not requests:
                    break
            else:
                raise SnapshotConflictError("version deletion left unprocessed items")
        return len(keys)

    # .. reads .....................................................................................

    def get(self, suite_id: str, corp_id: str) -> CorpState | None:
        """The corp's current state (a tombstone for a cancelled corp), or None if never seen."""
        state = self._get_item(state_pk(suite_id, corp_id), STATE_SK)
        if state is None:
            return None
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
        )

    def versions(self, suite_id: str, corp_id: str, kind: Kind) -> list[Version]:
        """Every stored version of one kind, oldest first."""
        _check_kind(kind)
        result: list[Version] = []
        for raw in self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": self._codec.value(state_pk(suite_id, corp_id)),
                ":prefix": self._codec.value(f"V#{kind}#"),
            },
            ConsistentRead=True,
        ):
            item = self._codec.decode(raw)
            result.append(
                Version(
                    kind=str(item["kind"]),
                    version=int(item["version"]),
                    document=json.loads(item["document"]),
                    diff=[Change.from_json(c) for c in json.loads(item["diff"])],
                    diff_base=_int(item.get("diff_base")),
                    fetched_at=float(item["fetched_at"]),
                    recorded_at=float(item["recorded_at"]),
                    diff_truncated=bool(item.get("diff_truncated", False)),
                )
            )
        return result

    def iter_active(self, suite_id: str, *, page_size: int | None = None) -> Iterator[str]:
        """Corp ids of the suite's active corps, in corp_id order, paging through the sparse GSI.

        The index is eventually consistent: a corp activated or cancelled a moment ago may be
        missing or still listed.
        """
        extra: dict[str, Any] = {"Limit": page_size} if page_size else {}
        for item in self._query(
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression="active_suite = :suite",
            ExpressionAttributeValues={":suite": self._codec.value(suite_id)},
            **extra,
        ):
            yield str(self._codec.decode(item)["corp_id"])

    # .. plumbing ..................................................................................

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=self._codec.key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return self._codec.decode(item) if item is not None else None

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = self._client.query(TableName=self._table, **kwargs)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _backoff(self, attempt: int) -> None:
        self._sleep(self._jitter.uniform(0, min(0.2, 0.005 * 2**attempt)))


# -- helpers ---------------------------------------------------------------------------------------

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class _Incoming:
    """A document on its way into :meth:`SnapshotStore.record`, already serialized."""

    suite_id: str
    corp_id: str
    kind: Kind
    doc_json: str
    view: dict[str, Any] = field(repr=False)
    """The document as compared (volatile paths removed)."""
    fetched_at: float
    derived_json: str | None = field(repr=False)


class _Codec:
    """Values as the client takes them: typed AttributeValues for a bare client, plain for a resource's."""

    def __init__(self, *, typed: bool) -> None:
        self._typed = typed

    def value(self, value: Any) -> Any:
        if isinstance(value, float):
            value = Decimal(repr(value))  # repr is the shortest exact round trip of a float
        return _SERIALIZER.serialize(value) if self._typed else value

    def item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self.value(value) for name, value in item.items()}

    def key(self, pk: str, sk: str) -> dict[str, Any]:
        return self.item({"pk": pk, "sk": sk})

    def decode(self, item: Mapping[str, Any]) -> dict[str, Any]:
        if not self._typed:
            return dict(item)
        return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


class _Expression:
    """An UpdateExpression with its condition, every name and value behind a placeholder."""

    def __init__(self, codec: _Codec) -> None:
        self._codec = codec
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
        self._values[placeholder] = self._codec.value(value)
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


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown snapshot kind {kind!r}; expected one of {KINDS}")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    """Derived values may be pydantic models (a Verification, a ChatdataSummary): store their JSON form."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


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


def _version_item(
    incoming: _Incoming, *, version: int, changes: list[Change], base: int | None, recorded_at: float
) -> dict[str, Any]:
    kind = incoming.kind
    item: dict[str, Any] = {
        "pk": state_pk(incoming.suite_id, incoming.corp_id),
        "sk": version_sk(kind, version),
        "suite_id": incoming.suite_id,
        "corp_id": incoming.corp_id,
        "kind": kind,
        "version": version,
        "document": incoming.doc_json,
        "diff": _dumps([c.to_json() for c in changes]),
        "fetched_at": incoming.fetched_at,
        "recorded_at": recorded_at,
    }
    if base is not None:
        item["diff_base"] = base
    if item_size(item) > MAX_ITEM_BYTES:
        # A wholesale change of a big list can double the item; keep the paths, drop the values.
        item["diff"] = _dumps([{"path": c.path, "op": c.op} for c in changes])
        item["diff_truncated"] = True
    _guard_size(item, f"version item ({kind})")
    return item


def _guard_size(item: Mapping[str, Any], what: str) -> None:
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


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _lost_transaction(exc: ClientError) -> bool:
    """A cancelled transaction whose only reasons are failed conditions or a concurrent transaction."""
    if _code(exc) != "TransactionCanceledException":
        return False
    reasons = cast("list[Mapping[str, Any]]", exc.response.get("CancellationReasons", []))
    codes = {str(r.get("Code", "None")) for r in reasons}
    return bool(codes) and codes <= {"None", "ConditionalCheckFailed", "TransactionConflict"}
