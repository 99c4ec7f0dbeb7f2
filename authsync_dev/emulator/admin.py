"""The JSON admin API under ``/admin/``: the :class:`~authsync_dev.emulator.Emulator` methods over HTTP.

For everything that is not a Python test: the CLI, a local run, a demo, ``curl``.
Requests and answers are JSON; a POST body's keys are the method's keyword
arguments. Errors: 400 (bad JSON or arguments), 404 (unknown route, suite, corp),
405 (wrong method). Responses may contain the emulator's fake secrets (suite config,
AuthCodes, tickets) because a client needs them; nothing here logs them.

Routes (GET unless noted; ``?suite_id=&corpid=`` where a GET needs arguments)::

    health, state, clock, counters, deliveries, delivery_log, faults, rate_limits
    suite?suite_id=            authorization?suite_id=&corpid=
    POST suites, corps
    POST push/{suite_ticket, create_auth, change_auth, cancel_auth, reset_permanent_code,
               auth_data_permission, expire_remind_data_permission, change_app_admin,
               share_agent_change, share_chain_change, corp_arch_auth, approve_special_auth,
               cancel_special_auth,
               open_order, change_order, pay_for_app_success, refund, cancel_order, change_editon,
               license_pay_success, license_refund, auto_activate, unlicensed_notify}
    POST mutate/{verify_corp, chatdata_editions, chatdata_status, chatdata_scope,
                 visibility, auth_mode, members,
                 buy_edition, change_order, pay_order, refund_order, cancel_order,
                 buy_licenses, activate_accounts, refund_licenses}
    POST faults, rate_limits, tokens/invalidate, clock/advance, ticket_pusher
    DELETE faults, rate_limits, counters, deliveries
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from authsync_dev.emulator.errors import NotFoundError
from authsync_dev.httpserver import HttpResponse

if TYPE_CHECKING:
    from authsync_dev.emulator.emulator import Emulator, PushResult
    from authsync_dev.emulator.pusher import Delivery

__all__ = ["AdminApi"]

JSON_TYPE = "application/json; charset=utf-8"

Route = Callable[["Emulator", dict[str, Any]], Any]


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _push(result: PushResult) -> dict[str, Any]:
    return result.to_json()


def _delivery(delivery: Delivery | None) -> dict[str, Any]:
    return {"delivery": delivery.to_json() if delivery else None}


def _suite_ticket(emu: Emulator, a: dict[str, Any]) -> Any:
    if "suite_id" in a:
        return _push(emu.push_suite_ticket(**a))
    return {"results": [_push(r) for r in emu.push_suite_tickets(**a)]}


def _ticket_pusher(emu: Emulator, a: dict[str, Any]) -> Any:
    interval = a.get("interval")
    if interval is None:
        emu.stop_ticket_pusher()
    else:
        emu.start_ticket_pusher(float(interval))
    return {"interval": interval}


def _advance(emu: Emulator, a: dict[str, Any]) -> Any:
    return {"now": emu.advance(float(a["seconds"]))}


def _add_suite(emu: Emulator, a: dict[str, Any]) -> Any:
    return emu.add_suite(**a).config()


def _add_corp(emu: Emulator, a: dict[str, Any]) -> Any:
    corp = emu.add_corp(**a)
    return {**asdict(corp), "corp_type": corp.corp_type}


def _authorization(emu: Emulator, a: dict[str, Any]) -> Any:
    """The install as WeCom holds it, permanent code included (a curl user needs it)."""
    auth = emu.authorization(a["suite_id"], a["corpid"])
    with emu.state.lock:
        document = asdict(auth)
        document["revoked_codes"] = len(auth.revoked_codes)
        document["pending_code"] = auth.pending_code is not None
        document["chat_editions"] = auth.corp_auth_info_json(emu.now())["auth_edition_list"]
        document["members"] = [m.to_json() for m in auth.effective_members()]
    return document


def _set_rate_limit(emu: Emulator, a: dict[str, Any]) -> Any:
    emu.set_rate_limit(**a)
    return emu.limits.limits()


def _clear_rate_limits(emu: Emulator, a: dict[str, Any]) -> Any:
    emu.clear_rate_limits()
    return {}


def _reset_counters(emu: Emulator, a: dict[str, Any]) -> Any:
    emu.reset_counters()
    return {}


def _clear_deliveries(emu: Emulator, a: dict[str, Any]) -> Any:
    emu.pusher.clear()
    return {}


GET: dict[str, Route] = {
    "health": lambda emu, a: {"ok": True},
    "state": lambda emu, a: emu.snapshot(),
    "clock": lambda emu, a: {"now": emu.now(), "frozen": emu.clock.frozen},
    "counters": lambda emu, a: {name: c.to_json() for name, c in emu.counters().items()},
    "deliveries": lambda emu, a: [d.to_json() for d in emu.deliveries()],
    "delivery_log": lambda emu, a: [d.to_json() for d in emu.delivery_log()],
    "faults": lambda emu, a: [f.to_json() for f in emu.faults.list()],
    "rate_limits": lambda emu, a: emu.limits.limits(),
    "suite": lambda emu, a: emu.suite(a["suite_id"]).config(),
    "authorization": _authorization,
}

POST: dict[str, Route] = {
    "suites": _add_suite,
    "corps": _add_corp,
    "push/suite_ticket": _suite_ticket,
    "push/create_auth": lambda emu, a: _push(emu.create_auth(**a)),
    "push/change_auth": lambda emu, a: _push(emu.change_auth(**a)),
    "push/cancel_auth": lambda emu, a: _push(emu.cancel_auth(**a)),
    "push/reset_permanent_code": lambda emu, a: _push(emu.reset_permanent_code(**a)),
    "push/auth_data_permission": lambda emu, a: _push(emu.auth_data_permission(**a)),
    "push/expire_remind_data_permission": lambda emu, a: _push(emu.expire_remind_data_permission(**a)),
    "push/change_app_admin": lambda emu, a: _push(emu.change_app_admin(**a)),
    "push/share_agent_change": lambda emu, a: _push(emu.share_agent_change(**a)),
    "push/share_chain_change": lambda emu, a: _push(emu.share_agent_change(**a, chain=True)),
    "push/corp_arch_auth": lambda emu, a: _push(emu.corp_arch_auth(**a)),
    "push/approve_special_auth": lambda emu, a: _push(emu.approve_special_auth(**a)),
    "push/cancel_special_auth": lambda emu, a: _push(emu.cancel_special_auth(**a)),
    "mutate/verify_corp": lambda emu, a: {"deliveries": [d.to_json() for d in emu.verify_corp(**a)]},
    "mutate/chatdata_editions": lambda emu, a: _delivery(emu.set_chatdata_editions(**a)),
    "mutate/chatdata_status": lambda emu, a: _delivery(emu.set_chatdata_status(**a)),
    "mutate/chatdata_scope": lambda emu, a: _delivery(emu.set_chatdata_scope(**a)),
    "mutate/visibility": lambda emu, a: _delivery(emu.set_visibility(**a)),
    "mutate/auth_mode": lambda emu, a: _delivery(emu.set_auth_mode(**a)),
    "mutate/members": lambda emu, a: _delivery(emu.set_members(**a)),
    "push/open_order": lambda emu, a: _push(emu.open_order(**a)),
    "push/change_order": lambda emu, a: _push(emu.change_order(**a)),
    "push/pay_for_app_success": lambda emu, a: _push(emu.pay_for_app_success(**a)),
    "push/refund": lambda emu, a: _push(emu.refund(**a)),
    "push/cancel_order": lambda emu, a: _push(emu.cancel_order(**a)),
    "push/change_editon": lambda emu, a: _push(emu.change_editon(**a)),
    "push/license_pay_success": lambda emu, a: _push(emu.license_pay_success(**a)),
    "push/license_refund": lambda emu, a: _push(emu.license_refund(**a)),
    "push/auto_activate": lambda emu, a: _push(emu.auto_activate(**a)),
    "push/unlicensed_notify": lambda emu, a: _push(emu.unlicensed_notify(**a)),
    "mutate/buy_edition": lambda emu, a: emu.buy_edition(**a).to_json(),
    "mutate/change_order": lambda emu, a: emu.change_app_order(**a).to_json(),
    "mutate/pay_order": lambda emu, a: emu.pay_app_order(**a).to_json(),
    "mutate/refund_order": lambda emu, a: emu.refund_app_order(**a).to_json(),
    "mutate/cancel_order": lambda emu, a: emu.cancel_app_order(**a).to_json(),
    "mutate/buy_licenses": lambda emu, a: emu.buy_licenses(**a).to_json(),
    "mutate/activate_accounts": lambda emu, a: emu.activate_accounts(**a).to_json(),
    "mutate/refund_licenses": lambda emu, a: emu.refund_licenses(**a).to_json(),
    "faults": lambda emu, a: emu.inject_fault(**a).to_json(),
    "rate_limits": _set_rate_limit,
    "tokens/invalidate": lambda emu, a: {"invalidated": emu.invalidate_tokens(**a)},
    "clock/advance": _advance,
    "ticket_pusher": _ticket_pusher,
}

DELETE: dict[str, Route] = {
    "faults": lambda emu, a: {"removed": emu.clear_faults(a.get("endpoint"))},
    "rate_limits": _clear_rate_limits,
    "counters": _reset_counters,
    "deliveries": _clear_deliveries,
}

_TABLES = {"GET": GET, "POST": POST, "DELETE": DELETE}


class AdminApi:
    """Routes ``/admin/<name>`` to the emulator; see the module docstring for the list."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> HttpResponse:
        name = path.removeprefix("/admin").strip("/")
        try:
            route = _TABLES.get(method, {}).get(name)
            if route is None:
                if any(name in table for table in _TABLES.values()):
                    raise AdminError(405, f"{method} not allowed on /admin/{name}")
                raise AdminError(404, f"no admin route /admin/{name}")
            arguments = self._arguments(query, body) if method != "GET" else dict(query)
            result = route(self._emulator, arguments)
        except AdminError as exc:
            return _json({"error": exc.message}, exc.status)
        except NotFoundError as exc:
            return _json({"error": str(exc)}, 404)
        except KeyError as exc:
            return _json({"error": f"missing argument {exc}"}, 400)
        except (TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(result, 200)

    @staticmethod
    def _arguments(query: dict[str, str], body: bytes) -> dict[str, Any]:
        if not body.strip():
            return dict(query)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise AdminError(400, "body must be a JSON object") from None
        if not isinstance(document, dict):
            raise AdminError(400, "body must be a JSON object")
        return {**query, **document}


def _json(document: Any, status: int) -> HttpResponse:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HttpResponse(status, body, JSON_TYPE)
