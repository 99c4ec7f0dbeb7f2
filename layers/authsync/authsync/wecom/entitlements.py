"""License (接口调用许可) and paid-app order (应用版本付费) APIs, and what is derived from their documents.

The calls go through :meth:`WeComClient.call` (retries, errcode typing, redaction). Three
credentials meet here (spec §8): ``service/get_provider_token`` (:meth:`WeComClient.get_provider_token`)
turns the provider corpid and ProviderSecret into a ``provider_access_token``, which every ``license/*`` call and
``service/corpid_to_opencorpid`` need; ``service/get_order`` takes the suite token (SKIT,
D-91909). The answers stay documents, stored verbatim (as ``get_auth_info``'s are), so a field
WeCom adds later is kept and diffed; the summaries below are their typed readings.

Numbers whose meaning is not confirmed (⚠️) are kept as WeCom sent them: ``license_status``
(the emulator: 0 not licensed / trial, 1 licensed), license ``order_status`` (0 unpaid, 1 paid,
2 cancelled, 3 expired unpaid, 4 refund requested, 5 refunded, 6 refund refused, per SKIT's
comments), app ``order_status`` (0 unpaid, 1 paid, 2 cancelled, 3 expired, 4 refund requested,
5 refunded, 6 refund refused) and the account ``type`` (1 基础帐号, 2 互通帐号).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from authsync.wecom.errors import WeComProtocolError
from authsync.wecom.responses import follow_pages

if TYPE_CHECKING:
    from authsync.wecom.client import WeComClient

__all__ = [
    "ACCOUNT_TYPES",
    "PAID",
    "EntitlementsApi",
    "edition_of",
    "license_summary",
    "order_summary",
]

PROVIDER_TOKEN_PARAM = "provider_access_token"  # noqa: S105 - a parameter name, not a secret
SUITE_TOKEN_PARAM = "suite_access_token"  # noqa: S105 - a parameter name, not a secret
MAX_ACCOUNT_PAGE = 1000
MAX_ACCOUNT_PAGES = 1000
"""1000 pages of 1000 accounts: far beyond any corp's seat count, and never an endless loop."""

ACCOUNT_TYPES: dict[int, str] = {1: "base", 2: "external_contact"}
"""License account types (1 基础帐号, 2 互通帐号), named as the summaries count them."""

PAID = 1
"""``order_status`` of a paid order, for both order kinds."""


