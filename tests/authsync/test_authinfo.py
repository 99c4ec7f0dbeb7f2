"""authinfo: get_auth_info / get_permanent_code documents and the verification status (spec §3.2, §3.3, §5)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from authsync.wecom.authinfo import (
    CUSTOMER_CAP_UNVERIFIED,
    AuthInfoResponse,
    PermanentCodeResponse,
    Verification,
    derive_verification,
    strip_secrets,
)
from authsync_dev.emulator.model import AgentRecord, CorpRecord, Dealer, PaidEdition, Privilege, SharedFrom

NOW = 1_750_000_000.0
PERMANENT_CODE = "PERMCODE-5f1c0e4b8a9d7c6e2f3a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0"
CORP_TOKEN = "CORPTOKEN-a1b2c3d4e5f60718293a4b5c6d7e8f90"

# Seed-1 (old page, verbatim sample): corp_agent_max, location; no auth_mode/shared_from.
SEED_1: dict[str, Any] = json.loads("""
{
    "errcode":0 ,
    "errmsg":"ok" ,
    "dealer_corp_info": {"corpid": "xxxx", "corp_name": "name"},
    "auth_corp_info": {
        "corpid": "xxxx",
        "corp_name": "name",
        "corp_type": "verified",
        "corp_square_logo_url": "yyyyy",
        "corp_user_max": 50,
        "corp_agent_max": 30,
        "corp_full_name":"full_name",
        "verified_end_time":1431775834,
        "subject_type": 1,
        "corp_wxqrcode": "zzzzz",
        "corp_scale": "1-50人",
        "corp_industry": "IT服务",
        "corp_sub_industry": "计算机软件/硬件/信息服务",
        "location":"广东省广州市"
    },
    "auth_info": {
        "agent": [
            {
                "agentid":1, "name":"NAME", "round_logo_url":"xxxxxx", "square_logo_url":"yyyyyy", "appid":1,
                "privilege": {
                    "level":1, "allow_party":[1,2,3], "allow_user":["zhansan","lisi"], "allow_tag":[1,2,3],
                    "extra_party":[4,5,6], "extra_user":["wangwu"], "extra_tag":[4,5,6]
                }
            },
            {"agentid":2, "name":"NAME2", "round_logo_url":"xxxxxx", "square_logo_url":"yyyyyy", "appid":5}
        ]
    }
}
""")

# Seed-2 (2024 page, verbatim sample): corp_ex_name with a string name_list, auth_mode, shared_from.
SEED_2: dict[str, Any] = json.loads("""
{
    "errcode":0,
    "errmsg":"ok",
    "dealer_corp_info": {"corpid": "xxxx", "corp_name": "name"},
    "auth_corp_info": {
        "corpid": "xxxx",
        "corp_name": "name",
        "corp_type": "verified",
        "corp_square_logo_url": "yyyyy",
        "corp_user_max": 50,
        "corp_full_name":"full_name",
        "verified_end_time":1431775834,
        "subject_type": 1,
        "corp_wxqrcode": "zzzzz",
        "corp_scale": "1-50人",
        "corp_industry": "IT服务",
        "corp_sub_industry": "计算机软件/硬件/信息服务",
        "corp_ex_name":{"name_list":"xx"}
    },
    "auth_info": {
        "agent": [
            {
                "agentid":1, "name":"NAME", "round_logo_url":"xxxxxx", "square_logo_url":"yyyyyy", "appid":1,
                "auth_mode":1, "is_customized_app":false, "auth_from_thirdapp":false,
                "privilege": {
                    "level":1, "allow_party":[1,2,3], "allow_user":["zhansan","lisi"], "allow_tag":[1,2,3],
                    "extra_party":[4,5,6], "extra_user":["wangwu"], "extra_tag":[4,5,6]
                },
                "shared_from": {"corpid":"wwyyyyy", "share_type": 1}
            },
            {
                "agentid":2, "name":"NAME2", "round_logo_url":"xxxxxx", "square_logo_url":"yyyyyy", "appid":5,
                "shared_from": {"corpid":"wwyyyyy", "share_type": 0}
            }
        ]
    }
}
""")


def auth_doc(**corp: Any) -> dict[str, Any]:
    """A v2 get_auth_info document for one directly installed agent, corp fields overridable."""
    info: dict[str, Any] = {"corpid": "wwcorp0001", "corp_name": "示例", "corp_type": "unverified", **corp}
    return {
        "auth_corp_info": {k: v for k, v in info.items() if v is not None},
        "auth_info": {"agent": [{"agentid": 1000002, "name": "Authsync", "auth_mode": 0}]},
    }


def no_extras(model: BaseModel) -> list[str]:
    """Dotted paths of every field that landed in ``model_extra`` anywhere in the tree."""
    found = [f"{type(model).__name__}.{k}" for k in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, BaseModel):
                found.extend(no_extras(child))
    return found


# -- parsing ---------------------------------------------------------------------------------------


def test_seed_1_parses_with_the_old_page_fields() -> None:
    parsed = AuthInfoResponse.model_validate(SEED_1)
    corp = parsed.auth_corp_info
    assert corp is not None
    assert (corp.corp_type, corp.corp_agent_max, corp.location) == ("verified", 30, "广东省广州市")
    assert corp.verified_end_time == 1431775834
    assert parsed.dealer_corp_info is not None
    assert parsed.dealer_corp_info.corp_name == "name"
    first, second = parsed.agents
    assert first.privilege is not None
    assert first.privilege.allow_user == ["zhansan", "lisi"]
    assert first.privilege.extra_tag == [4, 5, 6]
    assert second.privilege is None
    assert second.appid == 5
    assert no_extras(parsed) == []


def test_seed_2_parses_with_the_2024_page_fields() -> None:
    parsed = AuthInfoResponse.model_validate(SEED_2)
    corp = parsed.auth_corp_info
    assert corp is not None
    assert corp.corp_ex_name is not None
    assert corp.corp_ex_name.name_list == "xx"
    assert corp.corp_ex_name.names == ["xx"]
    first, second = parsed.agents
    assert (first.auth_mode, first.is_customized_app, first.auth_from_thirdapp) == (1, False, False)
    assert first.shared_from is not None
    assert first.shared_from.share_type == 1
    assert second.shared_from is not None
    assert second.shared_from.share_type == 0
    assert no_extras(parsed) == []


@pytest.mark.parametrize(
    ("name_list", "names"),
    [(["甲", "乙"], ["甲", "乙"]), ("xx", ["xx"]), ("", []), (None, [])],
)
def test_corp_ex_name_accepts_a_list_or_a_string(name_list: Any, names: list[str]) -> None:
    parsed = AuthInfoResponse.model_validate(auth_doc(corp_ex_name={"name_list": name_list}))
    assert parsed.auth_corp_info is not None
    assert parsed.auth_corp_info.corp_ex_name is not None
    assert parsed.auth_corp_info.corp_ex_name.names == names


def test_unknown_fields_survive_at_every_level() -> None:
    doc = copy.deepcopy(SEED_2)
    doc["brand_new_section"] = {"a": 1}
    doc["auth_corp_info"]["corp_new_flag"] = True
    doc["auth_info"]["agent"][0]["privilege"]["allow_new"] = ["x"]
    doc["auth_info"]["agent"][0]["new_agent_field"] = 7
    parsed = AuthInfoResponse.model_validate(doc)
    assert parsed.model_extra == {"brand_new_section": {"a": 1}}
    assert parsed.auth_corp_info is not None
    assert parsed.auth_corp_info.model_extra == {"corp_new_flag": True}
    agent = parsed.agents[0]
    assert agent.model_extra == {"new_agent_field": 7}
    assert agent.privilege is not None
    assert agent.privilege.model_extra == {"allow_new": ["x"]}
    dumped = parsed.model_dump(exclude_none=True)
    assert dumped["brand_new_section"] == {"a": 1}
    assert dumped["auth_info"]["agent"][0]["privilege"]["allow_new"] == ["x"]


def test_every_field_is_optional() -> None:
    parsed = AuthInfoResponse.model_validate({})
    assert parsed.auth_corp_info is None
    assert parsed.agents == []
    assert PermanentCodeResponse.model_validate({}).permanent_code is None


@pytest.mark.parametrize("v1", [True, False])
@pytest.mark.parametrize("verified", [True, False])
def test_the_emulators_documents_need_no_extra_fields(v1: bool, verified: bool) -> None:
    """The emulator renders spec §3.3's shapes: all of them are declared fields here."""
    corp = CorpRecord("wwcorp0001", "示例", verified=verified, verified_end_time=1_800_000_000, ex_names=["甲"])
    agent = AgentRecord(
        1000002, auth_mode=1, privilege=Privilege(allow_user=["u1"]), shared_from=SharedFrom("wwother", 1)
    )
    doc = {
        "errcode": 0,
        "errmsg": "ok",
        "permanent_code": PERMANENT_CODE,
        "access_token": CORP_TOKEN,
        "expires_in": 7200,
        "dealer_corp_info": {"corpid": Dealer("wwdealer", "代理").corpid, "corp_name": "代理"},
        "auth_corp_info": corp.auth_corp_info(v1=v1, member_mode=True),
        "auth_info": {"agent": [agent.to_json()]},
        "edition_info": {"agent": [PaidEdition(1000002).to_json()]},
        "auth_user_info": {"userid": "admin01", "open_userid": "wo1", "name": "管理员", "avatar": "https://a"},
        "register_code_info": {"register_code": "rc", "template_id": "tpl", "state": ""},
        "state": "s",
    }
    parsed = PermanentCodeResponse.model_validate(doc)
    assert no_extras(parsed) == []
    assert parsed.edition_info is not None
    assert parsed.edition_info.agent is not None
    assert parsed.edition_info.agent[0].app_status == 3


