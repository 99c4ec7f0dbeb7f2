"""The emulator's state: suites, corps, authorizations, codes and tokens, and their JSON shapes.

Everything WeCom would know about a provider lives here as plain dataclasses. A
*corp* holds corp-level facts (name, 主体 verification); an *authorization* is one
corp's install of one suite (agents, permanent code, 数据与智能专区 editions, the
authorized-member list). The ``*_json`` methods render exactly the shapes of spec
§3 (field names, nesting, which fields are omitted when), so the API layer only
picks which renderer a given endpoint and version uses.

This module holds secrets (tickets, codes, tokens) by design; nothing here logs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from authsync.wecom.crypto import CallbackCrypto
from authsync_dev.wecom import TestSuite

__all__ = [
    "AUTH_CODE_TTL",
    "DAY",
    "TICKET_TTL",
    "AgentRecord",
    "AuthCode",
    "AuthUser",
    "Authorization",
    "ChatEdition",
    "CorpRecord",
    "Dealer",
    "IssuedToken",
    "Member",
    "PaidEdition",
    "Privilege",
    "RegisterCode",
    "SharedFrom",
    "SuiteKind",
    "SuiteRecord",
    "Ticket",
    "TokenKind",
    "day_start",
    "new_secret",
]

DAY = 86_400
TICKET_TTL = 30 * 60
"""A suite_ticket stays valid for 30 minutes (spec §2)."""
AUTH_CODE_TTL = 10 * 60
"""An AuthCode is single use and valid for 10 minutes (spec §2)."""
_CST = 8 * 3600

SuiteKind = Literal["third_party", "customized"]
TokenKind = Literal["suite", "corp", "provider"]


def new_secret(nbytes: int) -> str:
    """An opaque credential in WeCom's alphabet (letters, digits, ``-`` and ``_``)."""
    return secrets.token_urlsafe(nbytes)


