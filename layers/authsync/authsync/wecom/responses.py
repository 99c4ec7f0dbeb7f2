"""What the WeCom client hands back, typed: issued tokens, the permanent-code grant, and the checks on them.

Why typed here and raw elsewhere: a token and a grant are read field by field and carry
secrets, so they are values whose ``repr`` hides the secret and whose shape is checked once,
at the client's edge (a malformed answer is a :class:`WeComProtocolError`, never a
``KeyError`` deep in a use case). ``get_auth_info`` and the chatdata reads stay documents
(``dict``): the snapshot stores WeCom's document verbatim, so a field WeCom adds tomorrow is
kept and diffed; their typed *readings* are :mod:`authsync.wecom.authinfo` and
:mod:`authsync.wecom.chatdata`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from authsync.wecom.errors import WeComProtocolError

__all__ = ["IssuedToken", "PermanentCodeGrant", "follow_pages", "has_more", "issued_token"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A suite or corp access token as WeCom issued it. ``repr`` hides the value.

    ``obtained_at`` is taken *before* the request was sent, so ``expires_at`` errs early:
    a caller never believes a token lives longer than it does.
    """

    value: str
    expires_in: int
    obtained_at: float

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.expires_in

    def remaining(self, now: float) -> float:
        """Seconds left at ``now`` (negative once expired)."""
        return self.expires_at - now

    def usable(self, now: float, *, margin: float = 0.0) -> bool:
        """Still valid ``margin`` seconds from ``now`` (refresh ahead of expiry with a margin)."""
        return self.remaining(now) > margin

    def __repr__(self) -> str:
        return (
            f"IssuedToken(expires_in={self.expires_in}, obtained_at={self.obtained_at}, expires_at={self.expires_at})"
        )


def issued_token(document: Mapping[str, Any], key: str, obtained_at: float, endpoint: str) -> IssuedToken:
    """The token under ``key`` with a positive ``expires_in``, or a :class:`WeComProtocolError`."""
    value = document.get(key)
    expires_in = document.get("expires_in")
    if not isinstance(value, str) or not value:
        raise WeComProtocolError(endpoint, None, f"answer has no {key}")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise WeComProtocolError(endpoint, None, "answer has no positive expires_in")
    return IssuedToken(value, expires_in, obtained_at)


@dataclass(frozen=True, slots=True)
class PermanentCodeGrant:
    """What one single-use AuthCode bought (spec §3.2): the corp, its permanent code, and the install's context.

    The grant can never be asked for again, so everything in it that cannot be fetched later
    is kept: ``context`` is the answer minus credentials (v2: ``auth_corp_info{corpid,
    corp_name}``, ``auth_user_info`` — who installed —, ``register_code_info`` and ``state``
    — which of the provider's links or campaigns brought the corp; v1 also the whole auth
    info). ``repr`` hides the permanent code.
    """

    corp_id: str
    permanent_code: str = field(repr=False)
    context: dict[str, Any]

    @property
    def corp_name(self) -> str | None:
        corp = self.context.get("auth_corp_info")
        name = corp.get("corp_name") if isinstance(corp, Mapping) else None
        return name if isinstance(name, str) else None

    @classmethod
    def from_document(cls, document: Mapping[str, Any], endpoint: str) -> PermanentCodeGrant:
        """Check the answer's shape (:class:`authsync.wecom.authinfo.PermanentCodeResponse`) and keep its context."""
        from pydantic import ValidationError

        from authsync.wecom.authinfo import PermanentCodeResponse, strip_secrets

        parsed: PermanentCodeResponse | None = None
        # A ValidationError's text quotes the input (the permanent code): it is swallowed, and
        # the protocol error raised below, outside any except block, holds no reference to it.
        with suppress(ValidationError):
            parsed = PermanentCodeResponse.model_validate(document)
        if parsed is None:
            raise WeComProtocolError(endpoint, None, "answer is not a permanent code document")
        code = parsed.permanent_code.get_secret_value() if parsed.permanent_code else ""
        corp_id = parsed.auth_corp_info.corpid if parsed.auth_corp_info else None
        if not code:
            raise WeComProtocolError(endpoint, None, "answer has no permanent_code")
        if not corp_id:
            raise WeComProtocolError(endpoint, None, "answer has no auth_corp_info.corpid")
        return cls(corp_id, code, strip_secrets(document))


def has_more(value: object, endpoint: str) -> bool:
    """``has_more``: the doc table says 1/0, its sample ``true`` (spec §3.6) — accept both."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    raise WeComProtocolError(endpoint, None, "has_more is neither a boolean nor 0/1")


def follow_pages(
    fetch: Callable[[str | None], Mapping[str, Any]], endpoint: str, list_key: str, *, max_pages: int
) -> Iterator[dict[str, Any]]:
    """Every entry of ``list_key`` over WeCom's cursor paging: ``fetch(cursor)`` is one page.

    Pages are followed while ``has_more`` (``true`` or ``1``), bounded by ``max_pages``; a cursor
    that is empty or repeats while ``has_more`` is a :class:`WeComProtocolError` rather than an
    endless loop, and so is an entry that is not an object.
    """
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        page = fetch(cursor)
        entries = page.get(list_key) or []
        if not isinstance(entries, list):
            raise WeComProtocolError(endpoint, None, f"{list_key} is not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise WeComProtocolError(endpoint, None, f"{list_key} entry is not an object")
            yield entry
        if not has_more(page.get("has_more", False), endpoint):
            return
        next_cursor = page.get("next_cursor")
        if not isinstance(next_cursor, str) or not next_cursor or next_cursor in seen:
            raise WeComProtocolError(endpoint, None, "has_more without a new next_cursor")
        seen.add(next_cursor)
        cursor = next_cursor
    raise WeComProtocolError(endpoint, None, f"more than {max_pages} pages")
