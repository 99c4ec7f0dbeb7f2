"""Exactly-once installs (:mod:`authsync.domain.install`, ``AuthorizationSync``'s exchange) against in-memory fakes.

The function is "killed" after each named step of an install: the step's effect happened,
then the invocation ends with an exception. Whatever the step, the redelivered message
must complete the install with exactly one ``get_permanent_code`` in total.
"""

from __future__ import annotations

from typing import Any

import pytest

from authsync.app.sync import EXCHANGE_RESERVE, MIN_EXCHANGE_TIME, AuthorizationSync, Outcome, RetryLaterError
from authsync.aws.kms import SealError
from authsync.domain.install import JournalEntry, JournalStatus, ResumeAction, auth_code_key, resume_action
from tests.unit.fakes import SUITE, Fakes, callback, resume

CORP = "wwcorpunit00000001"


class Killed(BaseException):
    """The function died: not an ``Exception``, so no code path of ours can swallow it."""


class KillAfter:
    """Delegates to ``target``; the ``nth`` call of ``method`` completes, then the function dies."""

    def __init__(self, target: Any, method: str, nth: int = 1) -> None:
        self._target = target
        self._method = method
        self._left = nth

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            self._left -= 1
            if self._left == 0:
                raise Killed(name)
            return result

        return call


def sync_killed_after(fakes: Fakes, port: str, method: str, nth: int = 1) -> AuthorizationSync:
    ports: dict[str, Any] = {
        "client": fakes.wecom,
        "tokens": fakes.tokens,
        "permanent_codes": fakes.codes,
        "snapshots": fakes.snapshots,
        "chatdata": fakes.chatdata,
        "journal": fakes.journal,
    }
    ports[port] = KillAfter(ports[port], method, nth)
    return AuthorizationSync(**ports, clock=fakes.clock)


KILL_POINTS = [
    ("client", "get_permanent_code", 1),  # after the exchange, before the journal
    ("journal", "record", 1),  # after the journal write
    ("permanent_codes", "put", 1),  # after the code is stored
    ("snapshots", "record", 1),  # after the first state (install)
    ("client", "get_auth_info", 1),  # after auth info was fetched, before its snapshot
    ("snapshots", "record", 2),  # after the snapshot
    ("chatdata", "request", 1),  # after the chatdata request
    ("journal", "close", 1),  # after the entry was closed
]


@pytest.mark.parametrize(("port", "method", "nth"), KILL_POINTS)
def test_an_install_killed_after_any_step_completes_on_redelivery_with_one_exchange(
    port: str, method: str, nth: int
) -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    message = callback("create_auth", fakes.clock(), AuthCode=code)

    with pytest.raises(Killed):
        sync_killed_after(fakes, port, method, nth).handle(message)
    fakes.clock.advance(5)
    retried = fakes.authorization_sync().handle(message)

    calls = fakes.log.names("wecom.")
    if (port, method) == ("client", "get_permanent_code"):
        # Killed before anything was kept: the answer is gone, the code spent. The one loss
        # the journal cannot prevent, reported so an operator can act.
        assert retried.outcome is Outcome.INSTALL_LOST
        assert calls.count("wecom.get_permanent_code") == 2
        return
    assert calls.count("wecom.get_permanent_code") == 1
    assert retried.outcome in {Outcome.INSTALLED, Outcome.DUPLICATE}
    assert retried.corp_id == CORP
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "active"
    assert state.auth_info_version == 1
    assert state.install is not None
    assert fakes.journal.open_keys() == []
    # At most one get_auth_info per delivery that reached it; none after it was recorded.
    assert calls.count("wecom.get_auth_info") <= 2
    if (port, method, nth) in {("snapshots", "record", 2), ("chatdata", "request", 1), ("journal", "close", 1)}:
        assert calls.count("wecom.get_auth_info") == 1  # the resume coalesced with the stored fetch


def test_a_journal_that_cannot_be_written_falls_back_to_the_credential_store() -> None:
    """DynamoDB or KMS refusing until the deadline: the install still completes, without an entry."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.journal.fail()

    result = fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=code))

    assert (result.outcome, result.corp_id, result.detail) == (Outcome.INSTALLED, CORP, "unjournaled")
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    assert fakes.journal.entries == {}
    assert "journal.close" not in fakes.log.names()


class DynamoDBDown:
    """A DynamoDB-backed port during an outage: every call fails."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("DynamoDB unreachable")

        return call