def day_start(now: float) -> int:
    """Midnight China Standard Time of the day containing ``now``: WeCom's periods start there (Seed-0)."""
    return int((now + _CST) // DAY * DAY - _CST)


@dataclass
class Ticket:
    value: str
    issued_at: float

    def __repr__(self) -> str:
        return f"Ticket(issued_at={self.issued_at})"


@dataclass
class SuiteRecord:
    """A suite (第三方应用 or 代开发 template) as registered in WeCom's provider console."""

    suite_id: str
    suite_secret: str = field(repr=False)
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    kind: SuiteKind = "third_party"
    provider_corpid: str | None = None
    provider_secret: str | None = field(default=None, repr=False)
    """The provider's ProviderSecret (service/get_provider_token): every suite of one provider shares it."""
    callback_url: str | None = None
    """Full 指令回调 URL for this suite; ``None`` means ``<emulator callback base>/<suite_id>``."""
    current_ticket: Ticket | None = None
    previous_ticket: Ticket | None = None

    def crypto(self) -> CallbackCrypto:
        """指令回调 payloads are encrypted for the suite_id (spec §1.1)."""
        return CallbackCrypto(self.token, self.encoding_aes_key, self.suite_id)

    def test_suite(self) -> TestSuite:
        """The same credentials in the shape the project's tests store in Secrets Manager."""
        return TestSuite(
            self.suite_id, self.suite_secret, self.token, self.encoding_aes_key, self.provider_corpid or ""
        )

    def config(self) -> dict[str, Any]:
        """The suite's console settings (secret values included: for admin responses only)."""
        return {
            "suite_id": self.suite_id,
            "suite_secret": self.suite_secret,
            "token": self.token,
            "encoding_aes_key": self.encoding_aes_key,
            "kind": self.kind,
            "provider_corpid": self.provider_corpid,
            "provider_secret": self.provider_secret,
            "callback_url": self.callback_url,
        }

    def rotate_ticket(self, now: float) -> str:
        """Mint a new ticket; the previous one stays acceptable until it expires (spec §2)."""
        self.previous_ticket = self.current_ticket
        self.current_ticket = Ticket(new_secret(48), now)
        return self.current_ticket.value

    def ticket_valid(self, value: str, now: float) -> bool:
        """Only the current and the previous ticket, each within its 30 minutes, are accepted."""
        for ticket in (self.current_ticket, self.previous_ticket):
            if ticket is not None and secrets.compare_digest(ticket.value.encode(), value.encode()):
                return now < ticket.issued_at + TICKET_TTL
        return False


@dataclass
class CorpRecord:
    """Corp-level facts shared by all of the corp's installs (spec §3.3 ``auth_corp_info``)."""

    corpid: str
    corp_name: str
    verified: bool = False
    corp_full_name: str = ""
    verified_end_time: int = 0
    subject_type: int = 1
    corp_square_logo_url: str = "https://wework.qpic.cn/wwpic/emulator/square/0"
    corp_user_max: int = 200
    corp_agent_max: int | None = 300
    """Only in the old doc (Seed-1/Seed-3); ``None`` omits it."""
    corp_wxqrcode: str = "https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=emulator"
    corp_scale: str = "1-50人"
    corp_industry: str = "IT服务"
    corp_sub_industry: str = "计算机软件/硬件/信息服务"
    location: str | None = "广东省深圳市"
    """Only in the old doc; ``None`` omits it."""
    ex_names: list[str] = field(default_factory=list)

    @property
    def corp_type(self) -> str:
        return "verified" if self.verified else "unverified"

    def auth_corp_info(self, *, v1: bool, member_mode: bool) -> dict[str, Any]:
        """``auth_corp_info`` as get_auth_info returns it.

        ``corp_full_name`` and ``corp_ex_name`` only for verified corps; ``corp_wxqrcode``
        only in v1; scale and industries are empty under member authorization (auth_mode 1).
        """
        info: dict[str, Any] = {
            "corpid": self.corpid,
            "corp_name": self.corp_name,
            "corp_type": self.corp_type,
            "corp_square_logo_url": self.corp_square_logo_url,
            "corp_user_max": self.corp_user_max,
        }
        if self.corp_agent_max is not None:
            info["corp_agent_max"] = self.corp_agent_max
        if self.verified:
            info["corp_full_name"] = self.corp_full_name or self.corp_name
        info["verified_end_time"] = self.verified_end_time if self.verified else 0
        info["subject_type"] = self.subject_type
        if v1:
            info["corp_wxqrcode"] = self.corp_wxqrcode
        info["corp_scale"] = "" if member_mode else self.corp_scale
        info["corp_industry"] = "" if member_mode else self.corp_industry
        info["corp_sub_industry"] = "" if member_mode else self.corp_sub_industry
        if self.location is not None:
            info["location"] = self.location
        if self.verified:
            info["corp_ex_name"] = {"name_list": list(self.ex_names)}
        return info

    def summary(self) -> dict[str, Any]:
        return {"corpid": self.corpid, "corp_name": self.corp_name, "corp_type": self.corp_type}


@dataclass
class Privilege:
    """An agent's visible range and extra contacts; level 0 for 代开发 apps."""

    level: int = 1
    allow_party: list[int] = field(default_factory=lambda: [1])
    allow_user: list[str] = field(default_factory=list)
    allow_tag: list[int] = field(default_factory=list)
    extra_party: list[int] = field(default_factory=list)
    extra_user: list[str] = field(default_factory=list)
    extra_tag: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "allow_party": list(self.allow_party),
            "allow_user": list(self.allow_user),
            "allow_tag": list(self.allow_tag),
            "extra_party": list(self.extra_party),
            "extra_user": list(self.extra_user),
            "extra_tag": list(self.extra_tag),
        }


@dataclass
class SharedFrom:
    corpid: str
    share_type: int = 0
    """0 企业互联, 1 上下游."""


@dataclass
class AgentRecord:
    """One entry of ``auth_info.agent``."""

    agentid: int
    name: str = "Authsync"
    round_logo_url: str = "https://wework.qpic.cn/wwpic/emulator/round/0"
    square_logo_url: str = "https://wework.qpic.cn/wwpic/emulator/square/1"
    appid: int | None = 1
    auth_mode: int = 0
    is_customized_app: bool = False
    auth_from_thirdapp: bool = False
    privilege: Privilege | None = field(default_factory=Privilege)
    shared_from: SharedFrom | None = None

    def to_json(self) -> dict[str, Any]:
        agent: dict[str, Any] = {
            "agentid": self.agentid,
            "name": self.name,
            "round_logo_url": self.round_logo_url,
            "square_logo_url": self.square_logo_url,
        }
        if self.appid is not None:
            agent["appid"] = self.appid
        agent["auth_mode"] = self.auth_mode
        agent["is_customized_app"] = self.is_customized_app
        agent["auth_from_thirdapp"] = self.auth_from_thirdapp
        if self.privilege is not None:
            agent["privilege"] = self.privilege.to_json()
        if self.shared_from is not None:
            agent["shared_from"] = {"corpid": self.shared_from.corpid, "share_type": self.shared_from.share_type}
        return agent


