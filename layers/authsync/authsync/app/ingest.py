"""The callback-ingest logic: verify, decrypt, parse and route one 指令回调 request.

The handler turns HTTP into calls of :class:`CallbackIngestor`; this module knows
nothing about API Gateway. Every client error becomes a :class:`CallbackRejected`
with an HTTP status and a short machine-readable reason, raised *before* anything
is stored or enqueued.

Infrastructure failures (Secrets Manager, SQS) do not become a 5xx: WeCom re-sends only
after a network failure or a timeout (spec §1.4), so a 503 may lose the event. The request,
as WeCom sent it, goes to the inbox (:mod:`authsync.aws.inbox`) and WeCom gets ``success``;
:func:`drain_inbox` replays it later through :meth:`CallbackIngestor.replay`. Only when the
inbox cannot be written either does the failure propagate (the handler's 5xx, alarmed).

A verified callback this project cannot act on — an InfoType not modelled yet, or a known one
with a field missing (no corp to route it to) — is answered ``success`` too (WeCom would only
re-send the same document) and kept, secrets redacted, in the unmodelled store for 30 days
(:mod:`authsync.domain.unmodelled`), so it can be replayed once modelled. That write is best
effort: if it fails, the result says so (logged and counted) and WeCom still gets ``success``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

from authsync.aws.inbox import KeptCallback
from authsync.aws.queues import EventPublisher, queued_event
from authsync.aws.suites import Suite, UnknownSuiteError
from authsync.aws.tickets import TicketOutcome
from authsync.aws.unmodelled import UnmodelledCallback
from authsync.domain.unmodelled import keep as keep_document
from authsync.wecom import callbacks, safexml
from authsync.wecom.callbacks import AuthEvent, GenericEvent, MalformedEventError, SuiteTicket
from authsync.wecom.crypto import CallbackCryptoError, Decrypted, ReceiveIdError, SignatureError

__all__ = ["CallbackIngestor", "CallbackRejected", "DrainReport", "IngestResult", "Outcome", "drain_inbox"]


class CallbackRejected(Exception):
    """A client error: answer ``status`` with ``reason``; nothing was stored or enqueued."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.status = status
        self.reason = reason
        self.detail = detail


class Outcome(enum.Enum):
    ENQUEUED = "enqueued"
    TICKET_STORED = "ticket_stored"
    TICKET_STALE = "ticket_stale"
    TICKET_DUPLICATE = "ticket_duplicate"
    ACKNOWLEDGED = "acknowledged"
    KEPT = "kept"
    """Not handled now (SQS or Secrets Manager failed): kept in the inbox for a replay; WeCom got ``success``."""
    UNMODELLED = "unmodelled"
    """An InfoType (or Event) not modelled: kept in the unmodelled store (see ``stored``); WeCom got ``success``."""
    MALFORMED = "malformed"
    """A known InfoType that cannot be routed (a field missing or invalid): kept like ``UNMODELLED``."""


class IngestResult(NamedTuple):
    """What happened to an accepted callback (safe to log: no secret values)."""

    outcome: Outcome
    kind: str
    corp_id: str | None = None
    dedup_id: str | None = None
    reason: str | None = None
    """For ``KEPT``: the error type of what failed; for ``MALFORMED``: which fields (names only);
    for ``UNMODELLED``/``MALFORMED`` not stored: the error type of the failed write."""
    stored: bool | None = None
    """For ``UNMODELLED``/``MALFORMED``: whether the unmodelled store kept it (False: only logged and counted)."""
    truncated: bool = False
    """For ``UNMODELLED``/``MALFORMED``: the kept document was cut (or withheld) to bound it."""


class SuiteSource(Protocol):
    def get(self, suite_id: str) -> Suite: ...


class TicketSink(Protocol):
    def store(self, suite_id: str, ticket: str, timestamp: int) -> TicketOutcome: ...


class Inbox(Protocol):
    """Where a request that cannot be handled now is kept (adapter: :class:`authsync.aws.inbox.DynamoInbox`)."""

    def put(self, kept: KeptCallback) -> bool: ...


class UnmodelledSink(Protocol):
    """Where unmodelled callbacks are kept (adapter: :class:`authsync.aws.unmodelled.DynamoUnmodelledStore`)."""

    def put(self, item: UnmodelledCallback) -> bool: ...


class KeptInbox(Inbox, Protocol):
    """The inbox as inbox-drain reads it."""

    def items(self) -> Iterator[KeptCallback]: ...

    def delete(self, kept: KeptCallback) -> None: ...


_TICKET_OUTCOMES = {
    TicketOutcome.STORED: Outcome.TICKET_STORED,
    TicketOutcome.STALE: Outcome.TICKET_STALE,
    TicketOutcome.DUPLICATE: Outcome.TICKET_DUPLICATE,
}


