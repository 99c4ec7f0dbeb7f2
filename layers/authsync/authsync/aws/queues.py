"""The two FIFO queues' message contracts, in one place: what is written, how it is read back, group and dedup ids.

**auth-events** (callback-ingest and reconcile write, auth-info reads: :class:`QueuedEvent`
→ :class:`AuthMessage`). A callback's body is the decrypted, authenticated event
document exactly as WeCom sent it, so the fetch pipeline re-reads it with the same
:func:`parse_event` (one parser, one schema); a reconcile request's body is JSON.
Message attributes carry what routing and dashboards need (``kind``, ``suite_id``,
``info_type``, ``corp_id``).

* ``MessageGroupId`` = ``suite_id:corp_id`` (:func:`corp_group`) keeps each corp's events in order.
  ``create_auth`` and ``reset_permanent_code`` name no corp (only an AuthCode), so
  they get a group of their own derived from the code; the fetch pipeline resolves
  the corp from the exchange.
* ``MessageDeduplicationId`` = SHA-256 of the event's canonical content (sorted
  field/value pairs), so WeCom's retries collapse into one message within SQS's
  5-minute window whether or not WeCom re-encrypts them. A reconcile request's is
  derived from the corp and the reconcile window, so a retried schedule run collapses.
* A *resume* request (reconcile's sweep of open exchange-journal entries) names the suite
  and the entry's key (a hash, no secret); its group is the entry's own.

**chatdata** (auth-info writes, chatdata reads: :class:`ChatdataRequest`): JSON, one group
per corp (:func:`corp_group`), deduplicated by corp and request time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

    from authsync.wecom.callbacks import AuthEvent

__all__ = [
    "AUTH_CODE_MAX_RECEIVES",
    "AuthMessage",
    "ChatdataRequest",
    "ChatdataRequests",
    "EventPublisher",
    "QueuedEvent",
    "RecordingPublisher",
    "SqsChatdataRequests",
    "SqsEventPublisher",
    "SqsVisibility",
    "batch_entry",
    "canonical_digest",
    "corp_group",
    "queued_event",
    "reconcile_request",
    "resume_request",
    "retry_delay",
]

MAX_GROUP_ID = 128


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def corp_group(suite_id: str, corp_id: str) -> str:
    """The message group of one corp of one suite, on both queues: its events stay in order."""
    return f"{suite_id}:{corp_id}"[:MAX_GROUP_ID]


class QueuedEvent(NamedTuple):
    """One FIFO message. ``body`` holds secrets (auth codes): never log it."""

    group_id: str
    dedup_id: str
    body: str
    attributes: dict[str, str]

    def __repr__(self) -> str:
        return f"QueuedEvent(group_id={self.group_id!r}, dedup_id={self.dedup_id!r}, attributes={self.attributes!r})"


def canonical_digest(fields: dict[str, Any]) -> str:
    """SHA-256 over the sorted field/value pairs: stable across re-encryption and element order.

    Each value is tagged: ``s`` + text, or ``j`` + JSON for nested (dict) and repeated (list)
    elements, so a text value can never encode like a structured one. The separators
    ``\x1e``/``\x1f`` cannot occur in names or text: XML 1.0 forbids those characters.
    """
    parts = []
    for key in sorted(fields):
        value = fields[key]
        text = "s" + value if isinstance(value, str) else "j" + json.dumps(value, sort_keys=True, ensure_ascii=False)
        parts.append(f"{key}\x1e{text}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def queued_event(event: AuthEvent, message: bytes) -> QueuedEvent:
    """Build the FIFO message for an authorization event decrypted from ``message``."""
    corp = event.corp_id
    if corp:
        group = corp_group(event.suite_id, corp)
    else:
        # Only an AuthCode: a group of its own, named by the code's hash (never the code).
        group = f"{event.suite_id}:code:{_sha256(str(event.raw.get('AuthCode', '')))[:24]}"[:MAX_GROUP_ID]
    attributes = {"kind": "callback", "suite_id": event.suite_id, "info_type": event.info_type}
    if corp:
        attributes["corp_id"] = corp
    return QueuedEvent(
        group_id=group,
        dedup_id=canonical_digest(event.raw),
        body=message.decode("utf-8"),
        attributes=attributes,
    )


def reconcile_request(suite_id: str, corp_id: str, window: int) -> QueuedEvent:
    """The reconcile request for one corp in reconcile window ``window`` (a retried run collapses)."""
    group = corp_group(suite_id, corp_id)
    return QueuedEvent(
        group_id=group,
        dedup_id=_sha256(f"reconcile:{suite_id}:{corp_id}:{window}"),
        body=json.dumps({"kind": "reconcile", "suite_id": suite_id, "corp_id": corp_id}),
        attributes={"kind": "reconcile", "suite_id": suite_id, "corp_id": corp_id},
    )


def resume_request(suite_id: str, entry_key: str, window: int) -> QueuedEvent:
    """Complete the open exchange-journal entry ``entry_key`` (once per reconcile window)."""
    return QueuedEvent(
        group_id=f"{suite_id}:journal:{entry_key[:24]}"[:MAX_GROUP_ID],
        dedup_id=_sha256(f"resume:{suite_id}:{entry_key}:{window}"),
        body=json.dumps({"kind": "resume", "suite_id": suite_id, "entry_key": entry_key}),
        attributes={"kind": "resume", "suite_id": suite_id},
    )


def _attributes(item: QueuedEvent) -> dict[str, MessageAttributeValueTypeDef]:
    return {key: {"DataType": "String", "StringValue": value} for key, value in item.attributes.items()}


def batch_entry(index: int, item: QueuedEvent) -> SendMessageBatchRequestEntryTypeDef:
    """``item`` as entry ``index`` of a SendMessageBatch call."""
    return {
        "Id": str(index),
        "MessageBody": item.body,
        "MessageGroupId": item.group_id,
        "MessageDeduplicationId": item.dedup_id,
        "MessageAttributes": _attributes(item),
    }


@dataclass(frozen=True, slots=True)
class AuthMessage:
    """One message of the auth-events queue, as auth-info reads it back."""

    kind: Literal["callback", "reconcile", "resume"]
    suite_id: str
    corp_id: str | None
    body: str
    sent_at: float
    entry_key: str | None = None
    """For ``resume``: the exchange-journal entry to complete."""
    info_type: str | None = None
    """For a callback: its InfoType attribute (``create_auth``, ...), as callback-ingest set it."""

    @property
    def spends_auth_code(self) -> bool:
        """A callback whose handling exchanges a single-use AuthCode (retried fast: the code lives 10 minutes)."""
        return self.kind == "callback" and self.info_type in {"create_auth", "reset_permanent_code"}

    @classmethod
    def from_sqs(cls, record: dict[str, Any]) -> AuthMessage:
        attributes = record.get("messageAttributes", {})
        kind = _attribute(attributes, "kind") or "callback"
        sent_at = int(record.get("attributes", {}).get("SentTimestamp", "0")) / 1000
        body = str(record.get("body", ""))
        if kind == "reconcile":
            document = json.loads(body)
            return cls("reconcile", str(document["suite_id"]), str(document["corp_id"]), body, sent_at)
        if kind == "resume":
            document = json.loads(body)
            return cls("resume", str(document["suite_id"]), None, body, sent_at, entry_key=str(document["entry_key"]))
        return cls(
            "callback",
            _attribute(attributes, "suite_id") or "",
            _attribute(attributes, "corp_id"),
            body,
            sent_at,
            info_type=_attribute(attributes, "info_type"),
        )


def _attribute(attributes: dict[str, Any], name: str) -> str | None:
    value = attributes.get(name, {})
    text = value.get("stringValue") or value.get("StringValue")
    return str(text) if text else None


class EventPublisher(Protocol):
    """Where authorization events go. Raising means "not stored": the caller answers 5xx."""

    def publish(self, item: QueuedEvent) -> None: ...


class SqsEventPublisher:
    """Publishes to the SQS FIFO queue at ``queue_url``."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def publish(self, item: QueuedEvent) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=item.body,
            MessageGroupId=item.group_id,
            MessageDeduplicationId=item.dedup_id,
            MessageAttributes=_attributes(item),
        )