@dataclass
class PaidEdition:
    """``edition_info.agent[]`` for paid apps (D-91912)."""

    agentid: int
    edition_id: str = "emulator-edition-pro"
    edition_name: str = "专业版"
    app_status: int = 3
    user_limit: int = 100
    expired_time: int = 0
    is_virtual_version: bool = False
    is_shared_from_other_corp: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "agentid": self.agentid,
            "edition_id": self.edition_id,
            "edition_name": self.edition_name,
            "app_status": self.app_status,
            "user_limit": self.user_limit,
            "expired_time": self.expired_time,
            "is_virtual_version": self.is_virtual_version,
            "is_shared_from_other_corp": self.is_shared_from_other_corp,
        }


@dataclass
class Dealer:
    corpid: str
    corp_name: str


@dataclass
class AuthUser:
    """``auth_user_info``: the admin (or member) who installed."""

    userid: str = "admin01"
    open_userid: str = "woEmulatorOpenUserid01"
    name: str = "管理员"
    avatar: str = "https://wework.qpic.cn/wwpic/emulator/avatar/0"

    def to_json(self) -> dict[str, Any]:
        return {"userid": self.userid, "open_userid": self.open_userid, "name": self.name, "avatar": self.avatar}


@dataclass
class RegisterCode:
    register_code: str
    template_id: str
    state: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"register_code": self.register_code, "template_id": self.template_id, "state": self.state}


_DEFAULT_PERIODS: dict[int, tuple[int, int]] = {
    # status -> (days from today's start to the period's start, period length in days)
    3: (0, 365),
    4: (-400, 365),
    5: (0, 365),
    6: (-400, 365),
    7: (7, 365),
}
_EXPIRED_STATUS = {1: 2, 3: 4, 5: 6}


@dataclass
class ChatEdition:
    """One 数据与智能专区 edition authorization (spec §3.5).

    Trial statuses (1, 2) take their window from the install's shared trial; the
    others carry their own ``begin_time``/``end_time``. Statuses move on with the
    clock (1→2, 3→4, 5→6 after the end, 7→3 at the start) as WeCom reports them.
    """

    edition: int
    status: int = 1
    userid_list: list[str] = field(default_factory=list)
    department_id_list: list[int] = field(default_factory=list)
    tag_id_list: list[int] = field(default_factory=list)
    msg_duration_days: int = 90
    auth_user_count: int | None = None
    """``None``: the de-duplicated count of authorized members holding this edition."""
    begin_time: int | None = None
    end_time: int | None = None
    authorized_at: float | None = None

    def __post_init__(self) -> None:
        if self.edition not in (1, 2, 3):
            raise ValueError("edition must be 1, 2 or 3")
        if not 1 <= self.status <= 7:
            raise ValueError("status must be 1..7")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ChatEdition:
        """Build from admin JSON: ``{"edition", "status", "auth_scope"?: {...}, ...}`` or flat scope keys."""
        scope = data.get("auth_scope") or {}
        allowed = {f for f in cls.__dataclass_fields__ if f not in ("userid_list", "department_id_list", "tag_id_list")}
        unknown = set(data) - allowed - {"auth_scope", "userid_list", "department_id_list", "tag_id_list"}
        if unknown:
            raise ValueError(f"unknown edition fields: {sorted(unknown)}")
        return cls(
            userid_list=list(data.get("userid_list", scope.get("userid_list", []))),
            department_id_list=list(data.get("department_id_list", scope.get("department_id_list", []))),
            tag_id_list=list(data.get("tag_id_list", scope.get("tag_id_list", []))),
            **{k: v for k, v in data.items() if k in allowed},
        )

    def settle(self, now: float) -> None:
        """Fill what the caller left open: when it was authorized and, outside trials, its period."""
        if self.authorized_at is None:
            self.authorized_at = now
        if self.status in _DEFAULT_PERIODS and (self.begin_time is None or self.end_time is None):
            offset, length = _DEFAULT_PERIODS[self.status]
            begin = day_start(now) + offset * DAY
            self.begin_time, self.end_time = begin, begin + length * DAY - 1

    def window(self, trial: tuple[int, int] | None) -> tuple[int, int] | None:
        """The period reported as begin/end, or ``None`` when WeCom omits both.

        Spec §3.5: all editions share one trial; an edition authorized after that trial
        ended and never purchased has no begin_time/end_time.
        """
        if self.status in (1, 2):
            if trial is None or (self.authorized_at is not None and self.authorized_at > trial[1]):
                return None
            return trial
        if self.begin_time is None or self.end_time is None:
            return None
        return self.begin_time, self.end_time

    def effective_status(self, now: float, trial: tuple[int, int] | None) -> int:
        status = self.status
        window = self.window(trial)
        if status == 7 and window is not None and now >= window[0]:
            status = 3
        if window is not None and now > window[1]:
            status = _EXPIRED_STATUS.get(status, status)
        if status == 1 and window is None:
            status = 2
        return status

    def to_json(self, now: float, trial: tuple[int, int] | None, members: Sequence[Member]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "edition": self.edition,
            "auth_scope": {
                "userid_list": list(self.userid_list),
                "department_id_list": list(self.department_id_list),
                "tag_id_list": list(self.tag_id_list),
            },
            "status": self.effective_status(now, trial),
        }
        window = self.window(trial)
        if window is not None:
            entry["begin_time"], entry["end_time"] = window
        entry["msg_duration_days"] = self.msg_duration_days
        count = self.auth_user_count
        if count is None:
            count = sum(1 for m in members if self.edition in m.edition_list)
        entry["auth_user_count"] = count
        return entry


