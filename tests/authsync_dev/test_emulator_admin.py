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
