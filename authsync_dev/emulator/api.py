"""WeCom's server API under ``/cgi-bin/``: routing, validation, faults and the endpoint logic.

Pure request → response code (no sockets), so the HTTP server is a thin shell and
the behaviour can be read in one place. Validation follows WeCom (spec §3, §4):

* POST APIs take a JSON body; a GET reaches them *without* a body (WeCom drops it),
  so the call fails on its first missing field, e.g. 40083 for get_suite_token.
  A body that is not a JSON object is 47001.
* Tokens travel in the query string: ``suite_access_token`` for ``service/*``,
  ``access_token`` for corp APIs. A suite token on a corp API is 41001, a corp token
  on a service API 40082; unknown tokens are 40082/40014, expired (or ended early)
  ones 42009/42001. ``provider_access_token`` for the provider-level APIs
  (:mod:`authsync_dev.emulator.entitlement_api`): unknown 40014, expired 42001.
* get_suite_token, get_corp_token and get_auth_info answer ``errcode`` only on
  failure; every other API adds ``"errcode": 0, "errmsg": "ok"``.

Per call, before any of that, an injected fault may fire and the call-rate limit is
checked; the outcome lands in the per-endpoint counters.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from authsync_dev.emulator import entitlement_api
from authsync_dev.emulator.errors import TokenEndedEarly, WeComError, error_body
from authsync_dev.emulator.faults import CallCounters, Faults, RateLimiter
from authsync_dev.emulator.model import Authorization, IssuedToken
from authsync_dev.emulator.params import page, text
from authsync_dev.emulator.state import EmulatorState

__all__ = ["API_PREFIX", "ENDPOINTS", "ApiRequest", "ApiResponse", "WeComApi"]

API_PREFIX = "/cgi-bin/"
JSON_TYPE = "application/json; charset=UTF-8"
MAX_USER_LIST_LIMIT = 1000
DEFAULT_USER_LIST_LIMIT = 200
AUTH_CODE_MIN_LENGTH = 64


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes = b""
    client_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: bytes
    content_type: str = JSON_TYPE

    @classmethod
    def json(cls, document: dict[str, Any], status: int = 200) -> ApiResponse:
        return cls(status, json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    def document(self) -> dict[str, Any]:
        """The JSON body (for tests of the pure API)."""
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Call:
    """One validated call as an endpoint function sees it."""

    body: dict[str, Any]
    query: dict[str, str]
    now: float
    token: IssuedToken | None = None
    fresh_token: bool = False
    corpid: str | None = None
    """The corp the call was about, when the endpoint knows better than the token or ``auth_corpid``
    (provider-level APIs, order look-ups): for the per-corp call counts."""


TokenKind = Literal["suite", "corp", "provider", "none"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: Literal["GET", "POST"]
    token: TokenKind
    handler: Callable[[WeComApi, Call], dict[str, Any]]
    errcode_on_success: bool = True
    """False for the three APIs that return ``errcode`` only on failure (spec §3)."""


def _corp_of(call: Call, request: ApiRequest, document: dict[str, Any]) -> str | None:
    """The corp a successful call was about: the endpoint's word, its token's, its request's, or (an exchange)
    its answer's."""
    if call.corpid:
        return call.corpid
    if call.token is not None and call.token.kind == "corp":
        return call.token.corpid
    named = call.body.get("auth_corpid") or request.query.get("corpid")
    if isinstance(named, str) and named:
        return named
    corp_info = document.get("auth_corp_info")
    corpid = corp_info.get("corpid") if isinstance(corp_info, dict) else None
    return corpid if isinstance(corpid, str) else None


