"""``get_auth_info`` / ``get_permanent_code`` documents and the corp's verification status (spec §3.2, §3.3, §5).

The models are the union of every documented field (Seed-1's old page, Seed-2's 2024 page,
spec §3.3), all optional and with ``extra="allow"``, so a field WeCom adds tomorrow survives
parsing. They are for *reading*: what gets stored is the raw document (minus secrets, see
:func:`strip_secrets`), never a re-serialized model, so nothing is lost or reformatted.

The permanent code (the 代开发 app secret, or the key to a corp's tokens) and any access
token are ``SecretStr``: a model's ``repr`` and JSON dump show ``**********``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "CUSTOMER_CAP_UNVERIFIED",
    "INSTALL_LABELS",
    "SECRET_KEYS",
    "SHARE_TYPE_LABELS",
    "Agent",
    "AuthCorpInfo",
    "AuthInfo",
    "AuthInfoResponse",
    "AuthUserInfo",
    "CorpExName",
    "DealerCorpInfo",
    "EditionAgent",
    "EditionInfo",
    "InstallKind",
    "PermanentCodeResponse",
    "Privilege",
    "RegisterCodeInfo",
    "SharedFrom",
    "Verification",
    "derive_verification",
    "install_kind",
    "strip_secrets",
]

CUSTOMER_CAP_UNVERIFIED = 100
"""微信客服 may serve at most this many customers (cumulatively) for an unverified corp (Seed-2)."""

SECRET_KEYS = frozenset({"permanent_code", "access_token", "suite_access_token", "auth_code"})
"""Keys whose values are credentials: never stored in a snapshot, never logged."""

SHARE_TYPE_LABELS: dict[int, str] = {0: "企业互联", 1: "上下游"}

InstallKind = Literal["direct", "customized", "shared_interconnect", "shared_chain", "shared"]

INSTALL_LABELS: dict[str, str] = {
    "direct": "直接安装",
    "customized": "代开发应用",
    "shared_interconnect": "企业互联共享",
    "shared_chain": "上下游共享",
    "shared": "共享安装",
}


class _Document(BaseModel):
    """Base for WeCom response parts: every field optional, unknown fields kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


class DealerCorpInfo(_Document):
    """代理服务商: present only when the app was sold through a dealer."""

    corpid: str | None = None
    corp_name: str | None = None


class CorpExName(_Document):
    """Other certified short names. ``name_list`` is a list in prose, a string in Seed-2's sample."""

    name_list: list[str] | str | None = None

    @property
    def names(self) -> list[str]:
        """``name_list`` as a list. ⚠️ A string is taken as one name (its separator, if any, is undocumented)."""
        if self.name_list is None:
            return []
        if isinstance(self.name_list, str):
            return [self.name_list] if self.name_list else []
        return list(self.name_list)


class AuthCorpInfo(_Document):
    """``auth_corp_info``. ``corp_agent_max``/``location``: old page only; ``corp_wxqrcode``: v1 only."""

    corpid: str | None = None
    corp_name: str | None = None
    corp_type: str | None = Field(default=None, description='"verified" (认证号) or "unverified" (注册号)')
    corp_square_logo_url: str | None = None
    corp_user_max: int | None = None
    corp_agent_max: int | None = None
    corp_full_name: str | None = None
    verified_end_time: int | None = None
    subject_type: int | None = Field(default=None, description="1 企业, 2 政府及事业单位, 3 其他组织, 4 团队号")
    corp_wxqrcode: str | None = Field(default=None, description="v1 only; the URL is valid for 7 days")
    corp_scale: str | None = None
    corp_industry: str | None = None
    corp_sub_industry: str | None = None
    location: str | None = None
    corp_ex_name: CorpExName | None = None


class Privilege(_Document):
    """An agent's visible range and extra contacts. ``level`` is fixed at 0 for 代开发 apps."""

    level: int | None = None
    allow_party: list[int] | None = None
    allow_user: list[str] | None = None
    allow_tag: list[int] | None = None
    extra_party: list[int] | None = None
    extra_user: list[str] | None = None
    extra_tag: list[int] | None = None


class SharedFrom(_Document):
    """Only for installs triggered by sharing: ``share_type`` 0 企业互联, 1 上下游."""

    corpid: str | None = None
    share_type: int | None = None


class Agent(_Document):
    """One ``auth_info.agent[]`` entry (new single-app authorizations always have exactly one)."""

    agentid: int | None = None
    name: str | None = None
    round_logo_url: str | None = None
    square_logo_url: str | None = None
    appid: int | None = Field(default=None, description="legacy multi-app suites only")
    auth_mode: int | None = Field(default=None, description="0 admin, 1 member authorization")
    is_customized_app: bool | None = None
    auth_from_thirdapp: bool | None = Field(default=None, description="⚠️ in samples, undocumented")
    privilege: Privilege | None = None
    shared_from: SharedFrom | None = None


class AuthInfo(_Document):
    """``auth_info``: absent for a 通讯录应用 without entity app and for 「第三方会话存档接口」."""

    agent: list[Agent] | None = None


class EditionAgent(_Document):
    """``edition_info.agent[]`` for paid apps (D-91912)."""

    agentid: int | None = None
    edition_id: str | None = None
    edition_name: str | None = None
    app_status: int | None = Field(
        default=None,
        description="0 unpaid, 1 limited trial, 2 trial expired, 3 paid, 4 paid expired, 5 unlimited trial, "
        "6/7 over the seat limit for ≤/> 7 days",
    )
    user_limit: int | None = None
    expired_time: int | None = None
    is_virtual_version: bool | None = None
    is_shared_from_other_corp: bool | None = None


