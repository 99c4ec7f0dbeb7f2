"""The WeCom HTTP client against the emulator over real HTTP (no mocking of requests).

Each test gets a fresh emulator on a frozen clock; the client sleeps through a recorder
(backoff delays are asserted, not waited for) and reads the same clock, so a token's
``obtained_at`` is the emulator's "now".
"""

from __future__ import annotations

import logging
import pickle
import random
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

import authsync.wecom.client as client_module
from authsync.wecom import errors
from authsync.wecom.client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, WeComClient
from authsync.wecom.errors import (
    WeComApiError,
    WeComAuthCodeError,
    WeComAuthorizationInvalidError,
    WeComConfigError,
    WeComError,
    WeComPermissionError,
    WeComProtocolError,
    WeComTokenError,
    WeComTransientError,
    WeComWrongTokenError,
    error_for,
)
from authsync.wecom.responses import IssuedToken, PermanentCodeGrant
from authsync_dev.emulator import (
    BackgroundHTTPServer,
    Clock,
    CorpRecord,
    Emulator,
    HttpRequest,
    HttpResponse,
    Member,
    SuiteRecord,
    sample_chat_editions,
)
from tests.authsync.conftest import START

# -- fixtures -------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What the client did besides HTTP: its backoff sleeps and its ``on_call`` reports."""

    sleeps: list[float] = field(default_factory=list)
    calls: list[tuple[str, int | None, int, float]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_call(self, endpoint: str, errcode: int | None, attempt: int, seconds: float) -> None:
        self.calls.append((endpoint, errcode, attempt, seconds))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


MakeClient = Callable[..., WeComClient]


@pytest.fixture
def make_client(wecom: Emulator, clock: Clock, recorder: Recorder) -> Iterator[MakeClient]:
    """``make_client(**overrides)``: a client on the emulator; random() is 0.5 unless overridden."""
    made: list[WeComClient] = []

    def _make(**overrides: Any) -> WeComClient:
        options: dict[str, Any] = {
            "sleep": recorder.sleep,
            "random": lambda: 0.5,
            "clock": clock,
            "on_call": recorder.on_call,
            "timeout": (2.0, 5.0),
        }
        options.update(overrides)
        client = WeComClient(options.pop("base_url", wecom.base_url), **options)
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> WeComClient:
    return make_client()


@dataclass
class Installed:
    suite: SuiteRecord
    corp: CorpRecord
    suite_token: IssuedToken
    permanent_code: str
    corp_token: IssuedToken

    @property
    def secrets(self) -> list[str]:
        return [self.suite.suite_secret, self.suite_token.value, self.permanent_code, self.corp_token.value]


Install = Callable[..., Installed]


@pytest.fixture
def install(wecom: Emulator, make_client: MakeClient, recorder: Recorder) -> Install:
    """``install(kind=..., chat=True, members=None)``: a corp installs a fresh suite, driven through the client.

    Counters and the recorder are reset afterwards, so a test counts only its own calls.
    """
    setup = make_client(on_call=None)

    def _install(
        kind: str = "third_party", *, chat: bool = True, members: list[Member] | None = None, verified: bool = False
    ) -> Installed:
        suite = wecom.add_suite(kind=kind)  # type: ignore[arg-type]
        corp = wecom.add_corp(verified=verified)
        ticket = wecom.push_suite_ticket(suite.suite_id).suite_ticket
        assert ticket is not None
        suite_token = setup.get_suite_token(suite.suite_id, suite.suite_secret, ticket)
        code = wecom.create_auth(
            suite.suite_id, corp.corpid, chat_editions=sample_chat_editions() if chat else (), members=members
        ).auth_code
        assert code is not None
        permanent_code = setup.get_permanent_code(suite_token.value, code).permanent_code
        if kind == "customized":
            corp_token = setup.get_customized_token(corp.corpid, permanent_code)
        else:
            corp_token = setup.get_corp_token(suite_token.value, corp.corpid, permanent_code)
        wecom.reset_counters()
        recorder.sleeps.clear()
        recorder.calls.clear()
        return Installed(suite, corp, suite_token, permanent_code, corp_token)

    return _install


@pytest.fixture
def suite(wecom: Emulator) -> SuiteRecord:
    created = wecom.add_suite()
    wecom.push_suite_ticket(created.suite_id)
    return created


def ticket_of(wecom: Emulator, suite: SuiteRecord) -> str:
    ticket = wecom.ticket(suite.suite_id)
    assert ticket is not None
    return ticket


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything the client logs, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="authsync")
    return caplog


def assert_clean(exc: BaseException, secrets: list[str], logs: pytest.LogCaptureFixture | None = None) -> None:
    """No secret in the error's text, repr, args, errmsg, formatted traceback, chain, or the client's logs."""
    rendered = [str(exc), repr(exc), *map(str, exc.args), "".join(traceback.format_exception(exc))]
    if isinstance(exc, WeComError):
        rendered.append(exc.errmsg)
    if logs is not None:
        rendered.append(logs.text)
        rendered.extend(str(record.args) for record in logs.records)
    for secret in secrets:
        assert secret
        for text in rendered:
            assert secret not in text
    assert exc.__cause__ is None
    assert exc.__context__ is None


