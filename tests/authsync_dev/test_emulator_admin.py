"""The JSON admin API over HTTP: the same control surface as the Python API."""

from __future__ import annotations

from typing import Any

import pytest
import requests


@pytest.fixture
def admin(pushing):
    def _admin(method: str, name: str, body: dict[str, Any] | None = None, **query: str) -> tuple[int, Any]:
        response = requests.request(method, f"{pushing.admin_url}/{name}", json=body, params=query, timeout=10)
        assert response.headers["Content-Type"].startswith("application/json")
        return response.status_code, response.json()

    return _admin


def test_full_flow_over_the_admin_api(pushing, receiver, admin):
    status, suite = admin("POST", "suites", {"kind": "customized"})
    assert status == 200
    assert suite["suite_id"].startswith("dk")
    assert admin("GET", "suite", suite_id=suite["suite_id"])[1] == suite
    status, corp = admin("POST", "corps", {"corpid": "wwadmincorp0000001", "corp_name": "管理", "verified": False})
    assert status == 200
    assert corp["corp_type"] == "unverified"

    status, ticket = admin("POST", "push/suite_ticket", {"suite_id": suite["suite_id"]})
    assert status == 200
    assert ticket["delivery"]["delivered"] is True
    token = requests.post(
        f"{pushing.api_url}/service/get_suite_token",
        json={
            "suite_id": suite["suite_id"],
            "suite_secret": suite["suite_secret"],
            "suite_ticket": ticket["suite_ticket"],
        },
        timeout=5,
    ).json()["suite_access_token"]

    status, created = admin(
        "POST",
        "push/create_auth",
        {
            "suite_id": suite["suite_id"],
            "corpid": corp["corpid"],
            "state": "admin",
            "chat_editions": [{"edition": 1, "status": 1, "auth_scope": {"userid_list": ["u1"]}}],
        },
    )
    assert status == 200
    assert created["delivery"]["event"] == "create_auth"
    exchanged = requests.post(
        f"{pushing.api_url}/service/v2/get_permanent_code",
        params={"suite_access_token": token},
        json={"auth_code": created["auth_code"]},
        timeout=5,
    ).json()
    auth = admin("GET", "authorization", suite_id=suite["suite_id"], corpid=corp["corpid"])[1]
    assert auth["permanent_code"] == exchanged["permanent_code"]
    assert auth["chat_editions"][0]["auth_scope"]["userid_list"] == ["u1"]
    assert auth["members"] == [{"userid": "u1", "edition_list": [1]}]

    status, verified = admin("POST", "mutate/verify_corp", {"corpid": corp["corpid"]})
    assert status == 200
    assert [d["event"] for d in verified["deliveries"]] == ["change_auth"]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("mutate/chatdata_status", {"edition": 1, "status": 3}),
        ("mutate/chatdata_scope", {"edition": 1, "userid_list": ["u2"]}),
        ("mutate/chatdata_editions", {"editions": [{"edition": 2, "status": 5}]}),
        ("mutate/visibility", {"allow_user": ["u9"]}),
        ("mutate/auth_mode", {"auth_mode": 1}),
        ("mutate/members", {"members": [{"userid": "u2", "edition_list": [2]}], "push": True}),
        ("push/change_auth", {}),
        ("push/auth_data_permission", {"auth_type": "data_zone_chat"}),
        ("push/expire_remind_data_permission", {}),
        ("push/change_app_admin", {"agent_id": 7}),
        ("push/share_agent_change", {}),
        ("push/share_chain_change", {}),
        ("push/corp_arch_auth", {}),
        ("push/approve_special_auth", {}),
        ("push/cancel_special_auth", {"auth_type": "customer_acquisition"}),
        ("push/reset_permanent_code", {}),
        ("push/cancel_auth", {}),
    ]
    for name, body in steps:
        status, answer = admin("POST", name, {"suite_id": suite["suite_id"], "corpid": corp["corpid"], **body})
        assert status == 200, (name, answer)
        assert answer["delivery"]["delivered"] is True, name

    log = admin("GET", "delivery_log")[1]
    assert len(log) == len(receiver.requests) == 20
    assert {a["outcome"] for a in log} == {"success"}
    assert len(admin("GET", "deliveries")[1]) == 20
    state = admin("GET", "state")[1]
    assert state["authorizations"][0]["active"] is False
    assert "suite_secret" not in str(state)
    assert admin("DELETE", "deliveries") == (200, {})
    assert admin("GET", "delivery_log")[1] == []


