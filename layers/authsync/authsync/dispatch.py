"""Authorization events onto the SQS FIFO queue, one message group per corp.

The message body is the decrypted, authenticated event document exactly as WeCom
sent it, so the fetch pipeline re-reads it with the same :func:`parse_event` (one
parser, one schema). Message attributes carry what routing and dashboards need.

* ``MessageGroupId`` = ``suite_id:corp_id`` keeps each corp's events in order.
  ``create_auth`` and ``reset_permanent_code`` name no corp (only an AuthCode), so
  they get a group of their own derived from the code; the fetch pipeline resolves
  the corp from the exchange.
* ``MessageDeduplicationId`` = SHA-256 of the event's canonical content (sorted
  field/value pairs), so WeCom's retries collapse into one message within SQS's
  5-minute window whether or not WeCom re-encrypts them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from authsync.callbacks import AuthEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

__all__ = [
    "EventPublisher",
    "QueuedEvent",
    "RecordingPublisher",
    "SqsEventPublisher",
    "canonical_digest",
    "queued_event",
]


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
        group = f"{event.suite_id}:{corp}"
    else:
        code = event.raw.get("AuthCode", "")
        group = f"{event.suite_id}:code:{hashlib.sha256(str(code).encode()).hexdigest()[:24]}"
    attributes = {"kind": "callback", "suite_id": event.suite_id, "info_type": event.info_type}
    if corp:
        attributes["corp_id"] = corp
    return QueuedEvent(
        group_id=group[:128],
        dedup_id=canonical_digest(event.raw),
        body=message.decode("utf-8"),
        attributes=attributes,
    )


class EventPublisher(Protocol):
    """Where authorization events go. Raising means "not stored": the caller answers 5xx."""

    def publish(self, item: QueuedEvent) -> None: ...


class SqsEventPublisher:
    """Publishes to the SQS FIFO queue at ``queue_url``."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def publish(self, item: QueuedEvent) -> None:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            key: {"DataType": "String", "StringValue": value} for key, value in item.attributes.items()
        }
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=item.body,
            MessageGroupId=item.group_id,
            MessageDeduplicationId=item.dedup_id,
            MessageAttributes=attributes,
        )


@dataclass
class RecordingPublisher:
    """In-memory publisher for the benchmark and unit tests."""

    items: list[QueuedEvent] = field(default_factory=list)

    def publish(self, item: QueuedEvent) -> None:
        self.items.append(item)
