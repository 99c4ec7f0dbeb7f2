"""The ports of the fetch pipeline's use cases (:mod:`authsync.app.sync`): what they need from outside, as Protocols.

:class:`authsync.app.sync.AuthorizationSync` and :class:`authsync.app.chatdata_sync.ChatdataSync` depend on
these and on nothing concrete, so they run against the adapters below in Lambda
(:mod:`authsync.wiring` builds those) and against in-memory fakes in ``tests/unit/``. Each
port lists exactly the methods the use cases call, with the adapter's signature:

* :class:`WeComApi` — get_permanent_code, get_auth_info and the two chatdata reads;
  adapter :class:`authsync.wecom.client.WeComClient`.
* :class:`AccessTokens` — run a call with a suite or corp token, drop a corp's credentials;
  adapter :class:`authsync.aws.tokens.Tokens`.
* :class:`PermanentCodes` — read and store (rotate) a corp's permanent code;
  adapter :class:`authsync.aws.tokens.PermanentCodes` (Secrets Manager).
* :class:`Snapshots` — read a corp's state, record a fetch, tombstone a cancelled corp;
  adapter :class:`authsync.aws.snapshots.SnapshotStore` (DynamoDB).
* :class:`ChatdataRequests` — put a chatdata request on the second FIFO queue;
  adapter :class:`authsync.aws.queues.SqsChatdataRequests`.
* :class:`Entitlements` — the license, order and ID-model reads; adapter
  :class:`authsync.wecom.entitlements.EntitlementsApi`. :class:`ProviderTokens` adds the
  provider_access_token to :class:`AccessTokens` (adapter :class:`authsync.aws.tokens.Tokens`).
* :class:`ExchangeJournal` — the durable record of each AuthCode exchange (get, record with a
  deadline, close); adapter :class:`authsync.aws.journal.ExchangeJournal` (DynamoDB + KMS).
* :class:`Remaining` — the function's time left in seconds (Lambda's context).
* :class:`Clock` — the time in epoch seconds; adapter :func:`time.time` (or ``build_pipeline``'s
  ``clock``, e.g. the emulator's timeline in tests).

:class:`ChatdataRequests` is :mod:`authsync.aws.queues`' own Protocol, re-exported here so this
module names every port. What the snapshot port hands back is described structurally
(:class:`CorpStateView`, :class:`RecordedFetch`: the attributes the use cases read), so the
port does not depend on how :mod:`authsync.aws.snapshots` lays out its read models;
:class:`authsync.aws.snapshots.CorpState` and :class:`authsync.aws.snapshots.RecordResult` satisfy them.

At runtime this module imports only :mod:`authsync.aws.queues` (standard library only): no
HTTP client, no botocore, no pydantic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from authsync.aws.queues import ChatdataRequests

if TYPE_CHECKING:
    from authsync.domain.corp_state import KindState
    from authsync.domain.install import JournalEntry, JournalStatus
    from authsync.wecom.responses import PermanentCodeGrant

__all__ = [
    "AccessTokens",
    "CancelledView",
    "ChatdataRequests",
    "Clock",
    "CorpStateView",
    "Entitlements",
    "ExchangeJournal",
    "PermanentCodes",
    "ProviderTokens",
    "RecordedFetch",
    "Remaining",
    "SnapshotKind",
    "Snapshots",
    "WeComApi",
]

T = TypeVar("T")

SnapshotKind = Literal["install", "auth_info", "chatdata", "license", "orders"]
"""The kinds of document a corp's snapshot holds (``authsync.aws.snapshots.Kind``)."""


