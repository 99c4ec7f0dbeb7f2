"""Fault injection, call-rate limits and per-endpoint counters."""

from __future__ import annotations

import time

import pytest
import requests

from authsync_dev.emulator import Emulator, SuiteRecord


def _ticket_body(wecom: Emulator, suite: SuiteRecord) -> dict[str, str | None]:
    return {
        "suite_id": suite.suite_id,
        "suite_secret": suite.suite_secret,
        "suite_ticket": wecom.ticket(suite.suite_id),
    }


@pytest.fixture
def suite(wecom):
    created = wecom.add_suite()
    wecom.push_suite_ticket(created.suite_id)
    return created


@pytest.mark.parametrize(("kind", "errcode"), [("-1", -1), (-1, -1), ("45009", 45009), (45009, 45009)])
def test_errcode_faults(wecom, call, suite, kind, errcode):
    wecom.inject_fault("service/get_suite_token", kind, times=1)
    assert call("service/get_suite_token", _ticket_body(wecom, suite))["errcode"] == errcode
    assert "suite_access_token" in call("service/get_suite_token", _ticket_body(wecom, suite))
    counters = wecom.counters()["service/get_suite_token"]
    assert counters.calls == 2
    assert counters.ok == 1
    assert counters.errors == {errcode: 1}
    assert counters.faults == {str(kind): 1}


def test_http_5xx_fault(wecom, suite):
    wecom.inject_fault("service/get_suite_token", "http5xx", status=502, times=1)
    response = requests.post(f"{wecom.api_url}/service/get_suite_token", json=_ticket_body(wecom, suite), timeout=5)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert wecom.counters()["service/get_suite_token"].http_status == {502: 1}


def test_slow_fault(wecom, call, suite):
    wecom.inject_fault("*", "slow", delay=0.3, times=1)
    started = time.monotonic()
    assert "suite_access_token" in call("service/get_suite_token", _ticket_body(wecom, suite))
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    call("service/get_suite_token", _ticket_body(wecom, suite))
    assert time.monotonic() - started < 0.3


def test_invalidate_token_fault_ends_the_presented_token(wecom, call, provider):
    installed = provider()
    body = {"auth_corpid": installed.corp.corpid, "permanent_code": installed.permanent_code}
    wecom.inject_fault("service/get_auth_info", "invalidate_token", times=1)
    assert call("service/get_auth_info", body, suite_access_token=installed.suite_token)["errcode"] == 42009
    wecom.inject_fault("chatdata/get_corp_auth_info", "invalidate_token", times=1)
    assert call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)["errcode"] == 42001
    # Every later holder of an ended token fails too: counted as WeCom's doing (ended_early), not the client's.
    assert call("service/get_auth_info", body, suite_access_token=installed.suite_token)["errcode"] == 42009
    assert wecom.counters()["service/get_auth_info"].faults == {"invalidate_token": 1, "ended_early": 1}
    # Asking again hands out a new corp token.
    again = call("service/get_corp_token", body, suite_access_token=_new_suite_token(wecom, call, installed.suite))
    assert again["access_token"] != installed.corp_token


def _new_suite_token(wecom, call, suite) -> str:
    answer = call("service/get_suite_token", _ticket_body(wecom, suite))
    token: str = answer["suite_access_token"]
    return token


def test_invalidate_token_fault_on_a_token_issuing_call_issues_a_new_one(wecom, call, suite):
    first = _new_suite_token(wecom, call, suite)
    wecom.inject_fault("service/get_suite_token", "invalidate_token", times=1)
    second = _new_suite_token(wecom, call, suite)
    assert second != first
    assert wecom.state.tokens[first].invalidated


def test_invalidate_tokens_directly(wecom, call, provider):
    installed = provider()
    assert wecom.invalidate_tokens(suite_id=installed.suite.suite_id) == 2
    assert call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)["errcode"] == 42001


def test_probability_is_reproducible_with_a_seed(clock):
    from authsync_dev.emulator import Emulator

    def outcomes() -> list[int]:
        wecom = Emulator(clock=clock, seed=42)
        wecom.inject_fault("*", "-1", probability=0.5)
        from authsync_dev.emulator.api import ApiRequest

        request = ApiRequest("POST", "/cgi-bin/service/get_suite_token", {}, b"{}")
        return [wecom.api.handle(request).document()["errcode"] for _ in range(40)]

    first = outcomes()
    assert first == outcomes()
    assert set(first) == {-1, 40083}


def test_fault_times_and_clear(wecom, call, suite):
    fault = wecom.inject_fault("service/get_suite_token", "-1", times=2)
    results = [call("service/get_suite_token", _ticket_body(wecom, suite)).get("errcode", 0) for _ in range(3)]
    assert results == [-1, -1, 0]
    assert fault.fired == 2
    wecom.inject_fault("service/get_suite_token", "-1")
    assert wecom.clear_faults() == 2
    assert "suite_access_token" in call("service/get_suite_token", _ticket_body(wecom, suite))


def test_bad_fault_arguments(wecom):
    with pytest.raises(ValueError, match="kind"):
        wecom.inject_fault("*", "boom")
    with pytest.raises(ValueError, match="probability"):
        wecom.inject_fault("*", "-1", probability=2)
    with pytest.raises(ValueError, match="5xx"):
        wecom.inject_fault("*", "http5xx", status=404)


def test_rate_limit_answers_45009_until_the_window_passes(wecom, call, suite):
    wecom.set_rate_limit("service/get_suite_token", 2, per_seconds=60)
    answers = [call("service/get_suite_token", _ticket_body(wecom, suite)).get("errcode", 0) for _ in range(3)]
    assert answers == [0, 0, 45009]
    wecom.advance(60)
    assert "suite_access_token" in call("service/get_suite_token", _ticket_body(wecom, suite))
    assert wecom.counters()["service/get_suite_token"].errors == {45009: 1}


def test_counters_per_endpoint_and_reset(wecom, call, provider):
    installed = provider()
    call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)
    call("chatdata/get_corp_auth_info", {}, access_token="bad")
    assert wecom.calls("chatdata/get_corp_auth_info") == 2
    assert wecom.calls("service/get_suite_token") == 1
    assert wecom.calls("service/v2/get_permanent_code") == 1
    assert wecom.calls("service/get_corp_token") == 1
    assert wecom.calls("chatdata/get_auth_user_list") == 0
    snapshot = wecom.counters()["chatdata/get_corp_auth_info"].to_json()
    assert snapshot == {"calls": 2, "ok": 1, "errors": {"40014": 1}, "faults": {}, "http_status": {"200": 2}}
    wecom.reset_counters()
    assert wecom.counters() == {}