def assert_not_retried(wecom: Emulator, recorder: Recorder, endpoint: str) -> None:
    assert wecom.calls(endpoint) == 1
    assert recorder.sleeps == []


# -- happy paths and shapes ----------------------------------------------------------------


def test_get_suite_token(wecom: Emulator, client: WeComClient, suite: SuiteRecord, recorder: Recorder) -> None:
    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))

    assert isinstance(token, IssuedToken)
    assert len(token.value) >= 64
    assert token.expires_in == 7200
    assert token.obtained_at == START
    assert token.expires_at == START + 7200
    assert token.usable(START + 7000, margin=100)
    assert not token.usable(START + 7150, margin=100)
    assert token.remaining(START + 7300) == -100
    assert token.value not in repr(token)
    assert token.value not in str(token)
    assert "expires_at" in repr(token)
    assert wecom.counters()["service/get_suite_token"].ok == 1
    assert recorder.calls == [("service/get_suite_token", 0, 1, recorder.calls[0][3])]
    assert recorder.calls[0][3] >= 0


def test_missing_errcode_is_success(wecom: Emulator, client: WeComClient, install: Install) -> None:
    """get_suite_token, get_corp_token and get_auth_info answer without errcode on success (spec §3)."""
    corp = install()
    body = {"auth_corpid": corp.corp.corpid, "permanent_code": corp.permanent_code}
    params = {"suite_access_token": corp.suite_token.value}
    for path in ("service/get_corp_token", "service/get_auth_info", "service/v2/get_auth_info"):
        raw = requests.post(f"{wecom.api_url}/{path}", params=params, json=body, timeout=5).json()
        assert "errcode" not in raw, path

    assert client.get_corp_token(corp.suite_token.value, corp.corp.corpid, corp.permanent_code).value
    info = client.get_auth_info(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)
    assert info["auth_corp_info"]["corpid"] == corp.corp.corpid


def test_get_permanent_code_v2(wecom: Emulator, client: WeComClient, suite: SuiteRecord) -> None:
    corp = wecom.add_corp()
    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    code = wecom.create_auth(suite.suite_id, corp.corpid, state="from-site").auth_code
    assert code is not None

    answer = client.get_permanent_code(token.value, code)

    assert isinstance(answer, PermanentCodeGrant)
    assert answer.permanent_code == wecom.authorization(suite.suite_id, corp.corpid).permanent_code
    assert answer.corp_id == corp.corpid
    assert answer.corp_name == corp.corp_name
    assert answer.context["auth_corp_info"] == {"corpid": corp.corpid, "corp_name": corp.corp_name}
    assert answer.context["state"] == "from-site"
    assert "auth_user_info" in answer.context  # who installed: WeCom answers it once, never again
    assert not {"errcode", "errmsg", "access_token", "permanent_code"} & set(answer.context)
    assert answer.permanent_code not in repr(answer)
    assert wecom.calls("service/v2/get_permanent_code") == 1
    assert wecom.calls("service/get_permanent_code") == 0


def test_get_permanent_code_v1(wecom: Emulator, client: WeComClient, suite: SuiteRecord) -> None:
    corp = wecom.add_corp()
    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    code = wecom.create_auth(suite.suite_id, corp.corpid).auth_code
    assert code is not None

    answer = client.get_permanent_code(token.value, code, v2=False)

    assert answer.permanent_code == wecom.authorization(suite.suite_id, corp.corpid).permanent_code
    assert set(answer.context) >= {"expires_in", "auth_corp_info", "auth_info", "state"}
    assert answer.context["auth_corp_info"]["corp_type"] == "unverified"
    assert not {"errcode", "access_token", "permanent_code"} & set(answer.context)  # v1's corp token is dropped
    assert wecom.calls("service/get_permanent_code") == 1


def test_get_auth_info_v2_and_v1(wecom: Emulator, client: WeComClient, install: Install) -> None:
    corp = install(verified=True)

    v2 = client.get_auth_info(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)
    v1 = client.get_auth_info(corp.suite_token.value, corp.corp.corpid, corp.permanent_code, v2=False)

    assert v2["auth_corp_info"]["corp_type"] == "verified"
    assert v2["auth_corp_info"]["verified_end_time"] > START
    assert "corp_wxqrcode" not in v2["auth_corp_info"]
    assert "corp_wxqrcode" in v1["auth_corp_info"]
    assert isinstance(v2["auth_info"]["agent"], list)
    assert v2["auth_info"]["agent"][0]["agentid"] > 0
    assert "errcode" not in v2
    assert wecom.calls("service/v2/get_auth_info") == 1
    assert wecom.calls("service/get_auth_info") == 1