# -- secrets ---------------------------------------------------------------------------------------


def test_permanent_code_response_never_shows_the_code() -> None:
    v1 = {**SEED_2, "permanent_code": PERMANENT_CODE, "access_token": CORP_TOKEN, "expires_in": 7200}
    parsed = PermanentCodeResponse.model_validate(v1)
    assert parsed.permanent_code is not None
    assert parsed.permanent_code.get_secret_value() == PERMANENT_CODE
    assert parsed.access_token is not None
    assert parsed.access_token.get_secret_value() == CORP_TOKEN
    for text in (repr(parsed), str(parsed), parsed.model_dump_json(), json.dumps(parsed.model_dump(mode="json"))):
        assert PERMANENT_CODE not in text
        assert CORP_TOKEN not in text


def test_v2_permanent_code_response_parses() -> None:
    v2 = {
        "errcode": 0,
        "errmsg": "ok",
        "permanent_code": PERMANENT_CODE,
        "auth_corp_info": {"corpid": "wwcorp0001", "corp_name": "示例"},
        "auth_user_info": {"userid": "admin01", "open_userid": "wo1"},
        "register_code_info": {"register_code": "rc", "template_id": "tpl", "state": "st"},
        "state": "st",
    }
    parsed = PermanentCodeResponse.model_validate(v2)
    assert parsed.auth_corp_info is not None
    assert parsed.auth_corp_info.corp_type is None
    assert parsed.auth_user_info is not None
    assert parsed.auth_user_info.userid == "admin01"
    assert PERMANENT_CODE not in repr(parsed)


