"""License (接口调用许可) and paid-app order (应用版本付费) callbacks: typed, routed to a re-fetch (issue #12 item 2).

Like every authorization event, each names a corp and goes on that corp's FIFO group; the fetch
pipeline (:mod:`authsync.app.entitlements`) re-reads what WeCom now says rather than trusting the
callback: WeCom's documents are the state, a callback only says *when* to look.

**Licenses** are WeCom's provider-level *system events* (系统事件接收URL, D-95716, D-95805, D-95994):
they carry ``ServiceCorpId`` (the provider) and ``AuthCorpId`` but **no SuiteId**, and are encrypted
with the provider corpid as receiveid. Point the provider's 系统事件接收URL at the callback URL of the
suite whose licenses you track: the event is attributed to that URL's suite (⚠️ a provider with several
suites that buys licenses for more than one gets each event once, for one suite; the suite's
``provider_corpid`` must be configured or the ciphertext's receiveid is refused). Payloads (SKIT's
``LicensePaySuccessEvent``, ``LicenseRefundEvent``, ``LicenseAutoActivateEvent``, ``UnlicensedNotifyEvent``):

* ``license_pay_success``: ``OrderId``, ``BuyerUserId`` (the provider's member who ordered).
* ``license_refund``: ``OrderId``, ``OrderStatus`` (1 refunded, 2 refund refused).
* ``auto_activate``: ``Scene`` and repeated ``AccountList`` entries (``ActiveCode``, ``Type``,
  ``ExpireTime``, ``UserId``, ``PreviousStatus``, ``PreviousActiveCode``). ⚠️ SKIT marks ``AuthCorpId``
  nullable: without it the event cannot be routed and is kept as malformed.
* ``unlicensed_notify``: **Event-style** (``ToUserName`` = the corp, ``Event``, ``AgentID``), encrypted
  for the corp, like ``change_app_admin``: a member used the app without an active license account.

**Orders** (D-91929..91933, D-99353) come to the suite's 指令回调 URL with ``SuiteId``, ``PaidCorpId``
(the buying corp), ``InfoType``, ``TimeStamp``: ``open_order`` (+ ``OrderId``, ``OperatorId``),
``change_order`` (+ ``OldOrderId``, ``NewOrderId``: the provider changed the price, the new id is the
order from now on), ``pay_for_app_success``, ``refund`` (+ ``OrderId``), ``cancel_order`` (⚠️ fields
assumed like ``refund``; only MudWechat handles it), ``change_editon`` (sic: WeCom's spelling; no
order id, the edition is in ``get_auth_info``'s ``edition_info``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from authsync.wecom.event_base import AuthEvent, CallbackEvent

__all__ = [
    "EVENT_MODELS",
    "INFO_MODELS",
    "AutoActivate",
    "CancelOrder",
    "ChangeEdition",
    "ChangeOrder",
    "LicenseEvent",
    "LicensePaySuccess",
    "LicenseRefund",
    "OpenOrder",
    "OrderEvent",
    "PayForAppSuccess",
    "Refund",
    "UnlicensedNotify",
]

ORDER_ID_MAX = 64
"""WeCom's order ids are at most 32 characters (D-91929); a little room, never unbounded."""


class LicenseEvent(AuthEvent):
    """A license change of one corp: re-fetch its license state (and ``order_id``'s license order, if any)."""

    suite_from_url: ClassVar[bool] = True

    auth_corp_id: str = Field(alias="AuthCorpId", min_length=1, max_length=128)
    service_corp_id: str | None = Field(default=None, alias="ServiceCorpId", max_length=128)

    @property
    def order_id(self) -> str | None:
        """The license order the event is about, if it names one."""
        return None


class LicensePaySuccess(LicenseEvent):
    """``license_pay_success``: the provider paid a license order for the corp."""

    paid_order_id: str = Field(alias="OrderId", min_length=1, max_length=ORDER_ID_MAX)
    buyer_user_id: str | None = Field(default=None, alias="BuyerUserId", max_length=128)

    @property
    def order_id(self) -> str | None:
        return self.paid_order_id


class LicenseRefund(LicensePaySuccess):
    """``license_refund``: a license order's refund was decided (``OrderStatus`` 1 refunded, 2 refused)."""

    order_status: int | None = Field(default=None, alias="OrderStatus")


class AutoActivate(LicenseEvent):
    """``auto_activate``: WeCom activated license accounts for members by itself (``Scene``)."""

    scene: int | None = Field(default=None, alias="Scene")


class UnlicensedNotify(LicenseEvent):
    """``unlicensed_notify`` (Event-style): a member used the app (``AgentID``) without a license account."""

    agent_id: str | None = Field(default=None, alias="AgentID", max_length=32)


class OrderEvent(AuthEvent):
    """A paid-app order event of the buying corp (``PaidCorpId``): re-fetch the order it names."""

    auth_corp_id: str = Field(
        validation_alias=AliasChoices("PaidCorpId", "AuthCorpId"), alias="PaidCorpId", min_length=1, max_length=128
    )

    @property
    def order_id(self) -> str | None:
        """The order to fetch now (``change_order``: the new one)."""
        return None

    @property
    def replaces(self) -> str | None:
        """The order this one replaces (``change_order``'s old id)."""
        return None


class _OneOrder(OrderEvent):
    event_order_id: str = Field(alias="OrderId", min_length=1, max_length=ORDER_ID_MAX)

    @property
    def order_id(self) -> str | None:
        return self.event_order_id


class OpenOrder(_OneOrder):
    """``open_order``: the corp placed an order (``OperatorId`` placed it)."""

    operator_id: str | None = Field(default=None, alias="OperatorId", max_length=128)


class PayForAppSuccess(_OneOrder):
    """``pay_for_app_success``: the corp paid the order."""


class Refund(_OneOrder):
    """``refund``: the order was refunded."""


class CancelOrder(_OneOrder):
    """``cancel_order``: the order was cancelled (⚠️ fields assumed like ``refund``)."""


class ChangeOrder(OrderEvent):
    """``change_order``: the provider changed the price; ``NewOrderId`` replaces ``OldOrderId``."""

    old_order_id: str = Field(alias="OldOrderId", min_length=1, max_length=ORDER_ID_MAX)
    new_order_id: str = Field(alias="NewOrderId", min_length=1, max_length=ORDER_ID_MAX)

    @property
    def order_id(self) -> str | None:
        return self.new_order_id

    @property
    def replaces(self) -> str | None:
        return self.old_order_id


class ChangeEdition(OrderEvent):
    """``change_editon`` (sic): the corp's paid edition changed; it is read from ``get_auth_info``."""


INFO_MODELS: dict[str, type[CallbackEvent]] = {
    "license_pay_success": LicensePaySuccess,
    "license_refund": LicenseRefund,
    "auto_activate": AutoActivate,
    "open_order": OpenOrder,
    "change_order": ChangeOrder,
    "pay_for_app_success": PayForAppSuccess,
    "refund": Refund,
    "cancel_order": CancelOrder,
    "change_editon": ChangeEdition,
    # ⚠️ The correctly spelled form is not documented; if WeCom ever fixes the typo, it routes the same.
    "change_edition": ChangeEdition,
}
"""Typed license and order models, by ``InfoType``."""

EVENT_MODELS: dict[str, type[CallbackEvent]] = {"unlicensed_notify": UnlicensedNotify}
"""Event-style documents (``MsgType=event``), by ``Event``."""