class EditionInfo(_Document):
    agent: list[EditionAgent] | None = None


class AuthUserInfo(_Document):
    """The admin or member who installed; may be absent or empty in v2."""

    userid: str | None = None
    open_userid: str | None = None
    name: str | None = None
    avatar: str | None = None


class RegisterCodeInfo(_Document):
    register_code: str | None = None
    template_id: str | None = None
    state: str | None = None


class AuthInfoResponse(_Document):
    """``get_auth_info`` v1 and v2. ``errcode`` is absent on success (spec §3)."""

    errcode: int | None = None
    errmsg: str | None = None
    dealer_corp_info: DealerCorpInfo | None = None
    auth_corp_info: AuthCorpInfo | None = None
    auth_info: AuthInfo | None = None
    edition_info: EditionInfo | None = None
    # Seed-1's parameter table lists a corp token here (a doc artifact, spec §3.3); if one ever
    # arrives it must not show up in a repr.
    access_token: SecretStr | None = None
    expires_in: int | None = None

    @property
    def agents(self) -> list[Agent]:
        return list(self.auth_info.agent or []) if self.auth_info else []


class PermanentCodeResponse(AuthInfoResponse):
    """``get_permanent_code`` v1 (everything) and v2 (permanent_code, corp id/name, user, register code, state)."""

    permanent_code: SecretStr | None = None
    auth_user_info: AuthUserInfo | None = None
    register_code_info: RegisterCodeInfo | None = None
    state: str | None = None


def strip_secrets(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``document`` without :data:`SECRET_KEYS` at any depth: what may be stored.

    A v1 ``get_permanent_code`` response carries the permanent code and a corp token next to
    the auth info; the snapshot keeps the auth info only.
    """
    return {k: _strip(v) for k, v in document.items() if k not in SECRET_KEYS}


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return strip_secrets(value)
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class Verification(BaseModel):
    """The corp's 主体验证 status as far as get_auth_info tells (spec §5), plus how it installed.

    ⚠️ Policy: a ``verified_end_time`` in the past only *flags* a possible lapse; ``verified`` and
    the customer cap still follow ``corp_type`` until WeCom reports otherwise (what happens to
    corp_type after that time is undocumented). The flag depends on ``evaluated_at``; readers
    that show it later should re-derive it (:meth:`lapsed_at`).
    """

    model_config = ConfigDict(frozen=True)

    corp_type: str | None
    verified: bool
    customer_cap: int | None = Field(description="微信客服 customer cap: 100 when unverified, None = unlimited")
    verified_end_time: int | None = Field(description="认证到期时间 (unix s); None when absent or 0")
    verification_may_have_lapsed: bool
    has_corp_full_name: bool
    subject_type: int | None
    customized_app: bool
    shared_from_corpid: str | None
    share_type: int | None
    install_kind: InstallKind
    install_label: str
    evaluated_at: float

    def lapsed_at(self, now: float) -> bool:
        """Whether the verification may have lapsed by ``now`` (same rule as at derivation)."""
        return _lapsed(self.verified_end_time, now)


def _lapsed(verified_end_time: int | None, now: float) -> bool:
    return verified_end_time is not None and verified_end_time != 0 and verified_end_time < now


def install_kind(agents: list[Agent]) -> tuple[InstallKind, SharedFrom | None]:
    """How the corp got the app: 代开发, shared (企业互联 / 上下游) or a direct install.

    Single-app authorizations have one agent; for legacy multi-agent suites any customized
    agent makes it a 代开发 install, otherwise the first agent with ``shared_from`` decides.
    """
    if any(agent.is_customized_app for agent in agents):
        return "customized", None
    for agent in agents:
        shared = agent.shared_from
        if shared is not None:
            if shared.share_type == 0:
                return "shared_interconnect", shared
            if shared.share_type == 1:
                return "shared_chain", shared
            return "shared", shared
    return "direct", None


def derive_verification(doc: Mapping[str, Any], now: float) -> Verification:
    """Derive :class:`Verification` from a get_auth_info (or v1 get_permanent_code) document.

    ``verified`` is ``corp_type == "verified"``; anything else, including an absent corp_type,
    counts as unverified and gets the 100-customer cap (the conservative reading).
    """
    parsed = AuthInfoResponse.model_validate(strip_secrets(doc))
    corp = parsed.auth_corp_info or AuthCorpInfo()
    verified = corp.corp_type == "verified"
    end_time = corp.verified_end_time or None
    kind, shared = install_kind(parsed.agents)
    return Verification(
        corp_type=corp.corp_type,
        verified=verified,
        customer_cap=None if verified else CUSTOMER_CAP_UNVERIFIED,
        verified_end_time=end_time,
        verification_may_have_lapsed=_lapsed(end_time, now),
        has_corp_full_name=bool(corp.corp_full_name),
        subject_type=corp.subject_type,
        customized_app=kind == "customized",
        shared_from_corpid=shared.corpid if shared else None,
        share_type=shared.share_type if shared else None,
        install_kind=kind,
        install_label=INSTALL_LABELS[kind],
        evaluated_at=now,
    )
