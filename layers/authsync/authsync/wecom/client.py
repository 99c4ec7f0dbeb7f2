"""The WeCom (企业微信) HTTP API client the fetch Lambdas share (spec §3, §4).

Why a client of our own: every call needs the same four things done right, and the
peer SDKs get at least one wrong — errcode-typed errors (a missing ``errcode`` is
success for get_suite_token, get_corp_token and get_auth_info), bounded jittered
retries on WeCom's transient answers only, one pooled connection per container, and
no secret ever reaching a message, a ``repr`` or a log line. The error classes live in
:mod:`authsync.wecom.errors`, the typed answers (tokens, the permanent-code grant) in
:mod:`authsync.wecom.responses`.

The client is stateless about credentials: it is *given* tokens and codes and hands
back what WeCom answers. Caching, single-flight refresh and the "invalidate, refresh
once, retry once" reaction to :class:`WeComTokenError` belong to the credentials layer,
which knows where tokens live.

Secrets travel in query strings (tokens, the 代开发 ``corpsecret``) and in bodies
(suite_secret, suite_ticket, auth_code, permanent_code). ``requests``' own exceptions
quote the URL, so they are never chained or echoed: a failure is described by the
endpoint and the exception *type* only, and raised outside the ``except`` block so not
even ``__context__`` holds the original.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter

from authsync.wecom.errors import WeComError, WeComProtocolError, WeComTransientError, error_for
from authsync.wecom.responses import IssuedToken, PermanentCodeGrant, follow_pages, issued_token

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "OnCall", "WeComClient"]

log = logging.getLogger(__name__)
# urllib3 logs request lines, query string (and so tokens) included, at DEBUG: never let it.
logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger("urllib3").level))

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
"""(connect, read) seconds: a connect timeout just above a TCP retransmit window (3 s)."""

MAX_USER_LIST_LIMIT = 1000
DEFAULT_MAX_PAGES = 1000
"""iter_auth_users' bound: 1000 pages of 1000 members is far beyond any corp's seat count."""

OnCall = Callable[[str, int | None, int, float], None]
"""``on_call(endpoint, errcode, attempt, seconds)`` per HTTP attempt: ``errcode`` is 0 on success
(also when WeCom omits it), ``None`` when no WeCom answer was parsed (timeout, connection error,
HTTP error, malformed body)."""

# Secret values shorter than this are not redacted from errmsg (they would match noise).
_MIN_REDACT = 6
_REDACTED = "***"
_SUITE_TOKEN_PARAM = "suite_access_token"  # noqa: S105 - a parameter name, not a secret
_CORP_TOKEN_PARAM = "access_token"  # noqa: S105 - a parameter name, not a secret


# -- the client -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call:
    """One API call as the retry loop sees it; ``secrets`` are redacted from any errmsg."""

    endpoint: str
    method: Literal["GET", "POST"]
    params: Mapping[str, str]
    body: Mapping[str, Any] | None
    secrets: tuple[str, ...]

    def __repr__(self) -> str:
        return f"_Call({self.method} {self.endpoint})"


class WeComClient:
    """WeCom's third-party / 代开发 APIs over one pooled ``requests.Session``.

    ``base_url`` is WeCom's host (the emulator's ``base_url`` in tests); a trailing
    ``/cgi-bin`` is accepted too. Transient failures are retried up to ``max_retries``
    times with full-jitter exponential backoff — ``random() * min(cap, base * 2**n)`` —
    because WeCom asks for no more than 3 retries on -1 and synchronized retries from
    many Lambdas would only deepen a 45009. A 45009 itself is not retried in place: WeCom
    blocks for 60 s, so the caller (a queue message) waits instead. ``sleep``, ``random`` and ``clock`` are
    injectable for tests. ``on_call`` observes every HTTP attempt (for metrics); an
    exception it raises is logged and ignored.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff_base: float = 0.25,
        backoff_cap: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        on_call: OnCall | None = None,
        session: requests.Session | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if backoff_base < 0 or backoff_cap < 0:
            raise ValueError("backoff_base and backoff_cap must be >= 0")
        base = base_url.rstrip("/")
        base = base.removesuffix("/cgi-bin")
        self.base_url = base
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._random = random
        self._clock = clock
        self._on_call = on_call
        self._owns_session = session is None
        self._session = session if session is not None else self._new_session(pool_maxsize)

    @staticmethod
    def _new_session(pool_maxsize: int) -> requests.Session:
        """One keep-alive pool per host; retries are ours (urllib3's would bypass backoff and typing)."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_maxsize, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = "wecom-authsync"
        return session

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WeComClient(base_url={self.base_url!r}, timeout={self.timeout!r}, max_retries={self.max_retries})"

    # -- service/* ------------------------------------------------------------------------

    def get_suite_token(self, suite_id: str, suite_secret: str, suite_ticket: str) -> IssuedToken:
        """``service/get_suite_token`` (spec §3.1): the suite_access_token for ``suite_id``."""
        obtained_at = self._clock()
        document = self._execute(
            _Call(
                "service/get_suite_token",
                "POST",
                {},
                {"suite_id": suite_id, "suite_secret": suite_secret, "suite_ticket": suite_ticket},
                (suite_secret, suite_ticket),
            )
        )
        return issued_token(document, "suite_access_token", obtained_at, "service/get_suite_token")

    def get_provider_token(self, provider_corpid: str, provider_secret: str) -> IssuedToken:
        """``service/get_provider_token`` (spec §8): the provider_access_token (license, ID-model APIs)."""
        obtained_at = self._clock()
        body = {"corpid": provider_corpid, "provider_secret": provider_secret}
        document = self._execute(_Call("service/get_provider_token", "POST", {}, body, (provider_secret,)))
        return issued_token(document, "provider_access_token", obtained_at, "service/get_provider_token")

    def get_permanent_code(
        self, suite_token: str, auth_code: str, *, v2: bool = True, budget: float | None = None
    ) -> PermanentCodeGrant:
        """Exchange a single-use AuthCode (spec §3.2). v2 is the fast one: code, corp id/name, user, state.

        An AuthCode is consumed by WeCom even if its answer is lost on the way back, so a
        retry after a timeout may meet 40078 (:class:`WeComAuthCodeError`, ``attempts`` > 1).
        ``budget`` bounds the whole call, retries included (seconds): the caller keeps the time
        it needs to make the answer durable before its function ends.
        """
        endpoint = "service/v2/get_permanent_code" if v2 else "service/get_permanent_code"
        document = self._execute(
            _Call(
                endpoint, "POST", {_SUITE_TOKEN_PARAM: suite_token}, {"auth_code": auth_code}, (suite_token, auth_code)
            ),
            budget=budget,
        )
        return PermanentCodeGrant.from_document(document, endpoint)

    def get_auth_info(self, suite_token: str, corp_id: str, permanent_code: str, *, v2: bool = True) -> dict[str, Any]:
        """``service[/v2]/get_auth_info`` (spec §3.3); the body names ``auth_corpid``, not auth_code (§6.10)."""
        endpoint = "service/v2/get_auth_info" if v2 else "service/get_auth_info"
        return self._execute(
            _Call(
                endpoint,
                "POST",
                {_SUITE_TOKEN_PARAM: suite_token},
                {"auth_corpid": corp_id, "permanent_code": permanent_code},
                (suite_token, permanent_code),
            )
        )

    def get_corp_token(self, suite_token: str, corp_id: str, permanent_code: str) -> IssuedToken:
        """``service/get_corp_token`` (spec §3.4): a 第三方 app's access_token in ``corp_id``."""
        obtained_at = self._clock()
        document = self._execute(
            _Call(
                "service/get_corp_token",
                "POST",
                {_SUITE_TOKEN_PARAM: suite_token},
                {"auth_corpid": corp_id, "permanent_code": permanent_code},
                (suite_token, permanent_code),
            )
        )
        return issued_token(document, "access_token", obtained_at, "service/get_corp_token")

    def get_customized_token(self, corp_id: str, secret: str) -> IssuedToken:
        """``GET gettoken`` (spec §3.4): a 代开发 app's access_token; ``secret`` is its permanent code."""
        obtained_at = self._clock()
        document = self._execute(_Call("gettoken", "GET", {"corpid": corp_id, "corpsecret": secret}, None, (secret,)))
        return issued_token(document, "access_token", obtained_at, "gettoken")

    # -- chatdata/* -----------------------------------------------------------------------

    def get_corp_chat_auth_info(self, corp_token: str) -> dict[str, Any]:
        """``chatdata/get_corp_auth_info`` (spec §3.5): the corp's 数据与智能专区 editions.

        Needs the corp token (a suite token is 41001); 48002 means chatdata is not authorized.
        """
        return self._execute(
            _Call("chatdata/get_corp_auth_info", "POST", {_CORP_TOKEN_PARAM: corp_token}, {}, (corp_token,))
        )

    def get_auth_user_list(self, corp_token: str, *, cursor: str | None = None, limit: int = 1000) -> dict[str, Any]:
        """One page of ``chatdata/get_auth_user_list`` (spec §3.6): auth_user_list, next_cursor, has_more."""
        if isinstance(limit, bool) or not 1 <= limit <= MAX_USER_LIST_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_USER_LIST_LIMIT}")
        body: dict[str, Any] = {"limit": limit}
        if cursor:
            body["cursor"] = cursor
        return self._execute(
            _Call("chatdata/get_auth_user_list", "POST", {_CORP_TOKEN_PARAM: corp_token}, body, (corp_token,))
        )

    def iter_auth_users(
        self, corp_token: str, *, limit: int = 1000, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[dict[str, Any]]:
        """Every authorized member, over every page (:func:`follow_pages`: bounded, never an endless loop)."""
        return follow_pages(
            lambda cursor: self.get_auth_user_list(corp_token, cursor=cursor, limit=limit),
            "chatdata/get_auth_user_list",
            "auth_user_list",
            max_pages=max_pages,
        )

    # -- any other endpoint ----------------------------------------------------------------

    def call(
        self,
        endpoint: str,
        *,
        params: Mapping[str, str],
        body: Mapping[str, Any] | None,
        secrets: tuple[str, ...],
        method: Literal["GET", "POST"] = "POST",
    ) -> dict[str, Any]:
        """One call of an endpoint without a method here (:mod:`authsync.wecom.entitlements`), with the same
        retries, errcode typing and redaction: ``secrets`` (tokens in ``params``, secrets in ``body``) never
        reach an error's text."""
        return self._execute(_Call(endpoint, method, params, body, secrets))

    # -- machinery ------------------------------------------------------------------------

    def backoff(self, retry: int) -> float:
        """The sleep before retry number ``retry`` (1-based): full jitter under an exponential cap."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (retry - 1))
        return max(0.0, min(ceiling, self._random() * ceiling))

    def _execute(self, call: _Call, *, budget: float | None = None) -> dict[str, Any]:
        """Attempt ``call``, retrying transient failures (all within ``budget`` seconds); the answer sans errcode."""
        deadline = None if budget is None else time.monotonic() + budget
        attempt = 0
        while True:
            attempt += 1
            timeout = self.timeout if deadline is None else _bounded(self.timeout, deadline - time.monotonic())
            if timeout is None:
                raise WeComTransientError(call.endpoint, None, "no time left for an attempt", attempts=attempt - 1)
            outcome = self._attempt(call, attempt, timeout)
            if not isinstance(outcome, WeComError):
                return outcome
            if not outcome.retryable or attempt > self.max_retries or _rate_limited(outcome):
                raise outcome
            delay = self.backoff(attempt)
            if deadline is not None and time.monotonic() + delay + _MIN_ATTEMPT >= deadline:
                raise outcome
            log.warning(
                "WeCom %s attempt %d failed (%s: %s); retrying in %.2fs",
                call.endpoint,
                attempt,
                outcome.errcode,
                outcome.errmsg,
                delay,
            )
            self._sleep(delay)

    def _attempt(self, call: _Call, attempt: int, timeout: float | tuple[float, float]) -> dict[str, Any] | WeComError:
        """One HTTP attempt; failures are *returned* so no requests exception is ever chained."""
        url = f"{self.base_url}/cgi-bin/{call.endpoint}"
        started = time.perf_counter()
        response: requests.Response | None = None
        content = b""
        failure: str | None = None
        transient = True
        try:
            response = self._session.request(
                call.method,
                url,
                params=dict(call.params) or None,
                json=dict(call.body) if call.body is not None else None,
                timeout=timeout,
                allow_redirects=False,
            )
            content = response.content
        except (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            failure = type(exc).__name__
        except requests.RequestException as exc:  # invalid URL and the like: our configuration
            failure = type(exc).__name__
            transient = False
        if failure is not None or response is None:
            self._observe(call.endpoint, None, attempt, started)
            cls: type[WeComError] = WeComTransientError if transient else WeComProtocolError
            return cls(call.endpoint, None, failure or "no response", attempts=attempt)
        return self._interpret(call, attempt, started, response.status_code, content)

    def _interpret(
        self, call: _Call, attempt: int, started: float, status: int, content: bytes
    ) -> dict[str, Any] | WeComError:
        endpoint = call.endpoint
        if status >= 500 or status == 429:
            self._observe(endpoint, None, attempt, started)
            return WeComTransientError(endpoint, None, f"HTTP {status}", attempts=attempt, http_status=status)
        if status != 200:
            self._observe(endpoint, None, attempt, started)
            return WeComProtocolError(endpoint, None, f"HTTP {status}", attempts=attempt, http_status=status)
        try:
            document = json.loads(content)
        except (UnicodeDecodeError, ValueError):
            document = None
        if not isinstance(document, dict):
            self._observe(endpoint, None, attempt, started)
            return WeComProtocolError(endpoint, None, "answer is not a JSON object", attempts=attempt, http_status=200)
        errcode = document.pop("errcode", 0)  # absent = success for three APIs (spec §3)
        errmsg = document.pop("errmsg", "")
        if isinstance(errcode, bool) or not isinstance(errcode, int):
            self._observe(endpoint, None, attempt, started)
            return WeComProtocolError(endpoint, None, "errcode is not an integer", attempts=attempt, http_status=200)
        self._observe(endpoint, errcode, attempt, started)
        if errcode == 0:
            return document
        return error_for(endpoint, errcode, _redact(str(errmsg), call.secrets), attempts=attempt)

    def _observe(self, endpoint: str, errcode: int | None, attempt: int, started: float) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, errcode, attempt, time.perf_counter() - started)
        except Exception as exc:  # metrics must never fail a WeCom call
            log.warning("on_call hook failed for %s (%s)", endpoint, type(exc).__name__)


def _rate_limited(error: WeComError) -> bool:
    """45009 blocks for 60 s: a retry within the call's backoff (seconds) cannot succeed."""
    return isinstance(error, WeComTransientError) and error.rate_limited


_MIN_ATTEMPT = 1.0
"""Seconds below which a budgeted call starts no further attempt."""


def _bounded(timeout: float | tuple[float, float], left: float) -> tuple[float, float] | None:
    """``timeout`` cut to the ``left`` seconds of a budget; None when too little is left to try."""
    if left < _MIN_ATTEMPT:
        return None
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return min(connect, left), min(read, left)


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """WeCom's errmsg does not echo inputs today; make sure it never carries ours to a log."""
    for secret in secrets:
        if len(secret) >= _MIN_REDACT and secret in text:
            text = text.replace(secret, _REDACTED)
    return text
