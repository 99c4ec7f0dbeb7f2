"""callbacks: the envelope and the decrypted 指令回调 documents (spec §1.2, §2)."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from authsync.wecom.callbacks import (
    ApproveSpecialAuth,
    AuthDataPermission,
    AuthEvent,
    CallbackEvent,
    CancelAuth,
    CancelSpecialAuth,
    ChangeAppAdmin,
    ChangeAuth,
    CorpArchAuth,
    CreateAuth,
    Envelope,
    ExpireRemindDataPermission,
    GenericEvent,
    MalformedEventError,
    ResetPermanentCode,
    ScopeChange,
    ShareAgentChange,
    ShareChainChange,
    SuiteTicket,
    parse_envelope,
    parse_event,
)
from authsync.wecom.safexml import XmlError

SUITE = "wwddddccc7775555aaa"
CORP = "wxf8b4f85f3a794e77"
TICKET = "Cfp0_givEagXcYJIztF6sfbdmIZCmpaR8ZBsvJEFFNBrWmnD5-CGYJ3_NhYexMyw"
AUTH_CODE = "AUTHCODE-0f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def document(fields: dict[str, Any], *, cdata: bool = True, sep: str = "\n") -> bytes:
    """An InfoType document as WeCom writes it (values in CDATA, one element a line)."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, int) or not cdata:
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return ("<xml>" + sep.join(parts) + "</xml>").encode()


def common(info_type: str) -> dict[str, Any]:
    return {"SuiteId": SUITE, "InfoType": info_type, "TimeStamp": 1403610513}


# -- typed InfoTypes -------------------------------------------------------------------------------


def test_suite_ticket() -> None:
    event = parse_event(document({**common("suite_ticket"), "SuiteTicket": TICKET}))
    assert isinstance(event, SuiteTicket)
    assert (event.suite_id, event.info_type, event.timestamp) == (SUITE, "suite_ticket", 1403610513)
    assert event.suite_ticket.get_secret_value() == TICKET
    assert event.corp_id is None
    assert not event.queued
    assert event.raw["SuiteTicket"] == TICKET


def test_create_auth() -> None:
    fields = {**common("create_auth"), "AuthCode": AUTH_CODE, "State": "install-42"}
    event = parse_event(document(fields))
    assert type(event) is CreateAuth
    assert event.auth_code.get_secret_value() == AUTH_CODE
    assert event.state == "install-42"
    assert event.auth_corp_id is None
    assert event.corp_id is None
    assert event.queued


def test_create_auth_with_kf_extra_info() -> None:
    doc = (
        f"<xml><SuiteId><![CDATA[{SUITE}]]></SuiteId><AuthCode><![CDATA[{AUTH_CODE}]]></AuthCode>"
        "<InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>1403610513</TimeStamp>"
        "<ExtraInfo><AuthOpenKfIdList><OpenKfId><![CDATA[wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q]]></OpenKfId>"
        "<OpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyAAA]]></OpenKfId></AuthOpenKfIdList></ExtraInfo></xml>"
    ).encode()
    event = parse_event(doc)
    assert isinstance(event, CreateAuth)
    assert event.state is None
    assert event.raw["ExtraInfo"]["AuthOpenKfIdList"]["OpenKfId"] == [
        "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q",
        "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyAAA",
    ]


def test_change_auth() -> None:
    event = parse_event(document({**common("change_auth"), "AuthCorpId": CORP, "State": "s"}))
    assert type(event) is ChangeAuth
    assert event.auth_corp_id == CORP
    assert event.corp_id == CORP
    assert event.state == "s"
    assert event.queued


def test_cancel_auth() -> None:
    event = parse_event(document({**common("cancel_auth"), "AuthCorpId": CORP}))
    assert type(event) is CancelAuth
    assert event.corp_id == CORP
    assert event.queued


def test_reset_permanent_code() -> None:
    event = parse_event(document({**common("reset_permanent_code"), "AuthCorpId": CORP, "AuthCode": AUTH_CODE}))
    assert type(event) is ResetPermanentCode
    assert event.auth_code.get_secret_value() == AUTH_CODE
    assert event.corp_id == CORP
    assert event.queued
    without_corp = parse_event(document({**common("reset_permanent_code"), "AuthCode": AUTH_CODE}))
    assert isinstance(without_corp, ResetPermanentCode)
    assert without_corp.corp_id is None


def test_auth_data_permission() -> None:
    event = parse_event(document({**common("auth_data_permission"), "AuthCorpId": CORP, "AuthType": "data_zone_chat"}))
    assert type(event) is AuthDataPermission
    assert (event.corp_id, event.auth_type, event.info_type) == (CORP, "data_zone_chat", "auth_data_permission")
    assert event.queued


