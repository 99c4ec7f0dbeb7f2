"""Redrive: move a FIFO dead-letter queue's messages back to their source queue, safely.

Why not SQS's own redrive: a FIFO message re-sent with its old deduplication id within five
minutes of the original send is dropped by SQS, and an AuthCode message whose code has expired
(10 minutes after WeCom issued it) can only fail again, now as ``install_lost``. So each message
is re-sent with a *fresh* deduplication id, its group and attributes kept, and then deleted from
the DLQ; a create_auth / reset_permanent_code older than :data:`AUTH_CODE_TTL` is refused (left
in the DLQ) unless ``force``. auth-info's own journal and idempotency make a redriven message safe
to process twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authsync.wecom.callbacks import parse_event

__all__ = ["AUTH_CODE_TTL", "QUEUES", "RedriveReport", "redrive"]

AUTH_CODE_TTL = 600
"""Seconds an AuthCode lives after WeCom issued it (its callback's TimeStamp)."""

QUEUES = {
    "auth-events": ("AuthEventsDLQUrl", "AuthEventsQueueUrl"),
    "chatdata": ("ChatdataDLQUrl", "ChatdataQueueUrl"),
}
"""``--queue`` → (the DLQ's output, the source queue's output)."""

_AUTH_CODE_TYPES = frozenset({"create_auth", "reset_permanent_code"})
_HOLD = 300
"""Seconds a received message stays invisible during the run (refused ones are released at the end)."""


@dataclass
class RedriveReport:
    redriven: int = 0
    refused: list[str] = field(default_factory=list)
    """Message ids left in the DLQ: AuthCode messages past the code's lifetime."""
    dry_run: bool = False


def redrive(
    sqs: Any,
    dlq_url: str,
    source_url: str,
    *,
    force: bool = False,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    progress: Callable[[int], None] | None = None,
) -> RedriveReport:
    """Re-send every message of ``dlq_url`` to ``source_url`` with a fresh deduplication id."""
    report = RedriveReport(dry_run=dry_run)
    held: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=_HOLD,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            if not force and _expired_auth_code(message, clock()):
                report.refused.append(message["MessageId"])
                held.append(message["ReceiptHandle"])
                continue
            if dry_run:
                report.redriven += 1
                held.append(message["ReceiptHandle"])
                continue
            _resend(sqs, source_url, message)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            report.redriven += 1
            if progress is not None:
                progress(report.redriven)
    for handle in held:  # visible again at once: they stay in the DLQ
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _expired_auth_code(message: dict[str, Any], now: float) -> bool:
    """A create_auth / reset_permanent_code whose AuthCode is past its 10 minutes."""
    attributes = message.get("MessageAttributes", {})
    info_type = attributes.get("info_type", {}).get("StringValue")
    if info_type not in _AUTH_CODE_TYPES:
        return False
    try:
        event = parse_event(str(message["Body"]).encode("utf-8"))
    except Exception:  # an unreadable body cannot be judged: let auth-info report it
        return False
    issued = getattr(event, "timestamp", None)
    return isinstance(issued, int) and now - issued > AUTH_CODE_TTL


def _resend(sqs: Any, queue_url: str, message: dict[str, Any]) -> None:
    attributes = message.get("Attributes", {})
    original = attributes.get("MessageDeduplicationId", message["MessageId"])
    fresh = hashlib.sha256(f"redrive\x1f{original}\x1f{time.time_ns()}".encode()).hexdigest()
    message_attributes = {
        name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
        for name, value in message.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    request: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MessageBody": message["Body"],
        "MessageGroupId": attributes["MessageGroupId"],
        "MessageDeduplicationId": fresh,
    }
    if message_attributes:
        request["MessageAttributes"] = message_attributes
    sqs.send_message(**request)
