"""What the pipeline stored, held against what the emulator (WeCom) says is true, per corp.

Used by ``make run`` (:mod:`authsync_dev.demo`) and ``make chaos`` (``bench/chaos.py``). A corp
is read the way the provider's services read it -- through the query route -- and its
permanent code from the credential store; each difference is one line naming the field,
never a value that is a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests

from authsync.aws.credentials import SecretNames, secret_names
from authsync.aws.tickets import TicketStore
from authsync_dev.local_api import signed

if TYPE_CHECKING:
    from authsync_dev.stack import LocalStack

__all__ = ["Truth"]


@dataclass(frozen=True)
class Truth:
    """Reads a running :class:`LocalStack` and its emulator."""

    stack: LocalStack

    @cached_property
    def names(self) -> SecretNames:
        """Read from the deployment once (every corp's check asks for it)."""
        environment = self.stack.deployment.function_environment("AuthInfoFunction")
        return SecretNames(environment["SUITE_SECRET_PREFIX"], environment["CORP_SECRET_PREFIX"])

    def view(self, suite_id: str, corp_id: str) -> dict[str, Any] | None:
        """The query route's answer (``None`` for 404)."""
        url = self.stack.query_url(suite_id, corp_id)
        response = requests.get(url, headers=signed("GET", url), timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def credential_footprint(self) -> dict[str, Any]:
        """Where credentials live: the store in use, the secrets per suite, per provider (its token) and per
        corp, the vault's items."""
        environment = self.stack.deployment.function_environment("AuthInfoFunction")
        secrets = self.stack.client("secretsmanager")
        table = self.stack.deployment.physical["CorpVaultTable"]
        pages = self.stack.client("dynamodb").get_paginator("scan").paginate(TableName=table, Select="COUNT")
        shared = list(secret_names(secrets, self.names.suite_prefix))
        providers = sum(1 for name in shared if name.endswith("/provider-token"))
        return {
            "store": environment["CORP_CREDENTIAL_STORE"],
            "suite_secrets": len(shared) - providers,
            "provider_secrets": providers,
            "corp_secrets": sum(1 for _ in secret_names(secrets, self.names.corp_prefix)),
            "vault_items": sum(page["Count"] for page in pages),
        }

    def ticket_divergences(self) -> list[str]:
        names = self.names
        tickets = TicketStore(self.stack.client("secretsmanager"), names.ticket)
        problems = []
        for suite in self.stack.suites:
            stored = tickets.load(suite.suite_id)
            if stored is None or stored.ticket != self.stack.emulator.ticket(suite.suite_id):
                problems.append(f"{suite.suite_id}: stored suite_ticket is not WeCom's newest")
        return problems

    def stored_code(self, suite_id: str, corp_id: str) -> str | None:
        secret = self.stack.credential(self.names.permanent_code(suite_id, corp_id))
        return None if secret is None else secret.get("permanent_code")

    def corp_divergences(self, suite_id: str, corp_id: str, label: str | None = None) -> list[str]:
        """Every way the stored state of one install differs from WeCom's (empty: converged)."""
        who = label or f"{suite_id}/{corp_id}"
        wecom = self.stack.emulator
        authorization = wecom.authorization(suite_id, corp_id)
        view = self.view(suite_id, corp_id)
        names = self.names
        if not authorization.active:
            problems = []
            if view is not None and view.get("status") != "cancelled":
                problems.append(f"{who}: WeCom says cancelled, stored status {view.get('status')}")
            for name in (names.permanent_code(suite_id, corp_id), names.corp_token(suite_id, corp_id)):
                if self.stack.credential(name) is not None:
                    problems.append(f"{who}: credentials kept after cancel_auth")
            return problems
        if view is None:
            return [f"{who}: installed at WeCom, missing from the query route"]
        truth = wecom.corp(corp_id)
        verification = view.get("verification") or {}
        code_ok = self.stored_code(suite_id, corp_id) == authorization.permanent_code
        checks = [
            (view.get("status") == "active", f"status {view.get('status')}"),
            ((view.get("corp") or {}).get("corp_name") == truth.corp_name, "corp_name differs"),
            (verification.get("verified") is truth.verified, "verified differs"),
            (verification.get("customer_cap") == (None if truth.verified else 100), "customer cap wrong"),
            (code_ok, "stored permanent code is not WeCom's"),
        ]
        problems = [f"{who}: {message}" for ok, message in checks if not ok]
        expected = sorted((e.edition, e.status) for e in authorization.chat_editions)
        got = sorted((e["edition"], e["status"]) for e in (view.get("chatdata") or {}).get("editions", []))
        if got != expected:
            problems.append(f"{who}: chatdata editions {got} != WeCom's {expected}")
        shared = {(a.shared_from.corpid, a.shared_from.share_type) for a in authorization.agents if a.shared_from}
        stored_shared = {
            (s.get("corpid"), s.get("share_type")) for s in (a.get("shared_from") for a in view.get("agents", [])) if s
        }
        if shared != stored_shared:
            problems.append(f"{who}: 上下游 sharing {sorted(stored_shared)} != WeCom's {sorted(shared)}")
        return problems + self._entitlement_divergences(suite_id, corp_id, who, view)

    def _entitlement_divergences(self, suite_id: str, corp_id: str, who: str, view: dict[str, Any]) -> list[str]:
        """The paid edition, the license section and the app orders against the emulator's books."""
        wecom = self.stack.emulator
        authorization = wecom.authorization(suite_id, corp_id)
        problems = []
        edition = authorization.paid_editions[0].edition_id if authorization.paid_editions else None
        if (view.get("edition") or {}).get("edition_id") != edition:
            problems.append(f"{who}: edition {(view.get('edition') or {}).get('edition_id')} != WeCom's {edition}")
        book = wecom.state.entitlements
        accounts = len(book.accounts(corp_id))
        license_view = view.get("license")
        if license_view is None:
            if accounts:
                problems.append(f"{who}: {accounts} license account(s) at WeCom, no license section stored")
        else:
            if license_view["active"]["total"] != accounts:
                problems.append(f"{who}: {license_view['active']['total']} active accounts != WeCom's {accounts}")
            if license_view["license_status"] != book.license_status(suite_id, corp_id):
                problems.append(f"{who}: license_status differs from WeCom's")
        orders = [o for o in book.app_orders.values() if (o.suite_id, o.paid_corpid) == (suite_id, corp_id)]
        stored = (view.get("orders") or {}).get("orders", 0)
        if stored != len(orders):
            problems.append(f"{who}: {stored} app order(s) stored != WeCom's {len(orders)}")
        return problems