def test_expire_remind_data_permission() -> None:
    fields = {**common("expire_remind_data_permission"), "AuthCorpId": CORP, "AuthType": "customer_acquisition"}
    event = parse_event(document(fields))
    assert type(event) is ExpireRemindDataPermission
    assert isinstance(event, AuthDataPermission)
    assert (event.corp_id, event.auth_type) == (CORP, "customer_acquisition")
    assert event.queued


def test_plain_text_values_and_element_order_are_irrelevant() -> None:
    fields = {"AuthCorpId": CORP, "TimeStamp": 1403610513, "InfoType": "cancel_auth", "SuiteId": SUITE}
    event = parse_event(document(fields, cdata=False, sep=""))
    assert isinstance(event, CancelAuth)
    assert (event.suite_id, event.corp_id, event.timestamp) == (SUITE, CORP, 1403610513)


def test_whitespace_around_values_is_stripped() -> None:
    doc = (
        f"<xml>\n\t<SuiteId>\n  {SUITE}\n</SuiteId>\n\t<InfoType> <![CDATA[ create_auth ]]>\n</InfoType>"
        f"<TimeStamp>\n 1403610513 \n</TimeStamp><AuthCode><![CDATA[\n {AUTH_CODE}\t]]></AuthCode>"
        "<State>  s  </State><AuthCorpId> \n </AuthCorpId>\n</xml>"
    ).encode()
    event = parse_event(doc)
    assert isinstance(event, CreateAuth)
    assert (event.suite_id, event.info_type, event.timestamp, event.state) == (SUITE, "create_auth", 1403610513, "s")
    assert event.auth_code.get_secret_value() == AUTH_CODE
    assert event.corp_id is None  # a blank AuthCorpId names no corp


def test_ticket_whitespace_is_stripped() -> None:
    event = parse_event(document({**common("suite_ticket"), "SuiteTicket": f"  {TICKET}\n"}))
    assert isinstance(event, SuiteTicket)
    assert event.suite_ticket.get_secret_value() == TICKET


# -- malformed events ------------------------------------------------------------------------------

TYPED: list[tuple[str, type[CallbackEvent], dict[str, Any]]] = [
    ("suite_ticket", SuiteTicket, {"SuiteTicket": TICKET}),
    ("create_auth", CreateAuth, {"AuthCode": AUTH_CODE, "State": "state-value-77"}),
    ("change_auth", ChangeAuth, {"AuthCorpId": CORP, "State": "state-value-77"}),
    ("cancel_auth", CancelAuth, {"AuthCorpId": CORP}),
    ("reset_permanent_code", ResetPermanentCode, {"AuthCode": AUTH_CODE}),
    ("auth_data_permission", AuthDataPermission, {"AuthCorpId": CORP, "AuthType": "data_zone_chat"}),
    ("expire_remind_data_permission", ExpireRemindDataPermission, {"AuthCorpId": CORP, "AuthType": "data_zone_chat"}),
]
REQUIRED = {
    "suite_ticket": ["SuiteTicket"],
    "create_auth": ["AuthCode"],
    "change_auth": ["AuthCorpId"],
    "cancel_auth": ["AuthCorpId"],
    "reset_permanent_code": ["AuthCode"],
    "auth_data_permission": ["AuthCorpId"],
    "expire_remind_data_permission": ["AuthCorpId"],
}
MISSING_CASES = [
    (info_type, model, extra, field)
    for info_type, model, extra in TYPED
    for field in ["SuiteId", "TimeStamp", *REQUIRED[info_type]]
]


def assert_leaks_nothing(exc: BaseException, fields: dict[str, Any]) -> None:
    text = "".join(traceback.format_exception(exc))
    for raw in fields.values():
        value = str(raw).strip()
        if len(value) >= 4 and value not in {"suite_ticket", "create_auth", "change_auth", "cancel_auth"}:
            assert value not in str(exc)
            assert value not in text


@pytest.mark.parametrize(("info_type", "model", "extra", "field"), MISSING_CASES)
def test_typed_events_parse_and_missing_required_field_is_named_not_echoed(
    info_type: str, model: type[CallbackEvent], extra: dict[str, Any], field: str
) -> None:
    complete = {**common(info_type), **extra}
    assert type(parse_event(document(complete))) is model
    incomplete = {k: v for k, v in complete.items() if k != field}
    with pytest.raises(MalformedEventError) as caught:
        parse_event(document(incomplete))
    assert field in str(caught.value)
    assert model.__name__ in str(caught.value)
    assert caught.value.reason == "malformed_event"
    assert_leaks_nothing(caught.value, incomplete)


