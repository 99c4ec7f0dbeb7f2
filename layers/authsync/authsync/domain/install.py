"""The exchange journal's rules: what one single-use AuthCode bought, and how an interrupted install resumes (no AWS).

An AuthCode can be exchanged once (``get_permanent_code``, spec §3.2) and lives 10 minutes;
a second exchange answers 40078. So the answer is made durable *before anything else* — a
journal entry keyed by the code's hash, never the code — and every later step (store the
code, write the corp's first state, fetch ``get_auth_info``, mark the entry complete) is
idempotent and replayable from that entry. A redelivered message finds the entry and
resumes instead of calling WeCom again; a 40078 with no entry is an install that is lost
(:attr:`authsync.app.sync.Outcome.INSTALL_LOST`: alarmed, the corp must re-authorize).

Write order of an exchange, each step safe to repeat:

1. ``get_permanent_code`` (the only step that cannot be repeated);
2. the journal entry (conditional put: the first writer wins), the code sealed with KMS;
3. the permanent code into the credential store (forward-only: an older exchange never
   replaces a newer code);
4. the corp's first state from the grant itself (``install`` kind: who installed, the
   register code, ``state`` — answered once, never again);
5. ``get_auth_info`` and the snapshot;
6. the entry marked complete (it leaves the reconcile index).

A crash after step 2 leaves an incomplete entry that the next delivery of the message, or
the reconcile schedule's sweep of incomplete entries, resumes at step 3.

Resuming never resurrects a corp cancelled *after* the install (:func:`resume_action`, and
the snapshot store's lifecycle rule behind it): the entry is closed as superseded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "JOURNAL_RETENTION",
    "JournalEntry",
    "JournalStatus",
    "ResumeAction",
    "auth_code_key",
    "resume_action",
]

JOURNAL_RETENTION = 30 * 86400
"""How long an entry is kept (DynamoDB TTL): beyond SQS's 14-day retention and the 7-day idempotency records,
so any redelivery of the message still finds it."""


def auth_code_key(suite_id: str, auth_code: str) -> str:
    """The entry's key: SHA-256 of the suite and the AuthCode. The code itself is never stored.

    An AuthCode is a long random secret, so its hash reveals nothing and cannot be brute-forced;
    the suite id is part of it because two suites' codes live in different namespaces.
    """
    return hashlib.sha256(f"{suite_id}\x1f{auth_code}".encode()).hexdigest()


class JournalStatus(StrEnum):
    EXCHANGED = "exchanged"
    """The grant is durable; storing it and fetching the corp may still be under way."""
    COMPLETED = "completed"
    """Code stored, first state written, auth info fetched."""
    SUPERSEDED = "superseded"
    """The corp was cancelled after this exchange: nothing is restored from it."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One exchange, as the journal holds it. ``repr`` hides the permanent code."""

    suite_id: str
    key: str
    corp_id: str
    obtained_at: float
    """Our clock before ``get_permanent_code`` was sent: the code's age for the forward-only store."""
    rotate: bool
    """A ``reset_permanent_code`` (the code replaces the corp's current one), not a new install."""
    context: dict[str, Any] = field(repr=False)
    """The grant minus credentials (:attr:`authsync.wecom.responses.PermanentCodeGrant.context`)."""
    permanent_code: str = field(repr=False)
    status: JournalStatus = JournalStatus.EXCHANGED
    event_time: int | None = None
    """The create_auth/reset_permanent_code's ``TimeStamp`` (WeCom's clock): orders the install (rule 0 of
    :mod:`authsync.domain.snapshot_rules`)."""

    @property
    def open(self) -> bool:
        return self.status is JournalStatus.EXCHANGED

    def with_status(self, status: JournalStatus) -> JournalEntry:
        return replace(self, status=status)


class ResumeAction(StrEnum):
    DONE = "done"
    """Already completed or superseded: nothing to do (a duplicate delivery)."""
    SUPERSEDE = "supersede"
    """The corp was cancelled after this exchange: close the entry, restore nothing."""
    CONTINUE = "continue"
    """Store the code, write the first state, fetch: the remaining steps, all idempotent."""


def resume_action(
    entry: JournalEntry, cancelled_at: float | None, *, lifecycle_at: float | None = None
) -> ResumeAction:
    """What an entry still needs, given the corp's tombstone (``cancelled_at``, None: not cancelled).

    With WeCom's times on both sides (the install's ``event_time``, the corp's ``lifecycle_at``),
    a cancellation newer than the install supersedes it, whenever either was processed. Without
    them (entries and tombstones written before lifecycle ordering) our clocks decide: a cancel
    processed after this exchange began is taken to be newer.
    """
    if not entry.open:
        return ResumeAction.DONE
    if cancelled_at is None:
        return ResumeAction.CONTINUE
    if entry.event_time is not None and lifecycle_at is not None:
        return ResumeAction.SUPERSEDE if lifecycle_at > entry.event_time else ResumeAction.CONTINUE
    if cancelled_at > entry.obtained_at:
        return ResumeAction.SUPERSEDE
    return ResumeAction.CONTINUE
