"""Suite and corp tokens: shapes, reuse, expiry on the emulated clock, and WeCom's error codes."""

from __future__ import annotations

import pytest
import requests

from authsync_dev.emulator import Emulator
from tests.authsync_dev.conftest import Caller


def _ticket_body(wecom: Emulator, sid: str, **overrides: str) -> dict[str, str]:
    """A valid get_suite_token body for suite ``sid`` (pushing a ticket if it has none), then ``overrides``."""
    suite = wecom.suite(sid)
    ticket = wecom.ticket(sid) or wecom.push_suite_ticket(sid).suite_ticket
    return {"suite_id": sid, "suite_secret": suite.suite_secret, "suite_ticket": ticket or "", **overrides}


def test_get_suite_token_answers_without_errcode(wecom, call):
    suite = wecom.add_suite()
    answer = call("service/get_suite_token", _ticket_body(wecom, suite.suite_id))
    assert set(answer) == {"suite_access_token", "expires_in"}
    assert answer["expires_in"] == 7200
    assert len(answer["suite_access_token"]) >= 64


def test_same_suite_token_within_its_life_new_one_after(wecom, call):
    suite = wecom.add_suite()
    first = call("service/get_suite_token", _ticket_body(wecom, suite.suite_id))
    wecom.advance(1000)
    again = call("service/get_suite_token", _ticket_body(wecom, suite.suite_id))
    assert again["suite_access_token"] == first["suite_access_token"]
    assert again["expires_in"] == 6200
    wecom.advance(6200)
    wecom.push_suite_ticket(suite.suite_id)  # the old ticket is past its 30 minutes by now
    fresh = call("service/get_suite_token", _ticket_body(wecom, suite.suite_id))
    assert fresh["suite_access_token"] != first["suite_access_token"]
    assert fresh["expires_in"] == 7200


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [
        ({"suite_id": ""}, 40083),
        ({"suite_id": "wwnosuchsuite00001"}, 40083),
        ({"suite_secret": "wrong"}, 40080),
        ({"suite_secret": ""}, 41024),
        ({"suite_ticket": ""}, 41023),
        ({"suite_ticket": "not-a-ticket"}, 40085),
        ({"suite_ticket": "票据"}, 40085),
    ],
)
def test_get_suite_token_errors(wecom, call, overrides, errcode):
    suite = wecom.add_suite()
    answer = call("service/get_suite_token", _ticket_body(wecom, suite.suite_id, **overrides))
    assert answer["errcode"] == errcode
    assert f"e={errcode}" in answer["errmsg"]
    assert "suite_access_token" not in answer


def test_only_current_and_previous_ticket_are_accepted(wecom, call):
    suite = wecom.add_suite()
    oldest = wecom.push_suite_ticket(suite.suite_id).suite_ticket
    previous = wecom.push_suite_ticket(suite.suite_id).suite_ticket
    current = wecom.push_suite_ticket(suite.suite_id).suite_ticket
    assert oldest
    assert previous
    assert current
    assert call("service/get_suite_token", _ticket_body(wecom, suite.suite_id, suite_ticket=oldest))["errcode"] == 40085
    for ticket in (previous, current):
        assert "suite_access_token" in call(
            "service/get_suite_token", _ticket_body(wecom, suite.suite_id, suite_ticket=ticket)
        )


def test_ticket_of_another_suite_is_40085(wecom, call):
    mine, other = wecom.add_suite(), wecom.add_suite()
    wecom.push_suite_ticket(mine.suite_id)
    foreign = wecom.push_suite_ticket(other.suite_id).suite_ticket
    assert foreign
    body = _ticket_body(wecom, mine.suite_id, suite_ticket=foreign)
    assert call("service/get_suite_token", body)["errcode"] == 40085


def test_ticket_expires_after_30_minutes(wecom, call):
    suite = wecom.add_suite()
    body = _ticket_body(wecom, suite.suite_id)
    wecom.advance(29 * 60)
    assert "suite_access_token" in call("service/get_suite_token", body)
    wecom.invalidate_tokens(suite_id=suite.suite_id)
    wecom.advance(61)
    assert call("service/get_suite_token", body)["errcode"] == 40085


def test_get_on_a_post_api_loses_the_body(wecom, call):
    """Spec §3: a GET drops the body, so get_suite_token fails with 40083."""
    suite = wecom.add_suite()
    answer = call("service/get_suite_token", _ticket_body(wecom, suite.suite_id), method="GET")
    assert answer["errcode"] == 40083


def test_body_that_is_not_json_is_47001(wecom):
    response = requests.post(f"{wecom.api_url}/service/get_suite_token", data=b"suite_id=x", timeout=5)
    assert response.json()["errcode"] == 47001
    response = requests.post(f"{wecom.api_url}/service/get_suite_token", json=["a"], timeout=5)
    assert response.json()["errcode"] == 47001