@dataclass
class RecordingPublisher:
    """In-memory publisher for the benchmark and unit tests."""

    items: list[QueuedEvent] = field(default_factory=list)

    def publish(self, item: QueuedEvent) -> None:
        self.items.append(item)


@dataclass(frozen=True, slots=True)
class ChatdataRequest:
    """One message of the chatdata queue: fetch this corp's chatdata state (requested at ``requested_at``)."""

    suite_id: str
    corp_id: str
    requested_at: float

    def to_json(self) -> str:
        return json.dumps({"suite_id": self.suite_id, "corp_id": self.corp_id, "requested_at": self.requested_at})

    @classmethod
    def from_json(cls, text: str) -> ChatdataRequest:
        document = json.loads(text)
        return cls(str(document["suite_id"]), str(document["corp_id"]), float(document["requested_at"]))


class ChatdataRequests(Protocol):
    def request(self, item: ChatdataRequest) -> None: ...


class SqsChatdataRequests:
    """The chatdata FIFO queue: one group per corp; a repeated request for the same fetch collapses."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def request(self, item: ChatdataRequest) -> None:
        group = corp_group(item.suite_id, item.corp_id)
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=item.to_json(),
            MessageGroupId=group,
            MessageDeduplicationId=_sha256(f"{item.suite_id}:{item.corp_id}:{item.requested_at:.3f}"),
        )


class SqsVisibility:
    """Brings a failed message back before its queue's visibility timeout ends (``ChangeMessageVisibility``).

    Why: a failing AuthCode message would otherwise wait the queue's 180 s per receive, five
    receives ≈ 15 min, longer than the AuthCode lives (10 min). The handler shortens each
    failed AuthCode message's wait with :func:`retry_delay`.
    """

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        self._client.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


AUTH_CODE_RETRY_DELAYS = (5, 15, 30, 60)
"""Seconds before receive n+1 of a failed AuthCode message (n = 1..4; the 5th failure goes to the DLQ):
≈ 2 minutes from the first failure to the dead-letter queue and its alarm, well inside the code's 10 minutes."""

AUTH_CODE_MAX_RECEIVES = len(AUTH_CODE_RETRY_DELAYS) + 1
"""The auth-events queue's ``maxReceiveCount`` (template.yaml; a test keeps them equal)."""


def retry_delay(receive_count: int) -> int:
    """The wait before the next receive of an AuthCode message that failed on receive ``receive_count``."""
    index = max(1, receive_count) - 1
    return AUTH_CODE_RETRY_DELAYS[min(index, len(AUTH_CODE_RETRY_DELAYS) - 1)]
