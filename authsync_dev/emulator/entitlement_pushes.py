"""The emulator's entitlement scenarios and pushes: paid-app orders and licenses, with WeCom's payload of each.

Mixed into :class:`authsync_dev.emulator.Emulator`, in two layers like the rest of its control surface:

* **pushes**, one per InfoType and named as WeCom spells it (``open_order``, ``change_order``,
  ``pay_for_app_success``, ``refund``, ``cancel_order``, ``change_editon`` (sic),
  ``license_pay_success``, ``license_refund``, ``auto_activate``, ``unlicensed_notify``): each
  delivers the document for orders or accounts that already exist and changes nothing;
* **scenarios** (``buy_edition``, ``change_app_order``, ``pay_app_order``, ``cancel_app_order``,
  ``refund_app_order``, ``buy_licenses``, ``activate_accounts``, ``refund_licenses``): each changes
  the state and pushes WeCom's sequence for it, each push after the state it announces
  (``push=False``: the change alone).

Order InfoTypes are the suite's 指令回调 documents (``SuiteId``, ``PaidCorpId``, ``InfoType``,
``TimeStamp``, D-91929..91933; ``cancel_order``'s ``OrderId`` ⚠️ assumed like ``refund``'s). License
InfoTypes are provider-level 系统事件 (D-95652, D-95805, D-95994): no ``SuiteId`` but
``ServiceCorpId`` and ``AuthCorpId``. WeCom sends those to the provider's 系统事件接收URL; the
emulator sends them to the suite's callback URL encrypted for the provider corpid (⚠️).
``unlicensed_notify`` is Event-style (D-95716) and encrypted for the corp, like ``change_app_admin``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from authsync_dev.emulator.entitlements import (
    ACCOUNT_BASE,
    CANCELLED,
    REFUND_REFUSED,
    REFUNDED,
    ActiveAccount,
    AppOrder,
    LicenseOrder,
    Provider,
    apply_edition,
)
from authsync_dev.emulator.errors import NotFoundError
from authsync_dev.emulator.pusher import app_event

if TYPE_CHECKING:
    from authsync_dev.emulator.clock import Clock
    from authsync_dev.emulator.emulator import PushResult
    from authsync_dev.emulator.model import Authorization, SuiteRecord
    from authsync_dev.emulator.pusher import Delivery
    from authsync_dev.emulator.state import EmulatorState
    from authsync_dev.wecom import EventValue

__all__ = ["EntitlementPushes", "ScenarioResult"]

EDITION_DAY_PRICE = 100
"""⚠️ Illustrative: an edition order placed without ``price`` costs 1 元 per user per 30 days."""
_REFUND_OUTCOME = {REFUNDED: 1, REFUND_REFUSED: 2}
"""license_refund ``OrderStatus``: 1 退款成功, 2 退款被拒绝."""


class _Emulator(Protocol):
    """What the scenarios use of :class:`authsync_dev.emulator.Emulator`."""

    clock: Clock
    state: EmulatorState

    def authorization(self, suite_id: str, corpid: str) -> Authorization: ...

    def suite(self, suite_id: str) -> SuiteRecord: ...

    def _send(
        self, suite: SuiteRecord, event: str, fields: Mapping[str, EventValue], corpid: str | None
    ) -> Delivery: ...


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario did: the order it placed or changed (if any) and the pushes WeCom sent for it."""

    deliveries: tuple[Delivery, ...]
    order_id: str | None = None

    @property
    def delivered(self) -> bool:
        return all(d.delivered for d in self.deliveries)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"deliveries": [d.to_json() for d in self.deliveries]}
        if self.order_id is not None:
            document["order_id"] = self.order_id
        return document


def _result(delivery: Delivery) -> PushResult:
    from authsync_dev.emulator.emulator import PushResult

    return PushResult(delivery)


def _order_push(emu: _Emulator, event: str, suite_id: str, corpid: str, **extra: str) -> Delivery:
    """A paid-app InfoType document for the suite's 指令回调 URL."""
    fields: dict[str, EventValue] = {
        "SuiteId": suite_id,
        "PaidCorpId": corpid,
        "InfoType": event,
        "TimeStamp": int(emu.clock.now()),
        **extra,
    }
    return emu._send(emu.suite(suite_id), event, fields, corpid)


