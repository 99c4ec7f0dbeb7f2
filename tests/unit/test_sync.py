"""The fetch pipeline's use cases (:mod:`authsync.app.sync`) against in-memory fakes of their ports.

Every :class:`authsync.app.sync.Outcome` of both use cases, in milliseconds: no moto, no
emulator, no network, no sleeping (``tests/functions/test_fetch_pipeline.py`` runs the same
paths end to end on moto and the emulator).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from authsync.app.sync import CANCELLED_RETENTION, PENDING_INSTALL_GRACE, Outcome, RetryLaterError, SyncResult
from authsync.aws.queues import AuthMessage, ChatdataRequest
from authsync.domain.install import JournalStatus, auth_code_key
from authsync.wecom.errors import WeComTransientError
from tests.unit.fakes import SUITE, Fakes, callback, chat_edition, raw_callback, reconcile

CORP = "wwcorpunit00000001"


def installed(fakes: Fakes, corp_id: str = CORP, **corp: Any) -> SyncResult:
    """create_auth processed; the log is cleared afterwards so a test sees only its own calls."""
    code = fakes.wecom.create_auth(corp_id, **corp)
    result = fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=code))
    assert result.outcome is Outcome.INSTALLED
    fakes.log.clear()
    return result


def wecom_calls(fakes: Fakes) -> list[str]:
    return fakes.log.names("wecom.")


# -- create_auth / reset_permanent_code --------------------------------------------------------------------


def test_create_auth_journals_the_grant_then_stores_the_code_then_fetches_auth_info_and_requests_chatdata() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP, verified=False)
    fakes.clock.advance(3)
    now = fakes.clock()

    result = fakes.authorization_sync().handle(callback("create_auth", now - 3, AuthCode=code))

    assert result == SyncResult(Outcome.INSTALLED, SUITE, CORP, version=1, changed=True)
    names = fakes.log.names()
    steps = ["wecom.get_permanent_code", "journal.record", "codes.put", "snapshots.record", "wecom.get_auth_info"]
    assert [names.index(step) for step in steps] == sorted(names.index(step) for step in steps)
    assert names[-1] == "journal.close"
    assert fakes.codes.codes[(SUITE, CORP)] == (fakes.wecom.corp(CORP).permanent_code, now)
    (auth_info_call,) = fakes.log.args("wecom.get_auth_info")
    assert auth_info_call == (f"suite-token:{SUITE}", CORP, fakes.wecom.corp(CORP).permanent_code, True)  # v2
    assert "tokens.forget_corp_token" not in names  # nothing to void on a first install
    # The grant's own context first (reactivating), then the fetched auth info.
    assert fakes.log.args("snapshots.record") == [
        (SUITE, CORP, "install", now, True),
        (SUITE, CORP, "auth_info", now, False),
    ]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "active"
    assert state.install is not None
    assert state.install["auth_user_info"]["userid"] == "admin01"  # who installed: answered once, kept
    assert "permanent_code" not in state.install
    corp = fakes.wecom.corp(CORP)
    assert state.auth_info == {"auth_corp_info": corp.auth_corp_info(), "auth_info": corp.auth_info()}
    assert state.verification is not None
    assert (state.verification["verified"], state.verification["customer_cap"]) == (False, 100)
    assert fakes.chatdata.requests == [ChatdataRequest(SUITE, CORP, now)]
    (entry,) = fakes.journal.entries.values()
    assert (entry.corp_id, entry.status, entry.rotate) == (CORP, JournalStatus.COMPLETED, False)
    assert code not in entry.key
    assert entry.key == auth_code_key(SUITE, code)


@pytest.mark.parametrize("info_type", ["create_auth", "reset_permanent_code"])
def test_a_redelivered_exchange_finds_its_journal_entry_and_calls_nothing(info_type: str) -> None:
    """A redelivery after a completed exchange: a DUPLICATE, answered from the journal without asking WeCom."""
    fakes = Fakes()
    if info_type == "create_auth":
        code = fakes.wecom.create_auth(CORP)
    else:
        installed(fakes)
        code = fakes.wecom.reset_permanent_code(CORP)
    message = callback(info_type, fakes.clock(), AuthCode=code)
    first = fakes.authorization_sync().handle(message)
    assert first.outcome in {Outcome.INSTALLED, Outcome.ROTATED}
    stored, requests = dict(fakes.codes.codes), list(fakes.chatdata.requests)
    fakes.log.clear()

    result = fakes.authorization_sync().handle(message)

    assert result == SyncResult(Outcome.DUPLICATE, SUITE, CORP)
    assert fakes.log.names() == ["journal.get"]
    assert fakes.codes.codes == stored
    assert fakes.chatdata.requests == requests


def test_an_expired_auth_code_with_no_journal_entry_is_an_install_lost_and_nothing_is_stored() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.clock.advance(601)  # AuthCodes live 10 minutes
    sent = fakes.clock() - 601

    result = fakes.authorization_sync().handle(callback("create_auth", sent, AuthCode=code))

    assert result == SyncResult(Outcome.INSTALL_LOST, SUITE, event_time=int(sent))
    assert fakes.codes.codes == {}
    assert fakes.snapshots.corps == {}
    assert fakes.journal.entries == {}
    assert "wecom.get_auth_info" not in fakes.log.names()
    assert fakes.log.names().count("journal.get") == 2  # before, and again after the 40078 (a concurrent writer?)


def test_reset_permanent_code_rotates_the_code_and_voids_the_corp_token() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.chatdata_sync().handle(fakes.chatdata.requests[-1])  # a corp token now exists
    assert (SUITE, CORP) in fakes.tokens.corp_tokens
    old_code = fakes.codes.codes[(SUITE, CORP)][0]
    code = fakes.wecom.reset_permanent_code(CORP)
    fakes.clock.advance(60)
    fakes.log.clear()

    result = fakes.authorization_sync().handle(callback("reset_permanent_code", fakes.clock(), AuthCode=code))

    assert result == SyncResult(Outcome.ROTATED, SUITE, CORP, version=1, changed=False)  # same facts: no version
    new_code = fakes.codes.codes[(SUITE, CORP)][0]
    assert new_code != old_code
    assert new_code == fakes.wecom.corp(CORP).permanent_code
    names = fakes.log.names()
    assert names.index("codes.put") < names.index("tokens.forget_corp_token") < names.index("wecom.get_auth_info")
    assert (SUITE, CORP) not in fakes.tokens.corp_tokens
    assert fakes.log.args("wecom.get_auth_info")[0][2] == new_code
    assert fakes.chatdata.requests[-1] == ChatdataRequest(SUITE, CORP, fakes.clock())


def test_a_reinstall_after_cancel_reactivates_the_tombstone_and_continues_versions() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.wecom.cancel_auth(CORP)
    fakes.authorization_sync().handle(callback("cancel_auth", fakes.clock(), AuthCorpId=CORP))
    fakes.clock.advance(3600)

    result = installed(fakes)

    assert (result.outcome, result.version, result.changed) == (Outcome.INSTALLED, 2, True)
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.status, state.activations) == ("active", 2)


def test_a_failed_auth_info_fetch_after_the_exchange_leaves_the_corp_installed_and_the_retry_resumes() -> None:
    """The grant is journaled and the corp exists from its context at once; the redelivery only fetches."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.wecom.fail("get_auth_info", -1, endpoint="service/v2/get_auth_info")
    message = callback("create_auth", fakes.clock(), AuthCode=code)

    with pytest.raises(WeComTransientError):
        fakes.authorization_sync().handle(message)

    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    pending = fakes.snapshots.peek(CORP)
    assert pending is not None
    assert pending.status == "active"
    assert (pending.install is not None, pending.auth_info_version) == (True, 0)  # awaiting its auth info
    assert fakes.chatdata.requests == []
    assert len(fakes.journal.open_keys()) == 1
    fakes.log.clear()

    retried = fakes.authorization_sync().handle(message)

    assert retried == SyncResult(Outcome.INSTALLED, SUITE, CORP, 1, True, detail="resumed")
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]  # no second exchange
    assert fakes.journal.open_keys() == []
    assert len(fakes.chatdata.requests) == 1


