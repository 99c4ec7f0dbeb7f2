"""The callback pusher: WeCom's encryption and signature, every InfoType, retries and the delivery log."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest

from authsync.wecom.callbacks import (
    ApproveSpecialAuth,
    AuthDataPermission,
    CancelAuth,
    CancelSpecialAuth,
    ChangeAppAdmin,
    ChangeAuth,
    CorpArchAuth,
    CreateAuth,
    ExpireRemindDataPermission,
    ResetPermanentCode,
    ShareAgentChange,
    ShareChainChange,
    SuiteTicket,
    parse_envelope,
    parse_event,
)
from authsync_dev.emulator import ChatEdition, Emulator, HeldPush, HttpRequest, SuiteRecord


def _open(suite: SuiteRecord, request: HttpRequest):
    """Verify and decrypt a pushed request as the provider would."""
    query = dict(parse_qsl(request.query_string))
    envelope = parse_envelope(request.body)
    assert envelope.to_user_name == suite.suite_id
    decrypted = suite.crypto().verify_and_decrypt(
        query["msg_signature"], query["timestamp"], query["nonce"], envelope.encrypt
    )
    assert decrypted.receive_id == suite.suite_id
    return parse_event(decrypted.message)


def test_suite_ticket_push_is_encrypted_signed_and_posted_to_the_suite_path(pushing, receiver):
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivered
    (request,) = receiver.requests
    assert request.method == "POST"
    assert request.path == f"/wecom/callback/{suite.suite_id}"
    assert request.headers["content-type"] == "text/xml"
    event = _open(suite, request)
    assert isinstance(event, SuiteTicket)
    assert event.suite_ticket.get_secret_value() == result.suite_ticket == pushing.ticket(suite.suite_id)
    assert event.timestamp == int(pushing.now())
    assert b"SuiteTicket" not in request.body  # only the ciphertext travels


def test_every_info_type_parses_with_the_projects_models(pushing, receiver):
    suite = pushing.add_suite(kind="customized")
    corp = pushing.add_corp()
    created = pushing.create_auth(suite.suite_id, corp.corpid, state="install-1")
    pushing.change_auth(suite.suite_id, corp.corpid)
    pushing.auth_data_permission(suite.suite_id, corp.corpid)
    pushing.expire_remind_data_permission(suite.suite_id, corp.corpid, auth_type="data_zone_chat")
    reset = pushing.reset_permanent_code(suite.suite_id, corp.corpid)
    pushing.cancel_auth(suite.suite_id, corp.corpid)
    events = [_open(suite, r) for r in receiver.requests]
    kinds = [type(e) for e in events]
    assert kinds == [
        CreateAuth,
        ChangeAuth,
        AuthDataPermission,
        ExpireRemindDataPermission,
        ResetPermanentCode,
        CancelAuth,
    ]
    create, change, permission, remind, reset_event, cancel = events
    assert isinstance(create, CreateAuth)
    assert create.auth_code.get_secret_value() == created.auth_code
    assert create.state == "install-1"
    assert create.raw["SuiteId"] == suite.suite_id
    assert isinstance(change, ChangeAuth)
    assert change.auth_corp_id == corp.corpid
    assert change.state == "install-1"
    assert isinstance(permission, AuthDataPermission)
    assert permission.auth_type == "data_zone_chat"
    assert isinstance(remind, ExpireRemindDataPermission)
    assert isinstance(reset_event, ResetPermanentCode)
    assert reset_event.auth_code.get_secret_value() == reset.auth_code
    assert isinstance(cancel, CancelAuth)
    assert cancel.auth_corp_id == corp.corpid
    assert all(d.delivered for d in pushing.deliveries())


def test_authorization_scope_pushes_parse_with_the_projects_models(pushing, receiver):
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False)
    pushing.share_agent_change(suite.suite_id, corp.corpid, agent_id=11)
    pushing.share_agent_change(suite.suite_id, corp.corpid, chain=True)
    pushing.corp_arch_auth(suite.suite_id, corp.corpid)
    pushing.approve_special_auth(suite.suite_id, corp.corpid)
    pushing.cancel_special_auth(suite.suite_id, corp.corpid, auth_type="customer_acquisition")
    events = [_open(suite, r) for r in receiver.requests]
    assert [type(e) for e in events] == [
        ShareAgentChange,
        ShareChainChange,
        CorpArchAuth,
        ApproveSpecialAuth,
        CancelSpecialAuth,
    ]
    assert all(e.corp_id == corp.corpid and e.queued for e in events)
    assert events[0].raw["CorpId"] == corp.corpid  # D-93373: the sharing corp, not AuthCorpId
    assert events[0].raw["AgentId"] == "11"
    special = events[3]
    assert isinstance(special, ApproveSpecialAuth)
    assert special.auth_type == "customer_acquisition"
    assert all(d.delivered for d in pushing.deliveries())


def test_change_app_admin_is_an_event_style_document_encrypted_for_the_corp(pushing, receiver):
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False)
    result = pushing.change_app_admin(suite.suite_id, corp.corpid, agent_id=3)
    assert result.delivered
    (request,) = receiver.requests
    assert request.path == f"/wecom/callback/{suite.suite_id}"
    query = dict(parse_qsl(request.query_string))
    envelope = parse_envelope(request.body)
    assert envelope.to_user_name == corp.corpid
    decrypted = suite.crypto().verify_and_decrypt(
        query["msg_signature"], query["timestamp"], query["nonce"], envelope.encrypt, any_receive_id=True
    )
    assert (decrypted.receive_id, decrypted.accepted) == (corp.corpid, False)  # the 数据回调 URL's receiveid
    event = parse_event(decrypted.message, suite_id=suite.suite_id)
    assert isinstance(event, ChangeAppAdmin)
    assert (event.corp_id, event.agent_id, event.timestamp) == (corp.corpid, "3", int(pushing.now()))
    assert "InfoType" not in event.raw
    assert event.raw["MsgType"] == "event"


def test_scope_pushes_need_an_install(pushing):
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    with pytest.raises(LookupError):
        pushing.corp_arch_auth(suite.suite_id, corp.corpid)


def test_mutations_announce_change_auth(pushing, receiver):
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False, chat_editions=[ChatEdition(1)])
    deliveries = [
        *pushing.verify_corp(corp.corpid),
        pushing.set_chatdata_editions(suite.suite_id, corp.corpid, [ChatEdition(1), ChatEdition(2)]),
        pushing.set_chatdata_status(suite.suite_id, corp.corpid, 1, 3),
        pushing.set_chatdata_scope(suite.suite_id, corp.corpid, 2, userid_list=["x"]),
        pushing.set_visibility(suite.suite_id, corp.corpid, allow_user=["y"]),
        pushing.set_auth_mode(suite.suite_id, corp.corpid, 1),
    ]
    assert len(deliveries) == 6
    assert all(d is not None and d.event == "change_auth" and d.delivered for d in deliveries)
    assert all(isinstance(_open(suite, r), ChangeAuth) for r in receiver.requests)
    assert pushing.set_members(suite.suite_id, corp.corpid, None) is None  # silent by default


def test_by_default_a_wrong_answer_is_not_re_sent(pushing, receiver):
    """WeCom's documented behaviour: only a timeout or a network failure is re-sent; a 5xx answer is final."""
    receiver.script[:] = [(503, b"temporarily_unavailable", 0.0)] * 3
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert not result.delivered
    assert result.delivery is not None
    assert [(a.attempt, a.status, a.outcome) for a in result.delivery.attempts] == [(1, 503, "http_status")]
    assert len(receiver.requests) == 1