def _license_push(emu: _Emulator, event: str, suite_id: str, corpid: str, extra: Mapping[str, EventValue]) -> Delivery:
    """A license 系统事件: no SuiteId, so the pusher encrypts it for ServiceCorpId (the provider)."""
    fields: dict[str, EventValue] = {
        "ServiceCorpId": emu.state.provider.corpid,
        "AuthCorpId": corpid,
        "InfoType": event,
        "TimeStamp": int(emu.clock.now()),
        **extra,
    }
    return emu._send(emu.suite(suite_id), event, fields, corpid)


def _open_order(emu: _Emulator, order: AppOrder) -> Delivery:
    extra = {"OrderId": order.orderid, "OperatorId": order.operator_id}
    return _order_push(emu, "open_order", order.suite_id, order.paid_corpid, **extra)


def _change_order(emu: _Emulator, suite_id: str, corpid: str, old_order_id: str, new_order_id: str) -> Delivery:
    extra = {"OldOrderId": old_order_id, "NewOrderId": new_order_id}
    return _order_push(emu, "change_order", suite_id, corpid, **extra)


def _license_pay_success(emu: _Emulator, order: LicenseOrder) -> Delivery:
    extra = {"OrderId": order.order_id, "BuyerUserId": order.buyer_userid}
    return _license_push(emu, "license_pay_success", order.suite_id, order.corpid, extra)


def _license_refund(emu: _Emulator, order: LicenseOrder, order_status: int) -> Delivery:
    extra: dict[str, EventValue] = {"OrderId": order.order_id, "OrderStatus": order_status}
    return _license_push(emu, "license_refund", order.suite_id, order.corpid, extra)


def _auto_activate(
    emu: _Emulator, suite_id: str, corpid: str, accounts: Sequence[ActiveAccount], scene: int
) -> Delivery:
    extra: dict[str, EventValue] = {"Scene": scene, "AccountList": [a.pushed() for a in accounts]}
    return _license_push(emu, "auto_activate", suite_id, corpid, extra)


def _live(emu: _Emulator, suite_id: str, corpid: str) -> Authorization:
    auth = emu.authorization(suite_id, corpid)
    if not auth.active:
        raise ValueError("authorization was cancelled")
    return auth


def _pay(emu: _Emulator, suite_id: str, corpid: str, orderid: str, push: bool) -> list[Delivery]:
    """Pay an order: its edition becomes the install's; pay_for_app_success, then change_editon."""
    with emu.state.lock:
        order = emu.state.entitlements.app_order(suite_id, corpid, orderid)
        auth = _live(emu, suite_id, corpid)
        emu.state.entitlements.pay_app_order(order, emu.clock.now())
        apply_edition(auth, order)
    if not push:
        return []
    return [
        _order_push(emu, "pay_for_app_success", suite_id, corpid, OrderId=orderid),
        _order_push(emu, "change_editon", suite_id, corpid),
    ]