def test_an_exchange_whose_auth_info_is_already_invalid_still_reports_installed() -> None:
    """40084 right after the exchange: the code and the grant's state are kept, the entry is closed."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.wecom.fail("get_auth_info", 40084)

    result = fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=code))

    assert result == SyncResult(Outcome.INSTALLED, SUITE, CORP, version=None, changed=False)
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.auth_info is None
    assert state.install is not None
    assert fakes.chatdata.requests == []
    assert fakes.journal.open_keys() == []


def test_an_exchange_error_other_than_a_bad_auth_code_propagates() -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    fakes.wecom.fail("get_permanent_code", 45009)

    with pytest.raises(WeComTransientError):
        fakes.authorization_sync().handle(callback("create_auth", fakes.clock(), AuthCode=code))
    assert fakes.codes.codes == {}


# -- change_auth, data permissions, reconcile ------------------------------------------------------------------


def test_change_auth_fetches_and_records_a_new_version_when_the_facts_changed() -> None:
    fakes = Fakes()
    installed(fakes, verified=False)
    fakes.wecom.corp(CORP).verified = True
    fakes.clock.advance(30)
    now = fakes.clock()

    result = fakes.authorization_sync().handle(callback("change_auth", now - 1, AuthCorpId=CORP))

    assert result == SyncResult(Outcome.FETCHED, SUITE, CORP, version=2, changed=True)
    assert fakes.log.args("snapshots.record") == [(SUITE, CORP, "auth_info", now, False)]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.auth_info_fetched_at == now
    assert state.verification is not None
    assert state.verification["verified"] is True
    assert fakes.chatdata.requests[-1] == ChatdataRequest(SUITE, CORP, now)


def test_change_auth_without_a_change_fetches_but_writes_no_version() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(30)

    result = fakes.authorization_sync().handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))

    assert result == SyncResult(Outcome.FETCHED, SUITE, CORP, version=1, changed=False)
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.auth_info_version, state.auth_info_fetches) == (1, 2)
    assert len(fakes.chatdata.requests) == 2  # the refresh still asks for chatdata


@pytest.mark.parametrize(
    "info_type", ["auth_data_permission", "expire_remind_data_permission", "data_permission_expired_undocumented"]
)
def test_data_permission_events_fetch_auth_info(info_type: str) -> None:
    """Including an unknown InfoType carrying AuthCorpId and AuthType (routed as a data permission)."""
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(5)

    result = fakes.authorization_sync().handle(
        callback(info_type, fakes.clock() - 1, AuthCorpId=CORP, AuthType="data_zone_chat")
    )

    assert (result.outcome, result.corp_id) == (Outcome.FETCHED, CORP)
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]


def scope_event(info_type: str, sent_at: float, corp_id: str = CORP) -> AuthMessage:
    """An authorization-scope callback as callback-ingest enqueues it (each with its documented corp field)."""
    if info_type == "change_app_admin":  # Event-style (D-95038): the suite is the queue message's
        xml = (
            f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{int(sent_at)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_app_admin]]></Event><AgentID>1</AgentID></xml>"
        )
        return AuthMessage("callback", SUITE, corp_id, xml, sent_at, info_type=info_type)
    if info_type in {"share_agent_change", "share_chain_change"}:
        return callback(info_type, sent_at, AppId=11, CorpId=corp_id, AgentId=11)
    return callback(info_type, sent_at, AuthCorpId=corp_id, AuthType="customer_acquisition")


SCOPE_INFO_TYPES = [
    "change_app_admin",
    "share_agent_change",
    "share_chain_change",
    "corp_arch_auth",
    "approve_special_auth",
    "cancel_special_auth",
]


@pytest.mark.parametrize("info_type", SCOPE_INFO_TYPES)
def test_authorization_scope_events_re_fetch_and_diff_like_change_auth(info_type: str) -> None:
    fakes = Fakes()
    installed(fakes, verified=False)
    fakes.wecom.corp(CORP).verified = True
    fakes.clock.advance(30)
    now = fakes.clock()

    result = fakes.authorization_sync().handle(scope_event(info_type, now - 1))

    assert result == SyncResult(Outcome.FETCHED, SUITE, CORP, version=2, changed=True)
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]
    assert fakes.chatdata.requests[-1] == ChatdataRequest(SUITE, CORP, now)


def test_a_burst_of_authorization_scope_events_costs_one_get_auth_info() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(10)
    burst = [scope_event(t, fakes.clock() + i) for i, t in enumerate(SCOPE_INFO_TYPES * 2)]
    burst.append(callback("change_auth", fakes.clock() + len(burst), AuthCorpId=CORP))
    fakes.clock.advance(60)  # processed after the whole burst was sent

    outcomes = [fakes.authorization_sync().handle(m).outcome for m in burst]

    assert outcomes == [Outcome.FETCHED] + [Outcome.FRESH] * (len(burst) - 1)
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]


def test_a_reconcile_request_fetches_auth_info() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(86400)

    result = fakes.authorization_sync().handle(reconcile(CORP, fakes.clock() - 2))

    assert (result.outcome, result.corp_id, result.version) == (Outcome.FETCHED, CORP, 1)
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]


def test_an_event_sent_before_the_stored_fetch_is_fresh_and_calls_nothing() -> None:
    fakes = Fakes()
    installed(fakes)
    fetched_at = fakes.clock()
    fakes.clock.advance(30)

    results = [
        fakes.authorization_sync().handle(callback("change_auth", sent, AuthCorpId=CORP))
        for sent in (fetched_at - 5, fetched_at)  # sent at the fetch's start counts as covered
    ]
    results.append(fakes.authorization_sync().handle(reconcile(CORP, fetched_at)))

    assert [r.outcome for r in results] == [Outcome.FRESH] * 3
    assert {r.version for r in results} == {1}
    assert fakes.log.names() == ["snapshots.get"] * 3
    assert len(fakes.chatdata.requests) == 1  # the install's only


def test_a_burst_of_change_auth_costs_one_get_auth_info() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(10)
    burst = [callback("change_auth", fakes.clock() + i, AuthCorpId=CORP) for i in range(10)]
    fakes.clock.advance(20)  # processed after the whole burst was sent

    outcomes = [fakes.authorization_sync().handle(m).outcome for m in burst]

    assert outcomes == [Outcome.FETCHED] + [Outcome.FRESH] * 9
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]


def test_a_fetch_that_loses_to_a_newer_one_is_stale_and_requests_no_chatdata() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(30)
    started = fakes.clock()

    def newer_fetch_lands() -> None:  # another container fetched later and wrote first
        fakes.snapshots.record(SUITE, CORP, "auth_info", {"auth_corp_info": {"corpid": CORP}}, started + 1)

    fakes.wecom.before["get_auth_info"] = newer_fetch_lands
    requests_before = len(fakes.chatdata.requests)

    result = fakes.authorization_sync().handle(callback("change_auth", started - 1, AuthCorpId=CORP))

    assert fakes.snapshots.results[-1].stale
    assert result == SyncResult(Outcome.FETCHED, SUITE, CORP, version=2, changed=False)
    assert len(fakes.chatdata.requests) == requests_before


def test_authorization_invalid_consumes_the_message_and_deletes_nothing() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.wecom.cancel_auth(CORP)  # its cancel_auth was lost: the code is dead at WeCom
    fakes.clock.advance(30)

    result = fakes.authorization_sync().handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))

    assert result == SyncResult(Outcome.AUTHORIZATION_INVALID, SUITE, CORP)
    assert wecom_calls(fakes) == ["wecom.get_auth_info"]
    assert "snapshots.record" not in fakes.log.names()
    assert (SUITE, CORP) in fakes.codes.codes
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.status, state.auth_info_version) == ("active", 1)
    assert len(fakes.chatdata.requests) == 1


def test_a_code_rotated_by_another_container_is_re_read_once_instead_of_reporting_it_invalid() -> None:
    fakes = Fakes()
    installed(fakes)
    stale = fakes.codes.codes[(SUITE, CORP)][0]
    fakes.wecom.corp(CORP).permanent_code = "PCODE-rotated-elsewhere"
    fakes.codes.codes[(SUITE, CORP)] = ("PCODE-rotated-elsewhere", fakes.clock())
    fakes.codes.cached[(SUITE, CORP)] = stale
    fakes.clock.advance(30)

    result = fakes.authorization_sync().handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))

    assert result.outcome is Outcome.FETCHED
    assert [args[2] for args in fakes.log.args("wecom.get_auth_info")] == [stale, "PCODE-rotated-elsewhere"]
    assert [args[2] for args in fakes.log.args("codes.get")] == [False, True]


def test_other_wecom_errors_of_a_fetch_propagate_for_a_retry() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(30)
    fakes.wecom.fail("get_auth_info", 45009)

    with pytest.raises(WeComTransientError):
        fakes.authorization_sync().handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))
    assert "snapshots.record" not in fakes.log.names()


# -- unknown and cancelled corps -------------------------------------------------------------------------------


def test_an_event_for_an_unknown_corp_is_retried_within_the_grace_period() -> None:
    fakes = Fakes()

    with pytest.raises(RetryLaterError):
        fakes.authorization_sync().handle(
            callback("change_auth", fakes.clock() - PENDING_INSTALL_GRACE + 1, AuthCorpId=CORP)
        )
    assert wecom_calls(fakes) == []


@pytest.mark.parametrize("age", [PENDING_INSTALL_GRACE, PENDING_INSTALL_GRACE + 3600])
def test_an_event_for_an_unknown_corp_is_dropped_after_the_grace_period(age: float) -> None:
    fakes = Fakes()

    result = fakes.authorization_sync().handle(callback("change_auth", fakes.clock() - age, AuthCorpId=CORP))

    assert result == SyncResult(Outcome.UNKNOWN_CORP, SUITE, CORP)
    assert wecom_calls(fakes) == []


def test_a_known_corp_without_a_permanent_code_is_unknown_at_once() -> None:
    """The grace period only covers corps never seen: a stored state without a code is not in flight."""
    fakes = Fakes()
    fakes.snapshots.seed(CORP, auth_info_fetched_at=fakes.clock() - 3600)

    result = fakes.authorization_sync().handle(callback("change_auth", fakes.clock() - 1, AuthCorpId=CORP))

    assert result.outcome is Outcome.UNKNOWN_CORP
    assert wecom_calls(fakes) == []


def test_cancel_auth_deletes_credentials_and_tombstones_without_calling_wecom() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.clock.advance(100)
    now = fakes.clock()

    result = fakes.authorization_sync().handle(callback("cancel_auth", now - 1, AuthCorpId=CORP))

    assert result == SyncResult(Outcome.CANCELLED, SUITE, CORP)
    assert fakes.log.names() == ["snapshots.mark_cancelled", "tokens.forget_corp"]  # tombstone first: ordered
    assert fakes.log.args("snapshots.mark_cancelled") == [(SUITE, CORP, now, CANCELLED_RETENTION)]
    assert (SUITE, CORP) not in fakes.codes.codes
    assert (SUITE, CORP) not in fakes.tokens.corp_tokens
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert (state.status, state.auth_info, state.expires_at) == ("cancelled", None, math.ceil(now + 30 * 86400))


def test_cancel_auth_of_a_corp_never_seen_still_leaves_a_tombstone() -> None:
    fakes = Fakes()

    result = fakes.authorization_sync().handle(callback("cancel_auth", fakes.clock(), AuthCorpId=CORP))

    assert result.outcome is Outcome.CANCELLED
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "cancelled"


@pytest.mark.parametrize("kind", ["change_auth", "reconcile"])
def test_an_event_for_a_cancelled_corp_is_skipped_without_any_call(kind: str) -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.authorization_sync().handle(callback("cancel_auth", fakes.clock(), AuthCorpId=CORP))
    fakes.clock.advance(60)
    fakes.log.clear()
    sent = fakes.clock() - 1
    message = reconcile(CORP, sent) if kind == "reconcile" else callback("change_auth", sent, AuthCorpId=CORP)

    result = fakes.authorization_sync().handle(message)

    assert result == SyncResult(Outcome.SKIPPED_CANCELLED, SUITE, CORP)
    assert fakes.log.names() == ["snapshots.get"]


# -- ignored events -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "detail", "corp_id"),
    [
        (callback("change_contact", 1.0, AuthCorpId=CORP, ChangeType="create_user"), "change_contact", CORP),
        (callback("suite_ticket", 1.0, SuiteTicket="ticket-value"), "suite_ticket", None),
        (
            raw_callback(
                "<xml><ToUserName>ww</ToUserName><MsgType>event</MsgType><Event>change_contact</Event>"
                "<ChangeType>create_party</ChangeType></xml>",
                1.0,
            ),
            "event:change_contact:create_party",
            None,
        ),
    ],
    ids=["unknown-info-type", "suite-ticket", "msgtype-event"],
)
def test_events_this_pipeline_does_not_act_on_are_ignored(
    message: AuthMessage, detail: str, corp_id: str | None
) -> None:
    fakes = Fakes()

    result = fakes.authorization_sync().handle(message)

    assert result == SyncResult(Outcome.IGNORED, SUITE, corp_id, detail=detail)
    assert fakes.log.names() == []


# -- chatdata ------------------------------------------------------------------------------------------------------


def test_chatdata_fetches_editions_and_members_with_the_corp_token() -> None:
    fakes = Fakes()
    installed(fakes)
    request = fakes.chatdata.requests[-1]
    fakes.clock.advance(2)
    now = fakes.clock()

    result = fakes.chatdata_sync().handle(request)

    assert result == SyncResult(Outcome.FETCHED, SUITE, CORP, version=1, changed=True)
    token = fakes.tokens.corp_tokens[(SUITE, CORP)]
    assert token.startswith("corp-token:")
    assert fakes.log.args("wecom.get_corp_chat_auth_info") == [(token,)]
    assert fakes.log.args("wecom.iter_auth_users") == [(token,)]
    assert fakes.log.args("snapshots.record") == [(SUITE, CORP, "chatdata", now, False)]
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.chatdata is not None
    assert "errcode" not in state.chatdata
    assert [u["userid"] for u in state.chatdata["auth_user_list"]] == ["lisi", "wangwu", "zhangsan"]  # sorted
    assert state.chatdata["auth_edition_list"] == fakes.wecom.corp(CORP).chat_editions
    assert state.chatdata_summary is not None
    assert (state.chatdata_summary["authorized"], state.chatdata_summary["active_editions"]) == (True, [1, 2])


def test_chatdata_records_a_new_version_only_when_it_changed() -> None:
    fakes = Fakes()
    installed(fakes)
    first = fakes.chatdata_sync().handle(fakes.chatdata.requests[-1])
    fakes.clock.advance(60)
    same = fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, fakes.clock() - 1))
    fakes.wecom.corp(CORP).chat_editions = [chat_edition(1, 3, "zhangsan", "lisi")]  # paid now
    fakes.clock.advance(60)
    changed = fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, fakes.clock() - 1))

    assert [(r.outcome, r.version, r.changed) for r in (first, same, changed)] == [
        (Outcome.FETCHED, 1, True),
        (Outcome.FETCHED, 1, False),
        (Outcome.FETCHED, 2, True),
    ]


def test_chatdata_already_fetched_after_the_request_is_fresh() -> None:
    fakes = Fakes()
    fakes.snapshots.seed(CORP, auth_info_fetched_at=fakes.clock() - 10, chatdata_fetched_at=fakes.clock() - 5)

    results = [
        fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, requested))
        for requested in (fakes.clock() - 10, fakes.clock() - 5)
    ]

    assert results == [SyncResult(Outcome.FRESH, SUITE, CORP, version=1)] * 2
    assert fakes.log.names() == ["snapshots.get"] * 2


@pytest.mark.parametrize("status", [None, "cancelled"])
def test_chatdata_for_a_corp_never_seen_or_cancelled_is_skipped(status: str | None) -> None:
    fakes = Fakes()
    if status is not None:
        fakes.snapshots.seed(CORP, status=status, auth_info_fetched_at=fakes.clock() - 100)
    fakes.codes.put(SUITE, CORP, "permcode-x", fakes.clock())
    fakes.log.clear()

    result = fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, fakes.clock()))

    assert result == SyncResult(Outcome.SKIPPED_INACTIVE, SUITE, CORP)
    assert fakes.log.names() == ["snapshots.get"]


def test_chatdata_not_authorized_48002_is_recorded_as_the_corps_state() -> None:
    fakes = Fakes()
    installed(fakes, chat_editions=[])
    first = fakes.chatdata_sync().handle(fakes.chatdata.requests[-1])
    fakes.clock.advance(600)
    again = fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, fakes.clock() - 1))

    assert (first.outcome, first.version, first.changed) == (Outcome.FETCHED, 1, True)
    assert (again.outcome, again.version, again.changed) == (Outcome.FETCHED, 1, False)  # a state, not a loop
    assert "wecom.iter_auth_users" not in fakes.log.names()  # the first call's 48002 ends the fetch
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.chatdata == {"not_authorized": True, "errcode": 48002}
    assert state.chatdata_summary == {"authorized": False, "editions": [], "active_editions": [], "errcode": 48002}


def test_chatdata_other_permission_errors_are_recorded_the_same_way_with_their_errcode() -> None:
    """Every WeComPermissionError (60011, 301002 too) is stored as "not authorized" with its errcode."""
    fakes = Fakes()
    installed(fakes)
    fakes.wecom.fail("iter_auth_users", 60011, endpoint="chatdata/get_auth_user_list")

    result = fakes.chatdata_sync().handle(fakes.chatdata.requests[-1])

    assert result.outcome is Outcome.FETCHED
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.chatdata == {"not_authorized": True, "errcode": 60011}


def test_chatdata_for_a_corp_without_a_permanent_code_is_unknown() -> None:
    fakes = Fakes()
    fakes.snapshots.seed(CORP, auth_info_fetched_at=fakes.clock() - 100)

    result = fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, fakes.clock() - 10))

    assert result == SyncResult(Outcome.UNKNOWN_CORP, SUITE, CORP)
    assert wecom_calls(fakes) == []
    assert "snapshots.record" not in fakes.log.names()


def test_chatdata_for_a_dead_permanent_code_is_authorization_invalid() -> None:
    """The cached corp token is refused (40014), its renewal meets the dead code (40084)."""
    fakes = Fakes()
    installed(fakes)
    fakes.chatdata_sync().handle(fakes.chatdata.requests[-1])
    fakes.wecom.cancel_auth(CORP)
    fakes.clock.advance(60)
    fakes.log.clear()

    result = fakes.chatdata_sync().handle(ChatdataRequest(SUITE, CORP, fakes.clock() - 1))

    assert result == SyncResult(Outcome.AUTHORIZATION_INVALID, SUITE, CORP)
    assert wecom_calls(fakes) == ["wecom.get_corp_chat_auth_info", "wecom.get_corp_token"]
    assert "snapshots.record" not in fakes.log.names()
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.chatdata_version == 1


def test_chatdata_transient_errors_propagate_for_a_retry() -> None:
    fakes = Fakes()
    installed(fakes)
    fakes.wecom.fail("get_corp_chat_auth_info", -1, endpoint="chatdata/get_corp_auth_info")

    with pytest.raises(WeComTransientError):
        fakes.chatdata_sync().handle(fakes.chatdata.requests[-1])
    assert "snapshots.record" not in fakes.log.names()
