"""A full install through the emulator, against the project's own ingest handler served over HTTP.

The emulator pushes to a real local HTTP server that turns each request into an API
Gateway HTTP API v2 event for ``callback_ingest.app.lambda_handler``; AWS is moto (in
this process, so the handler thread sees it too). Flow: ticket push → the handler
stores the ticket → get_suite_token with it → create_auth push → the AuthCode read
back from the FIFO queue → v2 get_permanent_code → get_auth_info → get_corp_token →
chatdata/get_corp_auth_info; then a change_auth after the corp is verified.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from authsync.wecom.callbacks import ChangeAuth, CreateAuth, parse_event
from authsync_dev.emulator import BackgroundHTTPServer, Emulator, HttpRequest, HttpResponse, sample_chat_editions
from authsync_dev.httpapi import http_api_event
from authsync_dev.wecom import TEST_SUITE
from tests.conftest import put_suite_config
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

CALLBACK_PREFIX = "/wecom/callback/"


def _invoke_ingest(request: HttpRequest) -> HttpResponse:
    """What API Gateway + Lambda do for ``/wecom/callback/{suite_id}``."""
    import callback_ingest.app

    if not request.path.startswith(CALLBACK_PREFIX):
        return HttpResponse(404, b"Not Found")
    event = http_api_event(
        request.method,
        request.path,
        query=request.query_string,
        body=request.body.decode("utf-8") if request.body else None,
        path_parameters={"suite_id": request.path[len(CALLBACK_PREFIX) :]},
        headers={"content-type": request.headers.get("content-type", "")},
        route_key=f"{request.method} /wecom/callback/{{suite_id}}",
    )
    result = callback_ingest.app.lambda_handler(event, FakeLambdaContext())
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    content_type = (result.get("headers") or {}).get("Content-Type", "text/plain")
    return HttpResponse(int(result["statusCode"]), raw, content_type)


@pytest.fixture
def environment(deployment, monkeypatch) -> dict[str, str]:
    env: dict[str, str] = deployment.function_environment("CallbackIngestFunction")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def ingest(environment) -> Iterator[BackgroundHTTPServer]:
    fresh("callback_ingest.app")  # init under this test's environment and moto
    server = BackgroundHTTPServer(_invoke_ingest).start()
    try:
        yield server
    finally:
        server.stop()


def _receive(queue_url: str) -> list[MessageTypeDef]:
    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return answer.get("Messages", [])


def _post(wecom: Emulator, path: str, body: dict[str, Any], **query: str) -> dict[str, Any]:
    response = requests.post(f"{wecom.api_url}/{path}", params=query, json=body, timeout=10)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    assert document.get("errcode", 0) == 0, document
    return document


def test_full_install_against_the_ingest_handler(deployment, environment, ingest):
    put_suite_config(deployment, TEST_SUITE)
    with Emulator(callback_url=ingest.url + "/wecom/callback", retry_delays=(0.05, 0.05, 0.05)) as wecom:
        suite = wecom.add_suite(
            TEST_SUITE.suite_id,
            TEST_SUITE.suite_secret,
            TEST_SUITE.token,
            TEST_SUITE.encoding_aes_key,
            provider_corpid=TEST_SUITE.provider_corpid,
        )
        corp = wecom.add_corp("wwintegration00001", "集成测试企业")

        # 1. suite_ticket push: the handler keeps the newest ticket in Secrets Manager.
        pushed = wecom.push_suite_ticket(suite.suite_id)
        assert pushed.delivery is not None
        assert [(a.status, a.answer) for a in pushed.delivery.attempts] == [(200, "success")]
        secret = boto3.client("secretsmanager").get_secret_value(
            SecretId=f"{environment['SUITE_SECRET_PREFIX']}{suite.suite_id}/ticket"
        )
        stored_ticket = json.loads(secret["SecretString"])["suite_ticket"]
        assert stored_ticket == pushed.suite_ticket

        # 2. get_suite_token with the ticket the handler stored.
        suite_token = _post(
            wecom,
            "service/get_suite_token",
            {"suite_id": suite.suite_id, "suite_secret": TEST_SUITE.suite_secret, "suite_ticket": stored_ticket},
        )["suite_access_token"]

        # 3. create_auth push: the handler enqueues the decrypted event on the FIFO queue.
        created = wecom.create_auth(suite.suite_id, corp.corpid, state="it", chat_editions=sample_chat_editions())
        assert created.delivered
        assert created.delivery is not None
        (answer,) = created.delivery.attempts  # answered within WeCom's 1,000 ms, at the first attempt
        assert answer.outcome == "success"
        assert answer.latency_ms < 1000
        (message,) = _receive(environment["EVENTS_QUEUE_URL"])
        assert message["MessageAttributes"]["info_type"]["StringValue"] == "create_auth"
        event = parse_event(message["Body"].encode())
        assert isinstance(event, CreateAuth)
        auth_code = event.auth_code.get_secret_value()
        assert auth_code == created.auth_code

        # 4-7. permanent code (v2), auth info, corp token, chatdata authorization.
        permanent = _post(
            wecom, "service/v2/get_permanent_code", {"auth_code": auth_code}, suite_access_token=suite_token
        )
        assert permanent["auth_corp_info"]["corpid"] == corp.corpid
        credentials = {"auth_corpid": corp.corpid, "permanent_code": permanent["permanent_code"]}
        info = _post(wecom, "service/get_auth_info", credentials, suite_access_token=suite_token)
        assert info["auth_corp_info"]["corp_type"] == "unverified"
        corp_token = _post(wecom, "service/get_corp_token", credentials, suite_access_token=suite_token)["access_token"]
        chat = _post(wecom, "chatdata/get_corp_auth_info", {}, access_token=corp_token)
        assert [e["edition"] for e in chat["auth_edition_list"]] == [1, 2]

        # The corp completes 主体验证: change_auth reaches the queue, the re-query sees it.
        (delivery,) = wecom.verify_corp(corp.corpid)
        assert delivery.delivered
        (message,) = _receive(environment["EVENTS_QUEUE_URL"])
        change = parse_event(message["Body"].encode())
        assert isinstance(change, ChangeAuth)
        assert change.auth_corp_id == corp.corpid
        info = _post(wecom, "service/get_auth_info", credentials, suite_access_token=suite_token)
        assert info["auth_corp_info"]["corp_type"] == "verified"

        for endpoint in (
            "service/get_suite_token",
            "service/v2/get_permanent_code",
            "service/get_corp_token",
            "chatdata/get_corp_auth_info",
        ):
            assert wecom.calls(endpoint) == 1, endpoint
        assert wecom.calls("service/get_auth_info") == 2


def test_rejected_callbacks_are_retried_and_logged(deployment, ingest):
    """The handler answers 404 for a suite it has no config for; under "retry any" WeCom re-sends three times."""
    with Emulator(callback_url=ingest.url + "/wecom/callback", retry_delays=(0.0, 0.0, 0.0), retry_on="any") as wecom:
        suite = wecom.add_suite()
        result = wecom.push_suite_ticket(suite.suite_id)
    assert result.delivery is not None
    assert [(a.attempt, a.status, a.outcome, a.answer) for a in result.delivery.attempts] == [
        (n, 404, "http_status", "unknown_suite") for n in (1, 2, 3, 4)
    ]


def test_an_sqs_outage_still_answers_authorization_events_in_time_and_loses_none(
    deployment, environment, ingest, monkeypatch
):
    """SQS refuses every send: the four authorization InfoTypes are still answered ``success`` within 1 s
    (WeCom would not re-send a 503), each kept in the inbox; nothing reaches the queue until the drain."""
    from botocore.exceptions import EndpointConnectionError

    import callback_ingest.app

    def unreachable(**_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    publisher: Any = callback_ingest.app.ingestor._publisher
    monkeypatch.setattr(publisher._client, "send_message", unreachable)
    put_suite_config(deployment, TEST_SUITE)
    with Emulator(callback_url=ingest.url + "/wecom/callback", retry_delays=(0.0, 0.0, 0.0)) as wecom:
        suite = wecom.add_suite(
            TEST_SUITE.suite_id, TEST_SUITE.suite_secret, TEST_SUITE.token, TEST_SUITE.encoding_aes_key
        )
        corp = wecom.add_corp("wwintegration00002")
        pushes = [wecom.create_auth(suite.suite_id, corp.corpid)]
        pushes.append(wecom.change_auth(suite.suite_id, corp.corpid))
        pushes.append(wecom.cancel_auth(suite.suite_id, corp.corpid))

    attempts = [a for push in pushes for a in (push.delivery.attempts if push.delivery else ())]
    assert [(a.event, a.outcome) for a in attempts] == [
        ("create_auth", "success"),
        ("change_auth", "success"),
        ("cancel_auth", "success"),
    ]
    assert all(a.latency_ms < 1000 for a in attempts), [a.latency_ms for a in attempts]
    assert _receive(environment["EVENTS_QUEUE_URL"]) == []
    kept = boto3.client("dynamodb").scan(TableName=environment["INBOX_TABLE"])["Items"]
    assert len(kept) == 3


@pytest.mark.parametrize("provider_configured", [True, False])
def test_entitlement_pushes_against_the_ingest_handler(deployment, environment, ingest, provider_configured):
    """Order InfoTypes (encrypted for the suite) and unlicensed_notify (for the corp) are acknowledged and queued
    for their corp; the license system events, encrypted for the provider corpid, only when the suite's config
    names that provider (its receiveid), else refused as a foreign receiveid."""
    put_suite_config(deployment, TEST_SUITE, **({} if provider_configured else {"provider_corpid": None}))
    with Emulator(callback_url=ingest.url + "/wecom/callback", retry_delays=(0.0, 0.0, 0.0)) as wecom:
        suite = wecom.add_suite(
            TEST_SUITE.suite_id, TEST_SUITE.suite_secret, TEST_SUITE.token, TEST_SUITE.encoding_aes_key
        )
        corp = wecom.add_corp("wwintegration00003")
        wecom.create_auth(suite.suite_id, corp.corpid, push=False)
        orders = wecom.buy_edition(suite.suite_id, corp.corpid).deliveries
        licenses = wecom.buy_licenses(suite.suite_id, corp.corpid).deliveries
        licenses += wecom.activate_accounts(suite.suite_id, corp.corpid, ["zhangsan", "lisi"], auto=True).deliveries
        notify = wecom.unlicensed_notify(suite.suite_id, corp.corpid).delivery
    assert notify is not None
    answered = {d.event: [(a.status, a.answer) for a in d.attempts] for d in (*orders, *licenses, notify)}
    refused = [(403, "receiveid")]
    assert answered == {
        "open_order": [(200, "success")],
        "pay_for_app_success": [(200, "success")],
        "change_editon": [(200, "success")],
        "unlicensed_notify": [(200, "success")],
        "license_pay_success": [(200, "success")] if provider_configured else refused,
        "auto_activate": [(200, "success")] if provider_configured else refused,
    }
    queued = _receive(environment["EVENTS_QUEUE_URL"])
    assert sorted(m["MessageAttributes"]["info_type"]["StringValue"] for m in queued) == sorted(
        ["open_order", "pay_for_app_success", "change_editon", "unlicensed_notify"]
        + (["license_pay_success", "auto_activate"] if provider_configured else [])
    )
    assert {m["MessageAttributes"]["corp_id"]["StringValue"] for m in queued} == {corp.corpid}
    assert boto3.client("dynamodb").scan(TableName=environment["UNMODELLED_TABLE"])["Items"] == []