@pytest.mark.parametrize(("info_type", "model", "extra", "field"), [c for c in MISSING_CASES if c[3] != "TimeStamp"])
def test_blank_required_field_is_malformed(
    info_type: str, model: type[CallbackEvent], extra: dict[str, Any], field: str
) -> None:
    fields = {**common(info_type), **extra, field: " \n "}
    with pytest.raises(MalformedEventError, match=field):
        parse_event(document(fields))


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("TimeStamp", "not-a-number-SECRET123"),
        ("TimeStamp", "-5"),
        ("TimeStamp", "1403610513.5"),
        ("AuthCode", "C" * 513),
        ("State", "<Nested>state-secret-99</Nested>"),
        ("AuthCode", "<X>code-secret-1</X><X>code-secret-2</X>"),
        ("SuiteId", "S" * 129),
    ],
)
def test_invalid_values_are_named_not_echoed(field: str, bad: str) -> None:
    fields = {**common("create_auth"), "AuthCode": AUTH_CODE, "State": "install-state-1", field: bad}
    doc = document({k: v for k, v in fields.items() if k != field}).replace(
        b"</xml>", f"<{field}>{bad}</{field}></xml>".encode()
    )
    with pytest.raises(MalformedEventError, match=field) as caught:
        parse_event(doc)
    assert_leaks_nothing(caught.value, {**fields, "a": "SECRET123", "b": "state-secret-99", "c": "code-secret"})


def test_repeated_ticket_is_malformed() -> None:
    doc = document({**common("suite_ticket"), "SuiteTicket": TICKET}).replace(
        b"</xml>", b"<SuiteTicket>other-ticket-value</SuiteTicket></xml>"
    )
    with pytest.raises(MalformedEventError, match="SuiteTicket") as caught:
        parse_event(doc)
    assert_leaks_nothing(caught.value, {"t": TICKET, "o": "other-ticket-value"})


def test_malformed_xml_is_an_xml_error() -> None:
    with pytest.raises(XmlError):
        parse_event(b"<xml><InfoType>suite_ticket</xml>")
    with pytest.raises(XmlError):
        parse_event(b'<!DOCTYPE xml [<!ENTITY t "x">]><xml><InfoType>&t;</InfoType></xml>')


# -- everything else is a GenericEvent -------------------------------------------------------------


def test_unknown_info_type_is_generic() -> None:
    fields = {**common("change_contact"), "AuthCorpId": CORP, "ChangeType": "create_user", "UserID": "zhangsan"}
    event = parse_event(document(fields))
    assert isinstance(event, GenericEvent)
    assert (event.kind, event.suite_id, event.corp_id) == ("change_contact", SUITE, CORP)
    assert not event.queued
    assert event.raw["UserID"] == "zhangsan"


def test_unknown_info_type_with_padding_and_no_suite() -> None:
    event = parse_event(b"<xml><InfoType>  register_corp </InfoType></xml>")
    assert isinstance(event, GenericEvent)
    assert (event.kind, event.suite_id, event.corp_id) == ("register_corp", None, None)


def test_event_style_with_change_type() -> None:
    doc = (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        "<CreateTime>1403610513</CreateTime><MsgType> event </MsgType><Event><![CDATA[change_contact]]></Event>"
        "<ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>"
    ).encode()
    event = parse_event(doc)
    assert isinstance(event, GenericEvent)
    assert event.kind == "event:change_contact:update_user"


def test_document_without_routing_key_is_unknown() -> None:
    event = parse_event(b"<xml><Foo>bar</Foo></xml>")
    assert isinstance(event, GenericEvent)
    assert event.kind == "unknown"


def test_generic_kind_is_bounded() -> None:
    event = parse_event(document({**common("x" * 500)}))
    assert isinstance(event, GenericEvent)
    assert event.kind == "x" * 128


def test_unknown_info_type_with_auth_corp_and_auth_type_is_a_data_permission_event() -> None:
    # ⚠️ The data-permission-expired InfoType is undocumented (spec §2): route it, do not drop it.
    fields = {**common("cancel_data_permission"), "AuthCorpId": CORP, "AuthType": "data_zone_chat"}
    event = parse_event(document(fields))
    assert type(event) is AuthDataPermission
    assert isinstance(event, AuthEvent)
    assert event.queued
    assert (event.info_type, event.corp_id, event.auth_type) == ("cancel_data_permission", CORP, "data_zone_chat")


