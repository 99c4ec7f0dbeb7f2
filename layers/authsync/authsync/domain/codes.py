"""Calling WeCom with a permanent code that another container may have replaced (no AWS).

Each container caches a corp's permanent code; a 代开发 secret reset or a rotation stored by
another instance makes the cached one stale, and WeCom rejects it. The rule, used by the token
calls and by ``get_auth_info``: on such a rejection read the stored code past the cache once and,
if it changed, call again; the same code (or none) re-raises the rejection.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["with_fresh_code"]


def with_fresh_code[T](
    code: str,
    call: Callable[[str], T],
    *,
    reread: Callable[[], str | None],
    stale: Callable[[Exception], bool],
) -> T:
    """``call(code)``; if it raises an error ``stale`` accepts, ``call`` once more with the re-read code."""
    try:
        return call(code)
    except Exception as exc:
        if not stale(exc):
            raise
        fresh = reread()
        if fresh is None or fresh == code:
            raise
    return call(fresh)
