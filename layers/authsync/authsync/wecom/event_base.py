"""The base models of decrypted callbacks, shared by :mod:`authsync.wecom.callbacks` (authorization
lifecycle and scope) and :mod:`authsync.wecom.entitlement_events` (licenses and paid-app orders).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

__all__ = ["AuthEvent", "CallbackEvent"]


class CallbackEvent(BaseModel):
    """Fields common to every 指令回调 InfoType. ``raw`` keeps the whole decrypted document."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    queued: ClassVar[bool] = False
    """Whether this event goes on the authorization FIFO queue."""

    suite_from_url: ClassVar[bool] = False
    """A document without ``SuiteId`` (WeCom's provider-level system events) belongs to the suite of the URL."""

    suite_id: str = Field(alias="SuiteId", min_length=1, max_length=128)
    info_type: str = Field(alias="InfoType", min_length=1, max_length=128)
    timestamp: int = Field(alias="TimeStamp", ge=0)
    raw: SkipValidation[dict[str, Any]] = Field(default_factory=dict, exclude=True, repr=False)
    """The whole decrypted document as parsed (values may be secret: never log it)."""

    @property
    def corp_id(self) -> str | None:
        """The authorizing corp, when the event names one."""
        return None

    @classmethod
    def from_event_style(cls, fields: dict[str, Any], suite_id: str | None) -> dict[str, Any]:
        """An Event-style document (``MsgType=event``: ``change_app_admin``, ``unlicensed_notify``; only the
        models registered by ``Event`` are asked) under the names an InfoType model validates: ``Event`` as
        InfoType, ``CreateTime`` as TimeStamp, ``ToUserName`` (the corp) as AuthCorpId, and the suite of the
        URL (``raw`` keeps the originals)."""
        document: dict[str, Any] = {
            "InfoType": fields.get("Event"),
            "TimeStamp": fields.get("CreateTime"),
            "AuthCorpId": fields.get("ToUserName"),
            "AgentID": fields.get("AgentID") or None,
        }
        if suite_id:
            document["SuiteId"] = suite_id
        return document


class AuthEvent(CallbackEvent):
    """An authorization event: it goes on the FIFO queue for the fetch pipeline."""

    queued: ClassVar[bool] = True

    auth_corp_id: str | None = Field(default=None, alias="AuthCorpId", max_length=128)

    @property
    def corp_id(self) -> str | None:
        return self.auth_corp_id or None
