"""指令回调 payloads: the outer envelope and the decrypted events (spec §1.2, §2).

The envelope is ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``; only ``Encrypt`` is
signed, so the other two are hints. The decrypted document is parsed into a typed
model for the InfoTypes this project acts on; every other InfoType, and Event-style
XML (``MsgType=event``) other than ``change_app_admin``, becomes a :class:`GenericEvent`
that is acknowledged and kept for a later replay, never a failure (spec §2.2). Auth codes
and tickets are ``SecretStr`` so a model's ``repr`` never shows them.

The authorization-scope InfoTypes (spec §8, issue #12) each mean "re-fetch and diff".
WeCom tells a provider that something about a corp's authorization changed but not what
changed; like ``change_auth``, each routes to one ``get_auth_info`` of the named corp (and,
through its chain, chatdata), coalesced with every other fetch of that corp. Payloads:

* ``change_app_admin`` (D-95038, upd. 2021/10/12): the app's admins changed. **Event-style**
  XML pushed to the 数据回调 URL: ``ToUserName`` (the corp), ``FromUserName=sys``,
  ``CreateTime``, ``MsgType=event``, ``Event=change_app_admin``, ``AgentID``; no ``SuiteId``
  and no ``InfoType``. ⚠️ That ``ToUserName`` is the same corp id ``AuthCorpId`` carries for
  this provider is inferred (the doc says "企业微信CorpID"). ⚠️ Its ciphertext carries the
  corp's id as receiveid (spec §1.1), which this endpoint accepts only if configured to.
* ``share_agent_change`` / ``share_chain_change`` (D-93373, upd. 2021/11/18): a group
  (企业互联) or upstream (上下游) corp shared the app with, or removed it from, a member corp.
  ``CorpId`` is the **sharing** (parent/upstream) corp, ``AgentId`` its app, ``AppId``
  legacy. ⚠️ No ``AuthCorpId`` in the sample; it is preferred if a real payload has one.
  ⚠️ The doc sample writes ``<CorpId>![CDATA[ww11111]]</CorpId>`` (a typo); that form is
  unwrapped. The member corps themselves are not named: re-fetching the parent shows
  what its authorization says.
* ``corp_arch_auth`` (D-97378; SKIT ``CorpArchitectureAuthEvent``): the corp authorized its
  organization structure. ``SuiteId``, ``AuthCorpId``, ``InfoType``, ``TimeStamp``.
* ``approve_special_auth`` / ``cancel_special_auth`` (D-98959, upd. 2023/10/08): the corp's
  admin confirmed / withdrew a special permission. ``AuthCorpId``, ``AuthType``
  (documented only as ``customer_acquisition``, 获客助手: kept as text, not an enum).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SkipValidation,
    ValidationError,
    field_validator,
)

from authsync.wecom import safexml
from authsync.wecom.event_base import AuthEvent, CallbackEvent

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_BYTES",
    "ApproveSpecialAuth",
    "AuthDataPermission",
    "AuthEvent",
    "CallbackEvent",
    "CancelAuth",
    "CancelSpecialAuth",
    "ChangeAppAdmin",
    "ChangeAuth",
    "CorpArchAuth",
    "CreateAuth",
    "Envelope",
    "ExpireRemindDataPermission",
    "GenericEvent",
    "MalformedEventError",
    "ResetPermanentCode",
    "ScopeChange",
    "ShareAgentChange",
    "ShareChainChange",
    "SuiteTicket",
    "parse_envelope",
    "parse_event",
]

MAX_BODY_BYTES = 64 * 1024
"""Largest POST body accepted. Real 指令回调 envelopes are well under 4 KiB."""

MAX_MESSAGE_BYTES = 48 * 1024
"""Largest decrypted document parsed (the ciphertext of a 64 KiB body is ~48 KiB)."""


class MalformedEventError(Exception):
    """The decrypted document is valid XML but not a well-formed callback (missing/invalid fields).

    ``info_type`` is the routing key it claimed and ``fields`` the parsed document (values may
    be secret: never log them), so callback-ingest can keep it for a replay instead of refusing it.
    """

    reason = "malformed_event"

    def __init__(self, message: str, *, info_type: str = "unknown", fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.info_type = info_type
        self.fields = fields or {}


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer POST document. ``to_user_name`` and ``agent_id`` are unauthenticated hints."""

    encrypt: str
    to_user_name: str
    agent_id: str