def test_failing_callback_is_retried_until_success(pushing, receiver):
    """Under the older "retry any failure" policy: a 500, then a wrong answer, then success."""
    pushing.pusher.retry_on = "any"
    receiver.script[:] = [(500, b"oops", 0.0), (200, b"ok", 0.0)]
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivered
    assert result.delivery is not None
    attempts = result.delivery.attempts
    assert [(a.attempt, a.status, a.outcome, a.answer) for a in attempts] == [
        (1, 500, "http_status", "oops"),
        (2, 200, "bad_answer", "ok"),
        (3, 200, "success", "success"),
    ]
    assert all(a.latency_ms >= 0 for a in attempts)
    assert len(receiver.requests) == 3
    # The same signed request is re-sent: it still verifies.
    assert len({r.query_string for r in receiver.requests}) == 1
    assert pushing.delivery_log() == list(attempts)


def test_callback_that_never_succeeds_gets_three_retries(pushing, receiver):
    pushing.pusher.retry_on = "any"
    receiver.script[:] = [(503, b"", 0.0)] * 10
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert not result.delivered
    assert result.delivery is not None
    assert [a.attempt for a in result.delivery.attempts] == [1, 2, 3, 4]
    assert len(receiver.requests) == 4


def test_answer_must_be_exactly_success(pushing, receiver):
    pushing.pusher.retry_on = "any"
    receiver.script[:] = [(200, b"success\n", 0.0), (200, b'"success"', 0.0)]
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert [a.outcome for a in result.delivery.attempts] == ["bad_answer", "bad_answer", "success"]


