"""The bookkeeping on a corp's entitlements: placing, paying, changing and ending orders, activating accounts.

Callers hold the emulator's state lock. A move WeCom would not allow (paying a cancelled
order, refunding an unpaid one, activating more accounts than were bought) is a ValueError,
so a scenario that makes no sense fails at the admin API (400) instead of producing a state
WeCom could never be in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from authsync_dev.emulator.entitlements import (
    ACCOUNT_BASE,
    ACCOUNT_EXTERNAL,
    CANCELLED,
    HELD_STATUSES,
    PAID,
    REFUND_REFUSED,
    REFUNDED,
    UNPAID,
    ActiveAccount,
    AppOrder,
    Entitlements,
    LicenseOrder,
    new_id,
)
from authsync_dev.emulator.errors import NotFoundError
from authsync_dev.emulator.model import DAY

__all__ = ["LICENSE_TRIAL_DAYS", "EntitlementBook"]

LICENSE_TRIAL_DAYS = 30
"""⚠️ The license trial's length is not documented; 30 days, like the 数据与智能专区 trial."""
MONTH_DAYS = 30
"""⚠️ An account lives ``months`` x 30 days from its activation (WeCom counts calendar months)."""
BASE_ACCOUNT_YEAR_PRICE = 5_000
EXTERNAL_ACCOUNT_YEAR_PRICE = 10_000
"""⚠️ Illustrative prices in 分 per account-year for an order placed without a ``price``."""