@pytest.mark.parametrize("only", ["AuthCorpId", "AuthType"])
def test_unknown_info_type_with_only_one_of_them_stays_generic(only: str) -> None:
    fields = {**common("cancel_data_permission"), only: "v"}
    assert isinstance(parse_event(document(fields)), GenericEvent)


@pytest.mark.parametrize("info_type", ["", "  \n ", None])
def test_blank_or_absent_info_type_with_data_permission_fields_is_generic(info_type: str | None) -> None:
    # Not a known InfoType, so not a malformed one: acknowledged and logged (spec §2.2).
    fields: dict[str, Any] = {"SuiteId": SUITE, "TimeStamp": 1403610513, "AuthCorpId": CORP, "AuthType": "t"}
    if info_type is not None:
        fields["InfoType"] = info_type
    event = parse_event(document(fields))
    assert isinstance(event, GenericEvent)
    assert (event.kind, event.suite_id, event.corp_id) == ("unknown", SUITE, CORP)


# -- secrets never shown ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {**common("suite_ticket"), "SuiteTicket": TICKET},
        {**common("create_auth"), "AuthCode": AUTH_CODE},
        {**common("reset_permanent_code"), "AuthCode": AUTH_CODE, "AuthCorpId": CORP},
    ],
)
def test_repr_and_str_hide_tickets_and_auth_codes(fields: dict[str, Any]) -> None:
    event = parse_event(document(fields))
    for shown in (repr(event), str(event), f"{event}", f"{event!r}", repr(event.model_dump())):
        assert TICKET not in shown
        assert AUTH_CODE not in shown
    assert SUITE in repr(event)  # the model is still described
    assert "raw" not in event.model_dump()


def test_generic_event_repr_hides_raw() -> None:
    event = parse_event(document({**common("change_contact"), "Secretish": TICKET}))
    assert TICKET not in repr(event)
    assert TICKET not in str(event)


# -- the envelope ----------------------------------------------------------------------------------


def test_envelope() -> None:
    body = (
        f"<xml><ToUserName><![CDATA[{SUITE}]]></ToUserName>"
        "<Encrypt><![CDATA[ RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5== ]]></Encrypt>"
        "<AgentID><![CDATA[]]></AgentID></xml>"
    ).encode()
    assert parse_envelope(body) == Envelope(
        encrypt="RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5==",
        to_user_name=SUITE,
        agent_id="",
    )


def test_envelope_hints_are_optional_and_stripped() -> None:
    assert parse_envelope(b"<xml><Encrypt>abc</Encrypt><AgentID> 218 </AgentID></xml>") == Envelope("abc", "", "218")
    nested = parse_envelope(b"<xml><Encrypt>abc</Encrypt><ToUserName><X>1</X></ToUserName></xml>")
    assert nested.to_user_name == ""


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>ww1</ToUserName><AgentID></AgentID></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt> \n </Encrypt></xml>",
        b"<xml><Encrypt><A>x</A></Encrypt></xml>",
        b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
        b"<xml/>",
    ],
)
def test_envelope_without_usable_encrypt_is_an_xml_error(body: bytes) -> None:
    with pytest.raises(XmlError):
        parse_envelope(body)


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml", b"<Encrypt>abc</Encrypt>", b"<xml><Encrypt>abc</Encrypt>", b"<xml><Encrypt>&x;</Encrypt></xml>"],
)
def test_malformed_envelope_is_an_xml_error(body: bytes) -> None:
    with pytest.raises(XmlError):
        parse_envelope(body)


def test_oversized_envelope_is_an_xml_error() -> None:
    from authsync.wecom.callbacks import MAX_BODY_BYTES

    body = b"<xml><Encrypt>" + b"A" * MAX_BODY_BYTES + b"</Encrypt></xml>"
    with pytest.raises(XmlError, match="larger"):
        parse_envelope(body)


# -- authorization-scope events (issue #12): each re-fetches and diffs its corp -----------------------


def change_app_admin(corp: str = CORP, **extra: Any) -> bytes:
    """D-95038's Event-style document: no SuiteId, no InfoType; the corp is ToUserName."""
    fields: dict[str, Any] = {
        "ToUserName": corp,
        "FromUserName": "sys",
        "CreateTime": 1348831860,
        "MsgType": "event",
        "Event": "change_app_admin",
        "AgentID": 1,
        **extra,
    }
    return document(fields)