def test_slow_answer_is_a_timeout(pushing, receiver):
    receiver.script[:] = [(200, b"success", 0.8)]  # the pusher's deadline is 0.5 s in this fixture
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    first, second = result.delivery.attempts
    assert first.outcome == "timeout"
    assert first.status is None
    assert second.outcome == "success"


def test_an_authorization_event_must_be_answered_within_one_second(pushing, receiver):
    """create_auth answered after 1.2 s: WeCom gave up at 1 s, so it is a timeout and is re-sent."""
    pushing.pusher.timeout = 5.0
    receiver.script[:] = [(200, b"success", 1.2), (200, b"success", 0.0)]
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    result = pushing.create_auth(suite.suite_id, corp.corpid)
    assert result.delivery is not None
    first, second = result.delivery.attempts
    assert (first.outcome, second.outcome) == ("timeout", "success")
    assert 950 <= first.latency_ms < 1200  # the connection was dropped at the deadline
    assert pushing.pusher.deadline("create_auth") == 1.0
    assert pushing.pusher.deadline("suite_ticket") == 5.0


def test_unreachable_callback_url(clock):
    with Emulator(clock=clock, callback_url="http://127.0.0.1:9/cb", retries=1, retry_delays=(0.0,)) as wecom:
        suite = wecom.add_suite()
        result = wecom.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert [a.outcome for a in result.delivery.attempts] == ["connection_error", "connection_error"]


def test_without_callback_url_the_push_is_logged_and_the_ticket_still_minted(wecom):
    suite = wecom.add_suite()
    result = wecom.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert [a.outcome for a in result.delivery.attempts] == ["no_callback_url"]
    assert result.suite_ticket == wecom.ticket(suite.suite_id)


def test_suite_specific_callback_url(pushing, receiver):
    suite = pushing.add_suite(callback_url=receiver.url + "/custom")
    assert pushing.push_suite_ticket(suite.suite_id).delivered
    assert receiver.requests[0].path == "/wecom/callback/custom"