class WeComApi(Protocol):
    """WeCom's server API, as far as the fetch pipeline calls it (adapter: :class:`authsync.wecom.client.WeComClient`).

    Failures are the typed errors of :mod:`authsync.wecom.errors` (``WeComAuthCodeError``,
    ``WeComAuthorizationInvalidError``, ``WeComPermissionError``, ...); the use cases
    react to those and let every other one propagate (the message is retried).
    """

    def get_permanent_code(
        self, suite_token: str, auth_code: str, *, v2: bool = True, budget: float | None = None
    ) -> PermanentCodeGrant:
        """Exchange a single-use AuthCode: the corp, its permanent code and the install's context.

        ``budget``: seconds the whole call may take, retries included."""
        ...

    def get_auth_info(self, suite_token: str, corp_id: str, permanent_code: str, *, v2: bool = True) -> dict[str, Any]:
        """The corp's authorization document (``auth_corp_info``, ``auth_info``, ...)."""
        ...

    def get_corp_chat_auth_info(self, corp_token: str) -> dict[str, Any]:
        """``chatdata/get_corp_auth_info`` (corp token); 48002 when 数据与智能专区 is not authorized."""
        ...

    def iter_auth_users(self, corp_token: str, *, limit: int = 1000, max_pages: int = 1000) -> Iterator[dict[str, Any]]:
        """Every ``chatdata/get_auth_user_list`` member, all pages (``max_pages``: the client's DEFAULT_MAX_PAGES)."""
        ...


class AccessTokens(Protocol):
    """Suite and corp access tokens (adapter: :class:`authsync.aws.tokens.Tokens`).

    ``with_*_token`` hands ``call`` a valid token and owns WeCom's invalidate-refresh-retry-once
    rule; ``with_corp_token`` raises :class:`authsync.aws.tokens.CorpNotAuthorizedError` when the
    corp has no permanent code.
    """

    def with_suite_token(self, suite_id: str, call: Callable[[str], T]) -> T: ...

    def with_corp_token(self, suite_id: str, corp_id: str, call: Callable[[str], T]) -> T: ...

    def forget_corp(self, suite_id: str, corp_id: str, *, cancelled_at_event: int | None = None) -> None:
        """Delete the corp's access token and permanent code (cancel_auth), keeping a code whose install's
        WeCom TimeStamp is later than ``cancelled_at_event``."""
        ...

    def forget_corp_token(self, suite_id: str, corp_id: str) -> None:
        """Drop the corp token (its permanent code was rotated)."""
        ...


class ProviderTokens(AccessTokens, Protocol):
    """:class:`AccessTokens` and the provider's token (adapter: :class:`authsync.aws.tokens.Tokens`);
    ``with_provider_token`` raises :class:`authsync.aws.tokens.ProviderNotConfiguredError` without one."""

    def with_provider_token(self, suite_id: str, call: Callable[[str], T]) -> T: ...


class Entitlements(Protocol):
    """License, order and ID-model reads (adapter: :class:`authsync.wecom.entitlements.EntitlementsApi`)."""

    def get_app_license_info(self, provider_token: str, corp_id: str, suite_id: str) -> dict[str, Any]: ...

    def active_accounts(self, provider_token: str, corp_id: str) -> Iterator[dict[str, Any]]: ...

    def get_license_order(self, provider_token: str, order_id: str) -> dict[str, Any]: ...

    def get_app_order(self, suite_token: str, order_id: str) -> dict[str, Any]: ...

    def open_corpid(self, provider_token: str, corp_id: str) -> str: ...


class PermanentCodes(Protocol):
    """One permanent code per (suite, corp) (adapter: :class:`authsync.aws.tokens.PermanentCodes`)."""

    def get(self, suite_id: str, corp_id: str, *, force: bool = False) -> str | None: ...

    def put(
        self, suite_id: str, corp_id: str, permanent_code: str, obtained_at: float, *, event_time: int | None = None
    ) -> bool:
        """Store the code (with its install's WeCom TimeStamp) unless a later exchange's is stored; True when a
        previous code was replaced."""
        ...