def test_get_corp_token_and_chat_auth_info(wecom: Emulator, client: WeComClient, install: Install) -> None:
    corp = install()

    token = client.get_corp_token(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)
    info = client.get_corp_chat_auth_info(token.value)

    assert token.value == corp.corp_token.value  # WeCom hands out the live token again
    assert token.expires_in == 7200
    assert token.obtained_at == START
    assert token.value not in repr(token)
    assert [e["edition"] for e in info["auth_edition_list"]] == [1, 2]
    first = info["auth_edition_list"][0]
    assert first["status"] == 1
    assert first["auth_scope"]["userid_list"] == ["zhangsan", "lisi"]
    assert set(info) == {"auth_edition_list"}
    assert wecom.counters()["chatdata/get_corp_auth_info"].ok == 1


def test_get_customized_token(wecom: Emulator, client: WeComClient, install: Install) -> None:
    corp = install("customized")

    token = client.get_customized_token(corp.corp.corpid, corp.permanent_code)

    assert token.value == corp.corp_token.value
    assert token.expires_in == 7200
    assert client.get_corp_chat_auth_info(token.value)["auth_edition_list"]
    assert wecom.counters()["gettoken"].ok == 1


def test_get_auth_user_list_page(wecom: Emulator, client: WeComClient, install: Install) -> None:
    corp = install()

    everyone = client.get_auth_user_list(corp.corp_token.value)
    first = client.get_auth_user_list(corp.corp_token.value, limit=2)
    rest = client.get_auth_user_list(corp.corp_token.value, cursor=first["next_cursor"], limit=2)

    assert everyone["auth_user_list"] == [
        {"userid": "lisi", "edition_list": [1]},
        {"userid": "wangwu", "edition_list": [2]},
        {"userid": "zhangsan", "edition_list": [1, 2]},
    ]
    assert everyone["has_more"] is False
    assert set(everyone) == {"auth_user_list", "next_cursor", "has_more"}
    assert first["has_more"] is True
    assert [u["userid"] for u in first["auth_user_list"] + rest["auth_user_list"]] == ["lisi", "wangwu", "zhangsan"]
    assert rest["has_more"] is False
    with pytest.raises(ValueError, match="limit"):
        client.get_auth_user_list(corp.corp_token.value, limit=1001)
    with pytest.raises(ValueError, match="limit"):
        client.get_auth_user_list(corp.corp_token.value, limit=0)


@pytest.mark.parametrize("has_more_as_int", [False, True])
def test_iter_auth_users_follows_the_cursor(clock: Clock, make_client: MakeClient, has_more_as_int: bool) -> None:
    members = [Member(f"user{i:05d}", [1 + i % 2]) for i in range(2345)]
    with Emulator(clock=clock, retry_delays=(0.0, 0.0, 0.0), seed=7, has_more_as_int=has_more_as_int) as other:
        client = make_client(base_url=other.base_url)
        suite = other.add_suite()
        corp = other.add_corp()
        ticket = other.push_suite_ticket(suite.suite_id).suite_ticket
        assert ticket is not None
        other.create_auth(suite.suite_id, corp.corpid, chat_editions=sample_chat_editions(), push=False)
        other.set_members(suite.suite_id, corp.corpid, members)
        suite_token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket)
        permanent_code = other.authorization(suite.suite_id, corp.corpid).permanent_code
        corp_token = client.get_corp_token(suite_token.value, corp.corpid, permanent_code)

        users = list(client.iter_auth_users(corp_token.value))

        assert [u["userid"] for u in users] == [m.userid for m in members]
        assert users[1] == {"userid": "user00001", "edition_list": [2]}
        assert other.calls("chatdata/get_auth_user_list") == 3
        assert len(list(client.iter_auth_users(corp_token.value, limit=500))) == 2345
        assert other.calls("chatdata/get_auth_user_list") == 3 + 5

        with pytest.raises(WeComProtocolError, match="more than 2 pages"):
            list(client.iter_auth_users(corp_token.value, max_pages=2))


def test_iter_auth_users_empty_and_not_authorized(wecom: Emulator, client: WeComClient, install: Install) -> None:
    corp = install(members=[])
    assert list(client.iter_auth_users(corp.corp_token.value)) == []
    no_chat = install(chat=False)
    with pytest.raises(WeComPermissionError):
        list(client.iter_auth_users(no_chat.corp_token.value))


# -- errors from real emulator answers ------------------------------------------------------


