"""Versioned snapshots of each corp's authorization in the ``CorpsTable`` (issue 4, item 5): the DynamoDB adapter.

Per (suite_id, corp_id) the table holds one *state* item (the current documents and what
is derived from them) and a history of *version* items, one per meaningful change, each
with a field-level diff (:mod:`authsync.domain.diff`) from the version before it; the layout is in
:mod:`authsync.aws.snapshot_items`. What a fetch or a cancellation does is decided by the write
rules in :mod:`authsync.domain.snapshot_rules` (pure). This module reads the state item, asks the
rules, and writes their answer conditioned on the state still being what was read.
Credentials (:data:`authinfo.SECRET_KEYS`) are stripped from every document before it is stored.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from authsync.aws.list_pages import LIST_MARKER, ListPages, list_ref, ref_of
from authsync.aws.snapshot_items import (
    ACTIVE_INDEX,
    MAX_ITEM_BYTES,
    STATE_SK,
    Incoming,
    SnapshotTooLargeError,
    decode_item,
    dumps,
    encode,
    encode_item,
    guard_size,
    item_size,
    key,
    read_state,
    read_version,
    state_pk,
    state_update,
    tombstone_update,
    version_item,
    version_sk,
)
from authsync.domain.corp_state import CorpState, KindState, Version
from authsync.domain.diff import NATURAL_KEYS, Change, diff
from authsync.domain.snapshot_rules import (
    KINDS,
    VOLATILE_PATHS,
    CancelAction,
    CancelResult,
    Fetch,
    Kind,
    RecordResult,
    check_kind,
    decide_cancel,
    decide_record,
)
from authsync.wecom.authinfo import strip_secrets

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

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

_ATTEMPTS = 8
_BATCH = 25

EXTERNAL_LISTS: dict[str, tuple[str, ...]] = {"chatdata": ("auth_user_list",), "license": ("account_list",)}
"""Per kind, the top-level lists stored in pages beside the snapshot (:mod:`authsync.aws.list_pages`):
they grow with the corp (one entry per authorized member) and would not fit a snapshot item."""

MAX_LIST_CHANGES = 1_000
"""Per paged list, the changes a version item keeps (then one summary change with the counts)."""

log = logging.getLogger(__name__)


class SnapshotConflictError(RuntimeError):
    """Lost the conditional write more often than plausible; the caller should fail so the message is retried."""


class SnapshotStore:
    """Read and write corp snapshots in the CorpsTable (layout in the module docstring).

    Every write is one read, a decision of :mod:`authsync.domain.snapshot_rules` on it, and a write
    conditioned on the state still being what was read (a compare-and-swap). Losing the
    condition means another writer got in between: re-read and decide again, at most
    ``attempts`` times with jittered backoff, then :class:`SnapshotConflictError`.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        attempts: int = _ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not callable(getattr(client, "transact_write_items", None)):
            raise TypeError("SnapshotStore needs a low-level DynamoDB client (boto3.client('dynamodb'))")
        self._client = client
        self._table = table_name
        self._clock = clock
        self._attempts = attempts
        self._sleep = sleep
        self._jitter = random.Random()  # noqa: S311 - backoff jitter, not security
        self._pages = ListPages(client, table_name)

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
        lifecycle_at: float | None = None,
    ) -> RecordResult:
        """Store a freshly fetched document; :func:`snapshot_rules.decide_record` states the rules.

        ``lifecycle_at``: an install's or rotation's WeCom ``TimeStamp`` (rule 0 orders it)."""
        check_kind(kind)
        if not isinstance(document, Mapping):
            raise TypeError("document must be a JSON object")
        if not math.isfinite(fetched_at):
            raise ValueError("fetched_at must be a finite number")
        stored = strip_secrets(document)
        externals: list[tuple[str, dict[str, Any], list[Any]]] = []
        for name in EXTERNAL_LISTS.get(kind, ()):
            value = stored.get(name)
            if isinstance(value, list):  # grows with the corp: pages beside the snapshot, a reference in it
                ref = list_ref(value)
                externals.append((name, ref, value))
                stored = {**stored, name: {LIST_MARKER: ref}}
        derived_json = dumps(strip_secrets(derived)) if derived is not None else None
        fetch = Fetch(kind, stored, fetched_at, reactivate, lifecycle_at)
        incoming = Incoming(suite_id, corp_id, fetch, dumps(stored), derived_json, tuple(externals))
        for attempt in range(self._attempts):
            if attempt:
                self._backoff(attempt)
            result = self._try_record(incoming)
            if result is not None:
                return result
        raise SnapshotConflictError(f"snapshot write for {kind} kept losing its condition ({self._attempts} attempts)")

    def _try_record(self, incoming: Incoming) -> RecordResult | None:
        """One read-decide-write round; None when a condition was lost (re-read and decide again).

        A new version is one ``TransactWriteItems``: the version item's Put on condition that
        it does not exist, and the state's update on the condition of :func:`_state_update`.
        A refresh (no new version) is that update alone.
        """
        pk = state_pk(incoming.suite_id, incoming.corp_id)
        state = self._get_item(pk, STATE_SK)
        stored = read_state(state, incoming.suite_id, incoming.corp_id) if state is not None else None
        decision = decide_record(stored, incoming.fetch, self._clock())
        if not decision.writes:
            return decision.result()
        for name, ref, items in incoming.externals:  # before the snapshot that references them
            if _stored_digest(stored, incoming.fetch.kind, name) != ref["digest"]:  # else its pages are there
                self._pages.write(pk, name, ref["digest"], items)
        if decision.changed and incoming.externals and stored is not None:
            decision = replace(decision, changes=self._list_changes(pk, incoming, stored, decision.changes))
        update = state_update(incoming, decision, state or {})
        guard_size({**(state or {}), **update.assigned}, f"state item ({incoming.fetch.kind})")
        state_request: Any = {"TableName": self._table, "Key": key(pk, STATE_SK), **update.kwargs()}
        if not decision.changed:
            try:
                self._client.update_item(**state_request)
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    return None
                raise
            return decision.result()
        item = version_item(incoming.suite_id, incoming.corp_id, incoming.fetch, decision, incoming.doc_json)
        put: Any = {"TableName": self._table, "Item": encode_item(item)}
        put["ConditionExpression"] = "attribute_not_exists(pk)"  # version numbers are never reused
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put}, {"Update": state_request}])
        except ClientError as exc:
            if _lost_transaction(exc):
                return None
            raise
        self._drop_old_pages(pk, incoming)
        return decision.result()

    def _list_changes(
        self, pk: str, incoming: Incoming, stored: CorpState, changes: tuple[Change, ...]
    ) -> tuple[Change, ...]:
        """The diff with each paged list's reference change replaced by who was added, removed or changed.

        The previous list is read back from its pages (by the stored reference); at most
        :data:`MAX_LIST_CHANGES` changes per list are kept, then one summary change with the counts.
        """
        names = {name for name, _, _ in incoming.externals}
        kept = [c for c in changes if c.path.split(".", 1)[0].split("[", 1)[0] not in names]
        for name, ref, items in incoming.externals:
            old_digest = _stored_digest(stored, incoming.fetch.kind, name)
            if old_digest is None or old_digest == ref["digest"]:
                continue
            old_items = self._pages.read(pk, name, old_digest) or []
            list_changes = diff({name: old_items}, {name: items})
            if len(list_changes) > MAX_LIST_CHANGES:
                summary = Change(name, "changed", {"count": len(old_items)}, {"count": len(items)})
                list_changes = [*list_changes[:MAX_LIST_CHANGES], summary]
            kept.extend(list_changes)
        return tuple(kept)

    def _drop_old_pages(self, pk: str, incoming: Incoming) -> None:
        """After the snapshot landed: pages no snapshot references any more (best effort; the next write retries)."""
        for name, ref, _ in incoming.externals:
            try:
                self._pages.delete_others(pk, name, keep=str(ref["digest"]))
            except ClientError as exc:
                log.warning("old %s pages of %s not deleted yet (%s)", name, pk, _code(exc))

    def list_items(self, suite_id: str, corp_id: str, kind: Kind, name: str) -> list[Any] | None:
        """A paged list of the corp's current ``kind`` document (e.g. chatdata's ``auth_user_list``), whole."""
        digest = _stored_digest(self.get(suite_id, corp_id), kind, name)
        return None if digest is None else self._pages.read(state_pk(suite_id, corp_id), name, digest)

    def mark_cancelled(
        self, suite_id: str, corp_id: str, at: float, retention_seconds: int, *, lifecycle_at: float | None = None
    ) -> CancelResult:
        """Turn the corp into a tombstone and delete its version items (:func:`snapshot_rules.decide_cancel`).

        Idempotent: a repeated call keeps the first cancellation's times and finishes any
        deletion a crashed earlier call left behind. The tombstone's update is conditioned on
        the status and every kind's version being what was read: a version written in
        between would otherwise outlive the deletion of versions 1..read.
        """
        if retention_seconds < 0 or not math.isfinite(at):
            raise ValueError("retention_seconds must be >= 0 and at finite")
        pk = state_pk(suite_id, corp_id)
        for attempt in range(self._attempts):
            if attempt:
                self._backoff(attempt)
            state = self._get_item(pk, STATE_SK)
            stored = read_state(state, suite_id, corp_id) if state is not None else None
            decision = decide_cancel(stored, at, retention_seconds, self._clock(), lifecycle_at=lifecycle_at)
            if decision.action is CancelAction.SUPERSEDED:
                return decision.result(0)
            if decision.action is not CancelAction.ALREADY_CANCELLED or decision.lifecycle_at is not None:
                update = tombstone_update(suite_id, corp_id, decision, state or {})
                try:
                    self._client.update_item(TableName=self._table, Key=key(pk, STATE_SK), **update.kwargs())
                except ClientError as exc:
                    if _code(exc) == "ConditionalCheckFailedException":
                        continue
                    raise
            deleted = self._delete_versions(pk, decision.delete_through)
            self._pages.delete_others(pk)  # the data goes: paged lists too
            return decision.result(deleted)
        raise SnapshotConflictError(f"cancellation kept losing its condition ({self._attempts} attempts)")

    def _delete_versions(self, pk: str, last: Mapping[Kind, int]) -> int:
        """Delete version items 1..last per kind (a reactivation's newer versions are never touched)."""
        keys: list[dict[str, Any]] = []
        for kind, version in last.items():
            if version < 1:
                continue
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": encode(pk),
                    ":lo": encode(version_sk(kind, 0)),
                    ":hi": encode(version_sk(kind, version)),
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
        return read_state(state, suite_id, corp_id) if state is not None else None

    def versions(self, suite_id: str, corp_id: str, kind: Kind) -> list[Version]:
        """Every stored version of one kind, oldest first."""
        check_kind(kind)
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": encode(state_pk(suite_id, corp_id)), ":prefix": encode(f"V#{kind}#")},
            ConsistentRead=True,
        )
        return [read_version(decode_item(raw)) for raw in items]

    def iter_active(self, suite_id: str, *, page_size: int | None = None) -> Iterator[str]:
        """Corp ids of the suite's active corps, in corp_id order, paging through the sparse GSI.

        The index is eventually consistent: a corp activated or cancelled a moment ago may be
        missing or still listed.
        """
        extra: dict[str, Any] = {"Limit": page_size} if page_size else {}
        for item in self._query(
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression="active_suite = :suite",
            ExpressionAttributeValues={":suite": encode(suite_id)},
            **extra,
        ):
            yield str(decode_item(item)["corp_id"])

    # .. plumbing ..................................................................................

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return decode_item(item) if item is not None else None

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


# -- decisions as writes ---------------------------------------------------------------------------


def _stored_digest(stored: CorpState | None, kind: Kind, name: str) -> str | None:
    """The digest of the paged list ``name`` that the stored ``kind`` document references (None: none)."""
    document = stored.kind(kind).document if stored is not None else None
    ref = ref_of((document or {}).get(name))
    return None if ref is None else str(ref["digest"])


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _lost_transaction(exc: ClientError) -> bool:
    """A cancelled transaction whose only reasons are failed conditions or a concurrent transaction."""
    if _code(exc) != "TransactionCanceledException":
        return False
    reasons = cast("list[Mapping[str, Any]]", exc.response.get("CancellationReasons", []))
    codes = {str(r.get("Code", "None")) for r in reasons}
    return bool(codes) and codes <= {"None", "ConditionalCheckFailed", "TransactionConflict"}
