"""License and paid-app order sync: what auth-info does with a license or order callback (issue #12 item 2).

Each callback is a reason to re-read WeCom, never the state itself (its fields are few and
some unconfirmed: :mod:`authsync.wecom.entitlement_events`). Two snapshot kinds hold what is read,
with history and diffs like every other kind (:mod:`authsync.aws.snapshots`):

* ``license`` (接口调用许可, provider token): ``license/get_app_license_info`` merged with every
  page of ``license/list_actived_account`` (``account_list``, stored in pages beside the snapshot)
  and ``orders``, the license orders callbacks named (``license/get_order``), by order id.
  Derived: :func:`authsync.wecom.entitlements.license_summary`.
* ``orders`` (应用版本付费, suite token): ``orders``, each app order a callback named
  (``service/get_order``), by id, and ``replaced`` (old id → new id, from ``change_order``).
  Derived: :func:`authsync.wecom.entitlements.order_summary`. The edition itself is read from
  ``get_auth_info`` (``change_editon`` re-fetches it: :mod:`authsync.app.sync`).

Rules, as for auth info: a corp never seen is retried for a while (its create_auth may still be
queued), a cancelled corp is skipped (its data was deleted, as WeCom requires), and a fetch is
*coalesced* when the stored section was read after the callback was sent and already holds the
order it names. Orders of one corp arrive in that corp's FIFO group, so merging a new order into
the stored ones is never interleaved with another merge of that corp; the snapshot store's
compare-and-swap still refuses a write over a state it did not read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authsync.app.sync import PENDING_INSTALL_GRACE, Outcome, RetryLaterError, SyncResult
from authsync.wecom.entitlement_events import LicenseEvent, OrderEvent
from authsync.wecom.entitlements import license_summary, order_summary

if TYPE_CHECKING:
    from authsync.app.ports import Clock, CorpStateView, Entitlements, ProviderTokens, SnapshotKind, Snapshots
    from authsync.domain.corp_state import KindState

__all__ = ["EntitlementSync"]


class EntitlementSync:
    """Re-read a corp's licenses or one of its orders and record the section (adapters: ``wiring``)."""

    def __init__(
        self, *, api: Entitlements, tokens: ProviderTokens, snapshots: Snapshots, clock: Clock = time.time
    ) -> None:
        self._api = api
        self._tokens = tokens
        self._snapshots = snapshots
        self._clock = clock

    def handle(self, event: LicenseEvent | OrderEvent, *, requested_at: float) -> SyncResult:
        """A license or order callback: re-read the corp's license section, or the order it names."""
        from authsync.aws.tokens import ProviderNotConfiguredError

        suite_id, corp_id = event.suite_id, event.auth_corp_id
        if isinstance(event, OrderEvent):
            assert event.order_id is not None  # only change_editon names none (routed to auth info)
            return self.sync_order(
                suite_id, corp_id, order_id=event.order_id, requested_at=requested_at, replaces=event.replaces
            )
        try:
            return self.sync_license(suite_id, corp_id, requested_at=requested_at, order_id=event.order_id)
        except ProviderNotConfiguredError:
            return SyncResult(Outcome.PROVIDER_NOT_CONFIGURED, suite_id, corp_id, detail=event.info_type)

    def sync_license(
        self, suite_id: str, corp_id: str, *, requested_at: float, order_id: str | None = None
    ) -> SyncResult:
        """Record the corp's license section as WeCom has it now (plus ``order_id``'s license order)."""
        stored = self._stored(suite_id, corp_id, "license", requested_at)
        if isinstance(stored, SyncResult):
            return stored
        orders: dict[str, Any] = dict((stored.document or {}).get("orders") or {})
        if (stored.fetched_at or 0) >= requested_at and (order_id is None or order_id in orders):
            return SyncResult(Outcome.FRESH, suite_id, corp_id, stored.version)
        fetched_at = self._clock()

        def read(token: str) -> dict[str, Any]:
            document = dict(self._api.get_app_license_info(token, corp_id, suite_id))
            document["account_list"] = list(self._api.active_accounts(token, corp_id))
            if order_id is not None:
                orders[order_id] = self._api.get_license_order(token, order_id)
            document["orders"] = orders
            return document

        document = self._tokens.with_provider_token(suite_id, read)
        return self._record(suite_id, corp_id, "license", document, fetched_at=fetched_at)

    def sync_order(
        self, suite_id: str, corp_id: str, *, order_id: str, requested_at: float, replaces: str | None = None
    ) -> SyncResult:
        """Record ``order_id`` (which replaces ``replaces``, for change_order) in the corp's orders section."""
        stored = self._stored(suite_id, corp_id, "orders", requested_at)
        if isinstance(stored, SyncResult):
            return stored
        document = dict(stored.document or {})
        orders: dict[str, Any] = dict(document.get("orders") or {})
        replaced: dict[str, str] = dict(document.get("replaced") or {})
        known = order_id in orders and (replaces is None or replaced.get(replaces) == order_id)
        if (stored.fetched_at or 0) >= requested_at and known:
            return SyncResult(Outcome.FRESH, suite_id, corp_id, stored.version)
        fetched_at = self._clock()
        orders[order_id] = self._tokens.with_suite_token(
            suite_id, lambda token: self._api.get_app_order(token, order_id)
        )
        if replaces is not None and replaces != order_id:
            replaced[replaces] = order_id  # the new id is the order from now on; the old one stays as history
        document = {"orders": orders, "replaced": replaced}
        return self._record(suite_id, corp_id, "orders", document, fetched_at=fetched_at)

    def refresh_expired_license(self, suite_id: str, corp_id: str, state: CorpStateView) -> SyncResult | None:
        """Re-read the license section if an account it counts has expired since (reconcile).

        WeCom sends no callback when a license account expires, so the stored ``active`` count is
        exact only until the summary's ``next_expire_time``; reconcile asks here for each active
        corp with the state it read already, and only a corp past that time costs reads and WeCom
        calls. None: nothing was due.
        """
        from authsync.aws.tokens import ProviderNotConfiguredError

        if state.status != "active":
            return None
        summary = (state.kind("license").derived or {}).get("license")
        due = summary.get("next_expire_time") if isinstance(summary, dict) else None
        now = self._clock()
        if not isinstance(due, int | float) or due > now:
            return None
        try:
            return self.sync_license(suite_id, corp_id, requested_at=now)
        except ProviderNotConfiguredError:
            return None

    def corp_ids(self, suite_id: str, corp_id: str, known: Mapping[str, Any] | None) -> dict[str, Any]:
        """The corp's ids as auth info's derived ``ids``: ``open_corpid`` looked up once (issue #12 item 4).

        ``service/corpid_to_opencorpid`` (provider token) maps a corp id of a corp installed before
        WeCom's ID encryption to the open corpid the provider sees now. It is asked once per corp and
        the answer carried over (``known``); a refusal (``lookup_error``: the errcode, e.g. for an id
        that is already an open corpid ⚠️) is not asked again, a transient failure or a suite without
        provider credentials is asked again at the next auth-info fetch. Never fails the fetch.
        """
        from authsync.aws.tokens import ProviderNotConfiguredError, TokenBusyError
        from authsync.wecom.errors import WeComError, WeComTransientError

        if known and (known.get("open_corpid") or known.get("lookup_error")):
            return dict(known)
        try:
            value = self._tokens.with_provider_token(suite_id, lambda token: self._api.open_corpid(token, corp_id))
        except (ProviderNotConfiguredError, TokenBusyError, WeComTransientError):
            return {"corpid": corp_id, "open_corpid": None}
        except WeComError as exc:
            return {"corpid": corp_id, "open_corpid": None, "lookup_error": exc.errcode}
        return {"corpid": corp_id, "open_corpid": value}

    def _stored(self, suite_id: str, corp_id: str, kind: SnapshotKind, requested_at: float) -> KindState | SyncResult:
        """The kind's stored part if the corp is installed, else the result to report (RetryLaterError while the
        corp may still come: its create_auth may be queued in another group)."""
        state = self._snapshots.get(suite_id, corp_id)
        if state is None:
            if self._clock() - requested_at < PENDING_INSTALL_GRACE:
                raise RetryLaterError("corp not installed yet; its create_auth may still be queued")
            return SyncResult(Outcome.UNKNOWN_CORP, suite_id, corp_id)
        if state.status == "cancelled":
            return SyncResult(Outcome.SKIPPED_CANCELLED, suite_id, corp_id)
        return state.kind(kind)

    def _record(
        self, suite_id: str, corp_id: str, kind: SnapshotKind, document: dict[str, Any], *, fetched_at: float
    ) -> SyncResult:
        summary = license_summary(document, now=fetched_at) if kind == "license" else order_summary(document)
        recorded = self._snapshots.record(suite_id, corp_id, kind, document, fetched_at, derived={kind: summary})
        return SyncResult(Outcome.FETCHED, suite_id, corp_id, recorded.version, recorded.changed, detail=kind)
