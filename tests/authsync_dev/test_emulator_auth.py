"""Auth codes, permanent codes and get_auth_info: shapes of spec §3.2/§3.3 and their failure codes."""

from __future__ import annotations

import pytest

from authsync_dev.emulator import AgentRecord, Dealer, Emulator, PaidEdition, Privilege, RegisterCode, SharedFrom


def _suite_token(wecom: Emulator, call, suite_id: str) -> str:
    suite = wecom.suite(suite_id)
    ticket = wecom.push_suite_ticket(suite_id).suite_ticket
    body = {"suite_id": suite_id, "suite_secret": suite.suite_secret, "suite_ticket": ticket}
    token: str = call("service/get_suite_token", body)["suite_access_token"]
    return token


@pytest.fixture
def setup(wecom, call):
    suite = wecom.add_suite()
    corp = wecom.add_corp()
    return suite, corp, _suite_token(wecom, call, suite.suite_id)


def test_auth_code_is_single_use(wecom, call, setup):
    suite, corp, token = setup
    code = wecom.create_auth(suite.suite_id, corp.corpid, state="s1").auth_code
    assert code
    assert len(code) >= 64
    first = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    assert first["errcode"] == 0
    again = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    assert again["errcode"] == 40078
    assert call("service/get_permanent_code", {"auth_code": code}, suite_access_token=token)["errcode"] == 40078


def test_auth_code_expires_after_ten_minutes(wecom, call, setup):
    suite, corp, token = setup
    code = wecom.create_auth(suite.suite_id, corp.corpid).auth_code
    wecom.advance(600)
    assert call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)["errcode"] == 40078


def test_auth_code_of_another_suite_and_bad_codes(wecom, call, setup):
    _, corp, token = setup
    other = wecom.add_suite()
    code = wecom.create_auth(other.suite_id, corp.corpid).auth_code
    path = "service/v2/get_permanent_code"
    assert call(path, {"auth_code": code}, suite_access_token=token)["errcode"] == 40078
    assert call(path, {"auth_code": "x" * 64}, suite_access_token=token)["errcode"] == 40078
    short = call(path, {"auth_code": "short"}, suite_access_token=token)
    assert short["errcode"] == 40058
    assert "min length 64" in short["errmsg"]
    assert call(path, {}, suite_access_token=token)["errcode"] == 41008
    # The code of the other suite is still unused: its own suite can exchange it.
    other_token = _suite_token(wecom, call, other.suite_id)
    assert call(path, {"auth_code": code}, suite_access_token=other_token)["errcode"] == 0


def test_v2_permanent_code_shape(wecom, call, setup):
    suite, corp, token = setup
    code = wecom.create_auth(
        suite.suite_id,
        corp.corpid,
        state="from-site",
        register_code=RegisterCode("reg-1", "tpl-1", "rs"),
    ).auth_code
    answer = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    assert set(answer) == {
        "errcode",
        "errmsg",
        "permanent_code",
        "auth_corp_info",
        "auth_user_info",
        "register_code_info",
        "state",
    }
    assert answer["auth_corp_info"] == {"corpid": corp.corpid, "corp_name": corp.corp_name}
    assert set(answer["auth_user_info"]) == {"userid", "open_userid", "name", "avatar"}
    assert answer["register_code_info"] == {"register_code": "reg-1", "template_id": "tpl-1", "state": "rs"}
    assert answer["state"] == "from-site"


