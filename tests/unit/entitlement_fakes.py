"""In-memory fakes of the license/order ports (:class:`authsync.app.ports.Entitlements`, ``ProviderTokens``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from authsync.app.entitlements import EntitlementSync
from authsync.app.sync import AuthorizationSync
from authsync.aws.tokens import ProviderNotConfiguredError
from authsync.wecom.errors import WeComTokenError, error_for
from tests.unit.fakes import CallLog, Fakes, FakeTokens

T = TypeVar("T")


@dataclass
class CorpLicenses:
    """What WeCom knows of one corp's 接口调用许可."""

    license_status: int = 0
    accounts: list[dict[str, Any]] = field(default_factory=list)

    def activate(self, userid: str, account_type: int = 1, at: int = 1_750_000_000) -> None:
        self.accounts.append({"userid": userid, "type": account_type, "active_time": at, "expire_time": at + 86400})


class FakeEntitlementsApi:
    """WeCom's license and order endpoints, by corp and order id; every call is logged."""

    def __init__(self, log: CallLog) -> None:
        self._log = log
        self.licenses: dict[str, CorpLicenses] = {}
        self.license_orders: dict[str, dict[str, Any]] = {}
        self.app_orders: dict[str, dict[str, Any]] = {}
        self.expired_tokens: set[str] = set()

    def _check(self, endpoint: str, token: str) -> None:
        if token in self.expired_tokens:
            raise error_for(endpoint, 42001)

    def get_app_license_info(self, provider_token: str, corp_id: str, suite_id: str) -> dict[str, Any]:
        self._log.add("api.get_app_license_info", corp_id, suite_id)
        self._check("license/get_app_license_info", provider_token)
        corp = self.licenses.setdefault(corp_id, CorpLicenses())
        return {"license_status": corp.license_status, "trail_info": {"start_time": 1, "end_time": 2}}

    def active_accounts(self, provider_token: str, corp_id: str) -> Iterator[dict[str, Any]]:
        self._log.add("api.active_accounts", corp_id)
        self._check("license/list_actived_account", provider_token)
        return iter([dict(a) for a in self.licenses.setdefault(corp_id, CorpLicenses()).accounts])

    def get_license_order(self, provider_token: str, order_id: str) -> dict[str, Any]:
        self._log.add("api.get_license_order", order_id)
        self._check("license/get_order", provider_token)
        return dict(self.license_orders[order_id])

    def get_app_order(self, suite_token: str, order_id: str) -> dict[str, Any]:
        self._log.add("api.get_app_order", order_id)
        return dict(self.app_orders[order_id])

    def open_corpid(self, provider_token: str, corp_id: str) -> str:
        self._log.add("api.open_corpid", corp_id)
        return f"wp{corp_id}"


class FakeProviderTokens(FakeTokens):
    """``ProviderTokens``: :class:`FakeTokens` plus a provider token, renewed once on a token error."""

    def __init__(self, fakes: Fakes, *, configured: bool = True) -> None:
        super().__init__(fakes.wecom, fakes.codes, fakes.log)
        self._log = fakes.log
        self.configured = configured
        self.issued = 0

    def _issue(self) -> str:
        self.issued += 1
        self._log.add("tokens.provider_token")
        return f"provider-token-{self.issued}"

    def with_provider_token(self, suite_id: str, call: Callable[[str], T]) -> T:
        if not self.configured:
            raise ProviderNotConfiguredError(f"suite {suite_id} has no provider_corpid and provider_secret")
        token = f"provider-token-{self.issued}" if self.issued else self._issue()
        try:
            return call(token)
        except WeComTokenError:
            return call(self._issue())


def entitled_sync(fakes: Fakes, api: FakeEntitlementsApi, tokens: FakeProviderTokens) -> AuthorizationSync:
    """auth-info's use case with the entitlement sync wired as ``wiring`` does."""
    return AuthorizationSync(
        client=fakes.wecom,
        tokens=tokens,
        permanent_codes=fakes.codes,
        snapshots=fakes.snapshots,
        chatdata=fakes.chatdata,
        journal=fakes.journal,
        entitlements=EntitlementSync(api=api, tokens=tokens, snapshots=fakes.snapshots, clock=fakes.clock),
        clock=fakes.clock,
    )
