"""The fetch pipeline: what the auth-info and chatdata functions do with one queue message.

Messages on the auth-events queue are either a WeCom callback (the decrypted XML, as
callback-ingest enqueued it) or a reconcile request (JSON). For each:

* ``create_auth`` / ``reset_permanent_code``: exchange the AuthCode with v2
  ``get_permanent_code`` and make the answer durable in the exchange journal *before
  anything else* (the AuthCode is single-use), then store the code, write the corp's
  first state from the grant and fetch auth info — each step resumable from the journal
  (:mod:`authsync.domain.install`);
* ``change_auth``, data-permission events, the authorization-scope events
  (:class:`ScopeChange`), reconcile: fetch ``get_auth_info`` (v2: it
  is the faster call and omits the 7-day QR URL that would make every fetch a "change");
* ``cancel_auth``: delete the corp's credentials and data, no WeCom call;
* license and paid-app order events: re-read the corp's license section or the order named
  (:mod:`authsync.app.entitlements`); ``change_editon`` re-fetches auth info (the edition is there).

Every fetch of a corp is *coalesced*: if the stored snapshot was fetched after the
message was sent, it already reflects that event and nothing is called. A burst of
change_auth for one corp therefore costs one get_auth_info, not one per event.
After an auth-info fetch, a chatdata request goes on the second FIFO queue; the
chatdata function (:mod:`authsync.app.chatdata_sync`) coalesces the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from authsync.aws.queues import AuthMessage, ChatdataRequest
from authsync.domain.codes import with_fresh_code
from authsync.domain.install import JournalEntry, JournalStatus, ResumeAction, auth_code_key, resume_action
from authsync.wecom.callbacks import (
    AuthDataPermission,
    CancelAuth,
    ChangeAuth,
    CreateAuth,
    GenericEvent,
    ResetPermanentCode,
    ScopeChange,
    parse_event,
)
from authsync.wecom.entitlement_events import ChangeEdition, LicenseEvent, OrderEvent
from authsync.wecom.errors import WeComAuthCodeError, WeComAuthorizationInvalidError

if TYPE_CHECKING:
    from authsync.app.entitlements import EntitlementSync
    from authsync.app.ports import (
        AccessTokens,
        ChatdataRequests,
        Clock,
        CorpStateView,
        ExchangeJournal,
        PermanentCodes,
        Remaining,
        Snapshots,
        WeComApi,
    )
    from authsync.wecom.responses import PermanentCodeGrant

__all__ = [
    "EXCHANGE_RESERVE",
    "MIN_EXCHANGE_TIME",
    "AuthorizationSync",
    "Outcome",
    "SyncResult",
]

PENDING_INSTALL_GRACE = 900.0
"""How long an event for a corp we hold no permanent code for is retried: its create_auth
may still be in flight in another message group. After that it is logged and dropped."""

CANCELLED_RETENTION = 30 * 86400
"""How long the minimal tombstone of a cancelled corp is kept (its data is deleted at once)."""


MIN_EXCHANGE_TIME = 20.0
"""Seconds of the function's time an exchange needs before it starts: the WeCom call (the client's
3 s connect + 10 s read timeout) and the journal write after it. With less, the message is
retried at once instead (the AuthCode is only spent when its answer can be kept)."""

EXCHANGE_RESERVE = 5.0
"""Of that, the seconds kept back for the journal write: its retries run until this much before
the function's end, leaving time to log and to return."""


class RetryLaterError(RuntimeError):
    """Not an error of the message: retry it later (the batch processor reports it as failed)."""


class Outcome(StrEnum):
    """What a message did; the value names the handler's metric (``AuthEvents_<value>``, ``Chatdata_<value>``)."""

    INSTALLED = "installed"
    ROTATED = "rotated"
    FETCHED = "fetched"
    FRESH = "fresh"
    """Already fetched after this message was sent: nothing to do (coalesced)."""
    CANCELLED = "cancelled"
    SKIPPED_CANCELLED = "skipped_cancelled"
    SKIPPED_INACTIVE = "skipped_inactive"
    UNKNOWN_CORP = "unknown_corp"
    AUTHORIZATION_INVALID = "authorization_invalid"
    AUTH_CODE_INVALID = "auth_code_invalid"
    """Kept for idempotency records written before the journal; new messages report INSTALL_LOST or DUPLICATE."""
    INSTALL_LOST = "install_lost"
    """40078 for an AuthCode we never journaled: the code was spent or expired without its answer reaching us.
    The corp's install cannot be recovered from here (alarmed: ask the corp to re-authorize)."""
    SUPERSEDED = "superseded"
    """A lifecycle event older than the corp's last one (WeCom's TimeStamp order): nothing changed."""
    DUPLICATE = "duplicate"
    """A delivery of an AuthCode whose exchange is already complete (or superseded): nothing done."""
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    """A license event for a suite whose config has no provider_corpid/provider_secret: nothing can be read
    (counted; the next license event after the config is fixed reads the whole license state)."""
    IGNORED = "ignored"
    """An event this pipeline does not act on; ``detail`` names its kind."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What happened (safe to log: no secrets)."""

    outcome: Outcome
    suite_id: str
    corp_id: str | None = None
    version: int | None = None
    changed: bool = False
    event_time: int | None = None
    """The callback's ``TimeStamp`` (WeCom's clock), where the outcome needs it (``INSTALL_LOST``)."""
    detail: str | None = None
    """For ``IGNORED``: the event's routing key (InfoType, or MsgType:Event:ChangeType); for an exchange:
    ``resumed`` when a journal entry was completed by a later delivery or the reconcile sweep."""


