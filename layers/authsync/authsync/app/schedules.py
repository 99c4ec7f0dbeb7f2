"""The scheduled work: reconciliation fan-out, token renewal, suite_ticket staleness.

Callbacks get lost, tokens expire, tickets stop; none of this may depend on WeCom
calling us. Each function here is small and bounded:

* :func:`fan_out_reconcile` sends one reconcile message per active corp onto the
  auth-events queue (paginated GSI query, batches of 10 sends). It makes no WeCom
  call itself: the auth-info function fetches each corp, coalescing with any fresher
  fetch, so a missed change_auth is caught within one schedule period. It also sends
  one *resume* message per exchange-journal entry still open after
  :data:`RESUME_AFTER` (an install whose message died after the exchange, e.g. in the
  DLQ): the corp holds a permanent code that no snapshot shows yet.
* :func:`renew_tokens` touches every suite token and each corp token that is due, which
  renews those inside their renewal window (single-flight with the fetch functions). Which
  corp tokens are due comes from one index query per suite with the vault
  (:class:`authsync.aws.vault.VaultIndex`), so a run reads only what it renews; with one
  secret per corp there is no such index and every active corp's token is read
  (:class:`EveryActiveCorp`).
* :func:`ticket_ages` reports how old each suite's newest suite_ticket is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from authsync.aws.queues import batch_entry, reconcile_request, resume_request
from authsync.aws.tokens import RENEW_MARGIN, CorpNotAuthorizedError, Tokens
from authsync.wecom.errors import WeComAuthorizationInvalidError, WeComError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from authsync.aws.journal import PendingExchanges
    from authsync.aws.snapshots import SnapshotStore
    from authsync.aws.tickets import TicketStore

__all__ = [
    "CodeHolders",
    "DueTokens",
    "EveryActiveCorp",
    "ReconcileReport",
    "TokenReport",
    "fan_out_reconcile",
    "renew_tokens",
    "ticket_ages",
]

RECONCILE_DEDUP_WINDOW = 300
"""A retried scheduler invocation within this many seconds sends no duplicate requests."""

RESUME_AFTER = 600.0
"""An exchange-journal entry still open this long after its exchange is resumed by reconcile: its
own message's fast retries (about 2 minutes) are over by then, in success or in the DLQ."""


class CodeHolders(Protocol):
    """The corps of a suite that hold a permanent code (adapters: the vault's index, or secret names)."""

    def corps(self, suite_id: str) -> Iterable[str]: ...


class DueTokens(Protocol):
    """The corps of a suite whose corp token expires before a time (adapter: the vault's index)."""

    def tokens_due(self, suite_id: str, before: float) -> Iterable[str]: ...


class EveryActiveCorp:
    """:class:`DueTokens` without an expiry index (one secret per corp): every active corp, every run."""

    def __init__(self, snapshots: SnapshotStore) -> None:
        self._snapshots = snapshots

    def tokens_due(self, suite_id: str, before: float) -> Iterable[str]:
        return self._snapshots.iter_active(suite_id)


@dataclass
class ReconcileReport:
    requested: dict[str, int] = field(default_factory=dict)
    resumed: dict[str, int] = field(default_factory=dict)
    """Resume requests sent per suite (open exchange-journal entries)."""
    orphans: dict[str, int] = field(default_factory=dict)
    """Corps holding a permanent code without any stored state, per suite: each sent a reconcile request."""
    failures: dict[str, str] = field(default_factory=dict)
    """Suites whose fan-out failed part-way (suite id → error type); the others were still served."""

    @property
    def total(self) -> int:
        return sum(self.requested.values())


