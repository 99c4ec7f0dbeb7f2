"""What a corp has paid for: the provider, its 接口调用许可 (licenses) and 应用版本付费 (paid-app) orders.

WeCom keeps, per provider and authorizing corp, the license orders the provider bought for
the corp, the accounts activated from them and the corp's license trial (D-95652, D-95716),
and per suite the corp's paid-edition orders (D-91909, D-91929..91933). The emulator books
all of it per (suite, corp) -- a push needs a suite's callback URL -- and answers the
provider-level license APIs from every suite of the corp. Orders outlive an uninstall (WeCom
keeps them); what a corp *has* is derived from its orders, never stored twice.

Plain dataclasses and their JSON shapes; the bookkeeping on them is
:mod:`authsync_dev.emulator.entitlement_book`, the APIs :mod:`authsync_dev.emulator.entitlement_api`,
the pushes and scenarios :mod:`authsync_dev.emulator.entitlement_pushes`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authsync_dev.emulator.model import PaidEdition

if TYPE_CHECKING:
    from authsync_dev.emulator.model import Authorization

__all__ = [
    "ACCOUNT_BASE",
    "ACCOUNT_EXTERNAL",
    "DEFAULT_PROVIDER_CORPID",
    "HELD_STATUSES",
    "ActiveAccount",
    "AppOrder",
    "Entitlements",
    "LicenseOrder",
    "Provider",
    "apply_edition",
    "new_id",
]

DEFAULT_PROVIDER_CORPID = "wwprovider00000001"
"""The fake test suite's provider corpid (README "Tests, samples and benchmarks")."""
PLATFORM_SHARE = 0.1
"""⚠️ Illustrative: the platform's share of a paid-app order; the provider gets the rest."""

# Order statuses, the same numbering for both kinds of order (D-91909 order_status, D-95648 order_status).
UNPAID, PAID, CANCELLED, EXPIRED, REFUNDING, REFUNDED, REFUND_REFUSED = range(7)
HELD_STATUSES = frozenset({PAID, REFUNDING, REFUND_REFUSED})
"""⚠️ Orders whose money the provider still has: they license the corp (license_status 1)."""

ACCOUNT_BASE, ACCOUNT_EXTERNAL = 1, 2
"""list_actived_account ``type``: 1 基础帐号, 2 互通帐号."""


def new_id(prefix: str) -> str:
    """WeCom-looking 30-character ids (``T…`` paid-app orders, ``OI…`` license orders, ``LA…`` active codes;
    ⚠️ the exact formats are not documented)."""
    return prefix + secrets.token_hex(15).upper()[: 30 - len(prefix)]


@dataclass
class Provider:
    """The one service provider the emulator plays: its corpid and ProviderSecret (service/get_provider_token)."""

    corpid: str
    secret: str = field(repr=False)

    def open_corpid(self, corpid: str) -> str:
        """The corp's id as this provider sees it (corpid_to_opencorpid, D-95327): stable per (provider, corp).

        ⚠️ The format is not documented; ``wp`` + 30 hex digits of a hash here.
        """
        return "wp" + hashlib.sha256(f"{self.corpid}:{corpid}".encode()).hexdigest()[:30]


@dataclass
class AppOrder:
    """A paid-edition order (应用版本付费), as ``service/get_order`` returns it (D-91909)."""

    orderid: str
    suite_id: str
    paid_corpid: str
    edition_id: str
    edition_name: str
    price: int
    """分."""
    user_count: int
    order_period: int
    """Days bought."""
    order_time: int
    operator_id: str
    order_type: int = 0
    """0 普通, 1 扩容, 2 续期, 3 版本变更."""
    order_status: int = UNPAID
    paid_time: int = 0
    begin_time: int = 0
    end_time: int = 0
    order_from: int = 0
    """0 the corp ordered (⚠️ 1 provider, 2 dealer on its behalf: not modelled)."""
    replaced_by: str | None = None
    """The order a change_order replaced this one with (its own status stays as it was)."""

    def to_json(self) -> dict[str, Any]:
        """The flat body of service/get_order, without errcode (SKIT CgibinServiceGetOrderResponse)."""
        platform = int(self.price * PLATFORM_SHARE)
        return {
            "orderid": self.orderid,
            "order_status": self.order_status,
            "order_type": self.order_type,
            "paid_corpid": self.paid_corpid,
            "operator_id": self.operator_id,
            "suiteid": self.suite_id,
            "edition_id": self.edition_id,
            "edition_name": self.edition_name,
            "price": self.price,
            "user_count": self.user_count,
            "order_period": self.order_period,
            "order_time": self.order_time,
            "paid_time": self.paid_time,
            "begin_time": self.begin_time,
            "end_time": self.end_time,
            "order_from": self.order_from,
            "operator_corpid": self.paid_corpid,  # ⚠️ the ordering corp: the paying one when order_from is 0
            "service_share_amount": self.price - platform,  # ⚠️ illustrative split
            "platform_share_amount": platform,
            "dealer_share_amount": 0,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "orderid": self.orderid,
            "order_status": self.order_status,
            "edition_id": self.edition_id,
            "price": self.price,
            "replaced_by": self.replaced_by,
        }


