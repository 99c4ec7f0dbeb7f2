"""Entitlements in the emulator over real HTTP: the provider token, 接口调用许可, paid-app orders, open corpids,
and the encrypted order and license pushes with exactly WeCom's documented fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from authsync.aws.suites import SuiteConfig
from authsync.wecom import safexml
from authsync.wecom.callbacks import parse_envelope
from authsync_dev.emulator import Clock, CorpRecord, Emulator, HttpRequest, NotFoundError, SuiteRecord
from authsync_dev.emulator.entitlements import Provider

DAY = 86_400
PROVIDER_APIS = (
    "license/get_app_license_info",
    "license/list_actived_account",
    "license/get_order",
    "service/corpid_to_opencorpid",
)


def post(wecom: Emulator, path: str, body: dict[str, Any] | None = None, **query: str) -> dict[str, Any]:
    response = requests.post(f"{wecom.api_url}/{path}", params=query, json=body, timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def provider_token(wecom: Emulator) -> str:
    answer = post(
        wecom, "service/get_provider_token", {"corpid": wecom.provider.corpid, "provider_secret": wecom.provider.secret}
    )
    token: str = answer["provider_access_token"]
    return token


def opened(suite: SuiteRecord, request: HttpRequest, receive_id: str) -> dict[str, Any]:
    """Verify and decrypt a push as the provider would; the envelope and the plaintext both name ``receive_id``."""
    query = dict(parse_qsl(request.query_string))
    envelope = parse_envelope(request.body)
    assert envelope.to_user_name == receive_id
    decrypted = suite.crypto().verify_and_decrypt(
        query["msg_signature"], query["timestamp"], query["nonce"], envelope.encrypt, any_receive_id=True
    )
    assert decrypted.receive_id == receive_id
    return safexml.parse(decrypted.message, max_bytes=65_536)


@dataclass
class Installed:
    wecom: Emulator
    suite: SuiteRecord
    corp: CorpRecord
    token: str
    """The provider_access_token."""

    @property
    def ids(self) -> tuple[str, str]:
        return self.suite.suite_id, self.corp.corpid

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return post(self.wecom, path, body, provider_access_token=self.token)


@pytest.fixture
def installed(pushing: Emulator) -> Installed:
    """A suite installed by one corp (silently), and the provider's token."""
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False)
    return Installed(pushing, suite, corp, provider_token(pushing))


def suite_token(wecom: Emulator, suite: SuiteRecord) -> str:
    ticket = wecom.push_suite_ticket(suite.suite_id).suite_ticket
    body = {"suite_id": suite.suite_id, "suite_secret": suite.suite_secret, "suite_ticket": ticket}
    token: str = post(wecom, "service/get_suite_token", body)["suite_access_token"]
    return token


# -- provider credentials ---------------------------------------------------------------------


def test_every_suite_config_names_the_provider_and_validates_as_the_layers_suite_config(wecom):
    suite = wecom.add_suite()
    config = suite.config()
    assert (config["provider_corpid"], config["provider_secret"]) == (wecom.provider.corpid, wecom.provider.secret)
    assert wecom.provider.corpid == "wwprovider00000001"
    stored = SuiteConfig.model_validate({k: v for k, v in config.items() if k != "callback_url"})
    assert stored.provider_secret is not None
    assert stored.provider_secret.get_secret_value() == wecom.provider.secret
    assert wecom.provider.secret not in repr(suite)
    assert wecom.add_suite(provider_corpid="wwprovider00000001").provider_secret == wecom.provider.secret
    with pytest.raises(ValueError, match="one provider"):
        wecom.add_suite(provider_corpid="wwsomeoneelse00001")
    with pytest.raises(ValueError, match="one provider"):
        wecom.add_suite(provider_secret="not-the-secret")


def test_provider_corpid_and_secret_are_the_emulators_own_when_given(clock):
    emulator = Emulator(clock=clock, provider_corpid="wwmyprovider000001", provider_secret="my-secret")
    suite = emulator.add_suite(provider_corpid="wwmyprovider000001")
    assert (suite.provider_corpid, suite.provider_secret) == ("wwmyprovider000001", "my-secret")
    assert emulator.snapshot()["provider_corpid"] == "wwmyprovider000001"