def _batches(items: Iterable[str], size: int = 10) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fan_out_reconcile(
    snapshots: SnapshotStore,
    sqs: SQSClient,
    queue_url: str,
    suite_ids: Iterable[str],
    *,
    pending: PendingExchanges | None = None,
    holders: CodeHolders | None = None,
    clock: Callable[[], float] = time.time,
) -> ReconcileReport:
    """One reconcile message per active corp, one resume message per stale open exchange, one reconcile
    message per corp that holds a permanent code but has no stored state (``holders``); no WeCom call."""
    now = clock()
    window = int(now // RECONCILE_DEDUP_WINDOW)
    report = ReconcileReport()
    for suite_id in suite_ids:
        report.requested[suite_id] = 0
        try:
            active: set[str] = set()
            for corps in _batches(snapshots.iter_active(suite_id)):
                active.update(corps)
                entries = [
                    batch_entry(i, reconcile_request(suite_id, corp_id, window)) for i, corp_id in enumerate(corps)
                ]
                _send_all(sqs, queue_url, entries)
                report.requested[suite_id] += len(entries)
            if holders is not None:
                # A cancelled corp's code is deleted with it, so a holder that is not active is (nearly
                # always) one whose state was never written: one read to be sure, then a fetch request.
                stray = (c for c in holders.corps(suite_id) if c not in active)
                orphans = [c for c in stray if snapshots.get(suite_id, c) is None]
                for corps in _batches(orphans):
                    entries = [batch_entry(i, reconcile_request(suite_id, c, window)) for i, c in enumerate(corps)]
                    _send_all(sqs, queue_url, entries)
                report.orphans[suite_id] = len(orphans)
            if pending is None:
                continue
            report.resumed[suite_id] = 0
            for keys in _batches(pending.keys(suite_id, obtained_before=now - RESUME_AFTER)):
                entries = [batch_entry(i, resume_request(suite_id, key, window)) for i, key in enumerate(keys)]
                _send_all(sqs, queue_url, entries)
                report.resumed[suite_id] += len(entries)
        except Exception as exc:  # one suite's failure must not starve the others
            report.failures[suite_id] = _reason(exc)
    return report


def _send_all(sqs: SQSClient, queue_url: str, entries: list[SendMessageBatchRequestEntryTypeDef]) -> None:
    """SendMessageBatch, re-sending failed entries once; still failing means the run fails (and is retried)."""
    pending = entries
    for _ in range(2):
        failed = {f["Id"] for f in sqs.send_message_batch(QueueUrl=queue_url, Entries=pending).get("Failed", [])}
        pending = [e for e in pending if e["Id"] in failed]
        if not pending:
            return
    raise RuntimeError(f"{len(pending)} reconcile messages could not be sent")


@dataclass
class TokenReport:
    suites: int = 0
    corps: int = 0
    skipped: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    """Corp token failures by errcode (or error type when WeCom gave none)."""
    suite_failures: dict[str, str] = field(default_factory=dict)
    """Suites whose own token could not be had (missing ticket, bad config, WeCom down): suite id → reason.
    Their corps are not touched this run (each would fail the same way and count against WeCom's limits)."""
    corp_failures: dict[str, int] = field(default_factory=dict)
    """Corp token failures per suite."""


def renew_tokens(
    tokens: Tokens,
    due: DueTokens,
    suite_ids: Iterable[str],
    *,
    margin: float = RENEW_MARGIN,
    clock: Callable[[], float] = time.time,
) -> TokenReport:
    """Touch each suite token and each corp token that expires within ``margin``: those are renewed.

    ``margin`` is the token store's renewal margin, so what the index calls due is what
    :meth:`Tokens.corp_token` renews (a token renewed on a request path meanwhile is re-read
    and left alone). A corp token that was never stored is not listed: it is obtained when
    first needed. Cancelled corps' tokens are deleted with them, so they are never listed.

    Every suite and every corp is handled on its own: one suite without a ticket, or one corp
    whose token call fails, never stops the others. A corp whose credentials are gone or
    invalid is skipped (auth-info owns that state); other failures are counted per suite and
    by errcode, for the handler's metrics and alarm.
    """
    report = TokenReport()
    for suite_id in suite_ids:
        try:
            tokens.suite_token(suite_id)
        except Exception as exc:
            report.suite_failures[suite_id] = _reason(exc)
            continue
        report.suites += 1
        for corp_id in due.tokens_due(suite_id, before=clock() + margin):
            try:
                tokens.corp_token(suite_id, corp_id)
            except (CorpNotAuthorizedError, WeComAuthorizationInvalidError):
                report.skipped += 1
                continue
            except Exception as exc:
                key = _reason(exc)
                report.failed[key] = report.failed.get(key, 0) + 1
                report.corp_failures[suite_id] = report.corp_failures.get(suite_id, 0) + 1
                continue
            report.corps += 1
    return report


def _reason(exc: Exception) -> str:
    """An errcode for WeCom's errors, else the error's type: never its message (it could name a value)."""
    if isinstance(exc, WeComError) and exc.errcode is not None:
        return str(exc.errcode)
    return type(exc).__name__


def ticket_ages(
    tickets: TicketStore, suite_ids: Iterable[str], *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """Seconds since each suite's newest ticket was issued (by WeCom's TimeStamp); None if none stored."""
    now = clock()
    ages: dict[str, Any] = {}
    for suite_id in suite_ids:
        ticket = tickets.load(suite_id)
        ages[suite_id] = None if ticket is None else max(0.0, now - ticket.timestamp)
    return ages