def test_suite_token_expiry_and_unknown_tokens(wecom, call, provider):
    installed = provider()
    body = {"auth_corpid": installed.corp.corpid, "permanent_code": installed.permanent_code}
    assert "auth_corp_info" in call("service/get_auth_info", body, suite_access_token=installed.suite_token)
    assert call("service/get_auth_info", body)["errcode"] == 41022
    assert call("service/get_auth_info", body, suite_access_token="bogus")["errcode"] == 40082
    # A corp access_token is the wrong token type for a service API.
    assert call("service/get_auth_info", body, suite_access_token=installed.corp_token)["errcode"] == 40082
    wecom.advance(7200)
    assert call("service/get_auth_info", body, suite_access_token=installed.suite_token)["errcode"] == 42009


def test_corp_token_errors_and_expiry(wecom, call, provider):
    installed = provider()
    path = "chatdata/get_corp_auth_info"
    assert call(path, {}, access_token=installed.corp_token)["errcode"] == 0
    assert call(path, {})["errcode"] == 41001
    assert call(path, {}, access_token="bogus")["errcode"] == 40014
    wecom.advance(7199)
    assert call(path, {}, access_token=installed.corp_token)["errcode"] == 0
    wecom.advance(1)
    assert call(path, {}, access_token=installed.corp_token)["errcode"] == 42001


@pytest.mark.parametrize("parameter", ["access_token", "suite_access_token"])
def test_suite_token_on_a_corp_api_is_41001(call, provider, parameter):
    installed = provider()
    answer = call("chatdata/get_corp_auth_info", {}, **{parameter: installed.suite_token})
    assert answer["errcode"] == 41001


def test_get_corp_token_shape_and_reuse(wecom, call, provider):
    installed = provider()
    body = {"auth_corpid": installed.corp.corpid, "permanent_code": installed.permanent_code}
    answer = call("service/get_corp_token", body, suite_access_token=installed.suite_token)
    assert set(answer) == {"access_token", "expires_in"}
    assert answer["access_token"] == installed.corp_token


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"auth_corpid": "", "permanent_code": "x"}, 41002),
        ({"auth_corpid": "wwunknowncorp00001", "permanent_code": "x"}, 40013),
        ({"permanent_code": ""}, 41025),
        ({"permanent_code": "wrong"}, 40084),
        ({"permanent_code": 12}, 40058),
    ],
)
def test_get_corp_token_errors(call, provider, body, errcode):
    installed = provider()
    request = {"auth_corpid": installed.corp.corpid, **body}
    for path in ("service/get_corp_token", "service/get_auth_info", "service/v2/get_auth_info"):
        assert call(path, request, suite_access_token=installed.suite_token)["errcode"] == errcode


def test_gettoken_for_customized_apps(wecom, call, provider):
    installed = provider("customized")
    answer = call("gettoken", method="GET", corpid=installed.corp.corpid, corpsecret=installed.permanent_code)
    assert answer["errcode"] == 0
    assert answer["errmsg"] == "ok"
    assert answer["access_token"] == installed.corp_token
    assert answer["expires_in"] == 7200
    assert call("gettoken", method="GET", corpsecret=installed.permanent_code)["errcode"] == 41002
    assert call("gettoken", method="GET", corpid=installed.corp.corpid)["errcode"] == 41004
    assert call("gettoken", method="GET", corpid="wwunknown", corpsecret="x")["errcode"] == 40013
    assert call("gettoken", method="GET", corpid=installed.corp.corpid, corpsecret="wrong")["errcode"] == 40001


def test_gettoken_rejects_a_third_party_permanent_code(call, provider):
    """A 第三方 permanent_code is not an app secret: 40001."""
    installed = provider()
    answer = call("gettoken", method="GET", corpid=installed.corp.corpid, corpsecret=installed.permanent_code)
    assert answer["errcode"] == 40001


def test_unknown_path_and_method(wecom):
    assert requests.post(f"{wecom.api_url}/service/nope", timeout=5).status_code == 404
    assert requests.put(f"{wecom.api_url}/service/get_suite_token", timeout=5).status_code == 405
    assert requests.get(f"{wecom.base_url}/elsewhere", timeout=5).status_code == 404


def test_answered_calls_are_attributed_to_their_corp(wecom: Emulator, call: Caller) -> None:
    """The demo's "WeCom calls used" per corp: token, request and exchange answers all name the corp."""
    suite = wecom.add_suite()
    corp = wecom.add_corp()
    wecom.push_suite_ticket(suite.suite_id)
    ticket = wecom.ticket(suite.suite_id)
    token = call(
        "service/get_suite_token",
        {"suite_id": suite.suite_id, "suite_secret": suite.suite_secret, "suite_ticket": ticket},
    )["suite_access_token"]
    code = wecom.create_auth(suite.suite_id, corp.corpid, push=False).auth_code
    permanent = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)["permanent_code"]
    call("service/get_auth_info", {"auth_corpid": corp.corpid, "permanent_code": permanent}, suite_access_token=token)
    assert wecom.corp_calls(corp.corpid) == {"service/get_auth_info": 1, "service/v2/get_permanent_code": 1}
    wecom.reset_counters()
    assert wecom.corp_calls(corp.corpid) == {}
