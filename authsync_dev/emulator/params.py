"""Request parameters as WeCom checks them: required text fields, page limits and opaque cursors.

Shared by every module that answers ``/cgi-bin/...`` calls, so that a missing field,
a limit out of range or a forged cursor fails the same way on every paged endpoint.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authsync_dev.emulator.errors import WeComError

__all__ = ["Page", "decode_cursor", "encode_cursor", "page", "text"]


def text(body: Mapping[str, Any], name: str, missing: int) -> str:
    """A required string field: absent or empty is ``missing`` (WeCom's code for that field), not a string 40058."""
    value = body.get(name)
    if value is None or value == "":
        raise WeComError(missing)
    if not isinstance(value, str):
        raise WeComError(40058, f"{name} must be a string")
    return value


def encode_cursor(offset: int) -> str:
    """An opaque cursor: a client must hand back ``next_cursor`` rather than compute offsets."""
    return base64.urlsafe_b64encode(f"emu:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> int:
    """The offset a cursor of ours names; anything else (or past the end) is 50100."""
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = decoded.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise WeComError(50100) from None
    if prefix != "emu" or not 0 <= offset <= size:
        raise WeComError(50100)
    return offset


@dataclass(frozen=True)
class Page[T]:
    """One page of a list: its items, the cursor of the next page (``""`` on the last) and whether there is one."""

    items: list[T]
    next_cursor: str
    has_more: bool


def page[T](items: Sequence[T], body: Mapping[str, Any], *, default: int, maximum: int) -> Page[T]:
    """The page ``body``'s ``limit`` (1..``maximum``, else 40058) and ``cursor`` select from ``items``."""
    limit = body.get("limit", default)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise WeComError(40058, f"limit must be 1..{maximum}")
    cursor = body.get("cursor") or ""
    if not isinstance(cursor, str):
        raise WeComError(40058, "cursor must be a string")
    offset = decode_cursor(cursor, len(items)) if cursor else 0
    more = offset + limit < len(items)
    return Page(list(items[offset : offset + limit]), encode_cursor(offset + limit) if more else "", more)