class CorpStateView(Protocol):
    """What the use cases read of a corp's stored state (:class:`authsync.aws.snapshots.CorpState`)."""

    @property
    def status(self) -> str:
        """``"active"``, or ``"cancelled"`` for a tombstone."""
        ...

    @property
    def cancelled_at(self) -> float | None:
        """When the corp was cancelled: a tombstone's time (None for an active corp)."""
        ...

    @property
    def lifecycle_at(self) -> float | None:
        """WeCom's TimeStamp of the last install, rotation or cancellation applied (None: not known)."""
        ...

    @property
    def auth_info_version(self) -> int: ...

    @property
    def auth_info_fetched_at(self) -> float | None: ...

    @property
    def chatdata_version(self) -> int: ...

    @property
    def chatdata_fetched_at(self) -> float | None: ...

    def kind(self, kind: str) -> KindState:
        """One kind's stored part: its document, version and when it was fetched."""
        ...


class RecordedFetch(Protocol):
    """What the use cases read of a recorded fetch (:class:`authsync.aws.snapshots.RecordResult`)."""

    @property
    def version(self) -> int: ...

    @property
    def changed(self) -> bool: ...

    @property
    def stale(self) -> bool:
        """An older fetch than the stored one: nothing was written."""
        ...

    @property
    def superseded(self) -> bool:
        """An install older than the corp's last lifecycle event: nothing was written."""
        ...


class CancelledView(Protocol):
    """What the use cases read of a cancellation (:class:`authsync.domain.snapshot_rules.CancelResult`)."""

    @property
    def superseded(self) -> bool:
        """Older than the corp's last install or rotation: nothing was written or deleted."""
        ...


class Snapshots(Protocol):
    """Versioned corp snapshots (adapter: :class:`authsync.aws.snapshots.SnapshotStore`, DynamoDB).

    The write rules the use cases rely on: lifecycle events (install with ``lifecycle_at``,
    cancellation) apply in WeCom's TimeStamp order, an older one is ``superseded``; a fetch
    older than the stored one is ``stale`` (nothing written); a cancelled corp's tombstone
    ignores fetches unless ``reactivate`` (a new install); a changed document is a new version.
    """

    def get(self, suite_id: str, corp_id: str) -> CorpStateView | None:
        """The corp's state (a tombstone if cancelled), or None if never seen."""
        ...

    def record(  # noqa: PLR0917 - SnapshotStore.record's call shape
        self,
        suite_id: str,
        corp_id: str,
        kind: SnapshotKind,
        document: Mapping[str, Any],
        fetched_at: float,
        derived: Mapping[str, Any] | None = None,
        *,
        reactivate: bool = False,
        lifecycle_at: float | None = None,
    ) -> RecordedFetch: ...

    def mark_cancelled(
        self, suite_id: str, corp_id: str, at: float, retention_seconds: int, *, lifecycle_at: float | None = None
    ) -> CancelledView:
        """Tombstone the corp and delete its data (idempotent), unless a newer install superseded the cancel."""
        ...


class ExchangeJournal(Protocol):
    """The exchange journal (adapter: :class:`authsync.aws.journal.ExchangeJournal`).

    Its rules are :mod:`authsync.domain.install`'s."""

    def get(self, suite_id: str, key: str) -> JournalEntry | None:
        """The entry of this AuthCode key (its code opened while the entry is open), or None."""
        ...

    def check_sealing(self, suite_id: str) -> None:
        """Raise unless an entry could be sealed now (KMS reachable, key usable): asked before an AuthCode is spent."""
        ...

    def record(self, entry: JournalEntry, *, deadline: float) -> JournalEntry:
        """Make ``entry`` durable, retrying until ``deadline``; the stored entry (the first writer's)."""
        ...

    def close(self, entry: JournalEntry, status: JournalStatus) -> None:
        """Mark the entry completed or superseded."""
        ...


class Remaining(Protocol):
    """Seconds the function has left (adapter: Lambda's ``context.get_remaining_time_in_millis() / 1000``)."""

    def __call__(self) -> float: ...


class Clock(Protocol):
    """Epoch seconds (adapter: :func:`time.time`; ``build_pipeline``'s ``clock`` in tests on the emulator)."""

    def __call__(self) -> float: ...
