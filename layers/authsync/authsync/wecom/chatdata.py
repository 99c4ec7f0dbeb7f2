"""数据与智能专区 authorization documents: ``chatdata/get_corp_auth_info`` and ``get_auth_user_list`` (spec §3.5, §3.6).

As in :mod:`authsync.wecom.authinfo`, the models are for reading: every field optional, unknown
fields kept, and the stored snapshot is the raw document (see :func:`snapshot_document`).
Edition and status numbers stay plain ints so a value WeCom adds later still parses; the
label tables below name the documented ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ACTIVE_STATUSES",
    "EDITION_LABELS",
    "STATUS_LABELS",
    "AuthEdition",
    "AuthScope",
    "AuthUser",
    "AuthUserListResponse",
    "ChatdataSummary",
    "CorpAuthInfoResponse",
    "EditionSummary",
    "edition_label",
    "not_authorized",
    "snapshot_document",
    "status_label",
    "summarize",
]

EDITION_LABELS: dict[int, str] = {1: "内部会话", 2: "内外部会话", 3: "内外部会话及语音通话"}
STATUS_LABELS: dict[int, str] = {
    1: "试用中",
    2: "试用已到期",
    3: "付费使用中",
    4: "付费使用已到期",
    5: "免费使用中",
    6: "免费使用已到期",
    7: "付费待生效",
}
ACTIVE_STATUSES = frozenset({1, 3, 5})
"""Statuses under which archiving is in effect now (trial, paid, free); 7 is paid but not yet started."""


def edition_label(edition: int | None) -> str:
    if edition is None:
        return "未知"
    return EDITION_LABELS.get(edition, f"未知版本({edition})")


def status_label(status: int | None) -> str:
    if status is None:
        return "未知"
    return STATUS_LABELS.get(status, f"未知状态({status})")


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class AuthScope(_Document):
    """The authorized archive scope; effective members depend on seats bought (see get_auth_user_list)."""

    userid_list: list[str] | None = None
    department_id_list: list[int] | None = None
    tag_id_list: list[int] | None = None


class AuthEdition(_Document):
    """One ``auth_edition_list[]`` entry.

    ``begin_time``/``end_time`` are omitted for an edition authorized after the shared trial
    ended and never purchased; ``auth_user_count`` is missing from older versions of the page.
    """

    edition: int | None = Field(default=None, description="1 内部会话, 2 内外部会话, 3 内外部会话及语音通话")
    auth_scope: AuthScope | None = None
    status: int | None = Field(default=None, description="1..7, see STATUS_LABELS")
    begin_time: int | None = None
    end_time: int | None = None
    msg_duration_days: int | None = None
    auth_user_count: int | None = None

    @property
    def edition_label(self) -> str:
        return edition_label(self.edition)

    @property
    def status_label(self) -> str:
        return status_label(self.status)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def period(self) -> tuple[int, int] | None:
        """The current trial/paid/free window (for status 7 the expected paid one), if reported."""
        if self.begin_time is None or self.end_time is None:
            return None
        return self.begin_time, self.end_time


class CorpAuthInfoResponse(_Document):
    """``chatdata/get_corp_auth_info``: one entry per authorized edition."""

    errcode: int | None = None
    errmsg: str | None = None
    auth_edition_list: list[AuthEdition] | None = None

    @property
    def editions(self) -> list[AuthEdition]:
        return list(self.auth_edition_list or [])


class AuthUser(_Document):
    userid: str | None = None
    edition_list: list[int] | None = None


class AuthUserListResponse(_Document):
    """``chatdata/get_auth_user_list`` (one page). ``has_more`` is 1/0 in the table, ``true`` in the sample."""

    errcode: int | None = None
    errmsg: str | None = None
    auth_user_list: list[AuthUser] | None = None
    next_cursor: str | None = None
    has_more: bool | None = None


class EditionSummary(BaseModel):
    """One edition as shown to people: labels, whether archiving is in effect, its period."""

    model_config = ConfigDict(frozen=True)

    edition: int | None
    label: str
    status: int | None
    status_label: str
    active: bool
    begin_time: int | None
    end_time: int | None
    msg_duration_days: int | None
    auth_user_count: int | None


class ChatdataSummary(BaseModel):
    """The corp's 数据与智能专区 authorization at a glance.

    ``authorized`` is False when no edition is authorized, and when WeCom refused the call
    (``errcode``, e.g. 48002): not being authorized is a state of the corp, not an error.
    """

    model_config = ConfigDict(frozen=True)

    authorized: bool
    editions: list[EditionSummary] = Field(default_factory=list)
    active_editions: list[int] = Field(default_factory=list)
    errcode: int | None = None


def summarize(doc: Mapping[str, Any] | CorpAuthInfoResponse) -> ChatdataSummary:
    """Summarize a get_corp_auth_info document (or a :func:`snapshot_document`), editions in edition order.

    A document that carries a non-zero ``errcode`` (a refusal recorded as the corp's state)
    summarizes as not authorized with that errcode.
    """
    parsed = doc if isinstance(doc, CorpAuthInfoResponse) else CorpAuthInfoResponse.model_validate(doc)
    editions = sorted(parsed.editions, key=lambda e: (e.edition is None, e.edition or 0))
    summaries = [
        EditionSummary(
            edition=e.edition,
            label=e.edition_label,
            status=e.status,
            status_label=e.status_label,
            active=e.active,
            begin_time=e.begin_time,
            end_time=e.end_time,
            msg_duration_days=e.msg_duration_days,
            auth_user_count=e.auth_user_count,
        )
        for e in editions
    ]
    return ChatdataSummary(
        authorized=bool(summaries),
        editions=summaries,
        active_editions=[s.edition for s in summaries if s.active and s.edition is not None],
        errcode=parsed.errcode or None,
    )


def not_authorized(errcode: int) -> ChatdataSummary:
    """The summary for a corp whose get_corp_auth_info answered ``errcode`` (48002: 专区 not authorized)."""
    return ChatdataSummary(authorized=False, errcode=errcode)


def snapshot_document(
    corp_auth_info: Mapping[str, Any], auth_users: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The document stored as a corp's ``chatdata`` snapshot.

    The get_corp_auth_info body without its ``errcode``/``errmsg`` envelope, and, when given,
    every page of get_auth_user_list merged into ``auth_user_list`` sorted by userid (page
    boundaries and WeCom's ordering are not facts about the corp, so they must not show up
    as changes).
    """
    document = {k: v for k, v in corp_auth_info.items() if k not in ("errcode", "errmsg")}
    if auth_users is not None:
        users = [dict(u) for u in auth_users]
        document["auth_user_list"] = sorted(users, key=lambda u: str(u.get("userid", "")))
    return document