def test_get_auth_info_hides_a_stray_access_token() -> None:
    """Seed-1's table lists access_token (a doc artifact); if one ever arrives it stays hidden."""
    parsed = AuthInfoResponse.model_validate({**SEED_1, "access_token": CORP_TOKEN})
    assert CORP_TOKEN not in repr(parsed)


def test_strip_secrets_removes_credentials_at_any_depth_without_touching_the_input() -> None:
    doc = {
        **SEED_2,
        "permanent_code": PERMANENT_CODE,
        "access_token": CORP_TOKEN,
        "nested": [{"auth_code": "AUTHCODE", "keep": 1}],
    }
    before = copy.deepcopy(doc)
    stripped = strip_secrets(doc)
    assert doc == before
    text = json.dumps(stripped, ensure_ascii=False)
    assert PERMANENT_CODE not in text
    assert CORP_TOKEN not in text
    assert "AUTHCODE" not in text
    assert stripped["nested"] == [{"keep": 1}]
    assert stripped["auth_corp_info"] == SEED_2["auth_corp_info"]


# -- verification (Seed-2, spec §5) ----------------------------------------------------------------


def test_verified_corp_has_no_customer_cap() -> None:
    v = derive_verification(
        auth_doc(corp_type="verified", corp_full_name="示例有限公司", verified_end_time=1_900_000_000), NOW
    )
    assert v.verified is True
    assert v.customer_cap is None
    assert v.verified_end_time == 1_900_000_000
    assert v.verification_may_have_lapsed is False
    assert v.has_corp_full_name is True