def test_periodic_ticket_pushes(clock, receiver):
    with Emulator(clock=clock, callback_url=receiver.url, ticket_interval=0.05) as wecom:
        suite = wecom.add_suite()
        deadline = time.monotonic() + 5
        while len([r for r in receiver.requests if suite.suite_id in r.path]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    tickets = [_open(suite, r) for r in receiver.requests if suite.suite_id in r.path]
    assert len(tickets) >= 2
    assert all(isinstance(t, SuiteTicket) for t in tickets)


def test_unknown_targets_raise(wecom):
    from authsync_dev.emulator import NotFoundError

    suite = wecom.add_suite()
    with pytest.raises(NotFoundError):
        wecom.push_suite_ticket("wwnope")
    with pytest.raises(NotFoundError):
        wecom.change_auth(suite.suite_id, "wwnocorp")


def test_periodic_pushes_can_wait_a_period_and_run_inside_a_guard(clock, receiver):
    """The local stack's use: no push at start (it pushed synchronously already), each round inside its guard."""
    entered: list[float] = []

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        entered.append(time.monotonic())
        yield

    with Emulator(clock=clock, callback_url=receiver.url) as wecom:
        suite = wecom.add_suite()
        started = time.monotonic()
        wecom.start_ticket_pusher(0.3, immediately=False, guard=guard)
        deadline = time.monotonic() + 5
        while len(entered) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        wecom.stop_ticket_pusher()
    assert len(entered) >= 2
    assert entered[0] - started >= 0.25  # the first round waited one period
    pushed = [r for r in receiver.requests if suite.suite_id in r.path]
    assert len(pushed) == len(entered)  # every round ran inside the guard


# -- duplicate deliveries (copies) -----------------------------------------------------------


def test_copies_post_the_same_signed_request_that_many_times(pushing, receiver):
    pushing.pusher.copies = 3
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivered
    assert len(receiver.requests) == 3
    assert len({r.query_string for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    tickets = [_open(suite, r) for r in receiver.requests]
    assert {t.suite_ticket.get_secret_value() for t in tickets} == {result.suite_ticket}
    assert result.delivery is not None
    assert result.delivery.copies == 3
    assert [(a.copy, a.attempt, a.outcome) for a in result.delivery.attempts] == [
        (1, 1, "success"),
        (2, 1, "success"),
        (3, 1, "success"),
    ]
    document = result.delivery.to_json()
    assert document["copies"] == 3
    assert document["delivered"] is True
    assert [a["copy"] for a in document["attempts"]] == [1, 2, 3]
    assert pushing.delivery_log() == list(result.delivery.attempts)


def test_copies_given_to_the_emulator(clock, receiver):
    with Emulator(clock=clock, callback_url=receiver.url, copies=2) as wecom:
        suite = wecom.add_suite()
        corp = wecom.add_corp()
        result = wecom.create_auth(suite.suite_id, corp.corpid)
    assert result.delivered
    assert wecom.pusher.copies == 2
    first, second = (_open(suite, r) for r in receiver.requests)
    assert isinstance(first, CreateAuth)
    assert first.auth_code.get_secret_value() == second.auth_code.get_secret_value() == result.auth_code


def test_each_copy_follows_the_default_retry_policy(pushing, receiver):
    """A copy answered 503 is not re-sent (network-only retries); the next copy is still delivered."""
    pushing.pusher.copies = 2
    receiver.script[:] = [(503, b"busy", 0.0)]
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert [(a.copy, a.attempt, a.status, a.outcome) for a in result.delivery.attempts] == [
        (1, 1, 503, "http_status"),
        (2, 1, 200, "success"),
    ]
    assert not result.delivered  # the first copy's last attempt failed
    assert len(receiver.requests) == 2


def test_each_copy_has_its_own_retries(pushing, receiver):
    pushing.pusher.retry_on = "any"
    pushing.pusher.copies = 2
    receiver.script[:] = [(500, b"oops", 0.0), (200, b"ok", 0.0), (200, b"success", 0.0), (503, b"", 0.0)]
    suite = pushing.add_suite()
    result = pushing.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert [(a.copy, a.attempt, a.outcome) for a in result.delivery.attempts] == [
        (1, 1, "http_status"),
        (1, 2, "bad_answer"),
        (1, 3, "success"),
        (2, 1, "http_status"),
        (2, 2, "success"),
    ]
    assert result.delivered
    assert len(receiver.requests) == 5
    assert len({(r.query_string, r.body) for r in receiver.requests}) == 1


def test_copies_must_be_at_least_one(clock, pushing):
    from authsync_dev.emulator.pusher import CallbackPusher

    with pytest.raises(ValueError, match="copies"):
        CallbackPusher(clock, copies=0)
    with pytest.raises(ValueError, match="copies"):
        Emulator(clock=clock, copies=0)
    with pytest.raises(ValueError, match="copies"):
        pushing.pusher.copies = 0
    assert pushing.pusher.copies == 1


def test_copies_without_a_callback_url_log_one_failed_attempt_each(wecom):
    wecom.pusher.copies = 2
    suite = wecom.add_suite()
    result = wecom.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert not result.delivered
    assert [(a.copy, a.outcome) for a in result.delivery.attempts] == [(1, "no_callback_url"), (2, "no_callback_url")]


# -- late deliveries (holding) ---------------------------------------------------------------


def test_held_push_is_delivered_later_with_its_original_timestamp(pushing, receiver):
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    happened = int(pushing.now())
    with pushing.holding() as held:
        result = pushing.create_auth(suite.suite_id, corp.corpid)
    assert result.auth_code
    assert result.delivery is not None
    assert result.delivery.attempts == ()
    assert not result.delivered
    assert receiver.requests == []
    assert pushing.deliveries() == []
    (push,) = held
    assert isinstance(push, HeldPush)
    assert (push.suite_id, push.event, push.corpid) == (suite.suite_id, "create_auth", corp.corpid)
    assert push.timestamp == happened

    pushing.advance(600)
    delivery = pushing.deliver_held(push)
    assert delivery.delivered
    assert delivery.delivery_id == result.delivery.delivery_id
    (request,) = receiver.requests
    event = _open(suite, request)
    assert isinstance(event, CreateAuth)
    assert event.auth_code.get_secret_value() == result.auth_code
    assert event.timestamp == happened
    assert event.timestamp < int(pushing.now())


def test_held_pushes_can_arrive_out_of_order(pushing, receiver):
    """A change_auth held back arrives after the later cancel_auth: the receiver must order by TimeStamp."""
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False)
    with pushing.holding() as held:
        pushing.change_auth(suite.suite_id, corp.corpid)
    pushing.advance(5)
    assert pushing.cancel_auth(suite.suite_id, corp.corpid).delivered
    assert pushing.deliver_held(held[0]).delivered
    cancel, change = (_open(suite, r) for r in receiver.requests)
    assert isinstance(cancel, CancelAuth)
    assert isinstance(change, ChangeAuth)
    assert change.timestamp == cancel.timestamp - 5


def test_holding_is_per_thread(pushing, receiver):
    suite = pushing.add_suite()
    other: list[bool] = []
    with pushing.holding() as held:
        pushing.push_suite_ticket(suite.suite_id)
        worker = threading.Thread(target=lambda: other.append(pushing.push_suite_ticket(suite.suite_id).delivered))
        worker.start()
        worker.join(timeout=10)
        assert other == [True]
        assert len(receiver.requests) == 1  # the other thread's push went out at once
    assert [p.event for p in held] == ["suite_ticket"]
    assert pushing.push_suite_ticket(suite.suite_id).delivered  # holding ended with the block
    assert len(receiver.requests) == 2


def test_held_push_repr_hides_codes_and_tickets(pushing):
    suite = pushing.add_suite(kind="customized")
    corp = pushing.add_corp()
    with pushing.holding() as held:
        created = pushing.create_auth(suite.suite_id, corp.corpid)
        reset = pushing.reset_permanent_code(suite.suite_id, corp.corpid)
        ticket = pushing.push_suite_ticket(suite.suite_id)
    assert [p.event for p in held] == ["create_auth", "reset_permanent_code", "suite_ticket"]
    secrets = [created.auth_code, reset.auth_code, ticket.suite_ticket]
    assert all(s for s in secrets)
    for push in held:
        for text in (repr(push), str(push)):
            assert not any(s in text for s in secrets if s)
    assert held[0].fields["AuthCode"] == created.auth_code


def test_copies_apply_to_a_held_push_and_holding_does_not_nest(pushing, receiver):
    suite = pushing.add_suite()
    with pushing.holding() as held:
        pushing.push_suite_ticket(suite.suite_id)
        with pytest.raises(RuntimeError), pushing.holding():
            pass
        pushing.push_suite_ticket(suite.suite_id)  # still held after the refused nesting
    assert len(held) == 2
    pushing.pusher.copies = 2
    delivery = pushing.deliver_held(held[1])
    assert delivery.delivered
    assert [a.copy for a in delivery.attempts] == [1, 2]
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
