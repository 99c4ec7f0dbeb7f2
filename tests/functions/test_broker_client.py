"""authsync.broker_client: its SigV4 signature is botocore's; it gets tokens through the template's local HTTP API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from authsync.broker_client import (
    BrokerClient,
    BrokerError,
    BrokerUnavailableError,
    CorpNotFoundError,
    CorpToken,
    InvalidationLimitedError,
)
from authsync_dev.local_api import HttpApiServer, http_routes
from authsync_dev.template import load_template
from authsync_dev.world import World
from tests.functions.pipeline import install, settle
from tests.functions.test_token_broker import broker_environment
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
BASE = "https://abc123.execute-api.ap-east-1.amazonaws.com"


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    data: bytes | None


class RecordingHttp:
    """A ``requests.Session`` stand-in that records the request and answers ``reply``."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.sent: list[Sent] = []
        self.status, self.body, self.headers = status, body, headers or {}

    def request(self, method: str, url: str, *, headers: dict[str, str], data: bytes | None, timeout: float) -> Any:
        self.sent.append(Sent(method, url, headers, data))
        return FakeResponse(self.status, self.body, self.headers)


@dataclass
class FakeResponse:
    status_code: int
    body: Any
    headers: dict[str, str]

    def json(self) -> Any:
        if isinstance(self.body, str):
            return json.loads(self.body)
        return self.body


def expected_signature(sent: Sent, region: str) -> str:
    """What botocore computes for the same request at the same X-Amz-Date (API Gateway's check)."""
    request = AWSRequest(method=sent.method, url=sent.url, data=sent.data, headers=dict(sent.headers))
    del request.headers["Authorization"]
    request.context["timestamp"] = sent.headers["X-Amz-Date"]
    signer = SigV4Auth(CREDENTIALS, "execute-api", region)
    canonical = signer.canonical_request(request)
    signature: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return signature


@pytest.mark.parametrize("invalidate", [False, True])
def test_requests_carry_botocores_sigv4_signature_for_execute_api(invalidate: bool) -> None:
    http = RecordingHttp(body={"access_token": "tok-secret-value", "expires_at": 1_800_000_000})
    client = BrokerClient(BASE + "/", credentials=CREDENTIALS, http=http)
    assert client.region == "ap-east-1"  # from the execute-api URL
    if invalidate:
        token = client.invalidate("wwsuite01", "ww corp/1", "old-token-value")
    else:
        token = client.token("wwsuite01", "ww corp/1")
    assert token == CorpToken("tok-secret-value", 1_800_000_000)
    (sent,) = http.sent
    assert sent.url == BASE + "/corps/wwsuite01/ww%20corp%2F1/token" + ("/invalidate" if invalidate else "")
    assert sent.method == ("POST" if invalidate else "GET")
    assert sent.data == (b'{"access_token": "old-token-value"}' if invalidate else None)
    authorization = sent.headers["Authorization"]
    scope = re.search(r"Credential=AKIDEXAMPLE/(\d{8})/ap-east-1/execute-api/aws4_request", authorization)
    assert scope is not None
    assert scope.group(1) == sent.headers["X-Amz-Date"][:8]
    assert sent.headers["X-Amz-Security-Token"] == "session-token-example"
    signature = re.search(r"Signature=([0-9a-f]{64})$", authorization)
    assert signature is not None
    assert signature.group(1) == expected_signature(sent, "ap-east-1")
    # A different secret signs differently: the comparison above can fail.
    wrong = SigV4Auth(Credentials("AKIDEXAMPLE", "other", "session-token-example"), "execute-api", "ap-east-1")
    request = AWSRequest(method=sent.method, url=sent.url, data=sent.data, headers=dict(sent.headers))
    request.context["timestamp"] = sent.headers["X-Amz-Date"]
    assert wrong.signature(wrong.string_to_sign(request, wrong.canonical_request(request)), request) != signature.group(
        1
    )


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (404, CorpNotFoundError, None),
        (429, InvalidationLimitedError, 60),
        (503, BrokerUnavailableError, 5),
        (403, BrokerError, None),
    ],
)
def test_refusals_are_typed_errors(status: int, error: type[BrokerError], retry_after: int | None) -> None:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    http = RecordingHttp(status, {"message": "no"}, headers)
    client = BrokerClient(BASE, credentials=CREDENTIALS, http=http)
    with pytest.raises(error) as raised:
        client.invalidate("wwsuite01", "wwcorp01", "rejected-token-value")
    assert type(raised.value) is error
    assert (raised.value.status, raised.value.retry_after) == (status, retry_after)
    assert "rejected-token-value" not in str(raised.value)