@dataclass
class LicenseOrder:
    """A license order (购买帐号) the provider placed for a corp, as ``license/get_order`` returns it (D-95648)."""

    order_id: str
    suite_id: str
    corpid: str
    base_count: int
    external_contact_count: int
    months: int
    price: int
    """分."""
    create_time: int
    buyer_userid: str
    """⚠️ The provider member who placed the order (license_pay_success ``BuyerUserId``)."""
    order_type: int = 1
    """1 购买帐号, 2 续期帐号 (renewals are not modelled)."""
    order_status: int = UNPAID
    pay_time: int = 0
    codes_used: dict[int, int] = field(default_factory=dict)
    """Active codes spent per account type (a code replaced by a newer one stays spent)."""

    def room(self, account_type: int) -> int:
        bought = self.base_count if account_type == ACCOUNT_BASE else self.external_contact_count
        return bought - self.codes_used.get(account_type, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "order_type": self.order_type,
            "order_status": self.order_status,
            "corpid": self.corpid,
            "price": self.price,
            "account_count": {"base_count": self.base_count, "external_contact_count": self.external_contact_count},
            "account_duration": {"months": self.months},
            "create_time": self.create_time,
            "pay_time": self.pay_time,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "order_status": self.order_status,
            "base_count": self.base_count,
            "external_contact_count": self.external_contact_count,
            "months": self.months,
        }


@dataclass
class ActiveAccount:
    """A member's activated account (one per member and type; D-95716 list_actived_account)."""

    userid: str
    type: int
    active_code: str
    order_id: str
    active_time: int
    expire_time: int
    previous_status: int = 1
    """auto_activate ``PreviousStatus``: 1 未激活, 2 已激活 (≤ 7 days left), 3 已激活已过期 (⚠️ per SKIT)."""
    previous_code: str | None = None
    """The code this activation replaced (``PreviousActiveCode``), if the member had one."""

    def to_json(self) -> dict[str, Any]:
        return {
            "userid": self.userid,
            "type": self.type,
            "active_time": self.active_time,
            "expire_time": self.expire_time,
        }

    def pushed(self) -> dict[str, str | int]:
        """One ``<AccountList>`` of auto_activate (D-95994)."""
        entry: dict[str, str | int] = {
            "ActiveCode": self.active_code,
            "Type": self.type,
            "ExpireTime": self.expire_time,
            "UserId": self.userid,
            "PreviousStatus": self.previous_status,
        }
        if self.previous_code is not None:
            entry["PreviousActiveCode"] = self.previous_code
        return entry


@dataclass
class Entitlements:
    """One corp's license trial and activated accounts under one suite; orders live in the book."""

    suite_id: str
    corpid: str
    trial: tuple[int, int]
    accounts: dict[tuple[str, int], ActiveAccount] = field(default_factory=dict)
    """(userid, type) -> the account: a member may hold a 基础帐号 and a 互通帐号."""


def apply_edition(auth: Authorization, order: AppOrder) -> None:
    """A paid order's edition becomes every agent's ``edition_info`` entry (app_status 3 付费使用中)."""
    auth.paid_editions = [
        PaidEdition(
            agentid=agent.agentid,
            edition_id=order.edition_id,
            edition_name=order.edition_name,
            app_status=3,
            user_limit=order.user_count,
            expired_time=order.end_time,
        )
        for agent in auth.agents
    ]