def test_the_provider_token_is_handed_back_while_it_lives(wecom):
    body = {"corpid": wecom.provider.corpid, "provider_secret": wecom.provider.secret}
    first = post(wecom, "service/get_provider_token", body)
    assert set(first) == {"errcode", "errmsg", "provider_access_token", "expires_in"}
    assert (first["errcode"], first["errmsg"], first["expires_in"]) == (0, "ok", 7200)
    wecom.advance(1000)
    again = post(wecom, "service/get_provider_token", body)
    assert (again["provider_access_token"], again["expires_in"]) == (first["provider_access_token"], 6200)
    wecom.advance(6200)
    expired = post(wecom, PROVIDER_APIS[3], {"corpid": "x"}, provider_access_token=first["provider_access_token"])
    assert expired["errcode"] == 42001
    fresh = post(wecom, "service/get_provider_token", body)
    assert fresh["provider_access_token"] != first["provider_access_token"]
    assert fresh["expires_in"] == 7200
    assert wecom.calls("service/get_provider_token") == 3


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"corpid": "wwsomeoneelse00001"}, 40013),
        ({"provider_secret": "wrong"}, 40001),
        ({"corpid": ""}, 41002),
        ({"provider_secret": ""}, 41004),
    ],
)
def test_get_provider_token_errors(wecom, body, errcode):
    answer = post(
        wecom,
        "service/get_provider_token",
        {"corpid": wecom.provider.corpid, "provider_secret": wecom.provider.secret, **body},
    )
    assert answer["errcode"] == errcode
    assert "provider_access_token" not in answer


@pytest.mark.parametrize("path", PROVIDER_APIS)
def test_provider_apis_check_the_provider_token(pushing, path):
    suite = pushing.add_suite()
    corp = pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False)
    suite_access_token = suite_token(pushing, suite)
    body = {"corpid": corp.corpid, "suite_id": suite.suite_id, "order_id": "OI0"}
    assert post(pushing, path, body)["errcode"] == 40014
    assert post(pushing, path, body, provider_access_token="not-a-token")["errcode"] == 40014
    assert post(pushing, path, body, provider_access_token=suite_access_token)["errcode"] == 40014
    token = provider_token(pushing)
    assert post(pushing, path, body, provider_access_token=token)["errcode"] in (0, 40058)
    assert pushing.invalidate_tokens(kind="provider") == 1
    assert post(pushing, path, body, provider_access_token=token)["errcode"] == 42001
    assert provider_token(pushing) != token


def test_a_provider_token_is_neither_a_suite_nor_a_corp_token(installed):
    wecom, token = installed.wecom, installed.token
    assert post(wecom, "service/get_order", {"orderid": "T0"}, suite_access_token=token)["errcode"] == 40082
    assert post(wecom, "chatdata/get_corp_auth_info", {}, access_token=token)["errcode"] == 40014


def test_the_invalidate_token_fault_ends_the_provider_token_too(installed):
    wecom = installed.wecom
    wecom.inject_fault("license/get_order", "invalidate_token", times=1)
    answer = installed.call("license/get_order", {"order_id": "OI0"})
    assert answer["errcode"] == 42001
    assert wecom.counters()["license/get_order"].faults == {"invalidate_token": 1}
    wecom.inject_fault("service/get_provider_token", "invalidate_token", times=1)
    assert provider_token(wecom) != installed.token


# -- 接口调用许可 -------------------------------------------------------------------------------


