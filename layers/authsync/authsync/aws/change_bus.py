"""The change events' EventBridge bus: PutEvents in batches, failed entries retried, never dropped.

PutEvents takes at most 10 entries (and 256 KB) per call and answers per entry: a throttled or
failed entry is retried once in the same call's loop; one still failing raises
:class:`PublishError`, so the stream record it came from fails and Lambda retries it (its events
then go out again with the same idempotency keys: at-least-once, duplicates recognisable).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

    from authsync.domain.change_events import ChangeEvent

__all__ = ["EventBusPublisher", "PublishError"]

BATCH = 10
"""PutEvents' entry limit per call."""
MAX_BYTES = 240_000
"""Below PutEvents' 256 KB per call (entry sizes as EventBridge counts them: the JSON fields)."""


class PublishError(RuntimeError):
    """Entries EventBridge did not accept after a retry (the message names error codes, never a detail)."""


class EventBusPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Iterable[ChangeEvent]) -> int:
        """Put every event on the bus; how many were put. Raises :class:`PublishError` if any could not be."""
        entries = [event.entry(self._bus) for event in events]
        for batch in _batches(entries):
            self._put(batch)
        return len(entries)

    def _put(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        codes: set[str] = set()
        for _ in range(2):
            answer = self._client.put_events(Entries=pending)  # type: ignore[arg-type]
            if not answer.get("FailedEntryCount"):
                return
            results = answer["Entries"]
            codes = {str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")}
            pending = [entry for entry, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
        raise PublishError(f"{len(pending)} change event(s) not accepted by EventBridge: {sorted(codes)}")


def _batches(entries: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(json.dumps(entry).encode("utf-8"))
        if batch and (len(batch) == BATCH or size + entry_size > MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch
