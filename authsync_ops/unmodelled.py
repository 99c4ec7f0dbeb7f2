"""``authsync-ops callbacks unmodelled``: what the unmodelled-callbacks table holds (no secrets: they were
redacted before storage), so an operator sees which new InfoTypes WeCom sends and can replay them once modelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authsync.aws.queues import EventPublisher, queued_event
from authsync.aws.unmodelled import DynamoUnmodelledStore, UnmodelledCallback
from authsync.wecom.callbacks import AuthEvent, CallbackEvent, GenericEvent, MalformedEventError, parse_event

__all__ = ["ReplayReport", "replay", "summary"]


@dataclass
class ReplayReport:
    """One replay run (counts only)."""

    replayed: dict[str, int] = field(default_factory=dict)
    """Enqueued on auth-events (and deleted from the store), by InfoType."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Left in the store, by reason: ``redacted`` (its secrets are gone: the event cannot be acted on),
    ``truncated``, ``still_unmodelled``, ``still_malformed``, ``not_queued`` (e.g. a suite_ticket)."""


def replay(
    store: DynamoUnmodelledStore, publisher: EventPublisher, *, info_type: str, dry_run: bool = False
) -> ReplayReport:
    """Parse each kept ``info_type`` callback with today's models; enqueue those that now route to a corp.

    Only whole documents without redacted values are replayed: an AuthCode replaced by
    ``[redacted]`` would only fail. A replayed item is deleted, so a second run sends nothing twice.
    """
    report = ReplayReport()
    for item in store.items(info_type=info_type):
        event = _parsed(item, report)
        if event is None:
            continue
        if not isinstance(event, AuthEvent):
            _count(report.skipped, "not_queued")
            continue
        if not dry_run:
            publisher.publish(queued_event(event, (item.kept.document or "").encode("utf-8")))
            store.delete(item.kept.key)
        _count(report.replayed, item.info_type)
    return report


def _parsed(item: UnmodelledCallback, report: ReplayReport) -> CallbackEvent | None:
    kept = item.kept
    if kept.document is None or kept.truncated:
        _count(report.skipped, "truncated")
        return None
    if kept.redacted:
        _count(report.skipped, "redacted")
        return None
    try:
        event = parse_event(kept.document.encode("utf-8"), suite_id=item.suite_id)
    except MalformedEventError:
        _count(report.skipped, "still_malformed")
        return None
    if isinstance(event, GenericEvent):
        _count(report.skipped, "still_unmodelled")
        return None
    return event


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def summary(store: DynamoUnmodelledStore, *, info_type: str | None = None, limit: int = 20) -> dict[str, Any]:
    """Counts and newest time per (info_type, status); with ``info_type``, its newest ``limit`` items in full."""
    items = list(store.items(info_type=info_type))
    by_type: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        entry = by_type.setdefault((item.info_type, item.status), {"count": 0, "newest": 0.0})
        entry["count"] += 1
        entry["newest"] = max(entry["newest"], item.received_at)
    report: dict[str, Any] = {
        "types": [
            {"info_type": kind, "status": status, **entry}
            for (kind, status), entry in sorted(by_type.items(), key=lambda pair: -pair[1]["newest"])
        ]
    }
    if info_type is not None:
        newest = sorted(items, key=lambda item: -item.received_at)[:limit]
        report["items"] = [_shown(item) for item in newest]
    return report


def _shown(item: UnmodelledCallback) -> dict[str, Any]:
    return {
        "suite_id": item.suite_id,
        "info_type": item.info_type,
        "status": item.status,
        "corp_id": item.corp_id,
        "received_at": item.received_at,
        "problem": item.problem,
        "size": item.kept.size,
        "truncated": item.kept.truncated,
        "redacted": list(item.kept.redacted),
        "document": item.kept.document,
        "elements": list(item.kept.elements),
    }
