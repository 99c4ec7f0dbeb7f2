"""The callback-ingest logic: verify, decrypt, parse and route one 指令回调 request.

The handler turns HTTP into calls of :class:`CallbackIngestor`; this module knows
nothing about API Gateway. Every client error becomes a :class:`CallbackRejected`
with an HTTP status and a short machine-readable reason, raised *before* anything
is stored or enqueued. Infrastructure failures (Secrets Manager, SQS) propagate so
the handler answers 5xx and WeCom retries: nothing valid is lost.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from authsync.aws.queues import EventPublisher, queued_event
from authsync.aws.suites import Suite, UnknownSuiteError
from authsync.aws.tickets import TicketOutcome
from authsync.wecom import callbacks, safexml
from authsync.wecom.callbacks import AuthEvent, GenericEvent, MalformedEventError, SuiteTicket
from authsync.wecom.crypto import CallbackCryptoError, ReceiveIdError, SignatureError

__all__ = ["CallbackIngestor", "CallbackRejected", "IngestResult", "Outcome"]


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


class IngestResult(NamedTuple):
    """What happened to an accepted callback (safe to log: no secret values)."""

    outcome: Outcome
    kind: str
    corp_id: str | None = None
    dedup_id: str | None = None


class SuiteSource(Protocol):
    def get(self, suite_id: str) -> Suite: ...


class TicketSink(Protocol):
    def store(self, suite_id: str, ticket: str, timestamp: int) -> TicketOutcome: ...


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


class CallbackIngestor:
    """Handles GET (URL verification) and POST (events) for ``/wecom/callback/{suite_id}``."""

    def __init__(self, suites: SuiteSource, tickets: TicketSink, publisher: EventPublisher) -> None:
        self._suites = suites
        self._tickets = tickets
        self._publisher = publisher

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
        """Verify, decrypt, parse and route one POSTed callback."""
        if len(body) > callbacks.MAX_BODY_BYTES:
            raise CallbackRejected(413, "too_large", f"body over {callbacks.MAX_BODY_BYTES} bytes")
        signature, timestamp, nonce = _required(query, "msg_signature", "timestamp", "nonce")
        suite = self._suite(suite_id)
        try:
            envelope = callbacks.parse_envelope(body)
            decrypted = suite.crypto.verify_and_decrypt(signature, timestamp, nonce, envelope.encrypt)
            event = callbacks.parse_event(decrypted.message)
        except (CallbackCryptoError, safexml.XmlError, MalformedEventError) as exc:
            raise _rejected(exc) from None
        if event.suite_id is not None and event.suite_id != suite_id:
            raise CallbackRejected(403, "suite_mismatch", "SuiteId in the event differs from the URL")
        return self.route(suite_id, event, decrypted.message)

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
            return IngestResult(Outcome.ACKNOWLEDGED, event.kind, event.corp_id)
        return IngestResult(Outcome.ACKNOWLEDGED, event.info_type, event.corp_id)  # pragma: no cover