def parse_envelope(body: bytes) -> Envelope:
    """Parse the outer XML; raises :class:`safexml.XmlError` when absent, malformed or oversized."""
    fields = safexml.parse(body, max_bytes=MAX_BODY_BYTES)
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt.strip():
        raise safexml.XmlError("envelope has no Encrypt element")
    to_user = fields.get("ToUserName", "")
    agent = fields.get("AgentID", "")
    return Envelope(
        encrypt=encrypt.strip(),
        to_user_name=to_user.strip() if isinstance(to_user, str) else "",
        agent_id=agent.strip() if isinstance(agent, str) else "",
    )


class SuiteTicket(CallbackEvent):
    """``suite_ticket``: pushed every 10 minutes, valid 30 (spec §2)."""

    suite_ticket: SecretStr = Field(alias="SuiteTicket", min_length=1, max_length=512)


class CreateAuth(AuthEvent):
    """``create_auth``: carries a single-use, 10-minute AuthCode and no AuthCorpId."""

    auth_code: SecretStr = Field(alias="AuthCode", min_length=1, max_length=512)
    state: str | None = Field(default=None, alias="State")


class ChangeAuth(AuthEvent):
    """``change_auth``: visibility, permission or 数据与智能专区 changes; no sub-type, so re-query."""

    auth_corp_id: str = Field(alias="AuthCorpId", min_length=1, max_length=128)
    state: str | None = Field(default=None, alias="State")


class CancelAuth(AuthEvent):
    """``cancel_auth``: the corp uninstalled the app."""

    auth_corp_id: str = Field(alias="AuthCorpId", min_length=1, max_length=128)


class ResetPermanentCode(AuthEvent):
    """``reset_permanent_code`` (代开发): exchange the AuthCode for the new secret."""

    auth_code: SecretStr = Field(alias="AuthCode", min_length=1, max_length=512)


class AuthDataPermission(AuthEvent):
    """``auth_data_permission``: a data permission (e.g. ``data_zone_chat``) was granted or renewed."""

    auth_corp_id: str = Field(alias="AuthCorpId", min_length=1, max_length=128)
    auth_type: str | None = Field(default=None, alias="AuthType")


class ExpireRemindDataPermission(AuthDataPermission):
    """``expire_remind_data_permission``: a data permission expires in 7 days."""


class ScopeChange(AuthEvent):
    """An authorization-scope change of one corp: routed like ``change_auth`` (re-fetch and diff).

    The corp id is required: an event without one cannot be routed, so it fails validation and
    callback-ingest keeps it as malformed instead of enqueuing it.
    """

    auth_corp_id: str = Field(alias="AuthCorpId", min_length=1, max_length=128)
    agent_id: str | None = Field(default=None, alias="AgentID", max_length=32)
    """Informational only, and text: an empty or odd value must not make the event unroutable."""


class ChangeAppAdmin(ScopeChange):
    """``change_app_admin``: the app's admin list changed (Event-style document, see the module doc)."""


class ShareAgentChange(ScopeChange):
    """``share_agent_change`` (企业互联): the sharing corp (``CorpId``) changed whom it shares the app with."""

    auth_corp_id: str = Field(
        validation_alias=AliasChoices("AuthCorpId", "CorpId"), alias="AuthCorpId", min_length=1, max_length=128
    )
    agent_id: str | None = Field(default=None, validation_alias=AliasChoices("AgentId", "AgentID"), max_length=32)

    @field_validator("auth_corp_id", mode="before")
    @classmethod
    def _unwrap_doc_typo(cls, value: object) -> object:
        # ⚠️ D-93373's sample: <CorpId>![CDATA[ww11111]]</CorpId>.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("![CDATA[") and text.endswith("]]"):
                return text[len("![CDATA[") : -2]
        return value


class ShareChainChange(ShareAgentChange):
    """``share_chain_change`` (上下游): the upstream corp (``CorpId``) changed whom it shares the app with."""


class CorpArchAuth(ScopeChange):
    """``corp_arch_auth``: the corp authorized (or changed) access to its organization structure."""


class ApproveSpecialAuth(ScopeChange):
    """``approve_special_auth``: the corp's admin confirmed a special permission (``AuthType``)."""

    auth_type: str | None = Field(default=None, alias="AuthType", max_length=128)


class CancelSpecialAuth(ApproveSpecialAuth):
    """``cancel_special_auth``: the corp's admin withdrew a special permission (``AuthType``)."""