def test_dynamodb_down_across_the_exchange_keeps_the_code_in_the_credential_store_first() -> None:
    """Journal and snapshots share DynamoDB: when both fail, the answer's one durable home is the credential store,
    written before any step that needs DynamoDB."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.journal.fail()
    ports: dict[str, Any] = {
        "client": fakes.wecom,
        "tokens": fakes.tokens,
        "permanent_codes": fakes.codes,
        "snapshots": DynamoDBDown(),
        "chatdata": fakes.chatdata,
        "journal": fakes.journal,
    }

    with pytest.raises(ConnectionError):
        AuthorizationSync(**ports, clock=fakes.clock).handle(callback("create_auth", fakes.clock(), AuthCode=code))

    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    assert fakes.log.names("wecom.").count("wecom.get_permanent_code") == 1


def test_an_unjournaled_rotation_stores_the_new_code_once_and_voids_the_old_codes_token() -> None:
    """Stored first (before DynamoDB), and the token obtained with the replaced code is still dropped."""
    fakes = Fakes()
    fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=fakes.wecom.create_auth(CORP)))
    fakes.tokens.corp_tokens[(SUITE, CORP)] = "token-of-the-old-code"
    fakes.clock.advance(5)
    code = fakes.wecom.reset_permanent_code(CORP)
    fakes.journal.fail()
    fakes.log.clear()

    result = fakes.authorization_sync().handle(callback("reset_permanent_code", fakes.clock(), AuthCode=code))

    assert (result.outcome, result.detail) == (Outcome.ROTATED, "unjournaled")
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    assert fakes.log.names().count("codes.put") == 1
    assert "tokens.forget_corp_token" in fakes.log.names()
    assert (SUITE, CORP) not in fakes.tokens.corp_tokens


def test_a_journal_and_a_credential_store_both_down_lose_the_install_and_the_retry_says_so() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    message = callback("create_auth", fakes.clock(), AuthCode=code)
    fakes.journal.fail()
    fakes.codes.fail_puts = 1

    with pytest.raises(RuntimeError):
        fakes.authorization_sync().handle(message)
    retried = fakes.authorization_sync().handle(message)

    assert retried.outcome is Outcome.INSTALL_LOST
    assert fakes.codes.codes == {}


def test_kms_down_fails_the_message_before_the_auth_code_is_spent_and_the_retry_installs() -> None:
    """The journal and the vault both seal with KMS and nothing falls back to plaintext: without KMS the
    answer would have no home, so the exchange is not started; the retry (AuthCode still alive) installs."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    message = callback("create_auth", fakes.clock(), AuthCode=code)
    fakes.journal.sealing_down = True

    with pytest.raises(SealError):
        fakes.authorization_sync().handle(message)
    assert fakes.log.names("wecom.") == []  # the AuthCode is still unspent
    assert fakes.codes.codes == {}

    fakes.journal.sealing_down = False
    fakes.clock.advance(60)
    result = fakes.authorization_sync().handle(message)
    assert result.outcome is Outcome.INSTALLED
    assert fakes.log.names("wecom.").count("wecom.get_permanent_code") == 1


def test_the_journal_write_may_use_the_time_left_minus_a_reserve() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)

    fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=code), remaining=lambda: 27.0)

    assert fakes.journal.deadlines == [pytest.approx(27.0 - EXCHANGE_RESERVE)]
    (exchange,) = fakes.log.args("wecom.get_permanent_code")
    assert exchange[-1] == pytest.approx(27.0 - EXCHANGE_RESERVE)  # the exchange's own budget, retries included


def test_an_exchange_is_not_started_without_time_for_it_and_its_journal_write() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    message = callback("create_auth", fakes.clock(), AuthCode=code)

    with pytest.raises(RetryLaterError):
        fakes.authorization_sync().handle(message, remaining=lambda: MIN_EXCHANGE_TIME - 0.5)
    assert fakes.log.names("wecom.") == []  # the AuthCode is still unspent

    result = fakes.authorization_sync().handle(message, remaining=lambda: 29.0)
    assert result.outcome is Outcome.INSTALLED