class WeComApi:
    """Answers ``/cgi-bin/...`` requests against an :class:`EmulatorState`."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        faults: Faults | None = None,
        limits: RateLimiter | None = None,
        counters: CallCounters | None = None,
        has_more_as_int: bool = False,
        stopping: threading.Event | None = None,
    ) -> None:
        self.state = state
        self.faults = faults or Faults()
        self.limits = limits or RateLimiter()
        self.counters = counters or CallCounters()
        self.has_more_as_int = has_more_as_int
        """get_auth_user_list's ``has_more``: the doc table says 1/0, its sample ``true`` (spec §3.6)."""
        self._stopping = stopping or threading.Event()
        self.corp_calls: Counter[tuple[str, str]] = Counter()
        """Answered calls per (corpid, endpoint), for "WeCom calls used" per corp."""
        self._corp_calls_lock = threading.Lock()

    # -- entry point --------------------------------------------------------------------

    def handle(self, request: ApiRequest) -> ApiResponse:
        name = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else ""
        endpoint = ENDPOINTS.get(name)
        if endpoint is None:
            return ApiResponse(404, b"404 page not found", "text/plain; charset=utf-8")
        if request.method not in ("GET", "POST"):
            self.counters.record(name, status=405, errcode=None, fault=None)
            return ApiResponse(405, b"405 method not allowed", "text/plain; charset=utf-8")
        now = self.state.clock.now()
        fault = self.faults.draw(name)
        fresh = False
        if fault is not None:
            if fault.kind == "http5xx":
                self.counters.record(name, status=fault.status, errcode=None, fault=fault.kind)
                try:
                    phrase = HTTPStatus(fault.status).phrase
                except ValueError:
                    phrase = "Server Error"
                page = f"<html><body><h1>{fault.status} {phrase}</h1></body></html>"
                return ApiResponse(fault.status, page.encode(), "text/html; charset=utf-8")
            if fault.kind == "slow":
                self._stopping.wait(fault.delay)
                now = self.state.clock.now()
            elif fault.kind in ("-1", "45009", "45033"):
                return self._error(name, int(fault.kind), "", now, request, fault=fault.kind)
            else:  # invalidate_token: WeCom ends the token early, before this call is served
                with self.state.lock:
                    query = request.query
                    presented = (
                        query.get("suite_access_token")
                        or query.get("access_token")
                        or query.get("provider_access_token")
                    )
                    if presented:
                        self.state.invalidate_value(presented)
                    fresh = True
        if not self.limits.allow(name, now):
            return self._error(name, 45009, "", now, request, fault=fault.kind if fault else None)
        try:
            with self.state.lock:
                call = Call({}, request.query, now, fresh_token=fresh)
                call.token = self._check_token(endpoint.token, request.query, now)
                if endpoint.method == "POST" and request.method == "POST":
                    call.body = self._json_body(request.body)
                document = endpoint.handler(self, call)
        except WeComError as exc:
            label = "ended_early" if isinstance(exc, TokenEndedEarly) else None
            return self._error(name, exc.errcode, exc.detail, now, request, fault=fault.kind if fault else label)
        corpid = _corp_of(call, request, document)
        if corpid:
            with self._corp_calls_lock:
                self.corp_calls[(corpid, name)] += 1
        if endpoint.errcode_on_success:
            document = {"errcode": 0, "errmsg": "ok", **document}
        self.counters.record(name, status=200, errcode=0, fault=fault.kind if fault else None)
        return ApiResponse.json(document)

    def _error(
        self, name: str, errcode: int, detail: str, now: float, request: ApiRequest, *, fault: str | None
    ) -> ApiResponse:
        self.counters.record(name, status=200, errcode=errcode, fault=fault)
        return ApiResponse.json(error_body(errcode, detail=detail, now=now, client_ip=request.client_ip))

    @staticmethod
    def _json_body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WeComError(47001) from None
        if not isinstance(document, dict):
            raise WeComError(47001)
        return document

    def _check_token(self, kind: TokenKind, query: dict[str, str], now: float) -> IssuedToken | None:
        if kind == "none":
            return None
        if kind == "provider":
            return entitlement_api.provider_token(self.state, query, now)
        tokens = self.state.tokens
        if kind == "suite":
            value = query.get("suite_access_token", "")
            if not value:
                raise WeComError(41022)
            token = tokens.get(value)
            if token is None or token.kind != "suite" or token.revoked:
                raise WeComError(40082)
            if not token.live(now):
                raise TokenEndedEarly(42009) if token.invalidated else WeComError(42009)
            return token
        value = query.get("access_token", "")
        token = tokens.get(value) if value else None
        if not value or (token is not None and token.kind == "suite"):
            # Spec §4/§6.4: a suite_access_token (under either name) on a corp API is 41001.
            raise WeComError(41001)
        if token is None or token.kind != "corp" or token.revoked:
            raise WeComError(40014)
        if not token.live(now):
            raise TokenEndedEarly(42001) if token.invalidated else WeComError(42001)
        return token

    def _token(self, call: Call) -> IssuedToken:
        assert call.token is not None  # guaranteed by the endpoint's token kind
        return call.token

    # -- service/* (suite_access_token) ---------------------------------------------------

    def get_suite_token(self, call: Call) -> dict[str, Any]:
        # A missing suite_id is 40083, as WeCom answers a GET that lost its body (spec §3).
        suite_id = text(call.body, "suite_id", 40083)
        suite = self.state.suite(suite_id)
        if text(call.body, "suite_secret", 41024) != suite.suite_secret:
            raise WeComError(40080)
        if not suite.ticket_valid(text(call.body, "suite_ticket", 41023), call.now):
            raise WeComError(40085)
        token = self.state.issue_token(suite_id, None, fresh=call.fresh_token)
        return {"suite_access_token": token.value, "expires_in": token.expires_in(call.now)}

    def _exchange(self, call: Call) -> tuple[Authorization, str]:
        """Consume an AuthCode (single use, 10 minutes, this suite's only): 40078 otherwise."""
        suite_id = self._token(call).suite_id
        code_value = text(call.body, "auth_code", 41008)
        if len(code_value) < AUTH_CODE_MIN_LENGTH:
            raise WeComError(40058, f"auth_code exceed min length {AUTH_CODE_MIN_LENGTH}")
        code = self.state.auth_codes.get(code_value)
        if code is None or code.suite_id != suite_id or not code.usable(call.now):
            raise WeComError(40078)
        auth = self.state.authorizations.get((suite_id, code.corpid))
        if auth is None or not auth.active:
            raise WeComError(40078)
        code.used = True
        if code.purpose == "reset_permanent_code" and auth.pending_code is not None:
            auth.revoke_permanent_code()
            auth.permanent_code, auth.pending_code = auth.pending_code, None
        return auth, code.corpid

    def get_permanent_code(self, call: Call) -> dict[str, Any]:
        """v1: everything at once, including a corp access_token for 第三方 apps (spec §3.2)."""
        auth, corpid = self._exchange(call)
        corp = self.state.corps[corpid]
        suite = self.state.suites[auth.suite_id]
        document: dict[str, Any] = {}
        if suite.kind == "third_party":
            token = self.state.issue_token(auth.suite_id, corpid)
            document["access_token"] = token.value
            document["expires_in"] = token.expires_in(call.now)
        document["permanent_code"] = auth.permanent_code
        if auth.dealer is not None:
            document["dealer_corp_info"] = {"corpid": auth.dealer.corpid, "corp_name": auth.dealer.corp_name}
        document["auth_corp_info"] = corp.auth_corp_info(v1=True, member_mode=auth.member_mode)
        auth_info = auth.auth_info_json()
        if auth_info is not None:
            document["auth_info"] = auth_info
        if auth.auth_user is not None:
            document["auth_user_info"] = auth.auth_user.to_json()
        if auth.register_code is not None:
            document["register_code_info"] = auth.register_code.to_json()
        document["state"] = auth.state
        if auth.paid_editions:
            document["edition_info"] = {"agent": [e.to_json() for e in auth.paid_editions]}
        return document

    def get_permanent_code_v2(self, call: Call) -> dict[str, Any]:
        """v2: the code, corpid/corp_name, installer and state only; get_auth_info has the rest."""
        auth, corpid = self._exchange(call)
        corp = self.state.corps[corpid]
        document: dict[str, Any] = {
            "permanent_code": auth.permanent_code,
            "auth_corp_info": {"corpid": corp.corpid, "corp_name": corp.corp_name},
        }
        if auth.auth_user is not None:
            document["auth_user_info"] = auth.auth_user.to_json()
        if auth.register_code is not None:
            document["register_code_info"] = auth.register_code.to_json()
        document["state"] = auth.state
        return document

    def _authorization(self, call: Call) -> Authorization:
        corpid = text(call.body, "auth_corpid", 41002)
        permanent_code = text(call.body, "permanent_code", 41025)
        return self.state.authorization_by_code(self._token(call).suite_id, corpid, permanent_code)

    def _auth_info(self, call: Call, *, v1: bool) -> dict[str, Any]:
        auth = self._authorization(call)
        corp = self.state.corps[auth.corpid]
        document: dict[str, Any] = {}
        if auth.dealer is not None:
            document["dealer_corp_info"] = {"corpid": auth.dealer.corpid, "corp_name": auth.dealer.corp_name}
        document["auth_corp_info"] = corp.auth_corp_info(v1=v1, member_mode=auth.member_mode)
        auth_info = auth.auth_info_json()
        if auth_info is not None:
            document["auth_info"] = auth_info
        if auth.paid_editions:
            document["edition_info"] = {"agent": [e.to_json() for e in auth.paid_editions]}
        return document

    def get_auth_info(self, call: Call) -> dict[str, Any]:
        return self._auth_info(call, v1=True)

    def get_auth_info_v2(self, call: Call) -> dict[str, Any]:
        """v2 omits ``corp_wxqrcode`` (spec §3.3)."""
        return self._auth_info(call, v1=False)

    def get_corp_token(self, call: Call) -> dict[str, Any]:
        auth = self._authorization(call)
        token = self.state.issue_token(auth.suite_id, auth.corpid, fresh=call.fresh_token)
        return {"access_token": token.value, "expires_in": token.expires_in(call.now)}

    # -- gettoken (代开发: corpsecret = permanent_code) -------------------------------------

    def gettoken(self, call: Call) -> dict[str, Any]:
        corpid = text(call.query, "corpid", 41002)
        secret = text(call.query, "corpsecret", 41004)
        if corpid not in self.state.corps:
            raise WeComError(40013)
        for (suite_id, auth_corpid), auth in self.state.authorizations.items():
            if auth_corpid != corpid or not auth.active or auth.permanent_code != secret:
                continue
            if self.state.suites[suite_id].kind != "customized":
                continue  # a 第三方 permanent_code is not an app secret
            token = self.state.issue_token(suite_id, corpid, fresh=call.fresh_token)
            return {"access_token": token.value, "expires_in": token.expires_in(call.now)}
        raise WeComError(40001)

    # -- chatdata/* (corp access_token) ---------------------------------------------------

    def _chat_authorization(self, call: Call) -> Authorization:
        token = self._token(call)
        auth = self.state.authorizations.get((token.suite_id, token.corpid or ""))
        if auth is None or not auth.active:
            raise WeComError(40014)
        if not auth.chat_editions:
            raise WeComError(48002)
        return auth

    def chatdata_get_corp_auth_info(self, call: Call) -> dict[str, Any]:
        document = self._chat_authorization(call).corp_auth_info_json(call.now)
        del document["errcode"], document["errmsg"]
        return document

    def chatdata_get_auth_user_list(self, call: Call) -> dict[str, Any]:
        auth = self._chat_authorization(call)
        members = page(
            auth.effective_members(), call.body, default=DEFAULT_USER_LIST_LIMIT, maximum=MAX_USER_LIST_LIMIT
        )
        return {
            "auth_user_list": [m.to_json() for m in members.items],
            "next_cursor": members.next_cursor,
            "has_more": int(members.has_more) if self.has_more_as_int else members.has_more,
        }