def test_unverified_corp_is_capped_at_100_customers() -> None:
    v = derive_verification(auth_doc(corp_type="unverified", verified_end_time=0), NOW)
    assert v.verified is False
    assert v.customer_cap == CUSTOMER_CAP_UNVERIFIED == 100
    assert v.verified_end_time is None
    assert v.verification_may_have_lapsed is False
    assert v.has_corp_full_name is False


def test_a_past_verified_end_time_flags_but_does_not_downgrade() -> None:
    """Seed-2's sample: verified, with a 2015 end time. Policy: flag, keep verified."""
    v = derive_verification(SEED_2, NOW)
    assert v.verified is True
    assert v.customer_cap is None
    assert v.verified_end_time == 1431775834
    assert v.verification_may_have_lapsed is True
    assert v.subject_type == 1


@pytest.mark.parametrize("end_time", [None, 0])
def test_absent_or_zero_end_time_is_none_and_never_lapsed(end_time: int | None) -> None:
    v = derive_verification(auth_doc(corp_type="verified", verified_end_time=end_time), NOW)
    assert v.verified_end_time is None
    assert v.verification_may_have_lapsed is False
    assert v.lapsed_at(NOW * 10) is False


def test_lapse_is_relative_to_now_and_can_be_re_evaluated() -> None:
    doc = auth_doc(corp_type="verified", verified_end_time=1_760_000_000)
    before = derive_verification(doc, 1_759_999_999.0)
    after = derive_verification(doc, 1_760_000_001.0)
    assert not before.verification_may_have_lapsed
    assert after.verification_may_have_lapsed
    assert before.lapsed_at(1_760_000_001.0) is True
    assert before.evaluated_at == 1_759_999_999.0


@pytest.mark.parametrize("doc", [{}, {"auth_corp_info": {"corpid": "wwcorp0001"}}])
def test_unknown_corp_type_is_treated_as_unverified(doc: dict[str, Any]) -> None:
    v = derive_verification(doc, NOW)
    assert v.corp_type is None
    assert v.verified is False
    assert v.customer_cap == 100
    assert v.install_kind == "direct"


def test_install_kind_for_display() -> None:
    assert derive_verification(auth_doc(), NOW).install_kind == "direct"
    shared = derive_verification(SEED_2, NOW)  # first agent shared via 上下游
    assert (shared.install_kind, shared.install_label) == ("shared_chain", "上下游共享")
    assert (shared.shared_from_corpid, shared.share_type) == ("wwyyyyy", 1)

    interconnect = copy.deepcopy(SEED_2)
    interconnect["auth_info"]["agent"] = interconnect["auth_info"]["agent"][1:]
    v = derive_verification(interconnect, NOW)
    assert (v.install_kind, v.install_label, v.share_type) == ("shared_interconnect", "企业互联共享", 0)

    customized = auth_doc()
    customized["auth_info"]["agent"][0].update(is_customized_app=True, privilege={"level": 0})
    v = derive_verification(customized, NOW)
    assert (v.install_kind, v.customized_app, v.install_label) == ("customized", True, "代开发应用")
    assert v.shared_from_corpid is None


def test_verification_works_on_a_v1_permanent_code_response_and_dumps_to_json() -> None:
    v = derive_verification({**SEED_1, "permanent_code": PERMANENT_CODE}, NOW)
    assert isinstance(v, Verification)
    dumped = v.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    assert PERMANENT_CODE not in json.dumps(dumped)
    assert Verification.model_validate(dumped) == v
