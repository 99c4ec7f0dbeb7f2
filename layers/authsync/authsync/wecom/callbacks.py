"""指令回调 payloads: the outer envelope and the decrypted events (spec §1.2, §2).

The envelope is ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``; only ``Encrypt`` is
signed, so the other two are hints. The decrypted document is parsed into a typed
model for the InfoTypes this project acts on; every other InfoType, and Event-style
XML (``MsgType=event``), becomes a :class:`GenericEvent` that is acknowledged and
logged, never a failure (spec §2.2). Auth codes and tickets are ``SecretStr`` so a
model's ``repr`` never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, SkipValidation, ValidationError

from authsync.wecom import safexml

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_BYTES",
    "AuthDataPermission",
    "AuthEvent",
    "CallbackEvent",
    "CancelAuth",
    "ChangeAuth",
    "CreateAuth",
    "Envelope",
    "ExpireRemindDataPermission",
    "GenericEvent",
    "MalformedEventError",
    "ResetPermanentCode",
    "SuiteTicket",
    "parse_envelope",
    "parse_event",
]

MAX_BODY_BYTES = 64 * 1024
"""Largest POST body accepted. Real 指令回调 envelopes are well under 4 KiB."""

MAX_MESSAGE_BYTES = 48 * 1024
"""Largest decrypted document parsed (the ciphertext of a 64 KiB body is ~48 KiB)."""


class MalformedEventError(Exception):
    """The decrypted document is valid XML but not a well-formed callback (missing/invalid fields)."""

    reason = "malformed_event"


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


class CallbackEvent(BaseModel):
    """Fields common to every 指令回调 InfoType. ``raw`` keeps the whole decrypted document."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    queued: ClassVar[bool] = False
    """Whether this event goes on the authorization FIFO queue."""

    suite_id: str = Field(alias="SuiteId", min_length=1, max_length=128)
    info_type: str = Field(alias="InfoType", min_length=1, max_length=128)
    timestamp: int = Field(alias="TimeStamp", ge=0)
    raw: SkipValidation[dict[str, Any]] = Field(default_factory=dict, exclude=True, repr=False)
    """The whole decrypted document as parsed (values may be secret: never log it)."""

    @property
    def corp_id(self) -> str | None:
        """The authorizing corp, when the event names one."""
        return None


class SuiteTicket(CallbackEvent):
    """``suite_ticket``: pushed every 10 minutes, valid 30 (spec §2)."""

    suite_ticket: SecretStr = Field(alias="SuiteTicket", min_length=1, max_length=512)


class AuthEvent(CallbackEvent):
    """An authorization event: it goes on the FIFO queue for the fetch pipeline."""

    queued: ClassVar[bool] = True

    auth_corp_id: str | None = Field(default=None, alias="AuthCorpId", max_length=128)

    @property
    def corp_id(self) -> str | None:
        return self.auth_corp_id or None


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
}

KNOWN_INFO_TYPES = frozenset(_MODELS)


def parse_event(message: bytes) -> CallbackEvent | GenericEvent:
    """Parse a decrypted callback document into its typed event.

    Raises :class:`safexml.XmlError` for malformed XML and :class:`MalformedEventError`
    for a known InfoType with missing or invalid fields. The error text names fields
    only, never their values.
    """
    fields = safexml.parse(message, max_bytes=MAX_MESSAGE_BYTES)
    info_type = fields.get("InfoType")
    model: type[CallbackEvent] | None = None
    if isinstance(info_type, str) and info_type.strip():
        model = _MODELS.get(info_type.strip())
        if model is None and "AuthCorpId" in fields and "AuthType" in fields:
            model = AuthDataPermission
    if model is None:
        return _generic(fields, info_type)
    try:
        return model.model_validate({**fields, "raw": fields})
    except ValidationError as exc:
        problems = ", ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors())
        raise MalformedEventError(f"{model.__name__} invalid ({problems})") from None


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