def test_reprs_never_show_a_token_or_a_credential() -> None:
    client = BrokerClient(BASE, credentials=CREDENTIALS, http=RecordingHttp())
    token = CorpToken("tok-secret-value", 1_800_000_000)
    for text in (repr(client), repr(token), str(token)):
        assert "tok-secret-value" not in text
        assert CREDENTIALS.secret_key not in text
    assert token.remaining(1_799_999_700) == 300


def test_credentials_and_region_come_from_a_botocore_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMSESSION")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-session")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    http = RecordingHttp(body={"access_token": "t", "expires_at": 1})
    client = BrokerClient("http://127.0.0.1:9", session=botocore.session.Session(), http=http)
    client.token("wwsuite01", "wwcorp01")
    assert "Credential=AKIDFROMSESSION/" in http.sent[0].headers["Authorization"]
    assert "/eu-west-1/execute-api/" in http.sent[0].headers["Authorization"]


# ---------------------------------------------------------------- against the template's local HTTP API


@pytest.fixture
def local_api(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpApiServer, list[dict[str, Any]]]]:
    """The template's HTTP API on 127.0.0.1, the broker routes served by the broker handler (moto + emulator)."""
    broker_environment(world, monkeypatch, "DynamoDBKMS")
    broker = fresh("token_broker.app")
    seen: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        assert function == "TokenBrokerFunction"
        seen.append(event)
        return broker.lambda_handler(event, FakeLambdaContext())

    routes = [r for r in http_routes(load_template()) if r.function == "TokenBrokerFunction"]
    assert {(r.route_key, r.iam) for r in routes} == {
        ("GET /corps/{suite_id}/{corp_id}/token", True),
        ("POST /corps/{suite_id}/{corp_id}/token/invalidate", True),
    }
    server = HttpApiServer(routes, invoke).start()
    try:
        yield server, seen
    finally:
        server.stop()


def test_the_client_gets_renews_and_is_refused_through_the_local_api(
    world: World, local_api: tuple[HttpApiServer, list[dict[str, Any]]]
) -> None:
    server, seen = local_api
    install(world, "wwcorpbrokerapi001")
    settle(world)
    client = BrokerClient(server.url, region="us-east-1", credentials=CREDENTIALS)
    suite_id = world.suite.suite_id
    unsigned = requests.get(f"{server.url}/corps/{suite_id}/wwcorpbrokerapi001/token", timeout=10)
    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})  # as API Gateway answers
    assert seen == []  # never reached the function
    first = client.token(suite_id, "wwcorpbrokerapi001")
    assert seen[0]["requestContext"]["authorizer"]["iam"]["callerId"] == CREDENTIALS.access_key
    assert world.wecom.state.tokens[first.access_token].corpid == "wwcorpbrokerapi001"
    assert first.remaining(world.wecom.now()) >= 300
    world.wecom.invalidate_tokens(corpid="wwcorpbrokerapi001")
    second = client.invalidate(suite_id, "wwcorpbrokerapi001", first.access_token)
    assert second.access_token != first.access_token
    with pytest.raises(InvalidationLimitedError) as limited:
        client.invalidate(suite_id, "wwcorpbrokerapi001", second.access_token)
    assert limited.value.retry_after == 60
    with pytest.raises(CorpNotFoundError):
        client.token(suite_id, "wwnosuchcorp000001")