@dataclass
class Member:
    """An entry of ``chatdata/get_auth_user_list``: a member whose chats are archived."""

    userid: str
    edition_list: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"userid": self.userid, "edition_list": list(self.edition_list)}


@dataclass
class Authorization:
    """One corp's install of one suite."""

    suite_id: str
    corpid: str
    permanent_code: str = field(repr=False)
    agents: list[AgentRecord]
    auth_user: AuthUser | None = field(default_factory=AuthUser)
    register_code: RegisterCode | None = None
    dealer: Dealer | None = None
    paid_editions: list[PaidEdition] = field(default_factory=list)
    state: str = ""
    active: bool = True
    revoked_codes: set[str] = field(default_factory=set, repr=False)
    pending_code: str | None = field(default=None, repr=False)
    """The new secret minted by reset_permanent_code, live once its AuthCode is exchanged."""
    chat_editions: list[ChatEdition] = field(default_factory=list)
    trial: tuple[int, int] | None = None
    members: list[Member] | None = None
    """``None``: derived from the editions' ``userid_list`` scopes."""

    @property
    def member_mode(self) -> bool:
        return any(agent.auth_mode == 1 for agent in self.agents)

    def revoke_permanent_code(self) -> None:
        self.revoked_codes.add(self.permanent_code)

    def effective_members(self) -> list[Member]:
        if self.members is not None:
            return list(self.members)
        holders: dict[str, set[int]] = {}
        for edition in self.chat_editions:
            for userid in edition.userid_list:
                holders.setdefault(userid, set()).add(edition.edition)
        return [Member(userid, sorted(editions)) for userid, editions in sorted(holders.items())]

    def auth_info_json(self) -> dict[str, Any] | None:
        """``auth_info``; absent for a 通讯录应用 without entity app (no agents)."""
        if not self.agents:
            return None
        return {"agent": [agent.to_json() for agent in self.agents]}

    def corp_auth_info_json(self, now: float) -> dict[str, Any]:
        """The body of ``chatdata/get_corp_auth_info``."""
        members = self.effective_members()
        return {
            "errcode": 0,
            "errmsg": "ok",
            "auth_edition_list": [e.to_json(now, self.trial, members) for e in self.chat_editions],
        }

    def summary(self) -> dict[str, Any]:
        return {
            "suite_id": self.suite_id,
            "corpid": self.corpid,
            "active": self.active,
            "agents": [a.agentid for a in self.agents],
            "chatdata_editions": [e.edition for e in self.chat_editions],
        }


@dataclass
class AuthCode:
    """A temporary AuthCode from create_auth or reset_permanent_code."""

    value: str = field(repr=False)
    suite_id: str
    corpid: str
    purpose: Literal["create_auth", "reset_permanent_code"]
    issued_at: float
    used: bool = False

    def usable(self, now: float) -> bool:
        return not self.used and now < self.issued_at + AUTH_CODE_TTL


@dataclass
class IssuedToken:
    """A suite_access_token, a corp access_token or a provider_access_token as WeCom remembers it.

    ``invalidated`` models WeCom ending a token early (reported like expiry);
    ``revoked`` a token whose authorization was cancelled (reported as invalid).
    A provider token has no suite (``suite_id`` ``""``); its ``corpid`` is the provider's.
    """

    value: str = field(repr=False)
    kind: TokenKind
    suite_id: str
    corpid: str | None
    issued_at: float
    expires_at: float
    invalidated: bool = False
    revoked: bool = False

    def live(self, now: float) -> bool:
        return not self.invalidated and not self.revoked and now < self.expires_at

    def expires_in(self, now: float) -> int:
        """``expires_in`` as answered, rounded down: a client must never believe a token lives longer than it does."""
        return max(0, int(self.expires_at - now))
