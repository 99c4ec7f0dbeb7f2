"""WeCom's provider and entitlement APIs: the provider token, 接口调用许可, paid-app orders, open corpids.

Endpoint functions in the shape of :class:`authsync_dev.emulator.api.WeComApi`'s methods
(``(api, call) -> document``), listed in its endpoint table; faults, rate limits, counters
and the ``errcode``/``errmsg`` wrapping are the table's, as for every other endpoint.

Tokens: ``service/get_provider_token`` takes the provider's corpid and ProviderSecret (D-91200)
and, like get_suite_token, hands the same token back while it lives (⚠️ assumed). The
``license/*`` APIs and ``service/corpid_to_opencorpid`` take ``?provider_access_token=``:
missing or unknown is 40014, expired or ended early 42001. ``service/get_order`` takes the
suite token, like the other ``service/*`` APIs.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from authsync_dev.emulator.errors import TokenEndedEarly, WeComError
from authsync_dev.emulator.params import page, text

if TYPE_CHECKING:
    from authsync_dev.emulator.api import Call, WeComApi
    from authsync_dev.emulator.model import IssuedToken
    from authsync_dev.emulator.state import EmulatorState

__all__ = [
    "corpid_to_opencorpid",
    "get_app_license_info",
    "get_provider_token",
    "license_get_order",
    "list_actived_account",
    "provider_token",
    "service_get_order",
]

MAX_ACCOUNT_LIST_LIMIT = 1000
DEFAULT_ACCOUNT_LIST_LIMIT = 500


def provider_token(state: EmulatorState, query: dict[str, str], now: float) -> IssuedToken:
    """The live provider token ``?provider_access_token=`` names: 40014 when missing or not one, 42001 when over."""
    value = query.get("provider_access_token", "")
    token = state.tokens.get(value) if value else None
    if token is None or token.kind != "provider" or token.revoked:
        raise WeComError(40014)
    if not token.live(now):
        raise TokenEndedEarly(42001) if token.invalidated else WeComError(42001)
    return token


def get_provider_token(api: WeComApi, call: Call) -> dict[str, Any]:
    """Another provider's corpid is 40013, a wrong secret 40001 (⚠️ 41002/41004 when either is missing)."""
    provider = api.state.provider
    if text(call.body, "corpid", 41002) != provider.corpid:
        raise WeComError(40013)
    if not secrets.compare_digest(text(call.body, "provider_secret", 41004).encode(), provider.secret.encode()):
        raise WeComError(40001)
    token = api.state.issue_token("", provider.corpid, fresh=call.fresh_token, provider=True)
    return {"provider_access_token": token.value, "expires_in": token.expires_in(call.now)}


def _installed(api: WeComApi, call: Call, suite_ids: list[str] | None = None) -> str:
    """The body's ``corpid``, live-installed (any of ``suite_ids``, or any suite): 40013 otherwise (⚠️).

    A cancelled install keeps its orders, but its license state is no longer answered.
    """
    corpid = text(call.body, "corpid", 41002)
    state = api.state
    if not any(
        auth.active and (suite_ids is None or suite_id in suite_ids)
        for (suite_id, auth_corpid), auth in state.authorizations.items()
        if auth_corpid == corpid
    ):
        raise WeComError(40013)
    call.corpid = corpid
    return corpid


def get_app_license_info(api: WeComApi, call: Call) -> dict[str, Any]:
    """The corp's license status under a suite (D-95844; ``trail_info`` sic). ``appid`` is ignored.

    ⚠️ license_status 0 = not licensed (trial), 1 = a paid license order exists; license_check_time
    (when WeCom starts refusing unlicensed members) is the trial's end.
    """
    suite_id = text(call.body, "suite_id", 40083)
    api.state.suite(suite_id)
    corpid = _installed(api, call, [suite_id])
    book = api.state.entitlements
    start, end = book.record(suite_id, corpid, call.now).trial
    return {
        "license_status": book.license_status(suite_id, corpid),
        "trail_info": {"start_time": start, "end_time": end},
        "license_check_time": end,
    }


def list_actived_account(api: WeComApi, call: Call) -> dict[str, Any]:
    """The corp's activated accounts, paged (``limit`` 1..1000, default 500; opaque cursors; has_more 1/0)."""
    corpid = _installed(api, call)
    accounts = page(
        api.state.entitlements.accounts(corpid),
        call.body,
        default=DEFAULT_ACCOUNT_LIST_LIMIT,
        maximum=MAX_ACCOUNT_LIST_LIMIT,
    )
    return {
        "next_cursor": accounts.next_cursor,
        "has_more": int(accounts.has_more),
        "account_list": [a.to_json() for a in accounts.items],
    }


def license_get_order(api: WeComApi, call: Call) -> dict[str, Any]:
    """One license order (D-95648); an unknown one is 40058 (⚠️). Answered after an uninstall too."""
    order = api.state.entitlements.license_orders.get(text(call.body, "order_id", 40058))
    if order is None:
        raise WeComError(40058, "order_id not found")
    call.corpid = order.corpid
    return {"order": order.to_json()}


def service_get_order(api: WeComApi, call: Call) -> dict[str, Any]:
    """One paid-app order of the token's suite, flat (D-91909); unknown or another suite's is 40058 (⚠️)."""
    assert call.token is not None  # a suite-token endpoint
    order = api.state.entitlements.app_orders.get(text(call.body, "orderid", 40058))
    if order is None or order.suite_id != call.token.suite_id:
        raise WeComError(40058, "orderid not found")
    call.corpid = order.paid_corpid
    document = order.to_json()
    auth = api.state.authorizations.get((order.suite_id, order.paid_corpid))
    if auth is not None and auth.dealer is not None:
        document["dealer_corp_info"] = {"corpid": auth.dealer.corpid, "corp_name": auth.dealer.corp_name}
    return document


def corpid_to_opencorpid(api: WeComApi, call: Call) -> dict[str, Any]:
    """The corp's id as this provider sees it (D-95327): stable per (provider, corp); unknown corp 40013."""
    corpid = text(call.body, "corpid", 41002)
    if corpid not in api.state.corps:
        raise WeComError(40013)
    call.corpid = corpid
    return {"open_corpid": api.state.provider.open_corpid(corpid)}
