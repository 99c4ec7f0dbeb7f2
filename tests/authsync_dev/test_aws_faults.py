"""AWS outages injected into botocore calls (``authsync_dev.aws_faults``), against moto in server mode."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore import handlers
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.retries import standard
from moto.server import ThreadedMotoServer

from authsync_dev.aws_faults import FAULT_KINDS, AwsFaults, Window


class FakeClock:
    """``time.monotonic`` stand-in: returns ``now``, then moves it on by ``step``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.step = 0.0

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def faults() -> Iterator[AwsFaults]:
    installed = AwsFaults(seed=7).install()
    yield installed
    installed.uninstall()


def client(service: str, endpoint: str, attempts: int = 1) -> Any:
    """A client from a new botocore session, as the in-process functions build theirs."""
    return botocore.session.Session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}),  # max_attempts counts retries
    )


def table(dynamodb: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def prepared(url: str = "http://127.0.0.1:1/") -> AWSPreparedRequest:
    return AWSPreparedRequest("POST", url, HTTPHeaders(), b"{}", stream_output=False)


def test_a_throttle_window_fails_the_call_until_cleared(faults: AwsFaults, endpoint: str) -> None:
    dynamodb = client("dynamodb", endpoint)
    name = table(dynamodb)
    item = {"pk": {"S": "a"}}
    faults.window("dynamodb", 60, kinds=["throttle"])

    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName=name, Item=item)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    faults.clear()
    assert dynamodb.get_item(TableName=name, Key=item).get("Item") is None  # the throttled put never reached moto
    dynamodb.put_item(TableName=name, Item=item)
    assert dynamodb.get_item(TableName=name, Key=item)["Item"] == item
    assert faults.injected() == {"dynamodb": Counter({"throttle": 1})}


@pytest.mark.parametrize(
    ("service", "call"),
    [("dynamodb", "list_tables"), ("secretsmanager", "list_secrets"), ("sqs", "list_queues"), ("kms", "list_keys")],
)
@pytest.mark.parametrize(
    ("kind", "status", "codes"),
    [
        ("throttle", 400, {"ThrottlingException"}),
        ("5xx", 500, {"InternalFailure", "InternalServerError"}),
    ],
)
def test_injected_errors_parse_like_real_ones_for_every_service(
    faults: AwsFaults, endpoint: str, service: str, call: str, kind: Any, status: int, codes: set[str]
) -> None:
    aws = client(service, endpoint)
    faults.window(aws.meta.service_model.service_id.hyphenize(), 60, kinds=[kind])
    with pytest.raises(ClientError) as raised:
        getattr(aws, call)()
    error = raised.value.response["Error"]
    assert error["Code"] in codes
    assert (error["Code"] == "InternalServerError") == (service == "dynamodb" and kind == "5xx")
    assert error["Message"] == "injected by authsync_dev.aws_faults"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_secrets_manager_5xx_is_a_500_client_error(faults: AwsFaults, endpoint: str) -> None:
    secrets = client("secretsmanager", endpoint)
    name = f"s-{uuid.uuid4().hex[:8]}"
    secrets.create_secret(Name=name, SecretString="hunter2")
    faults.window("secrets-manager", 60, kinds=["5xx"])
    with pytest.raises(ClientError) as raised:
        secrets.get_secret_value(SecretId=name)
    assert raised.value.response["Error"]["Code"] == "InternalFailure"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "hunter2" not in str(raised.value)
    faults.clear()
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == "hunter2"


def test_timeout_after_success_delivers_the_message_but_the_caller_times_out(faults: AwsFaults, endpoint: str) -> None:
    sqs = client("sqs", endpoint)
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    faults.window("sqs", 60, kinds=["timeout_after_success"])
    with pytest.raises(ReadTimeoutError):
        sqs.send_message(QueueUrl=url, MessageBody="delivered anyway")
    assert faults.injected() == {"sqs": Counter({"timeout_after_success": 1})}

    faults.clear()  # the receiving client carries the handler too
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in messages] == ["delivered anyway"]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.mark.usefixtures("no_backoff")
def test_botocore_retries_injected_throttles_and_succeeds_once_the_window_ends(endpoint: str) -> None:
    clock = FakeClock()
    faults = AwsFaults(seed=1, clock=clock).install()
    try:
        dynamodb = client("dynamodb", endpoint, attempts=3)
        name = table(dynamodb)
        faults.window("dynamodb", 1.5, kinds=["throttle"])
        clock.now, clock.step = 0.5, 1.0  # each attempt reads the clock once: 0.5 (inside), 1.5 (ended)
        dynamodb.put_item(TableName=name, Item={"pk": {"S": "retried"}})
        assert faults.injected() == {"dynamodb": Counter({"throttle": 1})}
        assert faults.active() == []

        clock.step = 0.0
        faults.window("dynamodb", 60, kinds=["throttle", "5xx"])
        with pytest.raises(ClientError):
            dynamodb.put_item(TableName=name, Item={"pk": {"S": "never"}})
        assert sum(faults.injected()["dynamodb"].values()) == 1 + 3  # every attempt was failed
    finally:
        faults.uninstall()


