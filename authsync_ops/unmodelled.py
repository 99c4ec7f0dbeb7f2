"""``authsync-ops callbacks unmodelled``: what the unmodelled-callbacks table holds (no secrets: they were
redacted before storage), so an operator sees which new InfoTypes WeCom sends and can replay them once modelled."""

from __future__ import annotations

from typing import Any

from authsync.aws.unmodelled import DynamoUnmodelledStore, UnmodelledCallback

__all__ = ["summary"]


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