def test_v1_permanent_code_has_everything_and_a_corp_token(wecom, call, setup):
    suite, corp, token = setup
    code = wecom.create_auth(
        suite.suite_id,
        corp.corpid,
        dealer=Dealer("wwdealer0000000001", "代理商"),
        paid_editions=[PaidEdition(agentid=1000002)],
    ).auth_code
    answer = call("service/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    assert answer["errcode"] == 0
    assert answer["expires_in"] == 7200
    assert answer["dealer_corp_info"] == {"corpid": "wwdealer0000000001", "corp_name": "代理商"}
    assert answer["auth_corp_info"]["corp_wxqrcode"]
    assert answer["auth_info"]["agent"][0]["privilege"]["level"] == 1
    assert answer["edition_info"]["agent"][0]["app_status"] == 3
    chat = call("chatdata/get_corp_auth_info", {}, access_token=answer["access_token"])
    assert chat["errcode"] == 48002  # the token works; chatdata is just not authorized


def test_customized_permanent_code_has_no_access_token(wecom, call):
    suite = wecom.add_suite(kind="customized")
    assert suite.suite_id.startswith("dk")
    corp = wecom.add_corp()
    token = _suite_token(wecom, call, suite.suite_id)
    code = wecom.create_auth(suite.suite_id, corp.corpid).auth_code
    answer = call("service/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    assert "access_token" not in answer
    agent = answer["auth_info"]["agent"][0]
    assert agent["is_customized_app"] is True
    assert agent["privilege"]["level"] == 0


def test_get_auth_info_v1_and_v2_for_verified_and_unverified_corps(wecom, call, provider):
    unverified = provider()
    body = {"auth_corpid": unverified.corp.corpid, "permanent_code": unverified.permanent_code}
    v1 = call("service/get_auth_info", body, suite_access_token=unverified.suite_token)
    assert "errcode" not in v1
    info = v1["auth_corp_info"]
    assert info["corp_type"] == "unverified"
    assert info["verified_end_time"] == 0
    assert "corp_full_name" not in info
    assert "corp_ex_name" not in info
    assert "corp_wxqrcode" in info

    verified = provider(verified=True)
    body = {"auth_corpid": verified.corp.corpid, "permanent_code": verified.permanent_code}
    v2 = call("service/v2/get_auth_info", body, suite_access_token=verified.suite_token)
    assert "errcode" not in v2
    info = v2["auth_corp_info"]
    assert info["corp_type"] == "verified"
    assert info["verified_end_time"] > wecom.now()
    assert info["corp_full_name"]
    assert info["corp_ex_name"] == {"name_list": []}
    assert "corp_wxqrcode" not in info
    assert "dealer_corp_info" not in v2


def test_agents_with_privilege_shared_from_and_member_mode(wecom, call, setup):
    suite, corp, token = setup
    agents = [
        AgentRecord(1001, auth_mode=1, privilege=Privilege(allow_user=["u1"]), shared_from=SharedFrom("wwup", 1)),
        AgentRecord(1002, name="NAME2", appid=5, privilege=None, shared_from=SharedFrom("wwup", 0)),
    ]
    code = wecom.create_auth(suite.suite_id, corp.corpid, agents=agents).auth_code
    permanent = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    body = {"auth_corpid": corp.corpid, "permanent_code": permanent["permanent_code"]}
    answer = call("service/get_auth_info", body, suite_access_token=token)
    first, second = answer["auth_info"]["agent"]
    assert first["auth_mode"] == 1
    assert first["privilege"]["allow_user"] == ["u1"]
    assert first["shared_from"] == {"corpid": "wwup", "share_type": 1}
    assert "privilege" not in second
    assert second["shared_from"]["share_type"] == 0
    # 成员授权: scale and industries are empty.
    info = answer["auth_corp_info"]
    assert info["corp_scale"] == info["corp_industry"] == info["corp_sub_industry"] == ""


def test_contacts_app_without_agents_has_no_auth_info(wecom, call, setup):
    suite, corp, token = setup
    code = wecom.create_auth(suite.suite_id, corp.corpid, agents=[]).auth_code
    permanent = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    body = {"auth_corpid": corp.corpid, "permanent_code": permanent["permanent_code"]}
    assert "auth_info" not in call("service/get_auth_info", body, suite_access_token=token)


def test_permanent_code_of_another_suite_is_40084(wecom, call, provider):
    first, second = provider(), provider()
    body = {"auth_corpid": first.corp.corpid, "permanent_code": first.permanent_code}
    assert call("service/get_auth_info", body, suite_access_token=second.suite_token)["errcode"] == 40084


def test_cancel_auth_kills_permanent_code_and_corp_tokens(wecom, call, provider):
    installed = provider()
    body = {"auth_corpid": installed.corp.corpid, "permanent_code": installed.permanent_code}
    wecom.cancel_auth(installed.suite.suite_id, installed.corp.corpid)
    for path in ("service/get_auth_info", "service/v2/get_auth_info", "service/get_corp_token"):
        assert call(path, body, suite_access_token=installed.suite_token)["errcode"] == 40084
    assert call("chatdata/get_corp_auth_info", {}, access_token=installed.corp_token)["errcode"] == 40014


def test_reinstall_after_cancel_gets_a_new_permanent_code(wecom, call, provider):
    installed = provider()
    suite_id, corpid = installed.suite.suite_id, installed.corp.corpid
    wecom.cancel_auth(suite_id, corpid)
    code = wecom.create_auth(suite_id, corpid).auth_code
    fresh = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=installed.suite_token)
    assert fresh["permanent_code"] != installed.permanent_code
    old = {"auth_corpid": corpid, "permanent_code": installed.permanent_code}
    assert call("service/get_auth_info", old, suite_access_token=installed.suite_token)["errcode"] == 40084
    with pytest.raises(ValueError, match="already installed"):
        wecom.create_auth(suite_id, corpid)


def test_reset_permanent_code_for_customized_apps(wecom, call, provider):
    installed = provider("customized")
    suite_id, corpid = installed.suite.suite_id, installed.corp.corpid
    code = wecom.reset_permanent_code(suite_id, corpid).auth_code
    old = {"auth_corpid": corpid, "permanent_code": installed.permanent_code}
    # Until the new AuthCode is exchanged, the old secret still works.
    assert "auth_corp_info" in call("service/get_auth_info", old, suite_access_token=installed.suite_token)
    exchanged = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=installed.suite_token)
    new_code = exchanged["permanent_code"]
    assert new_code != installed.permanent_code
    assert call("service/get_auth_info", old, suite_access_token=installed.suite_token)["errcode"] == 40084
    new = {"auth_corpid": corpid, "permanent_code": new_code}
    assert "auth_corp_info" in call("service/get_auth_info", new, suite_access_token=installed.suite_token)
    assert call("gettoken", method="GET", corpid=corpid, corpsecret=installed.permanent_code)["errcode"] == 40001
    assert call("gettoken", method="GET", corpid=corpid, corpsecret=new_code)["errcode"] == 0