class AuthorizationSync:
    """The auth-info function's logic, over the ports of :mod:`authsync.app.ports` (adapters: ``wiring``)."""

    def __init__(
        self,
        *,
        client: WeComApi,
        tokens: AccessTokens,
        permanent_codes: PermanentCodes,
        snapshots: Snapshots,
        chatdata: ChatdataRequests,
        journal: ExchangeJournal,
        entitlements: EntitlementSync | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._codes = permanent_codes
        self._snapshots = snapshots
        self._chatdata = chatdata
        self._journal = journal
        self._entitlements = entitlements
        self._clock = clock

    def handle(self, message: AuthMessage, *, remaining: Remaining | None = None) -> SyncResult:
        """Apply one message. ``remaining`` is the function's time left in seconds (Lambda's context)."""
        if message.kind == "reconcile":
            assert message.corp_id is not None
            return self.reconcile(message.suite_id, message.corp_id, requested_at=message.sent_at)
        if message.kind == "resume":
            assert message.entry_key is not None
            return self.resume(message.suite_id, message.entry_key)
        event = parse_event(message.body.encode("utf-8"), suite_id=message.suite_id or None)
        if isinstance(event, GenericEvent):
            return SyncResult(Outcome.IGNORED, message.suite_id, event.corp_id, detail=event.kind)
        suite_id = event.suite_id
        if isinstance(event, CreateAuth | ResetPermanentCode):
            return self._exchange(
                suite_id,
                event.auth_code.get_secret_value(),
                rotate=isinstance(event, ResetPermanentCode),
                remaining=remaining,
                event_time=event.timestamp,
            )
        if isinstance(event, CancelAuth):
            return self.cancel(suite_id, event.auth_corp_id, event_time=event.timestamp)
        if isinstance(event, LicenseEvent | OrderEvent) and not isinstance(event, ChangeEdition):
            if self._entitlements is None:
                return SyncResult(Outcome.IGNORED, suite_id, event.corp_id, detail=event.info_type)
            return self._entitlements.handle(event, requested_at=message.sent_at)
        if isinstance(event, ChangeAuth | AuthDataPermission | ScopeChange | ChangeEdition):
            assert event.corp_id is not None
            return self.fetch_auth_info(suite_id, event.corp_id, requested_at=message.sent_at)
        return SyncResult(Outcome.IGNORED, suite_id, event.corp_id, detail=event.info_type)

    def _exchange(
        self, suite_id: str, auth_code: str, *, rotate: bool, remaining: Remaining | None, event_time: int | None
    ) -> SyncResult:
        """Exchange the AuthCode once, journal the answer, then complete the install from the journal entry."""
        key = auth_code_key(suite_id, auth_code)
        entry = self._journal.get(suite_id, key)
        if entry is not None:
            return self._resume(entry)
        if remaining is not None and remaining() < MIN_EXCHANGE_TIME:
            raise RetryLaterError("too little time left to exchange an AuthCode and keep the answer")
        # Both homes of the answer seal it with KMS: fail now, AuthCode unspent, if KMS cannot.
        self._journal.check_sealing(suite_id)
        obtained_at = self._clock()

        def exchange(token: str) -> PermanentCodeGrant:
            # The call's retries end in time for the journal write (EXCHANGE_RESERVE before the end).
            budget = None if remaining is None else remaining() - EXCHANGE_RESERVE
            return self._client.get_permanent_code(token, auth_code, budget=budget)

        try:
            grant = self._tokens.with_suite_token(suite_id, exchange)
        except WeComAuthCodeError:
            # Used or expired. A concurrent delivery may have journaled it meanwhile; otherwise
            # the answer of its only exchange never reached a journal: the install is lost.
            entry = self._journal.get(suite_id, key)
            if entry is not None:
                return self._resume(entry)
            return SyncResult(Outcome.INSTALL_LOST, suite_id, event_time=event_time)
        entry = JournalEntry(
            suite_id,
            key,
            grant.corp_id,
            obtained_at,
            rotate,
            grant.context,
            grant.permanent_code,
            event_time=event_time,
        )
        # The one write that must not fail: retried until shortly before the function's end.
        budget = (remaining() if remaining is not None else MIN_EXCHANGE_TIME) - EXCHANGE_RESERVE
        try:
            entry = self._journal.record(entry, deadline=self._clock() + max(budget, 1.0))
        except Exception:
            # The answer exists only in this process now. Its second durable home is the
            # credential store: completing the install without the journal keeps the corp
            # unless that fails too (then the retry meets 40078 and reports INSTALL_LOST).
            return self._complete(entry, resumed=False, journaled=False)
        return self._complete(entry, resumed=False)

    def resume(self, suite_id: str, key: str) -> SyncResult:
        """Complete an open journal entry (the reconcile sweep's request); nothing if it is gone or closed."""
        entry = self._journal.get(suite_id, key)
        if entry is None:
            return SyncResult(Outcome.DUPLICATE, suite_id, detail="no journal entry")
        return self._resume(entry)

    def _resume(self, entry: JournalEntry) -> SyncResult:
        if not entry.open:
            return SyncResult(Outcome.DUPLICATE, entry.suite_id, entry.corp_id)
        return self._complete(entry, resumed=True)

    def _complete(self, entry: JournalEntry, *, resumed: bool, journaled: bool = True) -> SyncResult:
        """The steps after the journal write, each idempotent: code, first state, auth info, close."""
        suite_id, corp_id = entry.suite_id, entry.corp_id
        replaced: bool | None = None  # whether the code put replaced a previous one; None: not put yet
        if not journaled:
            # The answer's one durable home: stored before anything that needs DynamoDB (the
            # journal's table may be what failed). Forward-only: never over a newer code.
            replaced = self._codes.put(
                suite_id, corp_id, entry.permanent_code, entry.obtained_at, event_time=entry.event_time
            )
        state = self._snapshots.get(suite_id, corp_id)
        cancelled_at = state.cancelled_at if state is not None and state.status == "cancelled" else None
        lifecycle_at = state.lifecycle_at if state is not None else None
        if resume_action(entry, cancelled_at, lifecycle_at=lifecycle_at) is ResumeAction.SUPERSEDE:
            if not journaled and cancelled_at is not None:  # the corp left after this install: no code kept
                self._tokens.forget_corp(suite_id, corp_id, cancelled_at_event=_event(lifecycle_at))
            return self._superseded(entry, journaled=journaled)
        if replaced is None:
            replaced = self._codes.put(
                suite_id, corp_id, entry.permanent_code, entry.obtained_at, event_time=entry.event_time
            )
        if replaced:
            self._tokens.forget_corp_token(suite_id, corp_id)  # a token of the previous code is void
        recorded = self._snapshots.record(
            suite_id,
            corp_id,
            "install",
            entry.context,
            entry.obtained_at,
            reactivate=True,
            lifecycle_at=entry.event_time,
        )
        if recorded.superseded:
            # A newer lifecycle event landed since the read above (a cancel_auth in the corp's own
            # group, processed concurrently): if it left the corp cancelled, the code just stored
            # must go too; a newer install keeps its own (newer) code.
            after = self._snapshots.get(suite_id, corp_id)
            if after is not None and after.status == "cancelled":
                self._tokens.forget_corp(suite_id, corp_id, cancelled_at_event=_event(after.lifecycle_at))
            return self._superseded(entry, journaled=journaled)
        # The install record reactivated a tombstone; a fetch already made after this exchange
        # (by the delivery that crashed before closing the entry) coalesces: no second call.
        result = self.fetch_auth_info(suite_id, corp_id, requested_at=entry.obtained_at)
        if journaled:
            self._journal.close(entry, JournalStatus.COMPLETED)
        return SyncResult(
            Outcome.ROTATED if entry.rotate else Outcome.INSTALLED,
            suite_id,
            corp_id,
            result.version,
            result.changed,
            detail="resumed" if resumed else None if journaled else "unjournaled",
        )

    def _superseded(self, entry: JournalEntry, *, journaled: bool) -> SyncResult:
        if journaled:
            self._journal.close(entry, JournalStatus.SUPERSEDED)
        return SyncResult(Outcome.SUPERSEDED, entry.suite_id, entry.corp_id, detail="install older than a cancel")

    def cancel(self, suite_id: str, corp_id: str, *, event_time: int | None = None) -> SyncResult:
        """Tombstone the corp, then delete its credentials, unless an install newer than this cancel is stored.

        ⚠️ WeCom requires providers to delete a cancelled corp's data (spec §2): credentials go
        at once; the snapshot store keeps only a dated tombstone that expires. The tombstone is
        written first, on the lifecycle rule's condition (a late cancel_auth never deletes a
        newer install); a crash before the credentials are deleted is finished by the retry,
        which finds the corp already cancelled.
        """
        cancelled = self._snapshots.mark_cancelled(
            suite_id, corp_id, self._clock(), CANCELLED_RETENTION, lifecycle_at=event_time
        )
        if cancelled.superseded:
            return SyncResult(Outcome.SUPERSEDED, suite_id, corp_id, detail="cancel older than an install")
        # A re-install may be applied concurrently (another container): its code, stored after the
        # tombstone above, is newer than this cancel and stays (the install then reactivates the corp).
        self._tokens.forget_corp(suite_id, corp_id, cancelled_at_event=event_time)
        return SyncResult(Outcome.CANCELLED, suite_id, corp_id)

    def reconcile(self, suite_id: str, corp_id: str, *, requested_at: float) -> SyncResult:
        """A reconcile request: re-fetch auth info and, since license accounts expire without a callback,
        the license section if an account it counts has expired; one read of the corp's state serves both."""
        state = self._snapshots.get(suite_id, corp_id)
        result = self._fetch_auth_info(suite_id, corp_id, state, requested_at=requested_at)
        if self._entitlements is not None and state is not None:
            self._entitlements.refresh_expired_license(suite_id, corp_id, state)
        return result

    def fetch_auth_info(self, suite_id: str, corp_id: str, *, requested_at: float) -> SyncResult:
        return self._fetch_auth_info(
            suite_id, corp_id, self._snapshots.get(suite_id, corp_id), requested_at=requested_at
        )

    def _fetch_auth_info(
        self, suite_id: str, corp_id: str, state: CorpStateView | None, *, requested_at: float
    ) -> SyncResult:
        from authsync.wecom.authinfo import derive_verification
        from authsync.wecom.entitlements import edition_of

        if state is not None:
            if state.status == "cancelled":
                return SyncResult(Outcome.SKIPPED_CANCELLED, suite_id, corp_id)
            if (state.auth_info_fetched_at or 0) >= requested_at:
                return SyncResult(Outcome.FRESH, suite_id, corp_id, state.auth_info_version)
        code = self._codes.get(suite_id, corp_id)
        if code is None:
            if state is None and self._clock() - requested_at < PENDING_INSTALL_GRACE:
                raise RetryLaterError("corp not installed yet; its create_auth may still be queued")
            return SyncResult(Outcome.UNKNOWN_CORP, suite_id, corp_id)
        fetched_at = self._clock()  # taken before the call: an earlier fetch never wins over a later one
        try:
            document = with_fresh_code(  # a code rotated by another container is re-read once
                code,
                lambda current: self._tokens.with_suite_token(
                    suite_id, lambda token: self._client.get_auth_info(token, corp_id, current)
                ),
                reread=lambda: self._codes.get(suite_id, corp_id, force=True),
                stale=lambda exc: isinstance(exc, WeComAuthorizationInvalidError),
            )
        except WeComAuthorizationInvalidError:
            # ⚠️ 40084: the permanent code stopped working: a lost cancel_auth, or a 代开发 secret
            # reset whose own event is still queued. Deleting the corp's data on a guess could
            # destroy its history during a reset, and retrying cannot help: the message is
            # consumed with this outcome (logged and counted by the handler), and the next
            # event or reconcile for the corp decides.
            return SyncResult(Outcome.AUTHORIZATION_INVALID, suite_id, corp_id)
        verification = derive_verification(document, fetched_at)
        derived = {"verification": verification.model_dump(mode="json"), "edition": edition_of(document)}
        if self._entitlements is not None:
            known = state.kind("auth_info").derived if state is not None else None
            derived["ids"] = self._entitlements.corp_ids(suite_id, corp_id, (known or {}).get("ids"))
        recorded = self._snapshots.record(suite_id, corp_id, "auth_info", document, fetched_at, derived=derived)
        if not recorded.stale:
            self._chatdata.request(ChatdataRequest(suite_id, corp_id, fetched_at))
        return SyncResult(Outcome.FETCHED, suite_id, corp_id, recorded.version, recorded.changed)


def _event(lifecycle_at: float | None) -> int | None:
    """A stored lifecycle time as the WeCom TimeStamp it was (whole seconds), or None."""
    return None if lifecycle_at is None else int(lifecycle_at)