class EntitlementBook:
    """Every order and entitlement the emulator knows, keyed for the APIs' look-ups."""

    def __init__(self) -> None:
        self.app_orders: dict[str, AppOrder] = {}
        self.license_orders: dict[str, LicenseOrder] = {}
        self.records: dict[tuple[str, str], Entitlements] = {}

    # -- per (suite, corp) ---------------------------------------------------------------

    def record(self, suite_id: str, corpid: str, now: float) -> Entitlements:
        """The corp's entitlements under the suite, created at its first install: its license trial starts
        then and lasts LICENSE_TRIAL_DAYS (⚠️ a re-install keeps the first trial, as WeCom keeps orders)."""
        key = (suite_id, corpid)
        if key not in self.records:
            start = int(now)
            self.records[key] = Entitlements(suite_id, corpid, (start, start + LICENSE_TRIAL_DAYS * DAY - 1))
        return self.records[key]

    def license_status(self, suite_id: str, corpid: str) -> int:
        """⚠️ 1 once any license order for the corp is paid (and not refunded), else 0 (trial)."""
        return int(any(o.order_status in HELD_STATUSES for o in self._license_orders_of(suite_id, corpid)))

    def accounts(self, corpid: str) -> list[ActiveAccount]:
        """The corp's activated accounts under every suite, oldest first (a stable order to page)."""
        every = [a for r in self.records.values() if r.corpid == corpid for a in r.accounts.values()]
        return sorted(every, key=lambda a: (a.active_time, a.userid, a.type))

    def summary(self, suite_id: str, corpid: str) -> dict[str, Any]:
        """For ``GET /admin/state``: orders and accounts, no codes."""
        record = self.records.get((suite_id, corpid))
        return {
            "license_status": self.license_status(suite_id, corpid),
            "license_trial": list(record.trial) if record else None,
            "license_orders": [o.summary() for o in self._license_orders_of(suite_id, corpid)],
            "active_accounts": len(record.accounts) if record else 0,
            "app_orders": [
                o.summary() for o in self.app_orders.values() if (o.suite_id, o.paid_corpid) == (suite_id, corpid)
            ],
        }

    def _license_orders_of(self, suite_id: str, corpid: str) -> list[LicenseOrder]:
        return [o for o in self.license_orders.values() if (o.suite_id, o.corpid) == (suite_id, corpid)]

    # -- paid-app orders -----------------------------------------------------------------

    def app_order(self, suite_id: str, corpid: str, orderid: str) -> AppOrder:
        order = self.app_orders.get(orderid)
        if order is None or (order.suite_id, order.paid_corpid) != (suite_id, corpid):
            raise NotFoundError(f"no order {orderid} of corp {corpid} for suite {suite_id}")
        return order

    def open_app_order(
        self,
        suite_id: str,
        corpid: str,
        *,
        edition_id: str,
        edition_name: str,
        user_count: int,
        days: int,
        price: int,
        operator_id: str,
        now: float,
    ) -> AppOrder:
        if user_count < 1 or days < 1 or price < 0:
            raise ValueError("user_count and days must be positive, price not negative")
        order = AppOrder(
            new_id("T"), suite_id, corpid, edition_id, edition_name, price, user_count, days, int(now), operator_id
        )
        self.app_orders[order.orderid] = order
        return order

    def pay_app_order(self, order: AppOrder, now: float) -> None:
        """Paid now: its period starts now and lasts ``order_period`` days."""
        _require(order.order_status, UNPAID, "only an unpaid order can be paid")
        order.order_status, order.paid_time = PAID, int(now)
        order.begin_time, order.end_time = int(now), int(now) + order.order_period * DAY - 1

    def change_app_order(self, order: AppOrder, price: int | None, now: float) -> AppOrder:
        """The provider changed an unpaid order (改单): a new order replaces it; the old keeps its status."""
        _require(order.order_status, UNPAID, "only an unpaid order can be changed")
        if order.replaced_by is not None:
            raise ValueError(f"order {order.orderid} was already replaced by {order.replaced_by}")
        new = replace(order, orderid=new_id("T"), order_time=int(now), price=order.price if price is None else price)
        order.replaced_by = new.orderid
        self.app_orders[new.orderid] = new
        return new

    def end_app_order(self, order: AppOrder, status: int) -> None:
        """Cancel (2) an unpaid order, or refund (5) a paid one; ⚠️ a refund leaves edition_info as it is."""
        if status == CANCELLED:
            _require(order.order_status, UNPAID, "only an unpaid order can be cancelled")
        else:
            _require(order.order_status, PAID, "only a paid order can be refunded")
        if order.replaced_by is not None:
            raise ValueError(f"order {order.orderid} was replaced by {order.replaced_by}")
        order.order_status = status

    # -- licenses ------------------------------------------------------------------------

    def license_order_of(self, suite_id: str, corpid: str, order_id: str) -> LicenseOrder:
        order = self.license_orders.get(order_id)
        if order is None or (order.suite_id, order.corpid) != (suite_id, corpid):
            raise NotFoundError(f"no license order {order_id} of corp {corpid} for suite {suite_id}")
        return order

    def buy_licenses(
        self,
        suite_id: str,
        corpid: str,
        *,
        base_count: int,
        external_contact_count: int,
        months: int,
        price: int | None,
        buyer_userid: str,
        now: float,
    ) -> LicenseOrder:
        """The provider bought (and paid) accounts for the corp."""
        if base_count < 0 or external_contact_count < 0 or base_count + external_contact_count == 0 or months < 1:
            raise ValueError("buy at least one account for at least one month")
        if price is None:
            year = base_count * BASE_ACCOUNT_YEAR_PRICE + external_contact_count * EXTERNAL_ACCOUNT_YEAR_PRICE
            price = year * months // 12
        order = LicenseOrder(
            new_id("OI"), suite_id, corpid, base_count, external_contact_count, months, price, int(now), buyer_userid
        )
        order.order_status, order.pay_time = PAID, int(now)
        self.license_orders[order.order_id] = order
        return order

    def activate(
        self, suite_id: str, corpid: str, userids: list[str], account_type: int, now: float
    ) -> list[ActiveAccount]:
        """Activate one account of ``account_type`` per member from the corp's paid orders with room left.

        A member who already holds one gets a new code (its previous status and code are kept
        for auto_activate). ValueError when the paid orders have no room for all of them.
        """
        if account_type not in (ACCOUNT_BASE, ACCOUNT_EXTERNAL):
            raise ValueError("type must be 1 (基础帐号) or 2 (互通帐号)")
        if not userids or len(set(userids)) != len(userids):
            raise ValueError("userids must name each member once")
        record = self.record(suite_id, corpid, now)
        paid = [o for o in self._license_orders_of(suite_id, corpid) if o.order_status in HELD_STATUSES]
        if sum(o.room(account_type) for o in paid) < len(userids):
            raise ValueError(
                f"the corp's paid license orders have no room for {len(userids)} more type-{account_type} accounts"
            )
        activated = []
        for userid in userids:
            order = next(o for o in paid if o.room(account_type) > 0)
            order.codes_used[account_type] = order.codes_used.get(account_type, 0) + 1
            previous = record.accounts.get((userid, account_type))
            account = ActiveAccount(
                userid,
                account_type,
                new_id("LA"),
                order.order_id,
                int(now),
                int(now) + order.months * MONTH_DAYS * DAY,
            )
            if previous is not None:
                account.previous_status = 3 if previous.expire_time <= now else 2
                account.previous_code = previous.active_code
            record.accounts[(userid, account_type)] = account
            activated.append(account)
        return activated

    def refund_licenses(self, order: LicenseOrder, *, approved: bool) -> None:
        """The refund is approved (5: ⚠️ the order's accounts are deactivated) or refused (6: nothing changes)."""
        _require(order.order_status, PAID, "only a paid license order can be refunded")
        order.order_status = REFUNDED if approved else REFUND_REFUSED
        if approved:
            record = self.records.get((order.suite_id, order.corpid))
            if record is not None:
                record.accounts = {k: a for k, a in record.accounts.items() if a.order_id != order.order_id}


def _require(status: int, expected: int, message: str) -> None:
    if status != expected:
        raise ValueError(f"{message} (status is {status})")
