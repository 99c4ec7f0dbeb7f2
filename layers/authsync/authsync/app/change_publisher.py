"""change-publisher's use case: one DynamoDB stream record of the corps table in, its change events out.

The stream is the outbox: every stored change of a corp's state item arrives here with its images
before and after, in order per item, whichever function wrote it and whether or not that function
lived to do anything else. Version and list-page items are skipped (their changes are in the state
item's). A record whose events cannot all be published fails, and Lambda retries it (bisecting the
batch, then its on-failure destination): events are never dropped; a retry may repeat some, with
the same idempotency keys.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from authsync.aws.snapshot_items import STATE_SK, corp_of, decode_item, read_state
from authsync.domain.change_events import ChangeEvent, derive_events
from authsync.domain.corp_state import CorpState

__all__ = ["ChangePublisher", "EventBus", "PublishOutcome", "PublishResult"]


class EventBus(Protocol):
    """Adapter: :class:`authsync.aws.change_bus.EventBusPublisher`."""

    def publish(self, events: Iterable[ChangeEvent]) -> int: ...


class PublishOutcome(enum.StrEnum):
    PUBLISHED = "published"
    NO_EVENT = "no_event"
    NOT_A_STATE = "not_a_state"


@dataclass(frozen=True, slots=True)
class PublishResult:
    outcome: PublishOutcome
    detail_types: tuple[str, ...] = ()
    suite_id: str | None = None
    corp_id: str | None = None


class ChangePublisher:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def handle(self, record: Mapping[str, Any]) -> PublishResult:
        """``record``: one stream record as Lambda delivers it (``dynamodb.Keys``, ``OldImage``, ``NewImage``)."""
        change = record.get("dynamodb") or {}
        keys = decode_item(change.get("Keys") or {})
        if keys.get("sk") != STATE_SK:
            return PublishResult(PublishOutcome.NOT_A_STATE)
        old, new = _state(change.get("OldImage")), _state(change.get("NewImage"))
        known = new or old
        suite_id, corp_id = (known.suite_id, known.corp_id) if known else (None, None)
        events = derive_events(old, new)
        if not events:
            return PublishResult(PublishOutcome.NO_EVENT, (), suite_id, corp_id)
        self._bus.publish(events)
        return PublishResult(PublishOutcome.PUBLISHED, tuple(e.detail_type.value for e in events), suite_id, corp_id)


def _state(image: Mapping[str, Any] | None) -> CorpState | None:
    if not image:
        return None
    item = decode_item(image)
    return read_state(item, *corp_of(str(item["pk"])))
