"""The exchange journal on DynamoDB: one item per AuthCode exchanged, the permanent code sealed with KMS.

The rules (write order, resume, supersede) are :mod:`authsync.domain.install`'s; this module
only makes them durable:

* :meth:`ExchangeJournal.record` is the one write that must not fail: it retries throttling,
  5xx answers and broken connections (of KMS and DynamoDB alike) with capped backoff until
  ``deadline`` — the caller passes what the function's remaining time allows — and only
  then raises. The put is conditional on the item not existing, so a concurrent delivery
  of the same AuthCode cannot overwrite the first writer's entry (it gets that entry back).
* The permanent code is stored only as a KMS ciphertext whose encryption context names the
  suite, the entry and the purpose; the rest of the item holds no secret.
* ``pending_suite`` is set while an entry is open: the sparse index ``PendingExchanges``
  lists exactly the unfinished installs, which the reconcile schedule sweeps.
* ``expires_at`` lets DynamoDB's TTL remove entries after :data:`JOURNAL_RETENTION`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from authsync.aws.dynamo import put_new
from authsync.aws.kms import KmsSealer, SealError
from authsync.aws.retrying import is_transient, retry_until
from authsync.domain.install import JOURNAL_RETENTION, JournalEntry, JournalStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["PENDING_INDEX", "ExchangeJournal", "PendingExchanges"]

PENDING_INDEX = "PendingExchanges"
_PURPOSE = "exchange-journal"


def _transient(exc: Exception) -> bool:
    return exc.transient if isinstance(exc, SealError) else is_transient(exc)


class ExchangeJournal:
    """The journal table. ``clock``/``sleep`` are injectable for tests."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        sealer: KmsSealer,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        backoff_cap: float = 2.0,
    ) -> None:
        self._client = client
        self._table = table
        self._sealer = sealer
        self._clock = clock
        self._sleep = sleep
        self._backoff_cap = backoff_cap

    def check_sealing(self, suite_id: str) -> None:
        """Seal a probe under this suite's journal context (one KMS ``Encrypt``); :class:`SealError` if KMS fails.

        Asked before an AuthCode is spent: with KMS unavailable or the key unusable, the code's answer
        could be kept nowhere (the journal and the vault both seal with this key, and nothing falls
        back to plaintext or to another store), so the message fails *before* the exchange and is
        retried while the AuthCode still lives. What remains is KMS failing during the exchange itself.
        """
        self._sealer.seal("probe", {"purpose": _PURPOSE, "suite_id": suite_id, "entry": "probe", "corp_id": "probe"})

    # -- the one write that must not fail ------------------------------------------------

    def record(self, entry: JournalEntry, *, deadline: float) -> JournalEntry:
        """Make ``entry`` durable (retrying until ``deadline``, a ``clock`` time); the stored entry.

        If an entry for the same AuthCode exists already (a concurrent delivery won), that
        one is returned and nothing is overwritten.
        """
        blob = self._until(deadline, "seal", lambda: self._sealer.seal(entry.permanent_code, _context(entry)))
        item: dict[str, AttributeValueTypeDef] = {
            "pk": {"S": _pk(entry.suite_id, entry.key)},
            "suite_id": {"S": entry.suite_id},
            "entry_key": {"S": entry.key},
            "corp_id": {"S": entry.corp_id},
            "obtained_at": {"N": f"{entry.obtained_at:.6f}"},
            "rotate": {"BOOL": entry.rotate},
            "context": {"S": json.dumps(entry.context, ensure_ascii=False, sort_keys=True)},
            "code_blob": {"B": blob},
            "status": {"S": entry.status.value},
            **({"event_time": {"N": str(entry.event_time)}} if entry.event_time is not None else {}),
            "pending_suite": {"S": entry.suite_id},
            "expires_at": {"N": str(int(entry.obtained_at) + JOURNAL_RETENTION)},
        }

        if self._until(deadline, "put", lambda: put_new(self._client, self._table, item)):
            return entry
        existing = self.get(entry.suite_id, entry.key)
        if existing is None:  # written and expired in between: cannot happen within the retention
            raise RuntimeError("journal entry vanished after a conditional put failed")
        return existing

    def _until[T](self, deadline: float, what: str, call: Callable[[], T]) -> T:
        return retry_until(
            call,
            deadline=deadline,
            clock=self._clock,
            sleep=self._sleep,
            what=f"journal {what}",
            transient=_transient,
            backoff_cap=self._backoff_cap,
        )

    # -- reads and the end of an entry ---------------------------------------------------

    def get(self, suite_id: str, key: str) -> JournalEntry | None:
        """The entry for this AuthCode key, its code opened; None if this code was never exchanged by us."""
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": _pk(suite_id, key)}}, ConsistentRead=True)
        found = item.get("Item")
        return None if found is None else self._entry(found)

    def close(self, entry: JournalEntry, status: JournalStatus) -> None:
        """Mark the entry ``status`` (completed or superseded): it leaves the pending index."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": _pk(entry.suite_id, entry.key)}},
            UpdateExpression="SET #s = :s REMOVE pending_suite",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status.value}},
        )

    def _entry(self, item: dict[str, Any]) -> JournalEntry:
        suite_id, key = item["suite_id"]["S"], item["entry_key"]["S"]
        entry = JournalEntry(
            suite_id=suite_id,
            key=key,
            corp_id=item["corp_id"]["S"],
            obtained_at=float(item["obtained_at"]["N"]),
            rotate=bool(item["rotate"]["BOOL"]),
            context=json.loads(item["context"]["S"]),
            permanent_code="",
            status=JournalStatus(item["status"]["S"]),
            event_time=int(item["event_time"]["N"]) if "event_time" in item else None,
        )
        if not entry.open:
            return entry  # a closed entry's code is never needed again: not decrypted
        code = self._sealer.open(bytes(item["code_blob"]["B"]), _context(entry))
        return replace(entry, permanent_code=code)


class PendingExchanges:
    """The sparse index of open entries, for the reconcile sweep: keys only, no code, no KMS."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def keys(self, suite_id: str, *, obtained_before: float) -> Iterator[str]:
        """Keys of the suite's open entries exchanged before ``obtained_before``."""
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="pending_suite = :s AND obtained_at < :t",
            ExpressionAttributeValues={":s": {"S": suite_id}, ":t": {"N": f"{obtained_before:.6f}"}},
        ):
            for item in page.get("Items", []):
                yield item["entry_key"]["S"]


def _pk(suite_id: str, key: str) -> str:
    return f"{suite_id}#{key}"


def _context(entry: JournalEntry) -> dict[str, str]:
    """The KMS encryption context: the ciphertext opens only for this suite, entry and purpose."""
    return {"purpose": _PURPOSE, "suite_id": entry.suite_id, "entry": entry.key, "corp_id": entry.corp_id}