def test_change_app_admin_event_style_names_its_corp_and_takes_the_suite_from_the_url() -> None:
    event = parse_event(change_app_admin(), suite_id=SUITE)
    assert type(event) is ChangeAppAdmin
    assert isinstance(event, ScopeChange)
    assert event.queued
    assert (event.suite_id, event.info_type, event.corp_id, event.timestamp) == (
        SUITE,
        "change_app_admin",
        CORP,
        1348831860,
    )
    assert event.agent_id == "1"
    assert event.raw["ToUserName"] == CORP  # raw keeps the document as sent
    assert "SuiteId" not in event.raw


def test_change_app_admin_without_a_suite_cannot_be_routed() -> None:
    with pytest.raises(MalformedEventError, match="SuiteId") as caught:
        parse_event(change_app_admin())
    assert caught.value.info_type == "change_app_admin"


def test_change_app_admin_without_its_corp_is_malformed() -> None:
    message = change_app_admin().replace(f"<ToUserName><![CDATA[{CORP}]]></ToUserName>".encode(), b"")
    with pytest.raises(MalformedEventError, match="AuthCorpId") as caught:
        parse_event(message, suite_id=SUITE)
    assert (caught.value.info_type, caught.value.fields["Event"]) == ("change_app_admin", "change_app_admin")


def test_other_event_style_documents_stay_generic() -> None:
    message = change_app_admin().replace(b"change_app_admin", b"change_contact")
    event = parse_event(message, suite_id=SUITE)
    assert isinstance(event, GenericEvent)
    assert event.kind == "event:change_contact"


@pytest.mark.parametrize(
    ("info_type", "model", "extra"),
    [
        ("corp_arch_auth", CorpArchAuth, {"AuthCorpId": CORP}),
        ("approve_special_auth", ApproveSpecialAuth, {"AuthCorpId": CORP, "AuthType": "customer_acquisition"}),
        ("cancel_special_auth", CancelSpecialAuth, {"AuthCorpId": CORP, "AuthType": "customer_acquisition"}),
        # D-93373: CorpId is the sharing (parent / upstream) corp; AgentId its app; AppId legacy.
        ("share_agent_change", ShareAgentChange, {"AppId": 11, "CorpId": CORP, "AgentId": 11}),
        ("share_chain_change", ShareChainChange, {"AppId": 11, "CorpId": CORP, "AgentId": 11}),
        # ⚠️ An InfoType form of change_app_admin (undocumented) routes the same way.
        ("change_app_admin", ScopeChange, {"AuthCorpId": CORP, "AgentID": 1}),
    ],
)
def test_scope_info_types_are_queued_for_their_corp(
    info_type: str, model: type[CallbackEvent], extra: dict[str, Any]
) -> None:
    event = parse_event(document({**common(info_type), **extra}))
    assert type(event) is model
    assert isinstance(event, ScopeChange)
    assert event.queued
    assert (event.suite_id, event.info_type, event.corp_id) == (SUITE, info_type, CORP)


def test_special_auth_keeps_its_auth_type_as_text() -> None:
    fields = {**common("approve_special_auth"), "AuthCorpId": CORP, "AuthType": "something_new"}
    event = parse_event(document(fields))
    assert isinstance(event, ApproveSpecialAuth)
    assert event.auth_type == "something_new"


def test_share_agent_change_prefers_auth_corp_id_and_unwraps_the_doc_typo() -> None:
    both = {**common("share_agent_change"), "AuthCorpId": "wwauth", "CorpId": "wwparent"}
    assert parse_event(document(both)).corp_id == "wwauth"
    # ⚠️ D-93373's sample: <CorpId>![CDATA[ww11111]]</CorpId>
    typo = document({**common("share_agent_change"), "CorpId": "![CDATA[ww11111]]", "AgentId": 11}, cdata=False)
    assert parse_event(typo).corp_id == "ww11111"


def test_an_empty_agent_id_does_not_make_a_scope_event_unroutable() -> None:
    event = parse_event(document({**common("corp_arch_auth"), "AuthCorpId": CORP, "AgentID": ""}))
    assert isinstance(event, CorpArchAuth)
    assert event.corp_id == CORP


@pytest.mark.parametrize(
    "info_type",
    ["corp_arch_auth", "approve_special_auth", "cancel_special_auth", "share_agent_change", "share_chain_change"],
)
def test_scope_info_type_without_its_corp_is_malformed(info_type: str) -> None:
    with pytest.raises(MalformedEventError, match="AuthCorpId") as caught:
        parse_event(document({**common(info_type), "AuthType": "customer_acquisition"}))
    assert caught.value.info_type == info_type
    assert caught.value.fields["InfoType"] == info_type