def test_reset_permanent_code_is_for_customized_suites_only(provider, wecom):
    installed = provider()
    with pytest.raises(ValueError, match="customized"):
        wecom.reset_permanent_code(installed.suite.suite_id, installed.corp.corpid)


def test_verify_corp_changes_get_auth_info(wecom, call, provider):
    installed = provider()
    body = {"auth_corpid": installed.corp.corpid, "permanent_code": installed.permanent_code}
    wecom.verify_corp(installed.corp.corpid, verified_end_time=1_900_000_000, ex_names=["简称"], push=False)
    info = call("service/get_auth_info", body, suite_access_token=installed.suite_token)["auth_corp_info"]
    assert info["corp_type"] == "verified"
    assert info["verified_end_time"] == 1_900_000_000
    assert info["corp_ex_name"] == {"name_list": ["简称"]}
    wecom.verify_corp(installed.corp.corpid, verified=False, push=False)
    info = call("service/get_auth_info", body, suite_access_token=installed.suite_token)["auth_corp_info"]
    assert info["corp_type"] == "unverified"


def test_set_visibility_and_auth_mode(wecom, call, provider):
    installed = provider()
    suite_id, corpid = installed.suite.suite_id, installed.corp.corpid
    wecom.set_visibility(suite_id, corpid, allow_user=["a", "b"], allow_party=[], allow_tag=[7], push=False)
    wecom.set_auth_mode(suite_id, corpid, 1, push=False)
    body = {"auth_corpid": corpid, "permanent_code": installed.permanent_code}
    agent = call("service/get_auth_info", body, suite_access_token=installed.suite_token)["auth_info"]["agent"][0]
    assert agent["privilege"]["allow_user"] == ["a", "b"]
    assert agent["privilege"]["allow_party"] == []
    assert agent["privilege"]["allow_tag"] == [7]
    assert agent["auth_mode"] == 1


def test_installer_info_may_be_absent(wecom, call, setup):
    suite, corp, token = setup
    code = wecom.create_auth(suite.suite_id, corp.corpid, auth_user=False).auth_code
    answer = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
    assert "auth_user_info" not in answer
    assert answer["state"] == ""