def test_windows_that_do_not_cover_the_call_leave_it_alone(endpoint: str) -> None:
    clock = FakeClock(now=100.0)
    faults = AwsFaults(seed=3, clock=clock).install()
    try:
        dynamodb = client("dynamodb", endpoint)
        faults.window("sqs", 60)  # another service
        faults.window("dynamodb", 60, start_in=30, kinds=["5xx"])  # not started yet
        faults.window("dynamodb", 60, probability=0.0)  # never fires
        ended = faults.window("dynamodb", 5, kinds=["throttle"])
        assert ended == Window("dynamodb", 100.0, 105.0, 1.0, ("throttle",))
        clock.now = 105.0
        for _ in range(20):
            dynamodb.list_tables()
        assert faults.injected() == {}
        assert [w.service for w in faults.active()] == ["sqs", "dynamodb"]

        clock.now = 130.0  # the delayed window opens
        with pytest.raises(ClientError):
            dynamodb.list_tables()
    finally:
        faults.uninstall()


def test_only_calls_in_scope_fail() -> None:
    inside = threading.local()
    faults = AwsFaults(seed=0, scope=lambda: getattr(inside, "yes", False))
    faults.window("dynamodb", 60, kinds=["throttle"])
    assert faults(prepared(), "before-send.dynamodb.PutItem") is None  # e.g. the local stack's own poller
    inside.yes = True
    assert faults(prepared(), "before-send.dynamodb.PutItem") is not None  # a function's call
    assert faults.injected() == {"dynamodb": Counter({"throttle": 1})}


def test_counters_are_per_service_and_kind_and_a_copy() -> None:
    faults = AwsFaults(seed=0)
    faults.window("dynamodb", 60, kinds=["throttle"])
    faults.window("sqs", 60, kinds=["5xx"])
    for _ in range(3):
        assert faults(prepared(), "before-send.dynamodb.PutItem") is not None
    for _ in range(2):
        assert faults(prepared(), "before-send.sqs.SendMessage") is not None
    assert faults(prepared(), "before-send.kms.Decrypt") is None
    counts = faults.injected()
    assert counts == {"dynamodb": Counter({"throttle": 3}), "sqs": Counter({"5xx": 2})}
    counts["dynamodb"]["throttle"] += 10
    assert faults.injected()["dynamodb"]["throttle"] == 3


def test_sqs_errors_carry_the_query_compatible_header() -> None:
    faults = AwsFaults(seed=0)
    faults.window("sqs", 60, kinds=["throttle"])
    response = faults(prepared(), "before-send.sqs.SendMessage")
    assert response is not None
    assert response.status_code == 400
    assert response.headers["x-amzn-query-error"] == "ThrottlingException;Sender"
    assert response.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(response.content)["__type"] == "ThrottlingException"


def test_the_same_seed_injects_the_same_faults() -> None:
    def run(seed: int) -> list[int | None]:
        faults = AwsFaults(seed=seed)
        faults.window("kms", 60, probability=0.5, kinds=["throttle", "5xx"])
        responses = [faults(prepared(), "before-send.kms.Decrypt") for _ in range(50)]
        return [r.status_code if r is not None else None for r in responses]

    first = run(11)
    assert first == run(11)
    assert {None, 400, 500} == set(first)


def test_sessions_created_before_install_are_unaffected(endpoint: str) -> None:
    faults = AwsFaults()
    early = client("dynamodb", endpoint)
    faults.install()
    try:
        faults.window("dynamodb", 60, kinds=["throttle"])
        early.list_tables()  # its session copied the builtin handlers before install()
        with pytest.raises(ClientError):
            client("dynamodb", endpoint).list_tables()
    finally:
        faults.uninstall()
    client("dynamodb", endpoint).list_tables()  # nor are sessions created after uninstall()


def test_install_is_idempotent_and_uninstall_is_safe_twice() -> None:
    faults = AwsFaults()
    assert faults.install() is faults.install()
    assert handlers.BUILTIN_HANDLERS.count(("before-send", faults)) == 1
    faults.uninstall()
    faults.uninstall()
    assert ("before-send", faults) not in handlers.BUILTIN_HANDLERS


@pytest.mark.parametrize(
    "arguments",
    [
        {"kinds": ["throttle", "outage"]},
        {"kinds": []},
        {"seconds": 0},
        {"seconds": -1},
        {"start_in": -1},
        {"probability": -0.1},
        {"probability": 1.5},
        {"service": "secretsmanager.GetSecretValue"},
        {"service": ""},
    ],
)
def test_window_validates_its_arguments(arguments: dict[str, Any]) -> None:
    faults = AwsFaults()
    with pytest.raises(ValueError, match=r"must be|need"):
        faults.window(**{"service": "dynamodb", "seconds": 10, **arguments})
    assert faults.active() == []


def test_every_kind_is_known() -> None:
    assert FAULT_KINDS == ("throttle", "5xx", "timeout_after_success")