class EntitlementPushes:
    """Mixed into :class:`authsync_dev.emulator.Emulator` (see the module docstring)."""

    # -- the provider ----------------------------------------------------------------------

    @property
    def provider(self: _Emulator) -> Provider:
        """The provider the emulator plays: its corpid and ProviderSecret."""
        return self.state.provider

    def open_corpid(self: _Emulator, corpid: str) -> str:
        """What ``service/corpid_to_opencorpid`` answers for ``corpid``."""
        return self.state.provider.open_corpid(corpid)

    # -- pushes of what exists -------------------------------------------------------------

    def open_order(self: _Emulator, suite_id: str, corpid: str, order_id: str) -> PushResult:
        """The corp placed a paid-app order (D-91929)."""
        return _result(_open_order(self, self.state.entitlements.app_order(suite_id, corpid, order_id)))

    def change_order(self: _Emulator, suite_id: str, corpid: str, old_order_id: str, new_order_id: str) -> PushResult:
        """The provider changed an order: ``NewOrderId`` replaces ``OldOrderId`` (D-91930)."""
        for orderid in (old_order_id, new_order_id):
            self.state.entitlements.app_order(suite_id, corpid, orderid)
        return _result(_change_order(self, suite_id, corpid, old_order_id, new_order_id))

    def pay_for_app_success(self: _Emulator, suite_id: str, corpid: str, order_id: str) -> PushResult:
        """The corp paid (D-91931)."""
        self.state.entitlements.app_order(suite_id, corpid, order_id)
        return _result(_order_push(self, "pay_for_app_success", suite_id, corpid, OrderId=order_id))

    def refund(self: _Emulator, suite_id: str, corpid: str, order_id: str) -> PushResult:
        """An order was refunded (D-91932)."""
        self.state.entitlements.app_order(suite_id, corpid, order_id)
        return _result(_order_push(self, "refund", suite_id, corpid, OrderId=order_id))

    def cancel_order(self: _Emulator, suite_id: str, corpid: str, order_id: str) -> PushResult:
        """An unpaid order was cancelled (⚠️ payload assumed like refund's)."""
        self.state.entitlements.app_order(suite_id, corpid, order_id)
        return _result(_order_push(self, "cancel_order", suite_id, corpid, OrderId=order_id))

    def change_editon(self: _Emulator, suite_id: str, corpid: str) -> PushResult:
        """The install's edition changed (D-91933; ``editon`` sic): no order id, re-fetch get_auth_info."""
        self.authorization(suite_id, corpid)
        return _result(_order_push(self, "change_editon", suite_id, corpid))

    def license_pay_success(self: _Emulator, suite_id: str, corpid: str, order_id: str) -> PushResult:
        """The provider paid a license order for the corp (D-95652)."""
        return _result(_license_pay_success(self, self.state.entitlements.license_order_of(suite_id, corpid, order_id)))

    def license_refund(
        self: _Emulator, suite_id: str, corpid: str, order_id: str, *, order_status: int | None = None
    ) -> PushResult:
        """A license refund was decided (D-95805): ``OrderStatus`` 1 退款成功, 2 退款被拒绝 (default: the order's)."""
        order = self.state.entitlements.license_order_of(suite_id, corpid, order_id)
        if order_status is None:
            if order.order_status not in _REFUND_OUTCOME:
                raise ValueError("the order's refund was not decided: pass order_status 1 or 2")
            order_status = _REFUND_OUTCOME[order.order_status]
        return _result(_license_refund(self, order, order_status))

    def auto_activate(
        self: _Emulator, suite_id: str, corpid: str, userids: Sequence[str] | None = None, *, scene: int = 1
    ) -> PushResult:
        """WeCom activated accounts by itself (D-95994): one ``<AccountList>`` per account (default: every one).

        ⚠️ ``Scene`` values are not modelled; 1 by default.
        """
        with self.state.lock:
            self.authorization(suite_id, corpid)
            record = self.state.entitlements.records.get((suite_id, corpid))
            accounts = list(record.accounts.values()) if record else []
            if userids is not None:
                accounts = [a for a in accounts if a.userid in set(userids)]
                missing = set(userids) - {a.userid for a in accounts}
                if missing:
                    raise NotFoundError(f"no active account for {sorted(missing)}")
            if not accounts:
                raise ValueError("the corp has no active accounts")
        return _result(_auto_activate(self, suite_id, corpid, accounts, scene))

    def unlicensed_notify(self: _Emulator, suite_id: str, corpid: str, *, agent_id: int | None = None) -> PushResult:
        """A member without an account used the app (D-95716): Event-style, encrypted for the corp.

        ``AgentID`` defaults to the install's first agent.
        """
        auth = self.authorization(suite_id, corpid)
        if agent_id is None:
            if not auth.agents:
                raise ValueError("the install has no agent: pass agent_id")
            agent_id = auth.agents[0].agentid
        fields = app_event(corpid, "unlicensed_notify", agent_id, self.clock.now())
        return _result(self._send(self.suite(suite_id), "unlicensed_notify", fields, corpid))

    # -- scenarios: paid-app orders --------------------------------------------------------

    def buy_edition(
        self: _Emulator,
        suite_id: str,
        corpid: str,
        *,
        edition_id: str = "emulator-edition-pro",
        edition_name: str = "专业版",
        user_count: int = 100,
        days: int = 365,
        pay: bool = True,
        price: int | None = None,
        operator_id: str | None = None,
        push: bool = True,
    ) -> ScenarioResult:
        """The corp orders an edition (status 0, ``open_order``) and, with ``pay``, pays it (status 1, the
        edition becomes the install's ``edition_info``, ``pay_for_app_success`` then ``change_editon``).

        ``operator_id`` defaults to the installing user (⚠️ who ordered is not modelled otherwise).
        """
        with self.state.lock:
            auth = _live(self, suite_id, corpid)
            order = self.state.entitlements.open_app_order(
                suite_id,
                corpid,
                edition_id=edition_id,
                edition_name=edition_name,
                user_count=user_count,
                days=days,
                price=user_count * EDITION_DAY_PRICE * days // 30 if price is None else price,
                operator_id=operator_id or (auth.auth_user.userid if auth.auth_user else "admin01"),
                now=self.clock.now(),
            )
        deliveries = [_open_order(self, order)] if push else []
        if pay:
            deliveries += _pay(self, suite_id, corpid, order.orderid, push)
        return ScenarioResult(tuple(deliveries), order.orderid)

    def pay_app_order(
        self: _Emulator, suite_id: str, corpid: str, order_id: str, *, push: bool = True
    ) -> ScenarioResult:
        """The corp pays an unpaid order: as ``buy_edition(pay=True)`` after its ``open_order``."""
        return ScenarioResult(tuple(_pay(self, suite_id, corpid, order_id, push)), order_id)

    def change_app_order(
        self: _Emulator, suite_id: str, corpid: str, order_id: str, *, price: int | None = None, push: bool = True
    ) -> ScenarioResult:
        """The provider changes an unpaid order (改单, e.g. its price): a new order id replaces it (``change_order``).

        The old order keeps its status and answers get_order still, marked replaced in the state.
        """
        with self.state.lock:
            book = self.state.entitlements
            new = book.change_app_order(book.app_order(suite_id, corpid, order_id), price, self.clock.now())
        deliveries = (_change_order(self, suite_id, corpid, order_id, new.orderid),) if push else ()
        return ScenarioResult(deliveries, new.orderid)

    def cancel_app_order(
        self: _Emulator, suite_id: str, corpid: str, order_id: str, *, push: bool = True
    ) -> ScenarioResult:
        """An unpaid order is cancelled (status 2, ``cancel_order``)."""
        return _end_order(self, suite_id, corpid, order_id, status=CANCELLED, event="cancel_order", push=push)

    def refund_app_order(
        self: _Emulator, suite_id: str, corpid: str, order_id: str, *, push: bool = True
    ) -> ScenarioResult:
        """A paid order is refunded (status 5, ``refund``); ⚠️ edition_info stays as it was."""
        return _end_order(self, suite_id, corpid, order_id, status=REFUNDED, event="refund", push=push)

    # -- scenarios: licenses ---------------------------------------------------------------

    def buy_licenses(
        self: _Emulator,
        suite_id: str,
        corpid: str,
        *,
        base_count: int = 10,
        external_contact_count: int = 0,
        months: int = 12,
        price: int | None = None,
        buyer_userid: str = "provider_admin",
        push: bool = True,
    ) -> ScenarioResult:
        """The provider buys and pays accounts for the corp (``license_pay_success``); the corp is licensed."""
        with self.state.lock:
            _live(self, suite_id, corpid)
            order = self.state.entitlements.buy_licenses(
                suite_id,
                corpid,
                base_count=base_count,
                external_contact_count=external_contact_count,
                months=months,
                price=price,
                buyer_userid=buyer_userid,
                now=self.clock.now(),
            )
        return ScenarioResult((_license_pay_success(self, order),) if push else (), order.order_id)

    def activate_accounts(
        self: _Emulator,
        suite_id: str,
        corpid: str,
        userids: Sequence[str],
        *,
        type: int = ACCOUNT_BASE,
        auto: bool = False,
        scene: int = 1,
        push: bool = True,
    ) -> ScenarioResult:
        """Activate an account per member from the paid orders; each lives the order's months from now.

        A provider's activation (``active_account``) is silent; with ``auto`` WeCom activated them
        itself and pushes ``auto_activate`` listing exactly these accounts.
        """
        with self.state.lock:
            _live(self, suite_id, corpid)
            accounts: list[ActiveAccount] = self.state.entitlements.activate(
                suite_id, corpid, list(userids), type, self.clock.now()
            )
        return ScenarioResult((_auto_activate(self, suite_id, corpid, accounts, scene),) if auto and push else ())

    def refund_licenses(
        self: _Emulator, suite_id: str, corpid: str, order_id: str, *, approved: bool = True, push: bool = True
    ) -> ScenarioResult:
        """A license refund is approved (status 5, the order's accounts deactivated ⚠️) or refused (status 6);
        ``license_refund`` with OrderStatus 1 or 2."""
        with self.state.lock:
            order = self.state.entitlements.license_order_of(suite_id, corpid, order_id)
            self.state.entitlements.refund_licenses(order, approved=approved)
            outcome = _REFUND_OUTCOME[order.order_status]
        return ScenarioResult((_license_refund(self, order, outcome),) if push else (), order_id)


def _end_order(
    emu: _Emulator, suite_id: str, corpid: str, orderid: str, *, status: int, event: str, push: bool
) -> ScenarioResult:
    with emu.state.lock:
        book = emu.state.entitlements
        book.end_app_order(book.app_order(suite_id, corpid, orderid), status)
    deliveries = (_order_push(emu, event, suite_id, corpid, OrderId=orderid),) if push else ()
    return ScenarioResult(deliveries, orderid)