def _required(query: Mapping[str, str], *names: str) -> list[str]:
    values = [query.get(name, "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise CallbackRejected(400, "missing_parameter", ", ".join(missing))
    return values


def _rejected(exc: Exception) -> CallbackRejected:
    """Map a protocol error to its HTTP answer. Messages carry no secret or decrypted value."""
    if isinstance(exc, SignatureError | ReceiveIdError):
        return CallbackRejected(403, exc.reason, str(exc))
    if isinstance(exc, CallbackCryptoError | safexml.XmlError | MalformedEventError):
        return CallbackRejected(400, exc.reason, str(exc))
    raise exc  # pragma: no cover - only called with the errors above


def _check_receive_id(decrypted: Decrypted, fields: Mapping[str, object]) -> None:
    """Accept a receiveid outside the suite's set only for an Event-style document naming that corp.

    Such documents (``change_app_admin``, D-95038) come from the 数据回调 URL, encrypted for the
    corp (spec §1.1); the signature, checked first, already authenticates them. Anything else
    with a foreign receiveid is refused (403), as before.
    """
    if decrypted.accepted:
        return
    to_user = fields.get("ToUserName")
    event_style = fields.get("MsgType") is not None and "InfoType" not in fields
    if not (event_style and isinstance(to_user, str) and to_user.strip() == decrypted.receive_id):
        raise ReceiveIdError("receiveid not accepted by this endpoint")


def _check_suite(claimed: str | None, suite_id: str) -> None:
    """A verified event naming another suite than its URL is refused (403): one suite's key must not feed another's."""
    if claimed is not None and claimed != suite_id:
        raise CallbackRejected(403, "suite_mismatch", "SuiteId in the event differs from the URL")


class CallbackIngestor:
    """Handles GET (URL verification) and POST (events) for ``/wecom/callback/{suite_id}``."""

    def __init__(
        self,
        suites: SuiteSource,
        tickets: TicketSink,
        publisher: EventPublisher,
        *,
        inbox: Inbox | None = None,
        unmodelled: UnmodelledSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._suites = suites
        self._tickets = tickets
        self._publisher = publisher
        self._inbox = inbox
        self._unmodelled = unmodelled
        self._clock = clock

    def _suite(self, suite_id: str) -> Suite:
        try:
            return self._suites.get(suite_id)
        except UnknownSuiteError as exc:
            raise CallbackRejected(404, exc.reason) from None

    def verify_url(self, suite_id: str, query: Mapping[str, str]) -> str:
        """Return the decrypted ``echostr`` plaintext to be echoed byte-exact."""
        signature, timestamp, nonce, echostr = _required(query, "msg_signature", "timestamp", "nonce", "echostr")
        suite = self._suite(suite_id)
        # ⚠️ Spec §6.11: an echostr is base64, which has no spaces; a space means a raw "+"
        # was form-decoded on the way in.
        echostr = echostr.replace(" ", "+")
        try:
            return suite.crypto.decrypt_echostr(signature, timestamp, nonce, echostr)
        except CallbackCryptoError as exc:
            raise _rejected(exc) from None

    def receive(self, suite_id: str, query: Mapping[str, str], body: bytes) -> IngestResult:
        """Verify, decrypt, parse and route one POSTed callback; keep it in the inbox if ours fails."""
        return self._receive(suite_id, query, body, keep=self._inbox is not None)

    def replay(self, kept: KeptCallback) -> IngestResult:
        """Handle a kept request again (inbox-drain): a failure now propagates, and the request stays kept."""
        return self._receive(kept.suite_id, kept.query, kept.body, keep=False)

    def _receive(self, suite_id: str, query: Mapping[str, str], body: bytes, *, keep: bool) -> IngestResult:
        if len(body) > callbacks.MAX_BODY_BYTES:
            raise CallbackRejected(413, "too_large", f"body over {callbacks.MAX_BODY_BYTES} bytes")
        signature, timestamp, nonce = _required(query, "msg_signature", "timestamp", "nonce")
        try:
            suite = self._suite(suite_id)
        except CallbackRejected:
            raise
        except Exception as exc:
            # The suite's configuration cannot be read: the request cannot even be verified now.
            if not keep:
                raise
            return self._keep(KeptCallback(suite_id, signature, timestamp, nonce, body, 0.0, ""), exc, "unverified")
        try:
            envelope = callbacks.parse_envelope(body)
            decrypted = suite.crypto.verify_and_decrypt(
                signature, timestamp, nonce, envelope.encrypt, any_receive_id=True
            )
            event = callbacks.parse_event(decrypted.message, suite_id=suite_id)
            _check_receive_id(decrypted, event.raw)
        except MalformedEventError as exc:
            # Verified, decrypted and XML, but not routable: acknowledged and kept, never a retry loop.
            try:
                _check_receive_id(decrypted, exc.fields)
            except ReceiveIdError as refused:
                raise _rejected(refused) from None
            claimed = exc.fields.get("SuiteId")
            _check_suite(claimed.strip() if isinstance(claimed, str) and claimed.strip() else None, suite_id)
            corp = exc.fields.get("AuthCorpId") or exc.fields.get("PaidCorpId")  # PaidCorpId: order events
            return self._keep_unmodelled(
                suite_id,
                decrypted.message,
                exc.fields,
                Outcome.MALFORMED,
                kind=exc.info_type,
                corp_id=corp.strip() if isinstance(corp, str) else None,
                problem=str(exc),
            )
        except (CallbackCryptoError, safexml.XmlError) as exc:
            raise _rejected(exc) from None
        _check_suite(event.suite_id, suite_id)
        try:
            return self.route(suite_id, event, decrypted.message)
        except Exception as exc:
            if not keep:
                raise
            kind = event.kind if isinstance(event, GenericEvent) else event.info_type
            request = KeptCallback(suite_id, signature, timestamp, nonce, body, 0.0, "")
            return self._keep(request, exc, kind, event.corp_id)

    def _keep(self, request: KeptCallback, failure: Exception, kind: str, corp_id: str | None = None) -> IngestResult:
        assert self._inbox is not None
        reason = type(failure).__name__
        try:
            self._inbox.put(replace(request, received_at=self._clock(), reason=reason))
        except Exception:
            raise failure from None  # neither the work nor the inbox: the handler's 5xx (alarmed)
        return IngestResult(Outcome.KEPT, kind, corp_id, reason=reason)

    def route(self, suite_id: str, event: callbacks.CallbackEvent | GenericEvent, message: bytes) -> IngestResult:
        """Act on a verified event: keep the ticket, enqueue authorization events, log the rest."""
        if isinstance(event, SuiteTicket):
            outcome = self._tickets.store(suite_id, event.suite_ticket.get_secret_value(), event.timestamp)
            return IngestResult(_TICKET_OUTCOMES[outcome], event.info_type)
        if isinstance(event, AuthEvent):
            item = queued_event(event, message)
            self._publisher.publish(item)
            return IngestResult(Outcome.ENQUEUED, event.info_type, event.corp_id, item.dedup_id)
        if isinstance(event, GenericEvent):
            return self._keep_unmodelled(
                suite_id, message, event.raw, Outcome.UNMODELLED, kind=event.kind, corp_id=event.corp_id
            )
        return IngestResult(Outcome.ACKNOWLEDGED, event.info_type, event.corp_id)  # pragma: no cover

    def _keep_unmodelled(
        self,
        suite_id: str,
        message: bytes,
        fields: dict[str, object],
        outcome: Outcome,
        *,
        kind: str,
        corp_id: str | None,
        problem: str | None = None,
    ) -> IngestResult:
        """Keep a callback we cannot act on (secrets redacted, bounded); a failed write only shows in the result."""
        kept = keep_document(suite_id, message, fields)
        truncated = kept.truncated or kept.document is None
        if self._unmodelled is None:
            return IngestResult(outcome, kind, corp_id, reason=problem, stored=False, truncated=truncated)
        item = UnmodelledCallback(suite_id, kind, outcome.value, self._clock(), kept, corp_id, problem)
        try:
            self._unmodelled.put(item)
        except Exception as exc:
            return IngestResult(outcome, kind, corp_id, reason=type(exc).__name__, stored=False, truncated=truncated)
        return IngestResult(outcome, kind, corp_id, reason=problem, stored=True, truncated=truncated)


@dataclass
class DrainReport:
    """One inbox-drain run (safe to log: counts, kinds and error types only)."""

    replayed: dict[str, int] = field(default_factory=dict)
    """Handled now, by outcome."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Turned out to be a client error (bad signature of a request kept unverified, ...), by reason: dropped."""
    failed: dict[str, int] = field(default_factory=dict)
    """Still failing, by error type: kept for the next run."""
    oldest_age: float = 0.0
    """Seconds since the oldest request still kept was received (0 when the inbox is empty)."""


def drain_inbox(ingestor: CallbackIngestor, inbox: KeptInbox, *, clock: Callable[[], float] = time.time) -> DrainReport:
    """Replay every kept request; delete those handled or rejected, keep those still failing."""
    report = DrainReport()
    now = clock()
    for kept in inbox.items():
        try:
            result = ingestor.replay(kept)
        except CallbackRejected as exc:
            report.rejected[exc.reason] = report.rejected.get(exc.reason, 0) + 1
        except Exception as exc:
            name = type(exc).__name__
            report.failed[name] = report.failed.get(name, 0) + 1
            report.oldest_age = max(report.oldest_age, now - kept.received_at)
            continue
        else:
            report.replayed[result.outcome.value] = report.replayed.get(result.outcome.value, 0) + 1
        inbox.delete(kept)
    return report