def test_a_resume_request_completes_an_open_entry_and_a_second_one_is_a_duplicate() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    with pytest.raises(Killed):
        sync_killed_after(fakes, "journal", "record").handle(callback("create_auth", fakes.clock(), AuthCode=code))
    (key,) = fakes.journal.open_keys()
    fakes.clock.advance(900)

    first = fakes.authorization_sync().handle(resume(key, fakes.clock()))
    second = fakes.authorization_sync().handle(resume(key, fakes.clock()))
    unknown = fakes.authorization_sync().handle(resume("0" * 64, fakes.clock()))

    assert (first.outcome, first.corp_id, first.detail) == (Outcome.INSTALLED, CORP, "resumed")
    assert (second.outcome, second.corp_id) == (Outcome.DUPLICATE, CORP)
    assert (unknown.outcome, unknown.detail) == (Outcome.DUPLICATE, "no journal entry")
    assert fakes.log.names("wecom.").count("wecom.get_permanent_code") == 1


def test_resuming_never_resurrects_a_corp_cancelled_after_the_exchange() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    with pytest.raises(Killed):
        sync_killed_after(fakes, "journal", "record").handle(callback("create_auth", fakes.clock(), AuthCode=code))
    (key,) = fakes.journal.open_keys()
    fakes.clock.advance(60)
    fakes.wecom.cancel_auth(CORP)
    fakes.authorization_sync().handle(callback("cancel_auth", fakes.clock(), AuthCorpId=CORP))
    fakes.clock.advance(900)

    result = fakes.authorization_sync().handle(resume(key, fakes.clock()))

    assert (result.outcome, result.detail) == (Outcome.SUPERSEDED, "install older than a cancel")
    assert (SUITE, CORP) not in fakes.codes.codes
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "cancelled"
    assert fakes.journal.entries[(SUITE, key)].status is JournalStatus.SUPERSEDED


def test_a_reinstall_after_an_older_cancel_is_not_superseded() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=code))
    fakes.wecom.cancel_auth(CORP)
    fakes.authorization_sync().handle(callback("cancel_auth", fakes.clock(), AuthCorpId=CORP))
    fakes.clock.advance(60)
    again = fakes.wecom.create_auth(CORP)

    result = fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=again))

    assert (result.outcome, result.corp_id) == (Outcome.INSTALLED, CORP)
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "active"


# -- the pure rules ------------------------------------------------------------------------------------------


def entry(status: JournalStatus = JournalStatus.EXCHANGED, obtained_at: float = 100.0) -> JournalEntry:
    return JournalEntry(SUITE, "k" * 64, CORP, obtained_at, False, {}, "PCODE-not-shown", status)


@pytest.mark.parametrize(
    ("status", "cancelled_at", "action"),
    [
        (JournalStatus.COMPLETED, None, ResumeAction.DONE),
        (JournalStatus.SUPERSEDED, 500.0, ResumeAction.DONE),
        (JournalStatus.EXCHANGED, None, ResumeAction.CONTINUE),
        (JournalStatus.EXCHANGED, 99.0, ResumeAction.CONTINUE),  # an older cancel: this is a re-install
        (JournalStatus.EXCHANGED, 101.0, ResumeAction.SUPERSEDE),
    ],
)
def test_resume_action(status: JournalStatus, cancelled_at: float | None, action: ResumeAction) -> None:
    assert resume_action(entry(status), cancelled_at) is action


def test_an_entry_hides_its_code_and_its_key_is_a_hash_of_suite_and_code() -> None:
    assert "PCODE-not-shown" not in repr(entry())
    key = auth_code_key(SUITE, "AUTHCODE-secret")
    assert len(key) == 64
    assert "AUTHCODE" not in key
    assert key != auth_code_key("wwothersuite", "AUTHCODE-secret")
    assert key == auth_code_key(SUITE, "AUTHCODE-secret")


# -- lifecycles in WeCom's order (TimeStamp, then arrival) ----------------------------------------------------


