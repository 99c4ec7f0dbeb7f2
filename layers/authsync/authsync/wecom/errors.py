"""The WeCom (企业微信) error taxonomy: one exception class per way a WeCom call can fail (spec §4).

A WeCom answer carries an ``errcode``; :func:`error_for` maps a non-zero one to its class,
so callers react to *kinds* of failure (refresh the token, alert on configuration,
restart the auth flow, retry later) instead of to numbers. Failures that never produced a
readable answer (timeouts, connection errors, HTTP 5xx, malformed bodies) have
``errcode`` ``None`` and are :class:`WeComTransientError` or :class:`WeComProtocolError`.
Which errcodes are retryable, and which token a token error concerns, live here with
the classes (:attr:`WeComTransientError.CODES`, :attr:`WeComTokenError.SUITE_CODES`,
:attr:`WeComTokenError.CORP_CODES`).

An error's text names the endpoint and WeCom's errcode and errmsg, never a secret: the
client (:mod:`authsync.wecom.client`) redacts the call's secrets from errmsg before an error
is built, and raises outside any ``except`` block so no ``__cause__`` or ``__context__``
carries a request. Errors pickle and copy by their fields.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

__all__ = [
    "WeComApiError",
    "WeComAuthCodeError",
    "WeComAuthorizationInvalidError",
    "WeComConfigError",
    "WeComError",
    "WeComPermissionError",
    "WeComProtocolError",
    "WeComTokenError",
    "WeComTransientError",
    "WeComWrongTokenError",
    "error_for",
]

TokenKind = Literal["suite", "corp"]

_AUTH_CODE_ENDPOINTS = frozenset({"service/get_permanent_code", "service/v2/get_permanent_code"})
"""Where 40058 (a malformed parameter) means the AuthCode itself is bad."""


class WeComError(Exception):
    """A WeCom call that did not succeed. Its text names the endpoint, never a secret.

    ``errcode`` is WeCom's code, or ``None`` when WeCom's answer never arrived or was not
    readable (timeouts, connection errors, HTTP 5xx, malformed bodies). ``retryable``
    says whether the *identical* request may succeed later; ``attempts`` how many HTTP
    attempts were made before giving up.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        endpoint: str,
        errcode: int | None,
        errmsg: str,
        *,
        attempts: int = 1,
        http_status: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.errcode = errcode
        self.errmsg = errmsg
        self.attempts = attempts
        self.http_status = http_status
        what = f"errcode {errcode}" if errcode is not None else "no answer"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"WeCom {endpoint}: {what} ({errmsg}){tries}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle/copy by fields: ``args`` holds only the message, which ``__init__`` cannot take."""
        fields = {"endpoint": self.endpoint, "errcode": self.errcode, "errmsg": self.errmsg}
        return (_restore_error, (type(self), {**fields, "attempts": self.attempts, "http_status": self.http_status}))


class WeComTokenError(WeComError):
    """The token was invalid (40014, 40082) or expired (42001, 42009).

    Not retryable as is: the caller drops its cached token of ``token_kind``, refreshes
    it once and retries once (spec §4). A 40082 that persists after a refresh means the
    corp never authorized this suite.
    """

    SUITE_CODES: ClassVar[frozenset[int]] = frozenset({40082, 42009})
    CORP_CODES: ClassVar[frozenset[int]] = frozenset({40014, 42001})

    @property
    def token_kind(self) -> TokenKind:
        """Which token to refresh: ``suite`` (suite_access_token) or ``corp`` (access_token)."""
        return "suite" if self.errcode in self.SUITE_CODES else "corp"

    @property
    def expired(self) -> bool:
        """True for 42001/42009 (expired or ended early), False for 40014/40082 (unknown)."""
        return self.errcode in (42001, 42009)


class WeComWrongTokenError(WeComError):
    """41001: a corp API got no corp access_token — typically a suite token was sent (spec §6.4).

    A programming error, not a state of WeCom: retrying cannot help.
    """


class WeComConfigError(WeComError):
    """Our configuration is wrong (secret, suite id, ticket, corp id, IP whitelist): alert, no retry.

    40001 invalid secret (for 代开发 ``gettoken`` the secret *is* the permanent code),
    40013 corpid, 40080 suite_secret, 40083 suite_id (or a GET that lost its body),
    40085 suite_ticket (expired or of another suite), 40086 third-party app id,
    60020 caller IP not whitelisted.
    """


class WeComPermissionError(WeComError):
    """The app lacks a permission (48002 API not authorized, 60011 scope, 301002 app).

    For chatdata, 48002 is a *state* of the corp (数据与智能专区 not authorized), not a fault.
    """


class WeComAuthorizationInvalidError(WeComError):
    """40084: the permanent code is dead — the corp cancelled, or the 代开发 secret was reset."""


class WeComAuthCodeError(WeComError):
    """The AuthCode is unusable (40078 used/expired/foreign, 40058 malformed): the auth flow restarts."""


class WeComTransientError(WeComError):
    """WeCom was busy or unreachable (-1, 45009, 45033, HTTP 5xx, timeouts, connection errors).

    Raised once the client's own retries are exhausted (none for 45009: see ``rate_limited``);
    a later redelivery may succeed.
    """

    retryable: ClassVar[bool] = True
    CODES: ClassVar[frozenset[int]] = frozenset({-1, 45009, 45033})
    RATE_LIMIT_BLOCK: ClassVar[float] = 60.0
    """45009: WeCom blocks a caller that exceeded a per-minute limit for 60 s (spec §4); retrying
    sooner only lengthens the block, so the call is not retried in place and the message waits."""

    @property
    def rate_limited(self) -> bool:
        """45009: wait at least :attr:`RATE_LIMIT_BLOCK` seconds before calling again."""
        return self.errcode == 45009


class WeComApiError(WeComError):
    """Any other non-zero errcode: unexpected, so not retried."""


class WeComProtocolError(WeComError):
    """WeCom's answer was not what the protocol promises (not JSON, not an object, missing fields)."""


_BY_ERRCODE: dict[int, type[WeComError]] = {
    **dict.fromkeys(WeComTokenError.SUITE_CODES | WeComTokenError.CORP_CODES, WeComTokenError),
    41001: WeComWrongTokenError,
    **dict.fromkeys((40001, 40013, 40080, 40083, 40085, 40086, 60020), WeComConfigError),
    **dict.fromkeys((48002, 60011, 301002), WeComPermissionError),
    40084: WeComAuthorizationInvalidError,
    40078: WeComAuthCodeError,
    **dict.fromkeys(WeComTransientError.CODES, WeComTransientError),
}


def _restore_error(cls: type[WeComError], fields: dict[str, Any]) -> WeComError:
    return cls(**fields)


def error_for(endpoint: str, errcode: int, errmsg: str = "", *, attempts: int = 1) -> WeComError:
    """The typed error for a non-zero ``errcode`` from ``endpoint`` (spec §4)."""
    cls = _BY_ERRCODE.get(errcode, WeComApiError)
    if errcode == 40058 and endpoint in _AUTH_CODE_ENDPOINTS:
        cls = WeComAuthCodeError  # "auth_code exceed min length 64": the code itself is bad
    return cls(endpoint, errcode, errmsg, attempts=attempts)