def test_license_info_trial_then_licensed_then_refunded(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    body = {"corpid": corpid, "suite_id": suite_id, "appid": 1}
    start = int(wecom.now())
    assert installed.call("license/get_app_license_info", body) == {
        "errcode": 0,
        "errmsg": "ok",
        "license_status": 0,
        "trail_info": {"start_time": start, "end_time": start + 30 * DAY - 1},
        "license_check_time": start + 30 * DAY - 1,
    }
    wecom.advance(3600)  # within the provider token's 2 hours
    order = wecom.buy_licenses(suite_id, corpid, base_count=2).order_id
    assert order is not None
    licensed = installed.call("license/get_app_license_info", body)
    assert licensed["license_status"] == 1
    assert licensed["trail_info"]["start_time"] == start  # the trial stays the install's
    wecom.refund_licenses(suite_id, corpid, order)
    assert installed.call("license/get_app_license_info", body)["license_status"] == 0
    refused = wecom.buy_licenses(suite_id, corpid).order_id
    assert refused is not None
    wecom.refund_licenses(suite_id, corpid, refused, approved=False)
    assert installed.call("license/get_app_license_info", body)["license_status"] == 1
    assert wecom.corp_calls(corpid) == {"license/get_app_license_info": 4}


def test_license_info_errors_and_an_uninstall_keeps_the_orders(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    stranger = wecom.add_corp()
    other = wecom.add_suite()
    assert (
        installed.call("license/get_app_license_info", {"corpid": stranger.corpid, "suite_id": suite_id})["errcode"]
        == 40013
    )
    assert (
        installed.call("license/get_app_license_info", {"corpid": corpid, "suite_id": other.suite_id})["errcode"]
        == 40013
    )
    assert (
        installed.call("license/get_app_license_info", {"corpid": corpid, "suite_id": "wwnosuchsuite00001"})["errcode"]
        == 40083
    )
    assert installed.call("license/list_actived_account", {"corpid": stranger.corpid})["errcode"] == 40013

    order = wecom.buy_licenses(suite_id, corpid).order_id
    wecom.activate_accounts(suite_id, corpid, ["zhangsan"])
    wecom.cancel_auth(suite_id, corpid, push=False)
    assert installed.call("license/get_app_license_info", {"corpid": corpid, "suite_id": suite_id})["errcode"] == 40013
    assert installed.call("license/list_actived_account", {"corpid": corpid})["errcode"] == 40013
    assert installed.call("license/get_order", {"order_id": order})["order"]["order_status"] == 1
    (auth,) = wecom.snapshot()["authorizations"]
    assert auth["active"] is False
    assert [o["order_id"] for o in auth["entitlements"]["license_orders"]] == [order]
    assert auth["entitlements"]["active_accounts"] == 1


def test_active_accounts_are_paged_with_opaque_cursors(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    wecom.buy_licenses(suite_id, corpid, base_count=7, external_contact_count=2, months=3)
    expected: list[dict[str, Any]] = []
    for n in range(7):
        wecom.advance(60)
        wecom.activate_accounts(suite_id, corpid, [f"user{n}"])
        expected.append({"userid": f"user{n}", "type": 1, "active_time": int(wecom.now())})
    wecom.advance(60)
    wecom.activate_accounts(suite_id, corpid, ["user0", "user9"], type=2)
    expected += [{"userid": u, "type": 2, "active_time": int(wecom.now())} for u in ("user0", "user9")]
    for entry in expected:
        entry["expire_time"] = entry["active_time"] + 3 * 30 * DAY

    for limit, sizes in ((4, [4, 4, 1]), (3, [3, 3, 3])):  # the last page full too: no empty page after it
        pages, cursor = [], ""
        while True:
            body = {"corpid": corpid, "limit": limit, "cursor": cursor}
            answer = installed.call("license/list_actived_account", body)
            assert set(answer) == {"errcode", "errmsg", "next_cursor", "has_more", "account_list"}
            pages.append(answer)
            if not answer["has_more"]:
                break
            cursor = answer["next_cursor"]
            assert cursor
            assert not cursor.isdigit()
        assert [len(p["account_list"]) for p in pages] == sizes
        assert [p["has_more"] for p in pages] == [1, 1, 0]
        assert pages[-1]["next_cursor"] == ""
        assert [a for p in pages for a in p["account_list"]] == expected
    whole = installed.call("license/list_actived_account", {"corpid": corpid})
    assert (whole["account_list"], whole["has_more"]) == (expected, 0)


@pytest.mark.parametrize(
    ("body", "errcode"),
    [({"limit": 0}, 40058), ({"limit": 1001}, 40058), ({"limit": "3"}, 40058), ({"limit": True}, 40058),
     ({"cursor": "bm90LW91cnM"}, 50100), ({"cursor": 7}, 40058)],
)  # fmt: skip
def test_list_actived_account_bad_limit_or_cursor(installed, body, errcode):
    answer = installed.call("license/list_actived_account", {"corpid": installed.corp.corpid, **body})
    assert answer["errcode"] == errcode
    assert "account_list" not in answer


def test_accounts_need_paid_room_and_a_reactivation_replaces_the_code(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    with pytest.raises(ValueError, match="no room"):
        wecom.activate_accounts(suite_id, corpid, ["zhangsan"])
    wecom.buy_licenses(suite_id, corpid, base_count=2)
    wecom.activate_accounts(suite_id, corpid, ["zhangsan"])
    first = wecom.state.entitlements.records[installed.ids].accounts[("zhangsan", 1)]
    wecom.advance(3600)
    wecom.activate_accounts(suite_id, corpid, ["zhangsan"])
    second = wecom.state.entitlements.records[installed.ids].accounts[("zhangsan", 1)]
    assert (second.previous_status, second.previous_code) == (2, first.active_code)
    assert second.active_code != first.active_code
    with pytest.raises(ValueError, match="no room"):  # two codes of two bought are spent
        wecom.activate_accounts(suite_id, corpid, ["lisi"])
    assert len(installed.call("license/list_actived_account", {"corpid": corpid})["account_list"]) == 1


def test_license_get_order(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    order_id = wecom.buy_licenses(suite_id, corpid, base_count=3, external_contact_count=1, months=24).order_id
    assert order_id is not None
    assert order_id.startswith("OI")
    assert installed.call("license/get_order", {"order_id": order_id}) == {
        "errcode": 0,
        "errmsg": "ok",
        "order": {
            "order_id": order_id,
            "order_type": 1,
            "order_status": 1,
            "corpid": corpid,
            "price": (3 * 5_000 + 10_000) * 2,
            "account_count": {"base_count": 3, "external_contact_count": 1},
            "account_duration": {"months": 24},
            "create_time": int(wecom.now()),
            "pay_time": int(wecom.now()),
        },
    }
    assert installed.call("license/get_order", {"order_id": "OI00000000000000000000000000"})["errcode"] == 40058
    assert installed.call("license/get_order", {})["errcode"] == 40058
    assert wecom.corp_calls(corpid) == {"license/get_order": 1}


# -- 应用版本付费 --------------------------------------------------------------------------------


def test_service_get_order_answers_the_suites_own_orders(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    token = suite_token(wecom, installed.suite)
    created = int(wecom.now())
    order_id = wecom.buy_edition(
        suite_id, corpid, edition_id="ed-team", edition_name="团队版", user_count=20, days=30, pay=False, price=12345
    ).order_id
    assert order_id is not None
    unpaid = post(wecom, "service/get_order", {"orderid": order_id}, suite_access_token=token)
    assert unpaid == {
        "errcode": 0,
        "errmsg": "ok",
        "orderid": order_id,
        "order_status": 0,
        "order_type": 0,
        "paid_corpid": corpid,
        "operator_id": "admin01",
        "suiteid": suite_id,
        "edition_id": "ed-team",
        "edition_name": "团队版",
        "price": 12345,
        "user_count": 20,
        "order_period": 30,
        "order_time": created,
        "paid_time": 0,
        "begin_time": 0,
        "end_time": 0,
        "order_from": 0,
        "operator_corpid": corpid,
        "service_share_amount": 12345 - 1234,
        "platform_share_amount": 1234,
        "dealer_share_amount": 0,
    }
    wecom.advance(3600)
    wecom.pay_app_order(suite_id, corpid, order_id)
    paid = post(wecom, "service/get_order", {"orderid": order_id}, suite_access_token=token)
    now = int(wecom.now())
    assert (paid["order_status"], paid["paid_time"], paid["begin_time"], paid["end_time"]) == (
        1,
        now,
        now,
        now + 30 * DAY - 1,
    )

    other = wecom.add_suite()
    wecom.create_auth(other.suite_id, corpid, push=False)
    other_token = suite_token(wecom, other)
    assert post(wecom, "service/get_order", {"orderid": order_id}, suite_access_token=other_token)["errcode"] == 40058
    assert post(wecom, "service/get_order", {"orderid": "T0000"}, suite_access_token=token)["errcode"] == 40058
    assert (
        post(wecom, "service/get_order", {"orderid": order_id}, provider_access_token=installed.token)["errcode"]
        == 41022
    )
    assert wecom.corp_calls(corpid)["service/get_order"] == 2


def test_service_get_order_names_the_dealer(pushing):
    suite, corp = pushing.add_suite(), pushing.add_corp()
    pushing.create_auth(suite.suite_id, corp.corpid, push=False, dealer={"corpid": "wwdealer", "corp_name": "代理"})
    order_id = pushing.buy_edition(suite.suite_id, corp.corpid, pay=False).order_id
    answer = post(pushing, "service/get_order", {"orderid": order_id}, suite_access_token=suite_token(pushing, suite))
    assert answer["dealer_corp_info"] == {"corpid": "wwdealer", "corp_name": "代理"}


def test_a_changed_order_is_replaced_and_keeps_its_status(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    token = suite_token(wecom, installed.suite)
    old = wecom.buy_edition(suite_id, corpid, pay=False, price=1000).order_id
    assert old is not None
    new = wecom.change_app_order(suite_id, corpid, old, price=800).order_id
    assert new is not None
    assert new != old
    old_answer = post(wecom, "service/get_order", {"orderid": old}, suite_access_token=token)
    new_answer = post(wecom, "service/get_order", {"orderid": new}, suite_access_token=token)
    assert (old_answer["order_status"], old_answer["price"]) == (0, 1000)
    assert (new_answer["order_status"], new_answer["price"]) == (0, 800)
    (auth,) = wecom.snapshot()["authorizations"]
    assert [(o["orderid"], o["replaced_by"]) for o in auth["entitlements"]["app_orders"]] == [(old, new), (new, None)]
    with pytest.raises(ValueError, match="replaced"):
        wecom.cancel_app_order(suite_id, corpid, old)
    with pytest.raises(ValueError, match="only a paid order can be refunded"):
        wecom.refund_app_order(suite_id, corpid, new)
    wecom.pay_app_order(suite_id, corpid, new)
    with pytest.raises(ValueError, match="only an unpaid order can be cancelled"):
        wecom.cancel_app_order(suite_id, corpid, new)
    with pytest.raises(ValueError, match="only an unpaid order can be paid"):
        wecom.pay_app_order(suite_id, corpid, new)


def test_buying_an_edition_changes_get_auth_info(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    token = suite_token(wecom, installed.suite)
    auth = wecom.authorization(suite_id, corpid)
    credentials = {"auth_corpid": corpid, "permanent_code": auth.permanent_code}
    assert "edition_info" not in post(wecom, "service/get_auth_info", credentials, suite_access_token=token)
    wecom.buy_edition(suite_id, corpid, pay=False)
    assert "edition_info" not in post(wecom, "service/v2/get_auth_info", credentials, suite_access_token=token)

    result = wecom.buy_edition(suite_id, corpid, edition_id="ed-team", edition_name="团队版", user_count=50)
    end = int(wecom.now()) + 365 * DAY - 1
    expected = {
        "agent": [
            {
                "agentid": auth.agents[0].agentid,
                "edition_id": "ed-team",
                "edition_name": "团队版",
                "app_status": 3,
                "user_limit": 50,
                "expired_time": end,
                "is_virtual_version": False,
                "is_shared_from_other_corp": False,
            }
        ]
    }
    for path in ("service/get_auth_info", "service/v2/get_auth_info"):
        assert post(wecom, path, credentials, suite_access_token=token)["edition_info"] == expected, path
    assert [d.event for d in result.deliveries] == ["open_order", "pay_for_app_success", "change_editon"]
    assert result.delivered


# -- open corpid ----------------------------------------------------------------------------------


def test_corpid_to_opencorpid_is_stable_per_provider_and_corp(installed):
    wecom, corpid = installed.wecom, installed.corp.corpid
    answer = installed.call("service/corpid_to_opencorpid", {"corpid": corpid})
    assert answer == {"errcode": 0, "errmsg": "ok", "open_corpid": wecom.open_corpid(corpid)}
    assert answer["open_corpid"].startswith("wp")
    assert answer["open_corpid"] != corpid
    assert installed.call("service/corpid_to_opencorpid", {"corpid": corpid}) == answer
    another = wecom.add_corp()
    assert installed.call("service/corpid_to_opencorpid", {"corpid": another.corpid})["open_corpid"] not in (
        answer["open_corpid"],
        another.corpid,
    )
    assert Provider("wwotherprovider001", "s").open_corpid(corpid) != answer["open_corpid"]
    assert installed.call("service/corpid_to_opencorpid", {"corpid": "wwnosuchcorp000001"})["errcode"] == 40013
    assert installed.call("service/corpid_to_opencorpid", {})["errcode"] == 41002


# -- pushes ---------------------------------------------------------------------------------------


def test_order_pushes_carry_exactly_wecoms_fields_encrypted_for_the_suite(installed, receiver):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    now = str(int(wecom.now()))
    base = {"SuiteId": suite_id, "PaidCorpId": corpid, "TimeStamp": now}
    bought = wecom.buy_edition(suite_id, corpid, operator_id="zhangsan").order_id
    unpaid = wecom.buy_edition(suite_id, corpid, pay=False, push=False).order_id
    changed = wecom.change_app_order(suite_id, corpid, unpaid, price=1).order_id
    wecom.cancel_app_order(suite_id, corpid, changed)
    wecom.refund_app_order(suite_id, corpid, bought)
    documents = [opened(installed.suite, r, suite_id) for r in receiver.requests]
    assert documents == [
        {**base, "InfoType": "open_order", "OrderId": bought, "OperatorId": "zhangsan"},
        {**base, "InfoType": "pay_for_app_success", "OrderId": bought},
        {**base, "InfoType": "change_editon"},
        {**base, "InfoType": "change_order", "OldOrderId": unpaid, "NewOrderId": changed},
        {**base, "InfoType": "cancel_order", "OrderId": changed},
        {**base, "InfoType": "refund", "OrderId": bought},
    ]
    assert [r.path for r in receiver.requests] == [f"/wecom/callback/{suite_id}"] * 6


def test_license_pushes_are_system_events_encrypted_for_the_provider(installed, receiver):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    provider = wecom.provider.corpid
    base = {"ServiceCorpId": provider, "AuthCorpId": corpid, "TimeStamp": str(int(wecom.now()))}
    order = wecom.buy_licenses(suite_id, corpid, base_count=3, buyer_userid="boss").order_id
    wecom.activate_accounts(suite_id, corpid, ["zhangsan"])  # the provider's own activation: no push
    wecom.activate_accounts(suite_id, corpid, ["zhangsan", "lisi"], auto=True, scene=2)
    refused = wecom.buy_licenses(suite_id, corpid).order_id
    wecom.refund_licenses(suite_id, corpid, refused, approved=False)
    wecom.refund_licenses(suite_id, corpid, order)
    accounts = wecom.state.entitlements.records[installed.ids].accounts
    assert accounts == {}  # the refunded order's accounts are gone
    documents = [opened(installed.suite, r, provider) for r in receiver.requests]
    pay, auto, _, refusal, refund = documents
    assert pay == {**base, "InfoType": "license_pay_success", "OrderId": order, "BuyerUserId": "boss"}
    assert refusal == {**base, "InfoType": "license_refund", "OrderId": refused, "OrderStatus": "2"}
    assert refund == {**base, "InfoType": "license_refund", "OrderId": order, "OrderStatus": "1"}
    assert {k: v for k, v in auto.items() if k != "AccountList"} == {**base, "InfoType": "auto_activate", "Scene": "2"}
    zhangsan, lisi = auto["AccountList"]
    assert set(zhangsan) == {"ActiveCode", "Type", "ExpireTime", "UserId", "PreviousStatus", "PreviousActiveCode"}
    assert (zhangsan["UserId"], zhangsan["Type"], zhangsan["PreviousStatus"]) == ("zhangsan", "1", "2")
    assert zhangsan["PreviousActiveCode"] != zhangsan["ActiveCode"]
    assert zhangsan["ExpireTime"] == str(int(wecom.now()) + 12 * 30 * DAY)
    assert set(lisi) == {"ActiveCode", "Type", "ExpireTime", "UserId", "PreviousStatus"}
    assert (lisi["UserId"], lisi["PreviousStatus"]) == ("lisi", "1")
    assert "SuiteId" not in str(documents)


def test_license_re_pushes_and_a_single_account(installed, receiver):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    order = wecom.buy_licenses(suite_id, corpid, push=False).order_id
    assert order is not None
    wecom.activate_accounts(suite_id, corpid, ["zhangsan", "lisi"])
    code = wecom.state.entitlements.records[installed.ids].accounts[("lisi", 1)].active_code
    assert wecom.license_pay_success(suite_id, corpid, order).delivered
    assert wecom.auto_activate(suite_id, corpid, ["lisi"]).delivered
    with pytest.raises(ValueError, match="not decided"):
        wecom.license_refund(suite_id, corpid, order)
    assert wecom.license_refund(suite_id, corpid, order, order_status=2).delivered
    provider = wecom.provider.corpid
    pay, auto, refund = (opened(installed.suite, r, provider) for r in receiver.requests)
    assert pay["OrderId"] == order
    assert auto["AccountList"] == {  # one <AccountList>: safexml reads a dict, as for WeCom's own
        "ActiveCode": code,
        "Type": "1",
        "ExpireTime": str(int(wecom.now()) + 12 * 30 * DAY),
        "UserId": "lisi",
        "PreviousStatus": "1",
    }
    assert refund["OrderStatus"] == "2"


def test_unlicensed_notify_is_event_style_encrypted_for_the_corp(installed, receiver):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    agentid = wecom.authorization(suite_id, corpid).agents[0].agentid
    assert wecom.unlicensed_notify(suite_id, corpid).delivered
    assert wecom.unlicensed_notify(suite_id, corpid, agent_id=5).delivered
    first, second = (opened(installed.suite, r, corpid) for r in receiver.requests)
    assert first == {
        "ToUserName": corpid,
        "FromUserName": "sys",
        "CreateTime": str(int(wecom.now())),
        "MsgType": "event",
        "Event": "unlicensed_notify",
        "AgentID": str(agentid),
    }
    assert second["AgentID"] == "5"


def test_re_pushes_name_only_orders_of_the_corp(installed):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    stranger = wecom.add_corp()
    wecom.create_auth(suite_id, stranger.corpid, push=False)
    order = wecom.buy_edition(suite_id, stranger.corpid, push=False).order_id
    licenses = wecom.buy_licenses(suite_id, stranger.corpid, push=False).order_id
    assert order is not None
    assert licenses is not None
    for push in (wecom.open_order, wecom.pay_for_app_success, wecom.refund, wecom.cancel_order):
        with pytest.raises(NotFoundError):
            push(suite_id, corpid, order)
    with pytest.raises(NotFoundError):
        wecom.license_pay_success(suite_id, corpid, licenses)
    with pytest.raises(NotFoundError):
        wecom.change_editon(suite_id, wecom.add_corp().corpid)
    with pytest.raises(ValueError, match="no active accounts"):
        wecom.auto_activate(suite_id, corpid)


def test_held_entitlement_pushes_keep_their_time(installed, receiver):
    wecom, (suite_id, corpid) = installed.wecom, installed.ids
    with wecom.holding() as held:
        wecom.buy_licenses(suite_id, corpid)
        wecom.unlicensed_notify(suite_id, corpid)
    stamp = int(wecom.now())
    wecom.advance(60)
    assert receiver.requests == []
    assert [h.timestamp for h in held] == [stamp, stamp]
    for push in held:
        assert wecom.deliver_held(push).delivered
    pay, notify = receiver.requests
    assert opened(installed.suite, pay, wecom.provider.corpid)["TimeStamp"] == str(stamp)
    assert opened(installed.suite, notify, corpid)["CreateTime"] == str(stamp)


def test_the_license_trial_starts_at_the_first_install(clock):
    emulator = Emulator(clock=Clock(start=clock.now(), frozen=True))
    suite, corp = emulator.add_suite(), emulator.add_corp()
    emulator.create_auth(suite.suite_id, corp.corpid, push=False)
    start = int(emulator.now())
    emulator.cancel_auth(suite.suite_id, corp.corpid, push=False)
    emulator.advance(DAY)
    emulator.create_auth(suite.suite_id, corp.corpid, push=False)
    assert emulator.state.entitlements.records[(suite.suite_id, corp.corpid)].trial == (start, start + 30 * DAY - 1)
