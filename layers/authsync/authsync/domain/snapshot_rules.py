"""The snapshot write rules as pure decisions, and the read models they decide on (no AWS).

:class:`authsync.aws.snapshots.SnapshotStore` reads a corp's state item, asks
:func:`decide_record` (or :func:`decide_cancel`) what to do, and only translates the answer
into a conditional DynamoDB write. Losing that write's condition means another writer got
in between: the store re-reads and asks again, so every decision here is made on one
consistent read.

Rules of a fetch (:func:`decide_record`), in the order they apply:

0. **Lifecycle order.** Install, rotation and cancellation are applied in WeCom's order: by the
   events' ``TimeStamp`` (``lifecycle_at``), then by arrival. The state keeps the time of the
   last lifecycle event applied; an install (a fetch with ``lifecycle_at``) older than it is
   :attr:`Action.SUPERSEDED` (nothing written), and so is a cancellation older than it
   (:attr:`CancelAction.SUPERSEDED`, nothing deleted): a late cancel_auth never deletes a newer
   install, a late create_auth never revives a corp cancelled after it, a replayed old event
   never changes state. Equal times apply in arrival order. Both writes are conditioned on the
   ``lifecycle_at`` they read, so the rule holds under any interleaving of writers.
1. A cancelled corp ignores fetches (:attr:`Action.IGNORED`, nothing written) unless the
   fetch reactivates it (``reactivate=True``: a new ``create_auth``).
2. A fetch that started before the stored one (``fetched_at`` smaller) never overwrites it
   (:attr:`Action.STALE`, nothing written) — a reactivating one included.
3. Documents compare with :func:`authsync.domain.diff.diff`, ignoring :data:`VOLATILE_PATHS`. With
   no stored document for the kind (its first fetch, or the first after a cancellation)
   the fetch is a change with an empty diff and no diff base: there is nothing to compare with.
4. A fetch with the stored ``fetched_at``: the same fetch redelivered if the documents are
   equal (:attr:`Action.REDELIVERED`, nothing written); otherwise two fetches that cannot
   be ordered, and the first writer wins (:attr:`Action.STALE`).
5. An identical, newer re-fetch writes no version (:attr:`Action.REFRESHED`): the state
   advances ``fetched_at``, counts the fetch and refreshes the stored document and derived
   values (e.g. the 7-day QR URL).
6. A changed, newer fetch writes version n+1 with its diff from version n
   (:attr:`Action.NEW_VERSION`). Version numbers continue across a cancellation, never reused.

Either write creates the corp (:attr:`Lifecycle.CREATE`, no state item yet), updates an
active one (:attr:`Lifecycle.UPDATE`) or reactivates a tombstone (:attr:`Lifecycle.REACTIVATE`).

Cancellation (:func:`decide_cancel`): WeCom requires providers to delete a cancelled corp's
data. The state item becomes a *tombstone* — status, cancelled_at, the last version numbers
and fetch times, counters; no document, no derived data, no ``active_suite`` — with
``expires_at = ceil(cancelled_at + retention)`` so DynamoDB's TTL removes it after the audit
period; version items 1..last of each kind are deleted at once. A corp never seen gets a
tombstone too (the install ended). Cancelling a cancelled corp keeps the first
cancellation's times and only finishes the deletion. The tombstone is what lets a late,
stale fetch be recognized as such instead of recreating the corp.

⚠️ Fetches (``get_auth_info``, chatdata) are ordered by *our* clock (``fetched_at``); only the
lifecycle events carry WeCom's. A lifecycle event without a time (written before the rule
existed) is applied in arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from authsync.domain.corp_state import CorpState, KindState
from authsync.domain.diff import Change, diff

__all__ = [
    "KINDS",
    "VOLATILE_PATHS",
    "Action",
    "CancelAction",
    "CancelDecision",
    "CancelResult",
    "Fetch",
    "Kind",
    "Lifecycle",
    "RecordDecision",
    "RecordResult",
    "check_kind",
    "comparable",
    "decide_cancel",
    "decide_record",
    "older_lifecycle",
]

Kind = Literal["install", "auth_info", "chatdata", "license", "orders"]
KINDS: tuple[Kind, ...] = ("install", "auth_info", "chatdata", "license", "orders")
"""``install``: the permanent-code grant's context (who installed, register code, state: answered once by
``get_permanent_code``, never fetchable again; :mod:`authsync.domain.install`); ``auth_info`` and ``chatdata``:
the fetched documents."""


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown snapshot kind {kind!r}; expected one of {KINDS}")


VOLATILE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    # corp_wxqrcode is a QR URL valid for 7 days (and v2 omits it): a new one is not a change.
    "auth_info": (("auth_corp_info", "corp_wxqrcode"), ("errcode",), ("errmsg",)),
    "chatdata": (("errcode",), ("errmsg",)),
    "license": (("errcode",), ("errmsg",)),
    "orders": (("errcode",), ("errmsg",)),
}
"""Paths excluded from comparison and diffs, per kind."""


def comparable(kind: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` as compared: without the kind's :data:`VOLATILE_PATHS` (``document`` is not modified)."""
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


