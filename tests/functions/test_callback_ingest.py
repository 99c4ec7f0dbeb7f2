"""callback-ingest end to end: HTTP API events into the real handler, moto behind it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote

import boto3
import pytest
from wechatpy.enterprise.crypto import WeChatCrypto

from authsync_dev.httpapi import http_api_event
from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE, SignedCallback, TestSuite, event_xml, sign_echostr, sign_event
from tests.conftest import put_suite_config
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext
from tests.logs import structured_logs

PREFIX = "/wecom/callback/"
PATH = f"{PREFIX}{TEST_SUITE.suite_id}"
CORP = "wwcorp000000000001"


@pytest.fixture
def handler(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The deployed handler with the environment template.yaml gives it."""
    for name, value in deployment.function_environment("CallbackIngestFunction").items():
        monkeypatch.setenv(name, value)
    app = fresh("callback_ingest.app")

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext())
        return response

    return invoke


@pytest.fixture
def log_lines(handler: Callable[..., dict[str, Any]]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The handler's structured log lines."""
    from callback_ingest import app

    with structured_logs(app.logger) as lines:
        yield lines


def request(method: str, path: str = PATH, **kwargs: Any) -> dict[str, Any]:
    """The event API Gateway sends for the callback route: it matched ``{suite_id}`` (URL-decoded) already."""
    return http_api_event(
        method,
        path,
        path_parameters={"suite_id": unquote(path.removeprefix(PREFIX))},
        route_key=f"{method} {PREFIX}{{suite_id}}",
        **kwargs,
    )


def post(signed: SignedCallback, *, path: str = PATH, method: str = "POST", **kwargs: Any) -> dict[str, Any]:
    return request(method, path, query=signed.query, body=signed.body, **kwargs)


def queue_messages(deployment: Deployment) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = deployment.physical["AuthEventsQueue"]
    messages: list[Any] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        messages.extend(got)


def stored_ticket(deployment: Deployment) -> dict[str, Any]:
    prefix = deployment.function_environment("CallbackIngestFunction")["SUITE_SECRET_PREFIX"]
    value = boto3.client("secretsmanager").get_secret_value(
        SecretId=f"{prefix}{TEST_SUITE.suite_id}/ticket", VersionStage="AWSCURRENT"
    )
    result: dict[str, Any] = json.loads(value["SecretString"])
    return result


def ticket_xml(ticket: str, timestamp: int) -> str:
    return event_xml(
        {"SuiteId": TEST_SUITE.suite_id, "InfoType": "suite_ticket", "TimeStamp": timestamp, "SuiteTicket": ticket}
    )


def create_auth_xml(code: str = "AUTHCODE-0001", timestamp: int = 1_700_000_000) -> str:
    return event_xml(
        {
            "SuiteId": TEST_SUITE.suite_id,
            "AuthCode": code,
            "InfoType": "create_auth",
            "TimeStamp": timestamp,
            "State": "s1",
        }
    )


def change_auth_xml(corp: str = CORP, timestamp: int = 1_700_000_100) -> str:
    return event_xml(
        {"SuiteId": TEST_SUITE.suite_id, "InfoType": "change_auth", "TimeStamp": timestamp, "AuthCorpId": corp}
    )


# --------------------------------------------------------------------------- GET


@pytest.mark.usefixtures("suite")
def test_url_verification_echoes_plaintext_byte_exact(handler: Callable[..., dict[str, Any]]) -> None:
    signed = sign_echostr(TEST_SUITE.crypto(TEST_SUITE.provider_corpid), "1288432023552776189")
    response = handler(request("GET", PATH, query=signed.query))
    assert response["statusCode"] == 200
    assert response["body"] == "1288432023552776189"
    assert response["headers"]["Content-Type"].startswith("text/plain")


@pytest.mark.usefixtures("suite")
def test_responses_are_http_api_proxy_results_in_plain_text(handler: Callable[..., dict[str, Any]]) -> None:
    """The exact dicts Powertools' APIGatewayHttpResolver returned before the handler dispatched itself."""
    crypto = TEST_SUITE.crypto()

    def plain(status: int, body: str) -> dict[str, Any]:
        return {
            "statusCode": status,
            "body": body,
            "isBase64Encoded": False,
            "headers": {"Content-Type": "text/plain; charset=utf-8"},
            "cookies": [],
        }

    signed = sign_echostr(TEST_SUITE.crypto(TEST_SUITE.provider_corpid), "42")
    assert handler(request("GET", query=signed.query)) == plain(200, "42")
    assert handler(post(sign_event(crypto, change_auth_xml()))) == plain(200, "success")
    assert handler(request("GET", query={**signed.query, "msg_signature": "0" * 40})) == plain(403, "signature")
    assert handler(post(sign_event(crypto, change_auth_xml()), path=f"{PREFIX}wwnosuchsuite")) == plain(
        404, "unknown_suite"
    )


@pytest.mark.usefixtures("suite")
def test_url_verification_tolerates_unencoded_plus(handler: Callable[..., dict[str, Any]]) -> None:
    """A raw '+' in the query (not %2B) must still verify: we never form-decode '+' to a space."""
    crypto = TEST_SUITE.crypto()
    for attempt in range(50):  # find an echostr with a '+' in it
        signed = sign_echostr(crypto, f"echo-{attempt}", timestamp=1_700_000_000, nonce="42")
        if "+" in signed.query["echostr"]:
            break
    raw = "&".join(f"{k}={quote(v, safe='+/=')}" for k, v in signed.query.items())
    assert "+" in raw
    response = handler(request("GET", PATH, query=raw))
    assert (response["statusCode"], response["body"]) == (200, f"echo-{attempt}")


@pytest.mark.usefixtures("suite")
def test_url_verification_rejects_bad_signature(handler: Callable[..., dict[str, Any]]) -> None:
    signed = sign_echostr(TEST_SUITE.crypto(), "12345")
    query = {**signed.query, "msg_signature": "0" * 40}
    response = handler(request("GET", PATH, query=query))
    assert (response["statusCode"], response["body"]) == (403, "signature")


# --------------------------------------------------------------------------- POST: tickets


@pytest.mark.usefixtures("suite")
def test_suite_ticket_is_stored_and_an_older_one_does_not_replace_it(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    crypto = TEST_SUITE.crypto()
    first = handler(post(sign_event(crypto, ticket_xml("ticket-newer", 1_700_000_600))))
    assert (first["statusCode"], first["body"]) == (200, "success")
    assert stored_ticket(deployment)["suite_ticket"] == "ticket-newer"

    older = handler(post(sign_event(crypto, ticket_xml("ticket-older", 1_700_000_000))))
    assert (older["statusCode"], older["body"]) == (200, "success")  # acknowledged, not stored
    assert stored_ticket(deployment)["suite_ticket"] == "ticket-newer"

    newest = handler(post(sign_event(crypto, ticket_xml("ticket-newest", 1_700_001_200))))
    assert newest["statusCode"] == 200
    assert stored_ticket(deployment) | {"received_at": 0} == {
        "suite_ticket": "ticket-newest",
        "timestamp": 1_700_001_200,
        "received_at": 0,
    }
    assert queue_messages(deployment) == []  # tickets never go on the queue


# --------------------------------------------------------------------------- POST: authorization events


@pytest.mark.usefixtures("suite")
def test_wechatpy_encrypted_create_auth_delivered_three_times_yields_one_message(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    wecom = WeChatCrypto(TEST_SUITE.token, TEST_SUITE.encoding_aes_key, TEST_SUITE.suite_id)
    xml = create_auth_xml("AUTHCODE-FROM-WECHATPY")
    for attempt in range(3):
        # WeCom may re-encrypt a retry: each delivery has fresh randomness, nonce and timestamp.
        nonce, timestamp = f"nonce{attempt}", str(1_700_000_000 + attempt)
        envelope = wecom.encrypt_message(xml, nonce, timestamp)
        from authsync.wecom.safexml import parse

        fields = parse(envelope.encode(), max_bytes=65536)
        body = (
            f"<xml><ToUserName><![CDATA[{TEST_SUITE.suite_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        )
        query = {"msg_signature": fields["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        response = handler(request("POST", PATH, query=query, body=body))
        assert (response["statusCode"], response["body"]) == (200, "success")

    messages = queue_messages(deployment)
    assert len(messages) == 1
    message = messages[0]
    assert message["Body"] == xml
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"kind": "callback", "suite_id": TEST_SUITE.suite_id, "info_type": "create_auth"}
    assert message["Attributes"]["MessageGroupId"].startswith(f"{TEST_SUITE.suite_id}:code:")


@pytest.mark.usefixtures("suite")
def test_corp_events_are_grouped_per_corp(handler: Callable[..., dict[str, Any]], deployment: Deployment) -> None:
    crypto = TEST_SUITE.crypto()
    suite = TEST_SUITE.suite_id
    documents = [
        change_auth_xml(),
        event_xml({"SuiteId": suite, "InfoType": "cancel_auth", "TimeStamp": 1_700_000_200, "AuthCorpId": CORP}),
        event_xml(
            {
                "SuiteId": suite,
                "InfoType": "auth_data_permission",
                "TimeStamp": 1_700_000_300,
                "AuthCorpId": "wwcorp2",
                "AuthType": "data_zone_chat",
            }
        ),
        event_xml(
            {"SuiteId": suite, "InfoType": "reset_permanent_code", "TimeStamp": 1_700_000_400, "AuthCode": "RC1"}
        ),
    ]
    for document in documents:
        assert handler(post(sign_event(crypto, document)))["body"] == "success"
    groups = [
        (m["MessageAttributes"]["info_type"]["StringValue"], m["Attributes"]["MessageGroupId"])
        for m in queue_messages(deployment)
    ]
    by_type = dict(groups)
    assert by_type["change_auth"] == by_type["cancel_auth"] == f"{suite}:{CORP}"
    assert by_type["auth_data_permission"] == f"{suite}:wwcorp2"
    assert by_type["reset_permanent_code"].startswith(f"{suite}:code:")
    assert len(groups) == 4


@pytest.mark.usefixtures("suite")
def test_unknown_info_types_and_event_xml_are_acknowledged_not_enqueued(
    handler: Callable[..., dict[str, Any]], deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    crypto = TEST_SUITE.crypto()
    documents = [
        event_xml(
            {
                "SuiteId": TEST_SUITE.suite_id,
                "InfoType": "change_contact",
                "TimeStamp": 1,
                "AuthCorpId": CORP,
                "ChangeType": "create_user",
            }
        ),
        event_xml(
            {
                "ToUserName": CORP,
                "FromUserName": "sys",
                "CreateTime": 1,
                "MsgType": "event",
                "Event": "change_contact",
                "ChangeType": "update_user",
            }
        ),
    ]
    for document in documents:
        response = handler(post(sign_event(crypto, document)))
        assert (response["statusCode"], response["body"]) == (200, "success")
    assert queue_messages(deployment) == []


@pytest.mark.usefixtures("suite")
def test_base64_encoded_body_is_decoded(handler: Callable[..., dict[str, Any]], deployment: Deployment) -> None:
    response = handler(post(sign_event(TEST_SUITE.crypto(), change_auth_xml()), base64_body=True))
    assert response["body"] == "success"
    assert len(queue_messages(deployment)) == 1


# --------------------------------------------------------------------------- bad input


def _tamper_encrypt(signed: SignedCallback) -> SignedCallback:
    assert signed.body is not None
    return SignedCallback(signed.query, signed.body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA"))


def _resign(suite: TestSuite, encrypted: str, timestamp: str = "1700000000", nonce: str = "7") -> SignedCallback:
    body = f"<xml><ToUserName>x</ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    return SignedCallback(
        {"msg_signature": suite.crypto().sign(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce},
        body,
    )


BAD_INPUTS: dict[str, tuple[Callable[[], dict[str, Any]], int, str]] = {
    "missing signature": (
        lambda: request("POST", PATH, query={"timestamp": "1", "nonce": "2"}, body="<xml/>"),
        400,
        "missing_parameter",
    ),
    "bad signature": (
        lambda: post(_tamper_encrypt(sign_event(TEST_SUITE.crypto(), change_auth_xml()))),
        403,
        "signature",
    ),
    "undecryptable (signed garbage)": (lambda: post(_resign(TEST_SUITE, "QUJD")), 400, "padding"),
    "not base64 (signed)": (lambda: post(_resign(TEST_SUITE, "%%%%")), 400, "base64"),
    "wrong receiveid": (
        lambda: post(sign_event(TEST_SUITE.crypto("wwsomeothersuite"), change_auth_xml())),
        403,
        "receiveid",
    ),
    "malformed outer xml": (
        lambda: request(
            "POST", PATH, query={"msg_signature": "a", "timestamp": "1", "nonce": "2"}, body="<xml><Encrypt>"
        ),
        400,
        "xml",
    ),
    "malformed inner xml": (lambda: post(sign_event(TEST_SUITE.crypto(), "<xml><SuiteId>")), 400, "xml"),
    # Validly signed, but not UTF-8: once a 503 (the queue body could not be decoded), now refused.
    "utf-16 inner document (signed)": (
        lambda: post(sign_event(TEST_SUITE.crypto(), change_auth_xml().encode("utf-16"))),
        400,
        "xml",
    ),
    "utf-16 inner document without a BOM (signed)": (
        lambda: post(sign_event(TEST_SUITE.crypto(), change_auth_xml().encode("utf-16-le"))),
        400,
        "xml",
    ),
    "inner xml with a DTD (XXE)": (
        lambda: post(
            sign_event(
                TEST_SUITE.crypto(),
                '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                f"<xml><SuiteId>{TEST_SUITE.suite_id}</SuiteId><InfoType>change_auth</InfoType>"
                "<TimeStamp>1</TimeStamp><AuthCorpId>&x;</AuthCorpId></xml>",
            )
        ),
        400,
        "xml",
    ),
    "oversized body": (
        lambda: request(
            "POST",
            PATH,
            query={"msg_signature": "a", "timestamp": "1", "nonce": "2"},
            body="<xml>" + "A" * 70_000 + "</xml>",
        ),
        413,
        "too_large",
    ),
    "unknown suite": (
        lambda: post(sign_event(TEST_SUITE.crypto(), change_auth_xml()), path="/wecom/callback/wwnosuchsuite"),
        404,
        "unknown_suite",
    ),
    "malformed suite id": (
        lambda: post(sign_event(TEST_SUITE.crypto(), change_auth_xml()), path="/wecom/callback/..%2Fother"),
        404,
        "unknown_suite",
    ),
    "event for another suite": (
        lambda: post(
            sign_event(
                TEST_SUITE.crypto(),
                event_xml({"SuiteId": "wwanothersuite", "InfoType": "change_auth", "TimeStamp": 1, "AuthCorpId": CORP}),
            )
        ),
        403,
        "suite_mismatch",
    ),
    "duplicate parameter": (
        lambda: request("POST", PATH, query="msg_signature=a&msg_signature=b&timestamp=1&nonce=2", body="<xml/>"),
        400,
        "duplicate_parameter",
    ),
    "bad base64 transport encoding": (
        lambda: {
            **request("POST", PATH, query={"msg_signature": "a", "timestamp": "1", "nonce": "2"}, body="x"),
            "body": "***",
            "isBase64Encoded": True,
        },
        400,
        "body_encoding",
    ),
}


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx_and_nothing_is_stored(
    case: str,
    handler: Callable[..., dict[str, Any]],
    deployment: Deployment,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    build, status, reason = BAD_INPUTS[case]
    response = handler(build())
    assert (response["statusCode"], response["body"]) == (status, reason)
    assert queue_messages(deployment) == []
    rejected = [entry for entry in log_lines() if entry.get("message") == "callback rejected"]
    assert len(rejected) == 1
    assert rejected[0]["reason"] == reason
    assert rejected[0]["status"] == status
    with pytest.raises(boto3.client("secretsmanager").exceptions.ResourceNotFoundException):
        stored_ticket(deployment)


@pytest.mark.usefixtures("suite")
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", ""])
def test_other_methods_are_a_405_and_nothing_is_read_or_stored(
    method: str,
    handler: Callable[..., dict[str, Any]],
    deployment: Deployment,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    """API Gateway routes only GET and POST here; anything else is refused before any AWS call."""
    from callback_ingest import app

    calls: list[str] = []
    client = app.ingestor._suites._secrets.client  # type: ignore[attr-defined]
    client.meta.events.register("before-call.secrets-manager.*", lambda model, **_: calls.append(model.name))
    response = handler(post(sign_event(TEST_SUITE.crypto(), ticket_xml("ticket-x", 1_700_000_000)), method=method))
    assert response == {
        "statusCode": 405,
        "body": "method_not_allowed",
        "isBase64Encoded": False,
        "headers": {"Content-Type": "text/plain; charset=utf-8", "Allow": "GET, POST"},
        "cookies": [],
    }
    (rejected,) = [entry for entry in log_lines() if entry.get("message") == "callback rejected"]
    assert (rejected["status"], rejected["reason"], rejected["suite_id"]) == (
        405,
        "method_not_allowed",
        TEST_SUITE.suite_id,
    )
    assert calls == []
    assert queue_messages(deployment) == []


@pytest.mark.usefixtures("suite")
def test_a_queue_failure_keeps_the_request_in_the_inbox_and_answers_success(
    handler: Callable[..., dict[str, Any]], deployment: Deployment, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """WeCom re-sends only after a network failure or a timeout: a 503 could lose the event, so it is kept."""
    boto3.client("sqs").delete_queue(QueueUrl=deployment.physical["AuthEventsQueue"])
    signed = sign_event(TEST_SUITE.crypto(), create_auth_xml("AUTHCODE-KEPT-SECRET"))

    response = handler(post(signed))

    assert (response["statusCode"], response["body"]) == (200, "success")
    (kept,) = [entry for entry in log_lines() if entry.get("message") == "callback kept in the inbox"]
    assert (kept["level"], kept["reason"], kept["kind"]) == ("WARNING", "QueueDoesNotExist", "create_auth")
    (item,) = inbox_items(deployment)
    assert item["body"]["B"] == signed.body  # as WeCom sent it: still encrypted
    assert item["msg_signature"]["S"] == signed.query["msg_signature"]
    assert "AUTHCODE-KEPT-SECRET" not in repr(item)


@pytest.mark.usefixtures("suite")
def test_when_even_the_inbox_fails_the_answer_is_a_503_and_an_error(
    handler: Callable[..., dict[str, Any]], deployment: Deployment, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    boto3.client("sqs").delete_queue(QueueUrl=deployment.physical["AuthEventsQueue"])
    boto3.client("dynamodb").delete_table(TableName=deployment.physical["InboxTable"])
    response = handler(post(sign_event(TEST_SUITE.crypto(), change_auth_xml())))
    assert (response["statusCode"], response["body"]) == (503, "temporarily_unavailable")
    (failed,) = [entry for entry in log_lines() if entry.get("message") == "callback failed"]
    assert failed["level"] == "ERROR"
    assert failed["error_type"] == "QueueDoesNotExist"  # the first failure is the one reported
    assert failed["suite_id"] == TEST_SUITE.suite_id
    assert "QueueDoesNotExist" in failed["exception"]


def test_a_suite_config_that_cannot_be_read_keeps_the_unverified_request(
    handler: Callable[..., dict[str, Any]], deployment: Deployment, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    put_suite_config(deployment, encoding_aes_key="tooshort")
    response = handler(post(sign_event(TEST_SUITE.crypto(), change_auth_xml())))
    assert (response["statusCode"], response["body"]) == (200, "success")
    (kept,) = [entry for entry in log_lines() if entry.get("message") == "callback kept in the inbox"]
    assert (kept["reason"], kept["kind"]) == ("SuiteConfigError", "unverified")
    assert len(inbox_items(deployment)) == 1
    assert queue_messages(deployment) == []


def inbox_items(deployment: Deployment) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=deployment.physical["InboxTable"])["Items"]
    return items


@pytest.mark.usefixtures("suite")
def test_secrets_never_appear_in_logs(
    handler: Callable[..., dict[str, Any]],
    log_lines: Callable[[], list[dict[str, Any]]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Our loggers at DEBUG (botocore's own DEBUG wire log is off in Lambda and not ours to police).
    caplog.set_level(logging.DEBUG, logger="callback-ingest")
    caplog.set_level(logging.DEBUG, logger="authsync")
    crypto = TEST_SUITE.crypto()
    secrets = ["TICKET-SECRET-VALUE", "AUTHCODE-SECRET-VALUE", "RESETCODE-SECRET-VALUE"]
    handler(post(sign_event(crypto, ticket_xml(secrets[0], 1_700_000_000))))
    handler(post(sign_event(crypto, create_auth_xml(secrets[1]))))
    handler(
        post(
            sign_event(
                crypto,
                event_xml(
                    {
                        "SuiteId": TEST_SUITE.suite_id,
                        "InfoType": "reset_permanent_code",
                        "TimeStamp": 5,
                        "AuthCode": secrets[2],
                    }
                ),
            )
        )
    )
    handler(post(sign_event(TEST_SUITE.crypto("wwwrong"), create_auth_xml(secrets[1]))))  # rejected path
    handler(request("GET", PATH, query=sign_echostr(crypto, "echo").query))
    captured = capfd.readouterr()
    output = json.dumps(log_lines(), ensure_ascii=False) + captured.out + captured.err + caplog.text
    assert "callback accepted" in output
    for value in [*secrets, TEST_SUITE.token, TEST_SUITE.encoding_aes_key, TEST_SUITE.suite_secret]:
        assert value not in output


@pytest.mark.usefixtures("suite")
def test_suite_config_is_read_once_per_container(
    handler: Callable[..., dict[str, Any]], deployment: Deployment
) -> None:
    from callback_ingest import app

    calls: list[str] = []
    client = app.ingestor._suites._secrets.client  # type: ignore[attr-defined]
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda **kw: calls.append(kw["params"]["SecretId"])
    )
    crypto = TEST_SUITE.crypto()
    for i in range(5):
        assert handler(post(sign_event(crypto, change_auth_xml(timestamp=1_700_000_000 + i))))["body"] == "success"
    config_reads = [c for c in calls if c.endswith("/config")]
    assert len(config_reads) == 1
