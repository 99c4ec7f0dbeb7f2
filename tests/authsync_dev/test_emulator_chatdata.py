"""数据与智能专区: get_corp_auth_info editions/status/periods and get_auth_user_list paging (spec §3.5-§3.6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsync_dev.emulator import ChatEdition, Clock, Emulator, Member
from authsync_dev.emulator.api import ApiRequest
from authsync_dev.emulator.model import DAY, day_start

NOW = 1_750_000_000


def test_chatdata_not_authorized_is_48002(call, provider):
    installed = provider(chat=False)
    for path in ("chatdata/get_corp_auth_info", "chatdata/get_auth_user_list"):
        assert call(path, {}, access_token=installed.corp_token)["errcode"] == 48002


def test_corp_auth_info_shape_like_seed_0(call, provider):
    installed = provider()
    answer = call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)
    assert answer["errcode"] == 0
    assert answer["errmsg"] == "ok"
    first, second = answer["auth_edition_list"]
    assert list(first) == [
        "edition",
        "auth_scope",
        "status",
        "begin_time",
        "end_time",
        "msg_duration_days",
        "auth_user_count",
    ]
    assert first["auth_scope"] == {
        "userid_list": ["zhangsan", "lisi"],
        "department_id_list": [1, 2, 3],
        "tag_id_list": [10, 11],
    }
    assert (first["edition"], second["edition"]) == (1, 2)
    assert first["status"] == second["status"] == 1
    # All editions share one trial: 30 days from midnight CST, ending at 23:59:59 (Seed-0's shape).
    assert first["begin_time"] == second["begin_time"] == day_start(NOW)
    assert first["end_time"] - first["begin_time"] == 30 * DAY - 1
    assert (first["begin_time"] + 8 * 3600) % DAY == 0
    assert first["auth_user_count"] == 2


def test_trial_expires_and_late_editions_have_no_period(wecom, call, provider):
    installed = provider()
    suite_id, corpid = installed.suite.suite_id, installed.corp.corpid
    wecom.advance(31 * DAY)
    # The corp adds edition 3 after the shared trial ended and does not buy it: no begin/end.
    editions = [ChatEdition(1, 1), ChatEdition(2, 1), ChatEdition(3, 2, userid_list=["x"])]
    wecom.set_chatdata_editions(suite_id, corpid, editions, push=False)
    answer = call("chatdata/get_corp_auth_info", {}, access_token=_fresh_corp_token(wecom, call, installed))
    by_edition = {e["edition"]: e for e in answer["auth_edition_list"]}
    assert by_edition[1]["status"] == 2  # 试用已到期, with the trial period
    assert "begin_time" in by_edition[1]
    assert by_edition[3]["status"] == 2
    assert "begin_time" not in by_edition[3]
    assert "end_time" not in by_edition[3]


def _fresh_corp_token(wecom, call, installed) -> str:
    """After a long clock jump the provider needs new tokens."""
    suite = installed.suite
    ticket = wecom.push_suite_ticket(suite.suite_id).suite_ticket
    body = {"suite_id": suite.suite_id, "suite_secret": suite.suite_secret, "suite_ticket": ticket}
    suite_token = call("service/get_suite_token", body)["suite_access_token"]
    body = {"auth_corpid": installed.corp.corpid, "permanent_code": installed.permanent_code}
    token: str = call("service/get_corp_token", body, suite_access_token=suite_token)["access_token"]
    return token


@pytest.mark.parametrize("status", [3, 4, 5, 6, 7])
def test_non_trial_statuses_carry_their_own_period(wecom, call, provider, status):
    installed = provider()
    wecom.set_chatdata_status(installed.suite.suite_id, installed.corp.corpid, 2, status, push=False)
    answer = call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)
    edition = answer["auth_edition_list"][1]
    assert edition["status"] == status
    assert edition["end_time"] > edition["begin_time"]
    if status == 7:
        assert edition["begin_time"] > NOW  # 付费待生效: the expected paid window
    if status in (4, 6):
        assert edition["end_time"] < NOW


def test_statuses_move_on_with_the_clock():
    clock = Clock(start=NOW, frozen=True)
    trial = (NOW - 10, NOW + 100)
    paid = ChatEdition(1, 3, begin_time=NOW - 10, end_time=NOW + 100, authorized_at=NOW)
    pending = ChatEdition(2, 7, begin_time=NOW + 50, end_time=NOW + 100, authorized_at=NOW)
    trying = ChatEdition(3, 1, authorized_at=NOW)
    assert [e.effective_status(clock.now(), trial) for e in (paid, pending, trying)] == [3, 7, 1]
    clock.advance(60)
    assert [e.effective_status(clock.now(), trial) for e in (paid, pending, trying)] == [3, 3, 1]
    clock.advance(60)
    assert [e.effective_status(clock.now(), trial) for e in (paid, pending, trying)] == [4, 4, 2]


def test_scope_changes_and_explicit_counts(wecom, call, provider):
    installed = provider()
    suite_id, corpid = installed.suite.suite_id, installed.corp.corpid
    wecom.set_chatdata_scope(
        suite_id,
        corpid,
        1,
        userid_list=["a"],
        department_id_list=[9],
        msg_duration_days=365,
        auth_user_count=40,
        push=False,
    )
    first = call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)["auth_edition_list"][0]
    assert first["auth_scope"]["userid_list"] == ["a"]
    assert first["auth_scope"]["department_id_list"] == [9]
    assert first["msg_duration_days"] == 365
    assert first["auth_user_count"] == 40


def test_invalid_editions_are_refused(wecom, provider):
    installed = provider()
    with pytest.raises(ValueError, match="edition"):
        wecom.set_chatdata_editions(installed.suite.suite_id, installed.corp.corpid, [{"edition": 4}], push=False)
    with pytest.raises(ValueError, match="status"):
        wecom.set_chatdata_editions(
            installed.suite.suite_id, installed.corp.corpid, [{"edition": 1, "status": 8}], push=False
        )
    with pytest.raises(ValueError, match="once"):
        wecom.set_chatdata_editions(installed.suite.suite_id, installed.corp.corpid, [{"edition": 1}] * 2, push=False)


def test_auth_user_list_pages(wecom, call, provider):
    installed = provider()
    members = [Member(f"user{i:03d}", [1, 2] if i % 2 else [1]) for i in range(5)]
    wecom.set_members(installed.suite.suite_id, installed.corp.corpid, members)
    page = call("chatdata/get_auth_user_list", {"limit": 2}, access_token=installed.corp_token)
    assert page["errcode"] == 0
    assert page["auth_user_list"] == [
        {"userid": "user000", "edition_list": [1]},
        {"userid": "user001", "edition_list": [1, 2]},
    ]
    assert page["has_more"] is True
    seen = [m["userid"] for m in page["auth_user_list"]]
    while page["has_more"]:
        page = call(
            "chatdata/get_auth_user_list",
            {"cursor": page["next_cursor"], "limit": 2},
            access_token=installed.corp_token,
        )
        seen += [m["userid"] for m in page["auth_user_list"]]
    assert seen == [m.userid for m in members]
    assert page["next_cursor"] == ""
    # Default limit 200 takes everything; counts follow the member list.
    assert len(call("chatdata/get_auth_user_list", {}, access_token=installed.corp_token)["auth_user_list"]) == 5
    editions = call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)["auth_edition_list"]
    assert [e["auth_user_count"] for e in editions] == [5, 2]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [({"limit": 1001}, 40058), ({"limit": 0}, 40058), ({"limit": "2"}, 40058), ({"cursor": "garbage!"}, 50100)],
)
def test_auth_user_list_errors(call, provider, body, errcode):
    installed = provider()
    assert call("chatdata/get_auth_user_list", body, access_token=installed.corp_token)["errcode"] == errcode


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 30), limit=st.integers(1, 12), as_int=st.booleans())
def test_paging_returns_every_member_once(size, limit, as_int):
    """Property: following next_cursor yields each authorized member exactly once, in order."""
    wecom = Emulator(clock=Clock(start=NOW, frozen=True), has_more_as_int=as_int)  # never started: pure API
    suite = wecom.add_suite()
    corp = wecom.add_corp()
    wecom.create_auth(suite.suite_id, corp.corpid, push=False, chat_editions=[ChatEdition(1)])
    wecom.set_members(suite.suite_id, corp.corpid, [Member(f"u{i:02d}", [1]) for i in range(size)])
    token = wecom.state.issue_token(suite.suite_id, corp.corpid).value
    seen: list[str] = []
    cursor = ""
    for _ in range(size + 2):
        body = b'{"limit": %d, "cursor": "%s"}' % (limit, cursor.encode())
        request = ApiRequest("POST", "/cgi-bin/chatdata/get_auth_user_list", {"access_token": token}, body)
        page = wecom.api.handle(request).document()
        assert page["errcode"] == 0
        assert len(page["auth_user_list"]) <= limit
        seen += [m["userid"] for m in page["auth_user_list"]]
        assert page["has_more"] in ((1, 0) if as_int else (True, False))
        assert type(page["has_more"]) is (int if as_int else bool)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [f"u{i:02d}" for i in range(size)]