# -- results ---------------------------------------------------------------------------------------


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
    superseded: bool = False
    """An install older than the corp's last lifecycle event (rule 0): nothing written."""


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What :meth:`SnapshotStore.mark_cancelled` did (``expires_at``: the tombstone's, 0 if it has none)."""

    already_cancelled: bool
    deleted_versions: int
    expires_at: int
    superseded: bool = False
    """The cancellation is older than the corp's last install (rule 0): nothing written or deleted."""


# -- recording a fetch -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetch:
    """An incoming document: its kind, the document as it will be stored (no secrets), when its fetch started."""

    kind: Kind
    document: Mapping[str, Any] = field(repr=False)
    fetched_at: float
    reactivate: bool = False
    """A new ``create_auth``: a cancelled corp comes back instead of ignoring the fetch."""
    lifecycle_at: float | None = None
    """For an install or rotation: the event's ``TimeStamp`` (rule 0); None for a plain fetch."""


class Action(StrEnum):
    """What a fetch does to the store (rules 1-6 of the module docstring)."""

    SUPERSEDED = "superseded"
    """An install older than the corp's last lifecycle event (rule 0): nothing written."""
    IGNORED = "ignored"
    """The corp is cancelled and the fetch does not reactivate it: nothing written."""
    STALE = "stale"
    """Older than the stored fetch, or as old with other facts (first writer wins): nothing written."""
    REDELIVERED = "redelivered"
    """The stored fetch again (same fetched_at, equal documents): nothing written."""
    REFRESHED = "refreshed"
    """Equal documents, newer fetch: the state item only (document, fetched_at, fetches), no version."""
    NEW_VERSION = "new_version"
    """A changed document: version n+1 with its diff, and the state item, in one transaction."""


class Lifecycle(StrEnum):
    """How a writing decision changes the corp's status."""

    CREATE = "create"
    """No state item yet: the first fetch creates the corp, active."""
    UPDATE = "update"
    """The corp is active and stays so."""
    REACTIVATE = "reactivate"
    """A tombstone becomes active again (``activated_at``, ``activations``; cancelled_at/expires_at go)."""


_WRITES = frozenset({Action.REFRESHED, Action.NEW_VERSION})


@dataclass(frozen=True, slots=True)
class RecordDecision:
    """The answer of :func:`decide_record` for one fetch and one read of the state."""

    action: Action
    version: int
    """The kind's version afterwards: n+1 for a new version, else the stored n (0: none yet)."""
    at: float
    """The store clock of the decision: every timestamp a write sets."""
    lifecycle: Lifecycle | None = None
    """For the writing actions; None when nothing is written."""
    changes: tuple[Change, ...] = ()
    """A new version's diff from ``diff_base`` (empty without one)."""
    diff_base: int | None = None
    """The version a new version's diff is against; None when there was no stored document."""

    @property
    def writes(self) -> bool:
        return self.action in _WRITES

    @property
    def changed(self) -> bool:
        return self.action is Action.NEW_VERSION

    def result(self) -> RecordResult:
        return RecordResult(
            version=self.version,
            changed=self.changed,
            stale=self.action is Action.STALE,
            ignored=self.action is Action.IGNORED,
            reactivated=self.lifecycle is Lifecycle.REACTIVATE,
            diff=list(self.changes),
            superseded=self.action is Action.SUPERSEDED,
        )


def decide_record(stored: CorpState | None, fetch: Fetch, now: float) -> RecordDecision:
    """What storing ``fetch`` does, given the corp's ``stored`` state (None: never seen) and the store clock."""
    current = stored.kind(fetch.kind) if stored is not None else KindState()
    if older_lifecycle(fetch.lifecycle_at, stored):
        return RecordDecision(Action.SUPERSEDED, current.version, now)
    if stored is None:
        lifecycle = Lifecycle.CREATE
    elif stored.active:
        lifecycle = Lifecycle.UPDATE
    elif fetch.reactivate:
        lifecycle = Lifecycle.REACTIVATE
    else:
        return RecordDecision(Action.IGNORED, current.version, now)
    if current.fetched_at is not None and fetch.fetched_at < current.fetched_at:
        return RecordDecision(Action.STALE, current.version, now)

    if current.document is None:
        changes: list[Change] = []
        changed = True
    else:
        changes = diff(comparable(fetch.kind, current.document), comparable(fetch.kind, fetch.document))
        changed = bool(changes)
    if current.fetched_at is not None and fetch.fetched_at == current.fetched_at:
        # The same fetch redelivered (nothing to do), or two fetches we cannot order (first wins).
        return RecordDecision(Action.STALE if changed else Action.REDELIVERED, current.version, now)
    if not changed:
        return RecordDecision(Action.REFRESHED, current.version, now, lifecycle)
    base = current.version if current.document is not None else None
    return RecordDecision(Action.NEW_VERSION, current.version + 1, now, lifecycle, tuple(changes), base)


# -- cancellation ----------------------------------------------------------------------------------


def older_lifecycle(event_at: float | None, stored: CorpState | None) -> bool:
    """Rule 0: a lifecycle event older than the last one applied (equal times: arrival order)."""
    last = stored.lifecycle_at if stored is not None else None
    return event_at is not None and last is not None and event_at < last


class CancelAction(StrEnum):
    """What a cancellation does to the state item (versions 1..read are deleted, unless superseded)."""

    SUPERSEDED = "superseded"
    """Older than the corp's last install or rotation (rule 0): nothing written, nothing deleted."""
    TOMBSTONE = "tombstone"
    """An active corp becomes a tombstone."""
    TOMBSTONE_UNSEEN = "tombstone_unseen"
    """A corp never seen: a tombstone still records that this install ended."""
    ALREADY_CANCELLED = "already_cancelled"
    """Nothing written: the first cancellation's times stay; its deletion is finished."""


@dataclass(frozen=True, slots=True)
class CancelDecision:
    """The answer of :func:`decide_cancel` for one read of the state."""

    action: CancelAction
    cancelled_at: float
    """When the corp was cancelled (the caller's ``at``): written by a new tombstone only."""
    expires_at: int
    """The tombstone's TTL: new for a new tombstone, the stored one (0 if none) for a cancelled corp."""
    at: float
    """The store clock of the decision (``updated_at``; ``created_at`` of an unseen corp's tombstone)."""
    delete_through: dict[Kind, int]
    """Per kind, the newest version read: items 1..n are deleted (a reactivation's later ones never)."""

    lifecycle_at: float | None = None
    """The cancel_auth's ``TimeStamp`` to write (rule 0): with a new tombstone, or alone on a cancelled
    corp whose last lifecycle event is older (None: nothing to write)."""

    def result(self, deleted_versions: int) -> CancelResult:
        return CancelResult(
            self.action is CancelAction.ALREADY_CANCELLED,
            deleted_versions,
            self.expires_at,
            superseded=self.action is CancelAction.SUPERSEDED,
        )


def decide_cancel(
    stored: CorpState | None,
    at: float,
    retention_seconds: int,
    now: float,
    *,
    lifecycle_at: float | None = None,
) -> CancelDecision:
    """What cancelling the corp at ``at`` (WeCom's ``lifecycle_at``) does, given its ``stored`` state and the clock."""
    if older_lifecycle(lifecycle_at, stored):
        return CancelDecision(CancelAction.SUPERSEDED, at, 0, now, {}, lifecycle_at)
    last: dict[Kind, int] = {kind: stored.kind(kind).version if stored is not None else 0 for kind in KINDS}
    if stored is not None and stored.status == "cancelled":
        expires = stored.expires_at if stored.expires_at is not None else 0
        # A later cancellation of a cancelled corp (uninstalled again after a re-install whose
        # create_auth is still queued) moves lifecycle_at on, so that late install stays superseded.
        newer = lifecycle_at if lifecycle_at is not None and lifecycle_at != stored.lifecycle_at else None
        return CancelDecision(CancelAction.ALREADY_CANCELLED, at, expires, now, last, newer)
    action = CancelAction.TOMBSTONE_UNSEEN if stored is None else CancelAction.TOMBSTONE
    return CancelDecision(action, at, math.ceil(at + retention_seconds), now, last, lifecycle_at)
