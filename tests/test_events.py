"""The sample events in events/ are reproducible and do what their names say."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from authsync.aws.queues import AuthMessage, ChatdataRequest
from authsync_dev.make_events import EVENTS, SCHEMAS, change_event_schemas, fetch_events, sample_events
from authsync_dev.template import Deployment
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext


def test_committed_samples_match_the_generator() -> None:
    generated = {**sample_events(), **fetch_events()}
    committed = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in EVENTS.glob("*.json")}
    assert committed == generated


def test_committed_change_event_schemas_match_the_generator() -> None:
    """One schema per detail-type (issue #12), generated from the models the publisher validates with."""
    committed = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in SCHEMAS.glob("*.json")}
    assert committed == change_event_schemas()
    assert sorted(committed) == [
        "corp-authorization-changed",
        "corp-cancelled",
        "corp-chatdata-changed",
        "corp-installed",
        "corp-license-changed",
        "corp-order-changed",
        "corp-verification-changed",
    ]


def test_fetch_samples_are_what_the_fetch_functions_read() -> None:
    auth = json.loads((EVENTS / "auth_info_sqs_change_auth.json").read_text(encoding="utf-8"))["Records"][0]
    message = AuthMessage.from_sqs(auth)
    assert (message.kind, message.corp_id) == ("callback", "wwsamplecorp000001")
    assert message.sent_at == 1_700_000_000
    chat = json.loads((EVENTS / "chatdata_sqs_request.json").read_text(encoding="utf-8"))["Records"][0]
    assert ChatdataRequest.from_json(chat["body"]).corp_id == "wwsamplecorp000001"


@pytest.fixture
def app(deployment: Deployment, suite: object, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in deployment.function_environment("CallbackIngestFunction").items():
        monkeypatch.setenv(name, value)
    return fresh("callback_ingest.app")


@pytest.mark.parametrize(
    ("name", "body", "queued"),
    [
        ("callback_get_verify", "6270283574716416281", 0),
        ("callback_post_suite_ticket", "success", 0),
        ("callback_post_create_auth", "success", 1),
        ("callback_post_change_auth", "success", 1),
    ],
)
def test_sample_event_through_the_handler(name: str, body: str, queued: int, app: Any, deployment: Deployment) -> None:
    event = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    response = app.lambda_handler(event, FakeLambdaContext())
    assert (response["statusCode"], response["body"]) == (200, body)
    got = boto3.client("sqs").receive_message(QueueUrl=deployment.physical["AuthEventsQueue"], MaxNumberOfMessages=10)
    assert len(got.get("Messages", [])) == queued
