"""The unmodelled-callbacks table: callbacks kept for a replay once their InfoType is modelled.

callback-ingest writes (``put``, one conditional PutItem); the operator CLI reads (``items``, a
scan: the table is small and read rarely) and deletes what it replayed (``delete``). One item per
callback (key: SHA-256 of suite and document, so WeCom's re-sends are one item), expiring after
30 days (``expires_at``, the table's TTL attribute). What an item holds is
:class:`authsync.domain.unmodelled.KeptDocument`: the document with secrets redacted, never an
AuthCode or ticket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authsync.aws.dynamo import LazyTable, put_new
from authsync.domain.unmodelled import UNMODELLED_RETENTION, KeptDocument

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["DynamoUnmodelledStore", "UnmodelledCallback"]


@dataclass(frozen=True, slots=True)
class UnmodelledCallback:
    """One kept callback (no secret values: see the module doc)."""

    suite_id: str
    info_type: str
    status: str
    """``unmodelled`` (an InfoType not modelled yet) or ``malformed`` (a known one that could not be routed)."""
    received_at: float
    kept: KeptDocument
    corp_id: str | None = None
    problem: str | None = None
    """For ``malformed``: which fields were missing or invalid (names only)."""


class DynamoUnmodelledStore(LazyTable):
    """The table. ``client`` may be a factory, built on the first write (callback-ingest's init stays small)."""

    def put(self, item: UnmodelledCallback) -> bool:
        """Keep ``item``; False if the same callback is kept already (the first one stays)."""
        kept = item.kept
        record: dict[str, AttributeValueTypeDef] = {
            "pk": {"S": kept.key},
            "suite_id": {"S": item.suite_id[:128]},
            "info_type": {"S": item.info_type[:128]},
            "status": {"S": item.status},
            "received_at": {"N": f"{item.received_at:.3f}"},
            "expires_at": {"N": str(int(item.received_at) + UNMODELLED_RETENTION)},
            "size": {"N": str(kept.size)},
            "truncated": {"BOOL": kept.truncated},
            "elements": {"L": [{"S": name} for name in kept.elements]},
            "redacted": {"L": [{"S": name} for name in kept.redacted]},
        }
        if kept.document is not None:
            record["document"] = {"S": kept.document}
        if item.corp_id:
            record["corp_id"] = {"S": item.corp_id[:128]}
        if item.problem:
            record["problem"] = {"S": item.problem[:512]}
        return put_new(self._client, self._table, record)

    def delete(self, key: str) -> None:
        """Forget one kept callback (the operator replayed it)."""
        self._client.delete_item(TableName=self._table, Key={"pk": {"S": key}})

    def items(self, *, info_type: str | None = None) -> Iterator[UnmodelledCallback]:
        """Every kept callback (of ``info_type`` if given), as DynamoDB's scan returns them."""
        paginator = self._client.get_paginator("scan")
        pages = (
            paginator.paginate(
                TableName=self._table,
                FilterExpression="info_type = :t",
                ExpressionAttributeValues={":t": {"S": info_type}},
            )
            if info_type
            else paginator.paginate(TableName=self._table)
        )
        for page in pages:
            for record in page.get("Items", []):
                document = record.get("document", {}).get("S")
                kept = KeptDocument(
                    key=record["pk"]["S"],
                    document=document,
                    size=int(record["size"]["N"]),
                    truncated=bool(record["truncated"]["BOOL"]),
                    redacted=tuple(v["S"] for v in record.get("redacted", {}).get("L", [])),
                    elements=tuple(v["S"] for v in record.get("elements", {}).get("L", [])),
                )
                yield UnmodelledCallback(
                    suite_id=record["suite_id"]["S"],
                    info_type=record["info_type"]["S"],
                    status=record["status"]["S"],
                    received_at=float(record["received_at"]["N"]),
                    kept=kept,
                    corp_id=record.get("corp_id", {}).get("S"),
                    problem=record.get("problem", {}).get("S"),
                )