def test_a_late_cancel_never_deletes_a_newer_install() -> None:
    """Uninstall at t=100, re-install at t=200; the cancel is processed last (another FIFO group)."""
    fakes = Fakes()
    first = fakes.wecom.create_auth(CORP)
    fakes.authorization_sync().handle(callback("create_auth", 50, AuthCode=first))
    fakes.wecom.cancel_auth(CORP)
    again = fakes.wecom.create_auth(CORP)
    fakes.clock.advance(10)
    installed = fakes.authorization_sync().handle(callback("create_auth", 200, AuthCode=again))

    late = fakes.authorization_sync().handle(callback("cancel_auth", 100, AuthCorpId=CORP))

    assert installed.outcome is Outcome.INSTALLED
    assert (late.outcome, late.detail) == (Outcome.SUPERSEDED, "cancel older than an install")
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code  # the new code stays
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.status, state.lifecycle_at) == ("active", 200)


def test_a_late_install_never_revives_a_corp_cancelled_after_it() -> None:
    """Install at t=100, uninstall at t=200; the install's message is processed after the cancel."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    cancelled = fakes.authorization_sync().handle(callback("cancel_auth", 200, AuthCorpId=CORP))
    fakes.clock.advance(5)

    late = fakes.authorization_sync().handle(callback("create_auth", 100, AuthCode=code))

    assert cancelled.outcome is Outcome.CANCELLED
    assert late.outcome is Outcome.SUPERSEDED
    assert (SUITE, CORP) not in fakes.codes.codes
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.status, state.lifecycle_at) == ("cancelled", 200)
    assert fakes.journal.entries[(SUITE, auth_code_key(SUITE, code))].status is JournalStatus.SUPERSEDED
    assert fakes.log.names("wecom.").count("wecom.get_permanent_code") == 1  # the code was still spent once


def test_a_cancel_racing_the_install_record_takes_the_stored_code_away() -> None:
    """The cancel (newer) lands between the install's state read and its install record."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    sync = fakes.authorization_sync()
    put = fakes.codes.put

    def put_then_cancel(suite_id: str, corp_id: str, permanent_code: str, obtained_at: float) -> bool:
        replaced = put(suite_id, corp_id, permanent_code, obtained_at)
        fakes.authorization_sync().handle(callback("cancel_auth", 300, AuthCorpId=CORP))
        return replaced

    fakes.codes.put = put_then_cancel  # type: ignore[method-assign]
    result = sync.handle(callback("create_auth", 100, AuthCode=code))

    assert result.outcome is Outcome.SUPERSEDED
    assert (SUITE, CORP) not in fakes.codes.codes  # not left behind for a cancelled corp
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "cancelled"


def test_a_replayed_old_cancel_and_install_change_nothing() -> None:
    fakes = Fakes()
    first = fakes.wecom.create_auth(CORP)
    fakes.authorization_sync().handle(callback("create_auth", 100, AuthCode=first))
    fakes.wecom.cancel_auth(CORP)
    fakes.authorization_sync().handle(callback("cancel_auth", 150, AuthCorpId=CORP))
    again = fakes.wecom.create_auth(CORP)
    fakes.clock.advance(10)
    fakes.authorization_sync().handle(callback("create_auth", 200, AuthCode=again))
    before = fakes.snapshots.peek(CORP)

    replays = [
        fakes.authorization_sync().handle(callback("cancel_auth", 150, AuthCorpId=CORP)),
        fakes.authorization_sync().handle(callback("create_auth", 100, AuthCode=first)),
    ]

    assert [r.outcome for r in replays] == [Outcome.SUPERSEDED, Outcome.DUPLICATE]
    assert fakes.snapshots.peek(CORP) == before
    assert (SUITE, CORP) in fakes.codes.codes


def test_a_second_uninstall_keeps_a_late_reinstall_between_them_superseded() -> None:
    """install@10, cancel@50, re-install@100 (queued), cancel@200: WeCom's final state is cancelled."""
    fakes = Fakes()
    first = fakes.wecom.create_auth(CORP)
    fakes.authorization_sync().handle(callback("create_auth", 10, AuthCode=first))
    fakes.authorization_sync().handle(callback("cancel_auth", 50, AuthCorpId=CORP))
    again = fakes.wecom.create_auth(CORP)
    fakes.authorization_sync().handle(callback("cancel_auth", 200, AuthCorpId=CORP))
    fakes.clock.advance(5)

    late = fakes.authorization_sync().handle(callback("create_auth", 100, AuthCode=again))

    assert late.outcome is Outcome.SUPERSEDED
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.status, state.lifecycle_at) == ("cancelled", 200)
    assert (SUITE, CORP) not in fakes.codes.codes