class GenericEvent(BaseModel):
    """Any other callback: acknowledged and logged by its routing key, never an error.

    ⚠️ The "data permission expired" event's InfoType is undocumented (spec §2, §7). An
    unknown InfoType that carries both ``AuthCorpId`` and ``AuthType`` is therefore routed
    as a data-permission event (see :func:`parse_event`) rather than dropped.
    """

    model_config = ConfigDict(frozen=True)

    queued: ClassVar[bool] = False

    kind: str
    suite_id: str | None = None
    corp_id: str | None = None
    raw: SkipValidation[dict[str, Any]] = Field(default_factory=dict, exclude=True, repr=False)


_MODELS: dict[str, type[CallbackEvent]] = {
    "suite_ticket": SuiteTicket,
    "create_auth": CreateAuth,
    "change_auth": ChangeAuth,
    "cancel_auth": CancelAuth,
    "reset_permanent_code": ResetPermanentCode,
    "auth_data_permission": AuthDataPermission,
    "expire_remind_data_permission": ExpireRemindDataPermission,
    "share_agent_change": ShareAgentChange,
    "share_chain_change": ShareChainChange,
    "corp_arch_auth": CorpArchAuth,
    "approve_special_auth": ApproveSpecialAuth,
    "cancel_special_auth": CancelSpecialAuth,
    # ⚠️ An InfoType form of change_app_admin is not documented; if WeCom sends one (with
    # AuthCorpId), it is routed the same way.
    "change_app_admin": ScopeChange,
}
"""The typed models, by ``InfoType``."""

_EVENT_MODELS: dict[str, type[CallbackEvent]] = {"change_app_admin": ChangeAppAdmin}
"""Event-style documents (``MsgType=event``) this project acts on, by ``Event``."""


@functools.cache
def _entitlement_models() -> tuple[dict[str, type[CallbackEvent]], dict[str, type[CallbackEvent]]]:
    """The license and order models (:mod:`authsync.wecom.entitlement_events`), by InfoType and by Event.

    Imported on first use: building a dozen models costs callback-ingest's cold start (on WeCom's
    1 s clock) several milliseconds, and the first callback after a cold start is usually a ticket.
    """
    from authsync.wecom import entitlement_events

    return entitlement_events.INFO_MODELS, entitlement_events.EVENT_MODELS


def parse_event(message: bytes, *, suite_id: str | None = None) -> CallbackEvent | GenericEvent:
    """Parse a decrypted callback document into its typed event.

    ``suite_id`` is the suite the document was addressed to (the callback URL's, or the queue
    message's): an Event-style document (``change_app_admin``) names no suite itself.

    Raises :class:`safexml.XmlError` for malformed XML and :class:`MalformedEventError`
    for a known InfoType with missing or invalid fields. The error text names fields
    only, never their values.
    """
    fields = safexml.parse(message, max_bytes=MAX_MESSAGE_BYTES)
    info_type = fields.get("InfoType")
    model: type[CallbackEvent] | None = None
    document = fields
    if isinstance(info_type, str) and info_type.strip():
        model = _MODELS.get(info_type.strip()) or _entitlement_models()[0].get(info_type.strip())
        if model is None and "AuthCorpId" in fields and "AuthType" in fields:
            model = AuthDataPermission
    elif info_type is None and _text(fields.get("MsgType")) == "event":
        event = _text(fields.get("Event"))
        model = _EVENT_MODELS.get(event) or _entitlement_models()[1].get(event)
        if model is not None:
            info_type = event
            document = model.from_event_style(fields, suite_id)
    if model is None:
        return _generic(fields, info_type)
    if model.suite_from_url and suite_id and "SuiteId" not in document:
        document = {**document, "SuiteId": suite_id}
    try:
        return model.model_validate({**document, "raw": fields})
    except ValidationError as exc:
        problems = ", ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors())
        name = info_type.strip()[:128] if isinstance(info_type, str) else model.__name__
        raise MalformedEventError(f"{model.__name__} invalid ({problems})", info_type=name, fields=fields) from None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _generic(fields: dict[str, Any], info_type: object) -> GenericEvent:
    """Routing key per spec §2.2: InfoType if present, else MsgType + Event (+ ChangeType)."""
    if isinstance(info_type, str) and info_type.strip():
        kind = info_type.strip()
    else:
        parts = [fields.get("MsgType"), fields.get("Event"), fields.get("ChangeType")]
        kind = ":".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) or "unknown"
    suite = fields.get("SuiteId")
    corp = fields.get("AuthCorpId")
    return GenericEvent(
        kind=kind[:128],
        suite_id=suite.strip() if isinstance(suite, str) else None,
        corp_id=corp.strip() if isinstance(corp, str) else None,
        raw=fields,
    )
