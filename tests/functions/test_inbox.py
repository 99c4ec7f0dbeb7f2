"""The inbox end to end: callback-ingest keeps what it cannot finish, inbox-drain replays it (moto, real handlers).

An SQS or Secrets Manager outage at ingest loses nothing: every validly signed callback gets
``success``, is kept while the outage lasts and reaches the queue (with the deduplication id a
direct send would have had) or the ticket store once it is over.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from authsync_dev.httpapi import http_api_event
from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE, SignedCallback, event_xml, sign_event
from tests.conftest import put_suite_config
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext
from tests.logs import structured_logs

SUITE = TEST_SUITE.suite_id


@pytest.fixture
def functions(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    for function in ("CallbackIngestFunction", "InboxDrainFunction"):
        for name, value in deployment.function_environment(function).items():
            monkeypatch.setenv(name, value)
    put_suite_config(deployment, TEST_SUITE)
    return fresh("callback_ingest.app"), fresh("inbox_drain.app")


def post(ingest: Any, signed: SignedCallback) -> dict[str, Any]:
    assert signed.body is not None
    event = http_api_event(
        "POST",
        f"/wecom/callback/{SUITE}",
        query="&".join(f"{k}={v}" for k, v in signed.query.items()),
        body=signed.body.decode(),
        path_parameters={"suite_id": SUITE},
        route_key="POST /wecom/callback/{suite_id}",
    )
    result: dict[str, Any] = ingest.lambda_handler(event, FakeLambdaContext())
    return result


def events(n: int) -> list[str]:
    """A burst of authorization events of every kind the queue carries."""
    out = []
    for i in range(n):
        corp, at = f"wwcorpinbox{i:07d}", 1_700_000_000 + i
        out.append(event_xml({"SuiteId": SUITE, "InfoType": "change_auth", "TimeStamp": at, "AuthCorpId": corp}))
        code = f"AUTHCODE-INBOX-{i}"
        out.append(event_xml({"SuiteId": SUITE, "AuthCode": code, "InfoType": "create_auth", "TimeStamp": at}))
        out.append(event_xml({"SuiteId": SUITE, "InfoType": "cancel_auth", "TimeStamp": at + 500, "AuthCorpId": corp}))
    return out


class Outage:
    """SQS refusing every send of every container (ServiceUnavailable) while ``down``, as in a regional incident."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *functions: Any) -> None:
        self.down = True
        for function in functions:
            ingestor = function.ingestor if hasattr(function, "ingestor") else function.drain.ingestor
            self._patch(monkeypatch, ingestor._publisher._client)

    def _patch(self, monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
        original = client.send_message

        def send_message(**kwargs: Any) -> Any:
            if self.down:
                error: Any = {"Error": {"Code": "ServiceUnavailable"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
                raise ClientError(error, "SendMessage")
            return original(**kwargs)

        monkeypatch.setattr(client, "send_message", send_message)


def received(deployment: Deployment) -> list[Any]:
    sqs = boto3.client("sqs")
    out: list[Any] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=deployment.physical["AuthEventsQueue"], MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return out
        for message in got:
            sqs.delete_message(QueueUrl=deployment.physical["AuthEventsQueue"], ReceiptHandle=message["ReceiptHandle"])
        out.extend(got)


def test_an_sqs_outage_at_ingest_loses_nothing(
    deployment: Deployment, functions: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest, drain = functions
    documents = events(5)
    outage = Outage(monkeypatch, ingest, drain)

    answers = [post(ingest, sign_event(TEST_SUITE.crypto(), xml)) for xml in documents]
    resent = post(ingest, sign_event(TEST_SUITE.crypto(), documents[0]))  # WeCom re-encrypts a re-send

    assert {(a["statusCode"], a["body"]) for a in [*answers, resent]} == {(200, "success")}
    assert received(deployment) == []
    still = drain.lambda_handler({}, FakeLambdaContext())  # the outage is not over: everything stays
    assert (still["replayed"], sum(still["failed"].values())) == ({}, len(documents) + 1)

    outage.down = False
    report = drain.lambda_handler({}, FakeLambdaContext())

    assert report["replayed"] == {"enqueued": 16}
    assert report["failed"] == {}
    messages = received(deployment)
    assert len(messages) == 15  # the re-send collapsed into its first delivery (same deduplication id)
    assert sum("create_auth" in m["Body"] for m in messages) == 5
    assert boto3.client("dynamodb").scan(TableName=deployment.physical["InboxTable"])["Items"] == []
    again = drain.lambda_handler({}, FakeLambdaContext())
    assert again["replayed"] == {}


def test_a_request_kept_unverified_is_verified_on_replay_and_a_forgery_is_dropped(
    deployment: Deployment, functions: tuple[Any, Any]
) -> None:
    ingest, drain = functions
    put_suite_config(deployment, encoding_aes_key="tooshort")  # the operator broke the config
    ingest = fresh("callback_ingest.app")
    genuine = sign_event(TEST_SUITE.crypto(), events(1)[0])
    forged = SignedCallback({**genuine.query, "msg_signature": "0" * 40}, genuine.body)
    assert post(ingest, genuine)["statusCode"] == 200
    assert post(ingest, forged)["statusCode"] == 200  # unverifiable now: kept, judged later

    put_suite_config(deployment, TEST_SUITE)  # fixed
    drain = fresh("inbox_drain.app")
    with structured_logs(drain.logger) as logged:
        report = drain.lambda_handler({}, FakeLambdaContext())

    assert report["replayed"] == {"enqueued": 1}
    assert report["rejected"] == {"signature": 1}
    assert len(received(deployment)) == 1
    assert [line["message"] for line in logged()] == ["inbox drained"]


def test_a_kept_request_older_than_the_alarm_threshold_is_reported(
    deployment: Deployment,
    functions: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ingest, drain = functions
    Outage(monkeypatch, ingest, drain)
    post(ingest, sign_event(TEST_SUITE.crypto(), events(1)[0]))
    table = deployment.physical["InboxTable"]
    dynamodb = boto3.client("dynamodb")
    (item,) = dynamodb.scan(TableName=table)["Items"]
    dynamodb.update_item(
        TableName=table,
        Key={"pk": item["pk"]},
        UpdateExpression="SET received_at = received_at - :d",
        ExpressionAttributeValues={":d": {"N": "900"}},
    )
    capsys.readouterr()

    report = drain.lambda_handler({}, FakeLambdaContext())

    assert report["oldest_age"] >= 900
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["InboxOldestAgeSeconds"][0] >= 900 for m in emitted if "InboxOldestAgeSeconds" in m] == [True]
