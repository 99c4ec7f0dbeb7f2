"""WeCom's error codes and the ``errcode``/``errmsg`` bodies it answers with (spec §4).

Codes and meanings follow the official global error-code page as mirrored by WxJava's
``WxCpErrorMsgEnum``; the English ``errmsg`` wording and the ``hint: […], from ip: …,
more info at …`` tail imitate what WeCom actually sends, so clients that log or parse
``errmsg`` meet the real shape.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

__all__ = ["ERRMSG", "NotFoundError", "WeComError", "error_body"]

ERRMSG: dict[int, str] = {
    -1: "system busy",
    0: "ok",
    40001: "invalid secret",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40058: "invalid parameter",
    40078: "invalid auth_code",
    40080: "invalid suite_secret",
    40082: "invalid suite_token",
    40083: "invalid suite_id",
    40084: "invalid permanent_code",
    40085: "invalid suite_ticket",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41008: "missing auth code",
    41022: "suite_access_token missing",
    41023: "suite_ticket missing",
    41024: "suite_secret missing",
    41025: "permanent_code missing",
    42001: "access_token expired",
    42009: "suite_access_token expired",
    45009: "api freq out of limit",
    45033: "user call api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    50100: "invalid cursor",
}

_HINTS = itertools.count(1)


class WeComError(Exception):
    """A failed WeCom call: becomes an HTTP 200 JSON body with a non-zero ``errcode``."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        super().__init__(f"{errcode} {ERRMSG.get(errcode, 'error')}" + (f" ({detail})" if detail else ""))
        self.errcode = errcode
        self.detail = detail


class TokenEndedEarly(WeComError):
    """A token WeCom ended before its ``expires_in`` (a fault, or the admin API) was presented.

    Counted under the fault label ``ended_early``: the call failed because of WeCom, not the client.
    """


class NotFoundError(LookupError):
    """No such suite, corp or authorization in the emulator (a control-API error; admin API: 404)."""


def error_body(errcode: int, *, detail: str = "", now: float, client_ip: str = "127.0.0.1") -> dict[str, Any]:
    """The JSON WeCom returns for ``errcode``; ``detail`` never carries a secret value."""
    text = ERRMSG.get(errcode, "error")
    if detail:
        text = f"{text}: {detail}"
    hint = f"{int(now)}_{next(_HINTS)}_{secrets.token_hex(16)}"
    return {
        "errcode": errcode,
        "errmsg": (
            f"{text}, hint: [{hint}], from ip: {client_ip}, "
            f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
        ),
    }