def test_wrong_suite_secret_is_a_config_error(
    wecom: Emulator, client: WeComClient, suite: SuiteRecord, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    wrong = "x" * 32
    ticket = ticket_of(wecom, suite)
    with pytest.raises(WeComConfigError) as caught:
        client.get_suite_token(suite.suite_id, wrong, ticket)
    error = caught.value
    assert error.errcode == 40080
    assert error.endpoint == "service/get_suite_token"
    assert "invalid suite_secret" in error.errmsg
    assert error.retryable is False
    assert error.attempts == 1
    assert "40080" in str(error)
    assert_not_retried(wecom, recorder, "service/get_suite_token")
    assert_clean(error, [wrong, ticket, suite.suite_secret], logs)


def test_foreign_ticket_is_a_config_error(
    wecom: Emulator, client: WeComClient, suite: SuiteRecord, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    other = wecom.add_suite()
    wecom.push_suite_ticket(other.suite_id)
    foreign = ticket_of(wecom, other)
    with pytest.raises(WeComConfigError) as caught:
        client.get_suite_token(suite.suite_id, suite.suite_secret, foreign)
    assert caught.value.errcode == 40085
    assert_not_retried(wecom, recorder, "service/get_suite_token")
    assert_clean(caught.value, [foreign, suite.suite_secret], logs)


def test_unknown_suite_id_is_a_config_error(wecom: Emulator, client: WeComClient, suite: SuiteRecord) -> None:
    with pytest.raises(WeComConfigError) as caught:
        client.get_suite_token("ww0000000000000000", suite.suite_secret, ticket_of(wecom, suite))
    assert caught.value.errcode == 40083


def test_bad_suite_token(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install()
    bogus = "B" * 96
    with pytest.raises(WeComTokenError) as caught:
        client.get_auth_info(bogus, corp.corp.corpid, corp.permanent_code)
    error = caught.value
    assert error.errcode == 40082
    assert error.token_kind == "suite"
    assert error.expired is False
    assert error.retryable is False
    assert_not_retried(wecom, recorder, "service/v2/get_auth_info")
    assert_clean(error, [bogus, corp.permanent_code], logs)

    # A corp token on a service API is not a suite token either.
    with pytest.raises(WeComTokenError) as caught:
        client.get_corp_token(corp.corp_token.value, corp.corp.corpid, corp.permanent_code)
    assert caught.value.errcode == 40082


def test_expired_suite_token(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install()
    wecom.advance(7300)
    with pytest.raises(WeComTokenError) as caught:
        client.get_auth_info(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)
    error = caught.value
    assert error.errcode == 42009
    assert error.token_kind == "suite"
    assert error.expired is True
    assert not corp.suite_token.usable(wecom.now())
    assert_not_retried(wecom, recorder, "service/v2/get_auth_info")
    assert_clean(error, corp.secrets, logs)


def test_expired_and_invalid_corp_token(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install()
    bogus = "C" * 96
    with pytest.raises(WeComTokenError) as caught:
        client.get_corp_chat_auth_info(bogus)
    assert (caught.value.errcode, caught.value.token_kind, caught.value.expired) == (40014, "corp", False)
    assert_clean(caught.value, [bogus], logs)

    wecom.reset_counters()
    wecom.advance(7300)
    with pytest.raises(WeComTokenError) as caught:
        client.get_corp_chat_auth_info(corp.corp_token.value)
    error = caught.value
    assert (error.errcode, error.token_kind, error.expired) == (42001, "corp", True)
    assert_not_retried(wecom, recorder, "chatdata/get_corp_auth_info")
    assert_clean(error, corp.secrets, logs)


def test_token_ended_early_then_refreshed(
    wecom: Emulator, client: WeComClient, install: Install, suite: SuiteRecord
) -> None:
    """WeCom may end a token early (42009); the caller refreshes once and retries once (spec §4)."""
    corp = install()
    wecom.inject_fault("service/v2/get_auth_info", "invalidate_token", times=1)
    with pytest.raises(WeComTokenError) as caught:
        client.get_auth_info(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)
    assert caught.value.errcode == 42009
    wecom.push_suite_ticket(corp.suite.suite_id)
    fresh = client.get_suite_token(corp.suite.suite_id, corp.suite.suite_secret, ticket_of(wecom, corp.suite))
    assert fresh.value != corp.suite_token.value
    assert client.get_auth_info(fresh.value, corp.corp.corpid, corp.permanent_code)["auth_corp_info"]


def test_suite_token_on_chatdata_is_wrong_token(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install()
    with pytest.raises(WeComWrongTokenError) as caught:
        client.get_corp_chat_auth_info(corp.suite_token.value)
    assert caught.value.errcode == 41001
    assert caught.value.retryable is False
    assert_not_retried(wecom, recorder, "chatdata/get_corp_auth_info")
    assert_clean(caught.value, corp.secrets, logs)


def test_reused_and_malformed_auth_code(
    wecom: Emulator, client: WeComClient, suite: SuiteRecord, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = wecom.add_corp()
    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    code = wecom.create_auth(suite.suite_id, corp.corpid).auth_code
    assert code is not None
    permanent_code = client.get_permanent_code(token.value, code).permanent_code
    wecom.reset_counters()

    with pytest.raises(WeComAuthCodeError) as caught:
        client.get_permanent_code(token.value, code)
    assert caught.value.errcode == 40078
    assert caught.value.retryable is False
    assert_not_retried(wecom, recorder, "service/v2/get_permanent_code")
    assert_clean(caught.value, [code, token.value, permanent_code], logs)

    short = "s" * 20
    with pytest.raises(WeComAuthCodeError) as caught:
        client.get_permanent_code(token.value, short, v2=False)
    assert caught.value.errcode == 40058
    assert_clean(caught.value, [short, token.value], logs)


def test_cancelled_corp_is_authorization_invalid(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install()
    wecom.cancel_auth(corp.suite.suite_id, corp.corp.corpid, push=False)
    wecom.reset_counters()

    with pytest.raises(WeComAuthorizationInvalidError) as caught:
        client.get_auth_info(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)
    assert caught.value.errcode == 40084
    assert caught.value.retryable is False
    assert_not_retried(wecom, recorder, "service/v2/get_auth_info")
    assert_clean(caught.value, corp.secrets, logs)
    with pytest.raises(WeComAuthorizationInvalidError):
        client.get_corp_token(corp.suite_token.value, corp.corp.corpid, corp.permanent_code)


def test_chatdata_not_authorized_is_a_permission_error(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install(chat=False)
    with pytest.raises(WeComPermissionError) as caught:
        client.get_corp_chat_auth_info(corp.corp_token.value)
    assert caught.value.errcode == 48002
    assert caught.value.retryable is False
    assert_not_retried(wecom, recorder, "chatdata/get_corp_auth_info")
    assert_clean(caught.value, corp.secrets, logs)
    with pytest.raises(WeComPermissionError):
        client.get_auth_user_list(corp.corp_token.value)


def test_unknown_corp_and_wrong_customized_secret(
    wecom: Emulator, client: WeComClient, install: Install, logs: pytest.LogCaptureFixture
) -> None:
    corp = install("customized")
    with pytest.raises(WeComConfigError) as caught:
        client.get_auth_info(corp.suite_token.value, "ww0000000000000000", corp.permanent_code)
    assert caught.value.errcode == 40013
    wrong = "w" * 32
    with pytest.raises(WeComConfigError) as caught:
        client.get_customized_token(corp.corp.corpid, wrong)
    assert caught.value.errcode == 40001
    assert caught.value.endpoint == "gettoken"
    assert wecom.calls("gettoken") == 1
    assert_clean(caught.value, [wrong, *corp.secrets], logs)


def test_other_errcode_is_an_api_error(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder
) -> None:
    corp = install()
    with pytest.raises(WeComApiError) as caught:
        client.get_auth_user_list(corp.corp_token.value, cursor="not-a-cursor")
    assert caught.value.errcode == 50100
    assert caught.value.retryable is False
    assert_not_retried(wecom, recorder, "chatdata/get_auth_user_list")


@pytest.mark.parametrize(
    ("errcode", "cls"),
    [
        (40014, WeComTokenError),
        (42001, WeComTokenError),
        (42009, WeComTokenError),
        (40082, WeComTokenError),
        (41001, WeComWrongTokenError),
        *[(code, WeComConfigError) for code in (40001, 40013, 40080, 40083, 40085, 40086, 60020)],
        *[(code, WeComPermissionError) for code in (48002, 60011, 301002)],
        (40084, WeComAuthorizationInvalidError),
        (40078, WeComAuthCodeError),
        (40058, WeComApiError),
        *[(code, WeComTransientError) for code in (-1, 45009, 45033)],
        (40029, WeComApiError),
    ],
)
def test_error_table(errcode: int, cls: type[WeComError]) -> None:
    """Spec §4's codes, including those the emulator never answers (45033, 60011, 60020, 301002)."""
    error = error_for("service/get_auth_info", errcode, "msg")
    assert type(error) is cls
    assert error.retryable is (cls is WeComTransientError)
    assert (error.endpoint, error.errcode, error.errmsg) == ("service/get_auth_info", errcode, "msg")
    assert type(error_for("service/v2/get_permanent_code", 40058)) is WeComAuthCodeError
    assert error_for("chatdata/get_corp_auth_info", 40014).token_kind == "corp"  # type: ignore[attr-defined]
    assert error_for("service/get_auth_info", 40082).token_kind == "suite"  # type: ignore[attr-defined]


def test_errors_survive_pickling() -> None:
    error = WeComTransientError("gettoken", None, "ReadTimeout", attempts=4, http_status=None)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is WeComTransientError
    assert (copy.endpoint, copy.errcode, copy.errmsg, copy.attempts) == ("gettoken", None, "ReadTimeout", 4)
    assert str(copy) == str(error)


def test_the_client_exports_only_itself_and_every_export_exists() -> None:
    """Errors are imported from ``authsync.wecom.errors``, answers from ``responses``: no second path to them."""
    assert not set(errors.__all__) & set(client_module.__all__)
    assert {name for name in client_module.__all__ if not hasattr(client_module, name)} == set()


# -- transient faults, backoff, timeouts ----------------------------------------------------


@pytest.mark.parametrize(("kind", "errcode"), [("-1", -1), ("45033", 45033), ("http5xx", None)])
def test_transient_faults_are_retried_then_succeed(
    wecom: Emulator,
    client: WeComClient,
    suite: SuiteRecord,
    recorder: Recorder,
    logs: pytest.LogCaptureFixture,
    kind: str,
    errcode: int | None,
) -> None:
    wecom.inject_fault("service/get_suite_token", kind, times=2)

    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))

    counters = wecom.counters()["service/get_suite_token"]
    assert counters.calls == 3
    assert counters.faults == {kind: 2}
    assert counters.ok == 1
    # Full jitter with random() = 0.5: half of 0.25 * 2**n.
    assert recorder.sleeps == [0.125, 0.25]
    assert [(c[1], c[2]) for c in recorder.calls] == [(errcode, 1), (errcode, 2), (0, 3)]
    assert token.obtained_at == START
    assert "retrying" in logs.text
    assert token.value not in logs.text
    assert suite.suite_secret not in logs.text


def test_retries_exhausted(
    wecom: Emulator, client: WeComClient, install: Install, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    corp = install()
    wecom.inject_fault("chatdata/get_corp_auth_info", "-1")

    with pytest.raises(WeComTransientError) as caught:
        client.get_corp_chat_auth_info(corp.corp_token.value)

    error = caught.value
    assert error.errcode == -1
    assert error.retryable is True
    assert error.attempts == 4
    assert "after 4 attempts" in str(error)
    assert wecom.calls("chatdata/get_corp_auth_info") == 4
    assert len(recorder.sleeps) == 3
    assert_clean(error, corp.secrets, logs)


def test_http_5xx_exhausted(wecom: Emulator, make_client: MakeClient, suite: SuiteRecord, recorder: Recorder) -> None:
    client = make_client(max_retries=1)
    wecom.inject_fault("service/get_suite_token", "http5xx", status=502)
    with pytest.raises(WeComTransientError) as caught:
        client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    assert (caught.value.errcode, caught.value.http_status, caught.value.attempts) == (None, 502, 2)
    assert wecom.counters()["service/get_suite_token"].http_status == {502: 2}
    assert len(recorder.sleeps) == 1


def test_a_rate_limit_is_not_retried_in_place(
    wecom: Emulator, client: WeComClient, suite: SuiteRecord, recorder: Recorder
) -> None:
    """45009 blocks the caller for 60 s: retrying within the call's backoff only lengthens the block."""
    wecom.inject_fault("service/get_suite_token", "45009", times=1)

    with pytest.raises(WeComTransientError) as caught:
        client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))

    assert (caught.value.errcode, caught.value.attempts, caught.value.rate_limited) == (45009, 1, True)
    assert recorder.sleeps == []
    assert wecom.calls("service/get_suite_token") == 1


def test_backoff_is_capped_and_jittered(
    wecom: Emulator, make_client: MakeClient, suite: SuiteRecord, recorder: Recorder
) -> None:
    wecom.inject_fault("service/get_suite_token", "-1")
    ticket = ticket_of(wecom, suite)

    ceiling = make_client(max_retries=6, backoff_base=0.25, backoff_cap=1.0, random=lambda: 1.0)
    with pytest.raises(WeComTransientError):
        ceiling.get_suite_token(suite.suite_id, suite.suite_secret, ticket)
    assert recorder.sleeps == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert wecom.calls("service/get_suite_token") == 7

    recorder.sleeps.clear()
    rng = random.Random(3)
    jittered = make_client(max_retries=6, backoff_base=0.25, backoff_cap=1.0, random=rng.random)
    with pytest.raises(WeComTransientError):
        jittered.get_suite_token(suite.suite_id, suite.suite_secret, ticket)
    bounds = [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert len(recorder.sleeps) == 6
    assert all(0 <= s <= b for s, b in zip(recorder.sleeps, bounds, strict=True))
    assert recorder.sleeps != bounds
    assert len(set(recorder.sleeps)) == 6


def test_no_retries_when_max_retries_is_zero(
    wecom: Emulator, make_client: MakeClient, suite: SuiteRecord, recorder: Recorder
) -> None:
    client = make_client(max_retries=0)
    wecom.inject_fault("service/get_suite_token", "-1", times=1)
    with pytest.raises(WeComTransientError) as caught:
        client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    assert caught.value.attempts == 1
    assert recorder.sleeps == []


def test_slow_answer_beyond_read_timeout(
    wecom: Emulator,
    make_client: MakeClient,
    install: Install,
    recorder: Recorder,
    logs: pytest.LogCaptureFixture,
) -> None:
    corp = install()
    client = make_client(timeout=(1.0, 0.2), max_retries=1)
    fault = wecom.inject_fault("chatdata/get_corp_auth_info", "slow", delay=1.0)

    started = time.monotonic()
    with pytest.raises(WeComTransientError) as caught:
        client.get_corp_chat_auth_info(corp.corp_token.value)
    elapsed = time.monotonic() - started

    error = caught.value
    assert error.errcode is None
    assert error.errmsg == "ReadTimeout"
    assert error.attempts == 2
    assert fault.fired == 2  # counted as drawn: the slow answers are still sleeping server-side
    assert [(c[1], c[2]) for c in recorder.calls] == [(None, 1), (None, 2)]
    assert all(0.15 < c[3] < 0.9 for c in recorder.calls)
    assert len(recorder.sleeps) == 1
    assert elapsed < 0.9
    assert_clean(error, corp.secrets, logs)


def test_slow_answer_once_then_success(wecom: Emulator, make_client: MakeClient, install: Install) -> None:
    corp = install()
    client = make_client(timeout=(1.0, 0.2))
    fault = wecom.inject_fault("chatdata/get_corp_auth_info", "slow", delay=0.6, times=1)
    assert client.get_corp_chat_auth_info(corp.corp_token.value)["auth_edition_list"]
    assert fault.fired == 1


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_error_never_leaks_the_url(make_client: MakeClient, recorder: Recorder) -> None:
    """requests' ConnectionError quotes the URL with its query string: it must not survive."""
    client = make_client(base_url=f"http://127.0.0.1:{_dead_port()}", max_retries=2)
    token = "T0kenValue" + "x" * 80
    with pytest.raises(WeComTransientError) as caught:
        client.get_auth_user_list(token, cursor="c" * 20)
    error = caught.value
    assert error.errmsg == "ConnectionError"
    assert error.attempts == 3
    assert len(recorder.sleeps) == 2
    assert [c[1] for c in recorder.calls] == [None, None, None]
    assert_clean(error, [token, "access_token="])
    secret = "S3cret" + "y" * 40
    with pytest.raises(WeComTransientError) as caught:
        client.get_customized_token("wwcorp", secret)
    assert_clean(caught.value, [secret, "corpsecret="])


# -- protocol errors (a non-WeCom server answering) -------------------------------------------


@pytest.fixture
def impostor() -> Iterator[tuple[str, list[HttpResponse]]]:
    """A server answering scripted responses; ``(base_url, script)``."""
    script: list[HttpResponse] = []

    def handle(request: HttpRequest) -> HttpResponse:
        return script.pop(0) if script else HttpResponse(500)

    server = BackgroundHTTPServer(handle).start()
    try:
        yield server.url, script
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (HttpResponse(200, b"<html>maintenance</html>", "text/html"), "not a JSON object"),
        (HttpResponse(200, b"[1, 2]", "application/json"), "not a JSON object"),
        (HttpResponse(200, b"\xff\xfe", "application/json"), "not a JSON object"),
        (HttpResponse(200, b'{"errcode": "0"}', "application/json"), "errcode is not an integer"),
        (HttpResponse(200, b'{"expires_in": 7200}', "application/json"), "no suite_access_token"),
        (HttpResponse(200, b'{"suite_access_token": "t", "expires_in": "7200"}', "application/json"), "expires_in"),
        (HttpResponse(404, b"404 page not found"), "HTTP 404"),
    ],
)
def test_malformed_answers_are_protocol_errors(
    impostor: tuple[str, list[HttpResponse]],
    make_client: MakeClient,
    recorder: Recorder,
    response: HttpResponse,
    message: str,
) -> None:
    base_url, script = impostor
    script.append(response)
    client = make_client(base_url=base_url)
    secret, ticket = "secret-value-123", "ticket-value-456"
    with pytest.raises(WeComProtocolError, match=message) as caught:
        client.get_suite_token("wwsuite", secret, ticket)
    assert caught.value.retryable is False
    assert recorder.sleeps == []
    assert_clean(caught.value, [secret, ticket])


def test_has_more_without_cursor_is_a_protocol_error(
    impostor: tuple[str, list[HttpResponse]], make_client: MakeClient
) -> None:
    base_url, script = impostor
    page = (
        b'{"errcode":0,"errmsg":"ok","auth_user_list":[{"userid":"a","edition_list":[1]}],"has_more":1,"next_cursor":"'
    )
    script.extend(
        [
            HttpResponse(200, page + b'abc"}', "application/json"),
            HttpResponse(200, page + b'abc"}', "application/json"),
            HttpResponse(200, page + b'"}', "application/json"),
        ]
    )
    client = make_client(base_url=base_url)
    with pytest.raises(WeComProtocolError, match="next_cursor"):
        list(client.iter_auth_users("token-value"))
    with pytest.raises(WeComProtocolError, match="next_cursor"):
        list(client.iter_auth_users("token-value"))


def test_errmsg_echoing_a_secret_is_redacted(impostor: tuple[str, list[HttpResponse]], make_client: MakeClient) -> None:
    base_url, script = impostor
    secret = "permanent-code-value"
    body = b'{"errcode": 40084, "errmsg": "invalid permanent_code permanent-code-value"}'
    script.append(HttpResponse(200, body, "application/json"))
    client = make_client(base_url=base_url)
    suite_token = "suite-token-value"
    with pytest.raises(WeComAuthorizationInvalidError) as caught:
        client.get_auth_info(suite_token, "wwcorp", secret)
    assert caught.value.errmsg == "invalid permanent_code ***"
    assert_clean(caught.value, [secret, suite_token])


# -- construction and hooks -----------------------------------------------------------------


def test_defaults_and_base_url(wecom: Emulator, suite: SuiteRecord) -> None:
    with WeComClient() as default:
        assert default.base_url == DEFAULT_BASE_URL
        assert default.timeout == DEFAULT_TIMEOUT == (3.05, 10.0)
        assert default.max_retries == 3
        assert "qyapi.weixin.qq.com" in repr(default)
    with WeComClient(wecom.api_url + "/") as via_api_url:
        assert via_api_url.base_url == wecom.base_url
        assert via_api_url.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite)).value
    with pytest.raises(ValueError, match="max_retries"):
        WeComClient(max_retries=-1)


def test_session_is_pooled_and_reused(wecom: Emulator, client: WeComClient, install: Install) -> None:
    corp = install()
    adapter = client._session.get_adapter(wecom.base_url)
    for _ in range(3):
        client.get_corp_chat_auth_info(corp.corp_token.value)
    pools = adapter.poolmanager.pools  # type: ignore[attr-defined]
    assert len(pools) == 1


def test_a_failing_hook_does_not_fail_the_call(
    wecom: Emulator, make_client: MakeClient, suite: SuiteRecord, logs: pytest.LogCaptureFixture
) -> None:
    def broken(endpoint: str, errcode: int | None, attempt: int, seconds: float) -> None:
        raise RuntimeError("metrics down")

    client = make_client(on_call=broken)
    assert client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite)).value
    assert "on_call hook failed" in logs.text


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"auth_corp_info": {"corpid": "wwcorp"}}, "no permanent_code"),
        ({"permanent_code": "", "auth_corp_info": {"corpid": "wwcorp"}}, "no permanent_code"),
        ({"permanent_code": "PCODE-secret-value"}, "no auth_corp_info.corpid"),
        ({"permanent_code": "PCODE-secret-value", "auth_corp_info": {"corpid": ""}}, "no auth_corp_info.corpid"),
        ({"permanent_code": "PCODE-secret-value", "auth_corp_info": "wwcorp"}, "not a permanent code document"),
        ({"permanent_code": ["PCODE-secret-value"], "auth_corp_info": {"corpid": "x"}}, "not a permanent code"),
    ],
)
def test_a_malformed_grant_is_a_protocol_error_that_never_quotes_the_code(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(WeComProtocolError, match=message) as caught:
        PermanentCodeGrant.from_document(document, "service/v2/get_permanent_code")
    assert "PCODE-secret-value" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_budgeted_exchange_cuts_its_read_timeout_and_its_retries_to_the_budget(
    wecom: Emulator, make_client: MakeClient, suite: SuiteRecord, recorder: Recorder
) -> None:
    """The exchange must end in time for its journal write: its attempts shrink to what the budget leaves."""
    corp = wecom.add_corp()
    client = make_client(timeout=(2.0, 5.0), max_retries=3)
    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    code = wecom.create_auth(suite.suite_id, corp.corpid).auth_code
    assert code is not None
    recorder.calls.clear()
    wecom.inject_fault("service/v2/get_permanent_code", "slow", delay=3.0)

    started = time.monotonic()
    with pytest.raises(WeComTransientError) as caught:
        client.get_permanent_code(token.value, code, budget=1.6)
    elapsed = time.monotonic() - started

    assert caught.value.errmsg == "ReadTimeout"
    assert caught.value.attempts == 1  # no retry could have finished within the budget
    assert 1.4 < elapsed < 2.5  # the read timeout was cut from 5 s to the budget
    assert len(recorder.calls) == 1


def test_an_exhausted_budget_starts_no_attempt(wecom: Emulator, make_client: MakeClient, suite: SuiteRecord) -> None:
    client = make_client()
    token = client.get_suite_token(suite.suite_id, suite.suite_secret, ticket_of(wecom, suite))
    wecom.reset_counters()

    with pytest.raises(WeComTransientError, match="no time left"):
        client.get_permanent_code(token.value, "AUTHCODE-never-sent", budget=0.5)
    assert wecom.calls("service/v2/get_permanent_code") == 0  # the code stays unspent