def _endpoints(*items: Endpoint) -> dict[str, Endpoint]:
    return {item.name: item for item in items}


ENDPOINTS: dict[str, Endpoint] = _endpoints(
    Endpoint("service/get_suite_token", "POST", "none", WeComApi.get_suite_token, errcode_on_success=False),
    Endpoint("service/get_permanent_code", "POST", "suite", WeComApi.get_permanent_code),
    Endpoint("service/v2/get_permanent_code", "POST", "suite", WeComApi.get_permanent_code_v2),
    Endpoint("service/get_auth_info", "POST", "suite", WeComApi.get_auth_info, errcode_on_success=False),
    Endpoint("service/v2/get_auth_info", "POST", "suite", WeComApi.get_auth_info_v2, errcode_on_success=False),
    Endpoint("service/get_corp_token", "POST", "suite", WeComApi.get_corp_token, errcode_on_success=False),
    Endpoint("gettoken", "GET", "none", WeComApi.gettoken),
    Endpoint("chatdata/get_corp_auth_info", "POST", "corp", WeComApi.chatdata_get_corp_auth_info),
    Endpoint("chatdata/get_auth_user_list", "POST", "corp", WeComApi.chatdata_get_auth_user_list),
    Endpoint("service/get_provider_token", "POST", "none", entitlement_api.get_provider_token),
    Endpoint("service/get_order", "POST", "suite", entitlement_api.service_get_order),
    Endpoint("service/corpid_to_opencorpid", "POST", "provider", entitlement_api.corpid_to_opencorpid),
    Endpoint("license/get_app_license_info", "POST", "provider", entitlement_api.get_app_license_info),
    Endpoint("license/list_actived_account", "POST", "provider", entitlement_api.list_actived_account),
    Endpoint("license/get_order", "POST", "provider", entitlement_api.license_get_order),
)
"""WeCom's paths (after ``/cgi-bin/``), their method and token type."""