def test_entitlement_routes_over_the_admin_api(pushing, receiver, admin):
    suite = admin("POST", "suites", {})[1]
    ids = {"suite_id": suite["suite_id"], "corpid": admin("POST", "corps", {})[1]["corpid"]}
    assert admin("POST", "push/create_auth", {**ids, "push": False})[0] == 200

    def scenario(name: str, events: list[str], **body: Any) -> dict[str, Any]:
        status, answer = admin("POST", f"mutate/{name}", {**ids, **body})
        assert status == 200, (name, answer)
        assert [d["event"] for d in answer["deliveries"]] == events, name
        assert all(d["delivered"] for d in answer["deliveries"]), name
        return dict(answer)

    def push(name: str, **body: Any) -> None:
        status, answer = admin("POST", f"push/{name}", {**ids, **body})
        assert status == 200, (name, answer)
        assert answer["delivery"]["event"] == name
        assert answer["delivery"]["delivered"] is True, name

    unpaid = scenario("buy_edition", ["open_order"], pay=False)["order_id"]
    push("open_order", order_id=unpaid)
    changed = scenario("change_order", ["change_order"], order_id=unpaid, price=100)["order_id"]
    push("change_order", old_order_id=unpaid, new_order_id=changed)
    scenario("pay_order", ["pay_for_app_success", "change_editon"], order_id=changed)
    push("pay_for_app_success", order_id=changed)
    push("change_editon")
    scenario("refund_order", ["refund"], order_id=changed)
    push("refund", order_id=changed)
    bought = scenario("buy_edition", ["open_order", "pay_for_app_success", "change_editon"], edition_name="旗舰版")
    cancelled = scenario("buy_edition", ["open_order"], pay=False)["order_id"]
    scenario("cancel_order", ["cancel_order"], order_id=cancelled)
    push("cancel_order", order_id=cancelled)
    licenses = scenario("buy_licenses", ["license_pay_success"], base_count=2, months=1)["order_id"]
    push("license_pay_success", order_id=licenses)
    scenario("activate_accounts", [], userids=["zhangsan"])
    scenario("activate_accounts", ["auto_activate"], userids=["lisi"], type=1, auto=True)
    push("auto_activate", userids=["zhangsan"])
    scenario("refund_licenses", ["license_refund"], order_id=licenses, approved=False)
    push("license_refund", order_id=licenses)
    push("unlicensed_notify", agent_id=3)
    assert len(receiver.requests) == 23

    auth = admin("GET", "authorization", **ids)[1]
    assert [e["edition_name"] for e in auth["paid_editions"]] == ["旗舰版"]
    (state,) = admin("GET", "state")[1]["authorizations"]
    entitlements = state["entitlements"]
    assert [o["order_status"] for o in entitlements["app_orders"]] == [0, 5, 1, 2]
    assert entitlements["app_orders"][2]["orderid"] == bought["order_id"]
    assert (entitlements["license_status"], entitlements["active_accounts"]) == (1, 2)
    assert [o["order_status"] for o in entitlements["license_orders"]] == [6]
    assert pushing.provider.secret not in str(admin("GET", "state")[1])

    body = {"corpid": pushing.provider.corpid, "provider_secret": pushing.provider.secret}
    requests.post(f"{pushing.api_url}/service/get_provider_token", json=body, timeout=5)
    assert admin("POST", "tokens/invalidate", {"kind": "provider"})[1] == {"invalidated": 1}

    for name, body, status in [
        ("mutate/refund_order", {"order_id": cancelled}, 400),
        ("mutate/activate_accounts", {"userids": ["wangwu"]}, 400),
        ("push/open_order", {"order_id": "T-nope"}, 404),
        ("push/license_refund", {"order_id": "OI-nope"}, 404),
        ("mutate/buy_licenses", {"months": 0}, 400),
    ]:
        code, answer = admin("POST", name, {**ids, **body})
        assert code == status, (name, answer)
        assert "error" in answer


def test_faults_clock_and_counters_over_the_admin_api(pushing, admin):
    status, fault = admin("POST", "faults", {"endpoint": "service/get_suite_token", "kind": -1, "times": 1})
    assert status == 200
    assert fault["kind"] == "-1"
    assert admin("GET", "faults")[1][0]["fault_id"] == fault["fault_id"]
    answer = requests.post(f"{pushing.api_url}/service/get_suite_token", json={}, timeout=5).json()
    assert answer["errcode"] == -1
    counters = admin("GET", "counters")[1]
    assert counters["service/get_suite_token"]["faults"] == {"-1": 1}
    assert admin("DELETE", "faults")[1] == {"removed": 1}
    assert admin("DELETE", "counters") == (200, {})
    assert admin("GET", "counters")[1] == {}

    before = admin("GET", "clock")[1]
    assert before["frozen"] is True
    assert admin("POST", "clock/advance", {"seconds": 7200})[1]["now"] == before["now"] + 7200

    assert admin("POST", "rate_limits", {"endpoint": "*", "max_calls": 1})[1] == {
        "*": {"max_calls": 1, "per_seconds": 60.0}
    }
    assert admin("DELETE", "rate_limits") == (200, {})
    assert admin("POST", "tokens/invalidate", {})[1] == {"invalidated": 0}


def test_ticket_pusher_and_push_all(pushing, receiver, admin):
    admin("POST", "suites", {})
    admin("POST", "suites", {})
    status, answer = admin("POST", "push/suite_ticket", {})
    assert status == 200
    assert len(answer["results"]) == 2
    assert admin("POST", "ticket_pusher", {"interval": 30})[1] == {"interval": 30}
    assert admin("GET", "state")[1]["ticket_interval"] == 30.0
    assert admin("POST", "ticket_pusher", {"interval": None})[1] == {"interval": None}
    assert admin("GET", "state")[1]["ticket_interval"] is None


@pytest.mark.parametrize(
    ("method", "name", "body", "status"),
    [
        ("GET", "nope", None, 404),
        ("GET", "suites", None, 405),
        ("POST", "suites", {"bogus": 1}, 400),
        ("POST", "push/suite_ticket", {"suite_id": "wwmissing"}, 404),
        ("POST", "push/change_auth", {"suite_id": "x"}, 400),
        ("POST", "faults", {"endpoint": "*", "kind": "boom"}, 400),
        ("GET", "suite", None, 400),
    ],
)
def test_admin_errors(admin, method, name, body, status):
    code, answer = admin(method, name, body)
    assert code == status
    assert "error" in answer


def test_admin_rejects_non_object_bodies(pushing):
    response = requests.post(f"{pushing.admin_url}/suites", data=b"[1]", timeout=5)
    assert response.status_code == 400
    response = requests.post(f"{pushing.admin_url}/suites", data=b"{", timeout=5)
    assert response.status_code == 400
    assert requests.get(f"{pushing.admin_url}/health", timeout=5).json() == {"ok": True}