class EntitlementsApi:
    """The license, order and ID-model endpoints over a :class:`WeComClient` (anything with ``call``)."""

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    def get_app_license_info(self, provider_token: str, corp_id: str, suite_id: str) -> dict[str, Any]:
        """``license/get_app_license_info``: ``license_status``, ``trail_info`` (sic) of the corp's install."""
        return self._client.call(
            "license/get_app_license_info",
            params={PROVIDER_TOKEN_PARAM: provider_token},
            body={"corpid": corp_id, "suite_id": suite_id},
            secrets=(provider_token,),
        )

    def active_accounts(self, provider_token: str, corp_id: str) -> Iterator[dict[str, Any]]:
        """Every active license account (``license/list_actived_account``, following ``next_cursor``)."""
        endpoint = "license/list_actived_account"

        def page(cursor: str | None) -> dict[str, Any]:
            body: dict[str, Any] = {"corpid": corp_id, "limit": MAX_ACCOUNT_PAGE}
            if cursor:
                body["cursor"] = cursor
            return self._client.call(
                endpoint, params={PROVIDER_TOKEN_PARAM: provider_token}, body=body, secrets=(provider_token,)
            )

        return follow_pages(page, endpoint, "account_list", max_pages=MAX_ACCOUNT_PAGES)

    def get_license_order(self, provider_token: str, order_id: str) -> dict[str, Any]:
        """``license/get_order``: the license order (its ``order`` object)."""
        endpoint = "license/get_order"
        document = self._client.call(
            endpoint,
            params={PROVIDER_TOKEN_PARAM: provider_token},
            body={"order_id": order_id},
            secrets=(provider_token,),
        )
        order = document.get("order")
        if not isinstance(order, dict):
            raise WeComProtocolError(endpoint, None, "answer has no order object")
        return order

    def get_app_order(self, suite_token: str, order_id: str) -> dict[str, Any]:
        """``service/get_order``: one paid-app order (a flat document)."""
        document: dict[str, Any] = self._client.call(
            "service/get_order",
            params={SUITE_TOKEN_PARAM: suite_token},
            body={"orderid": order_id},
            secrets=(suite_token,),
        )
        if not isinstance(document.get("orderid"), str):
            raise WeComProtocolError("service/get_order", None, "answer has no orderid")
        return document

    def open_corpid(self, provider_token: str, corp_id: str) -> str:
        """``service/corpid_to_opencorpid``: the corp's id as this provider sees it after ID encryption."""
        endpoint = "service/corpid_to_opencorpid"
        document = self._client.call(
            endpoint, params={PROVIDER_TOKEN_PARAM: provider_token}, body={"corpid": corp_id}, secrets=(provider_token,)
        )
        value = document.get("open_corpid")
        if not isinstance(value, str) or not value:
            raise WeComProtocolError(endpoint, None, "answer has no open_corpid")
        return value


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def license_summary(document: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """The license section's derived state: status, trial end, active and purchased accounts per type.

    ``purchased`` counts the accounts of *paid* license orders this corp's snapshot knows (those a
    callback named); ``active`` the accounts WeCom listed as activated when read. An account that
    expires sends no callback, so ``next_expire_time`` (the first expiry after ``now``, the read's
    time) says until when ``active`` holds; reconcile re-reads the section once it has passed.
    """
    active = {name: 0 for name in ACCOUNT_TYPES.values()}
    expiries: list[int] = []
    for account in document.get("account_list") or []:
        name = ACCOUNT_TYPES.get(_int(account.get("type")) or 0)
        if name is not None:
            active[name] += 1
        expires = _int(account.get("expire_time"))
        if expires and (now is None or expires > now):  # ⚠️ whether WeCom lists expired accounts is unknown
            expiries.append(expires)
    purchased = {name: 0 for name in ACCOUNT_TYPES.values()}
    orders = document.get("orders") or {}
    for order in orders.values():
        if _int(order.get("order_status")) != PAID:
            continue
        counts = order.get("account_count") or {}
        purchased["base"] += _int(counts.get("base_count")) or 0
        purchased["external_contact"] += _int(counts.get("external_contact_count")) or 0
    trial = document.get("trail_info") or {}
    return {
        "license_status": _int(document.get("license_status")),
        "trial_end_time": _int(trial.get("end_time")) if isinstance(trial, Mapping) else None,
        "active": {**active, "total": sum(active.values())},
        "next_expire_time": min(expiries, default=None),
        "purchased": {**purchased, "total": sum(purchased.values())},
        "orders": len(orders),
    }


ORDER_FIELDS = (
    "orderid",
    "order_status",
    "order_type",
    "edition_id",
    "edition_name",
    "user_count",
    "begin_time",
    "end_time",
)
"""An app order's fields the summary names (the whole order stays in the document)."""


def order_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The orders section's derived state: counts, and the newest order still in force (not replaced).

    "Newest" is by ``order_time`` (then id): a ``change_order`` replaces the old id with the new, so
    the old one is history, not the current order.
    """
    orders: Mapping[str, Mapping[str, Any]] = document.get("orders") or {}
    replaced = set((document.get("replaced") or {}).keys())
    current = [order for order_id, order in orders.items() if order_id not in replaced]
    latest = max(current, key=lambda o: (_int(o.get("order_time")) or 0, str(o.get("orderid"))), default=None)
    return {
        "orders": len(orders),
        "paid": sum(1 for order in current if _int(order.get("order_status")) == PAID),
        "latest": {name: latest.get(name) for name in ORDER_FIELDS} if latest is not None else None,
    }


EDITION_FIELDS = ("agentid", "edition_id", "edition_name", "app_status", "user_limit", "expired_time")


def edition_of(auth_info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The paid edition from ``get_auth_info``'s ``edition_info.agent[]`` (its first agent), or None (free app)."""
    info = auth_info.get("edition_info")
    agents = info.get("agent") if isinstance(info, Mapping) else None
    if not isinstance(agents, list) or not agents or not isinstance(agents[0], Mapping):
        return None
    return {name: agents[0].get(name) for name in EDITION_FIELDS}
