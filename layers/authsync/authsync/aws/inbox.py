"""The callback inbox: where a callback goes when it cannot be handled now, so WeCom still gets ``success``.

WeCom re-sends a callback only after a network failure or a timeout (spec §1.4): a 503
answer may be the end of it. So when callback-ingest cannot finish a request for a reason
that is ours — SQS refusing the FIFO send, Secrets Manager not answering for the suite's
configuration or ticket — it keeps the request here and answers ``success``; the
inbox-drain schedule replays it through the same ingest code once the outage is over.

What is kept is the request *as WeCom sent it*: the signature parameters and the still
encrypted body. Nothing decrypted is stored (no AuthCode, no ticket), and the replay
verifies the signature like the first delivery did, so a forged request parked while the
suite configuration was unreadable is rejected then. Items are bounded in size (the
ingest's body limit) and expire after :data:`INBOX_RETENTION`.

The key is the SHA-256 of suite, signature parameters and body: WeCom's re-sends of one
request, and a request kept twice, are one item. Replays enqueue with the event's own
deduplication id, so an event that reached SQS after all is not processed twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authsync.aws.dynamo import LazyTable, put_new

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["INBOX_RETENTION", "DynamoInbox", "KeptCallback"]

INBOX_RETENTION = 14 * 86400
"""How long a kept request waits for its replay (SQS's own maximum retention)."""


@dataclass(frozen=True, slots=True)
class KeptCallback:
    """One POSTed callback as WeCom sent it (encrypted body; ``repr`` shows neither body nor signature)."""

    suite_id: str
    msg_signature: str = field(repr=False)
    timestamp: str
    nonce: str
    body: bytes = field(repr=False)
    received_at: float
    reason: str
    """Why it was kept: the error type of what failed (``SqsSendFailed``, ``SuiteConfigUnavailable``, ...)."""

    @property
    def key(self) -> str:
        digest = hashlib.sha256()
        for part in (self.suite_id, self.msg_signature, self.timestamp, self.nonce):
            digest.update(part.encode("utf-8") + b"\x1f")
        digest.update(self.body)
        return digest.hexdigest()

    @property
    def query(self) -> dict[str, str]:
        return {"msg_signature": self.msg_signature, "timestamp": self.timestamp, "nonce": self.nonce}


class DynamoInbox(LazyTable):
    """The inbox table: ``put`` (callback-ingest), ``items``/``delete`` (inbox-drain).

    ``client`` may be a factory: callback-ingest writes here only when something failed, so it
    does not pay for a DynamoDB client (its service model) in the init WeCom's first callback
    waits for; the factory runs on the first ``put``.
    """

    def put(self, kept: KeptCallback) -> bool:
        """Keep ``kept``; False if the same request is kept already (the first one stays)."""
        item: dict[str, AttributeValueTypeDef] = {
            "pk": {"S": kept.key},
            "suite_id": {"S": kept.suite_id},
            "msg_signature": {"S": kept.msg_signature},
            "timestamp": {"S": kept.timestamp},
            "nonce": {"S": kept.nonce},
            "body": {"B": kept.body},
            "received_at": {"N": f"{kept.received_at:.3f}"},
            "reason": {"S": kept.reason[:64]},
            "expires_at": {"N": str(int(kept.received_at) + INBOX_RETENTION)},
        }
        return put_new(self._client, self._table, item)

    def items(self) -> Iterator[KeptCallback]:
        """Every kept request, oldest pages first as DynamoDB returns them (the inbox is small: a scan)."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield KeptCallback(
                    suite_id=item["suite_id"]["S"],
                    msg_signature=item["msg_signature"]["S"],
                    timestamp=item["timestamp"]["S"],
                    nonce=item["nonce"]["S"],
                    body=bytes(item["body"]["B"]),
                    received_at=float(item["received_at"]["N"]),
                    reason=item["reason"]["S"],
                )

    def delete(self, kept: KeptCallback) -> None:
        self._client.delete_item(TableName=self._table, Key={"pk": {"S": kept.key}})
