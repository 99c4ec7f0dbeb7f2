"""queues: both FIFO contracts (group and dedup ids, encode and decode), publishing to the template's queues (moto)."""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsync.aws.queues import (
    AuthMessage,
    ChatdataRequest,
    QueuedEvent,
    RecordingPublisher,
    SqsChatdataRequests,
    SqsEventPublisher,
    batch_entry,
    canonical_digest,
    corp_group,
    queued_event,
    reconcile_request,
)
from authsync.wecom.callbacks import AuthEvent, CreateAuth, parse_event
from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE

SUITE = TEST_SUITE.suite_id
CORP = "wxf8b4f85f3a794e77"
AUTH_CODE = "AUTHCODE-7f3e9a0c1b2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b"


def xml(fields: dict[str, Any], order: list[str] | None = None, *, cdata: bool = True, sep: str = "") -> bytes:
    names = order or list(fields)
    parts = [
        f"<{n}><![CDATA[{fields[n]}]]></{n}>" if cdata and not isinstance(fields[n], int) else f"<{n}>{fields[n]}</{n}>"
        for n in names
    ]
    return ("<xml>" + sep.join(parts) + "</xml>").encode()


CHANGE_AUTH = {"SuiteId": SUITE, "InfoType": "change_auth", "TimeStamp": 1700000000, "AuthCorpId": CORP}
CREATE_AUTH = {
    "SuiteId": SUITE,
    "InfoType": "create_auth",
    "TimeStamp": 1700000000,
    "AuthCode": AUTH_CODE,
    "State": "s1",
}


def item_for(message: bytes) -> QueuedEvent:
    event = parse_event(message)
    assert isinstance(event, AuthEvent)
    return queued_event(event, message)


# -- group ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("info_type", ["change_auth", "cancel_auth", "auth_data_permission", "unlisted_with_corp"])
def test_corp_events_are_grouped_by_suite_and_corp(info_type: str) -> None:
    item = item_for(xml({**CHANGE_AUTH, "InfoType": info_type, "AuthType": "data_zone_chat"}))
    assert item.group_id == f"{SUITE}:{CORP}"
    assert item.attributes == {"kind": "callback", "suite_id": SUITE, "info_type": info_type, "corp_id": CORP}


def test_create_auth_is_grouped_by_a_hash_of_its_code() -> None:
    message = xml(CREATE_AUTH)
    item = item_for(message)
    digest = hashlib.sha256(AUTH_CODE.encode()).hexdigest()[:24]
    assert item.group_id == f"{SUITE}:code:{digest}"
    assert AUTH_CODE not in item.group_id
    assert item.attributes == {"kind": "callback", "suite_id": SUITE, "info_type": "create_auth"}
    # Another code, another group; the same code, the same group.
    other = item_for(xml({**CREATE_AUTH, "AuthCode": AUTH_CODE + "x"}))
    assert other.group_id != item.group_id
    assert item_for(xml({**CREATE_AUTH, "TimeStamp": 1700000001})).group_id == item.group_id


def test_reset_permanent_code_without_corp_is_grouped_by_code() -> None:
    item = item_for(xml({**CREATE_AUTH, "InfoType": "reset_permanent_code"}))
    assert item.group_id.startswith(f"{SUITE}:code:")
    assert "corp_id" not in item.attributes
    with_corp = item_for(xml({**CREATE_AUTH, "InfoType": "reset_permanent_code", "AuthCorpId": CORP}))
    assert with_corp.group_id == f"{SUITE}:{CORP}"


def test_group_id_fits_sqs_limit() -> None:
    item = item_for(xml({**CHANGE_AUTH, "SuiteId": "s" * 128, "AuthCorpId": "c" * 128}))
    assert len(item.group_id) == 128


def test_body_is_the_message_exactly() -> None:
    message = xml(CREATE_AUTH, sep="\n").replace(b"s1", "状态".encode())
    assert item_for(message).body == message.decode()


# -- dedup ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [CHANGE_AUTH, CREATE_AUTH])
def test_dedup_id_survives_reencryption(fields: dict[str, Any]) -> None:
    crypto = TEST_SUITE.crypto()
    message = xml(fields)
    first, second = crypto.encrypt(message), crypto.encrypt(message)
    assert first != second  # WeCom's random prefix differs on every retry
    items = [item_for(crypto.decrypt(c).message) for c in (first, second)]
    assert items[0].dedup_id == items[1].dedup_id
    assert items[0].group_id == items[1].group_id
    assert len(items[0].dedup_id) == 64


@pytest.mark.parametrize("fields", [CHANGE_AUTH, CREATE_AUTH])
def test_dedup_id_ignores_element_order_and_formatting(fields: dict[str, Any]) -> None:
    ids = {
        item_for(xml(fields, list(order), cdata=cdata, sep=sep)).dedup_id
        for order in itertools.permutations(fields)
        for cdata, sep in [(True, ""), (False, "\n"), (True, "\n\t ")]
    }
    assert len(ids) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"TimeStamp": 1700000001},
        {"AuthCorpId": "wxanothercorp0000001"},
        {"SuiteId": "wwanothersuite00001"},
        {"InfoType": "cancel_auth"},
        {"State": "new"},
    ],
)
def test_different_events_get_different_dedup_ids(change: dict[str, Any]) -> None:
    assert item_for(xml(CHANGE_AUTH)).dedup_id != item_for(xml({**CHANGE_AUTH, **change})).dedup_id


def test_different_auth_codes_get_different_dedup_ids() -> None:
    assert item_for(xml(CREATE_AUTH)).dedup_id != item_for(xml({**CREATE_AUTH, "AuthCode": AUTH_CODE[:-1]})).dedup_id


def test_nested_extra_info_is_part_of_the_dedup_id() -> None:
    base = xml(CREATE_AUTH)
    one = base.replace(b"</xml>", b"<ExtraInfo><OpenKfId>wk1</OpenKfId><OpenKfId>wk2</OpenKfId></ExtraInfo></xml>")
    two = base.replace(b"</xml>", b"<ExtraInfo><OpenKfId>wk2</OpenKfId><OpenKfId>wk1</OpenKfId></ExtraInfo></xml>")
    assert len({item_for(base).dedup_id, item_for(one).dedup_id, item_for(two).dedup_id}) == 3


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # A text value that looks like the encoding of repeated or nested elements is still another event.
        (b"<OpenKfId>x</OpenKfId><OpenKfId>y</OpenKfId>", b'<OpenKfId>["x", "y"]</OpenKfId>'),
        (b"<ExtraInfo><A>1</A></ExtraInfo>", b'<ExtraInfo>{"A": "1"}</ExtraInfo>'),
        (b"<ExtraInfo>1</ExtraInfo>", b'<ExtraInfo>"1"</ExtraInfo>'),
        (b"<ExtraInfo><A>1</A><A>2</A></ExtraInfo>", b'<ExtraInfo><A>["1", "2"]</A></ExtraInfo>'),
    ],
)
def test_dedup_encoding_is_unambiguous(a: bytes, b: bytes) -> None:
    base = xml(CHANGE_AUTH)
    first = item_for(base.replace(b"</xml>", a + b"</xml>"))
    second = item_for(base.replace(b"</xml>", b + b"</xml>"))
    assert first.group_id == second.group_id
    assert first.dedup_id != second.dedup_id


@settings(max_examples=100, deadline=None)
@given(
    fields=st.dictionaries(
        st.from_regex(r"[A-Z][A-Za-z]{0,8}", fullmatch=True),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20)
        | st.dictionaries(st.sampled_from(["A", "B", "C"]), st.text(max_size=3), max_size=3),
        max_size=8,
    ),
    seed=st.integers(),
)
def test_canonical_digest_depends_on_content_not_order(fields: dict[str, Any], seed: int) -> None:
    keys = list(fields)
    random.Random(seed).shuffle(keys)
    shuffled = {
        k: (dict(reversed(list(v.items()))) if isinstance(v, dict) else v) for k, v in ((k, fields[k]) for k in keys)
    }
    assert canonical_digest(shuffled) == canonical_digest(fields)
    if fields:
        key = keys[0]
        assert canonical_digest(
            {**fields, key: "changed" if fields[key] != "changed" else "other"}
        ) != canonical_digest(fields)


# -- never log the body ----------------------------------------------------------------------------


def test_queued_event_repr_hides_the_body() -> None:
    item = item_for(xml(CREATE_AUTH))
    assert AUTH_CODE in item.body
    for shown in (repr(item), str(item), f"{item}", f"{[item]}"):
        assert AUTH_CODE not in shown
        assert "body" not in shown
        assert item.group_id in shown
        assert item.dedup_id in shown


def test_recording_publisher() -> None:
    publisher = RecordingPublisher()
    item = item_for(xml(CHANGE_AUTH))
    publisher.publish(item)
    publisher.publish(item)
    assert publisher.items == [item, item]


def test_dedup_id_is_the_canonical_digest_of_the_whole_document() -> None:
    event = parse_event(xml(CREATE_AUTH))
    assert isinstance(event, CreateAuth)
    assert queued_event(event, xml(CREATE_AUTH)).dedup_id == canonical_digest(event.raw)


def test_canonical_digest_against_its_documented_recipe() -> None:
    """An oracle written from the docstring, not from the code: tagged values, \x1e and \x1f separators."""
    fields = {"TimeStamp": "7", "InfoType": "change_auth", "ExtraInfo": {"Item": ["a", "b"]}}
    recipe = "\x1f".join(['ExtraInfo\x1ej{"Item": ["a", "b"]}', "InfoType\x1eschange_auth", "TimeStamp\x1es7"]).encode()
    assert canonical_digest(fields) == hashlib.sha256(recipe).hexdigest()


def test_a_reconcile_request_reads_back_as_it_was_written() -> None:
    item = reconcile_request("wwsuite", "wwcorp", 42)
    assert item.group_id == corp_group("wwsuite", "wwcorp") == "wwsuite:wwcorp"
    assert item.dedup_id == hashlib.sha256(b"reconcile:wwsuite:wwcorp:42").hexdigest()
    assert reconcile_request("wwsuite", "wwcorp", 43).dedup_id != item.dedup_id  # a new window, a new message
    entry = batch_entry(3, item)
    assert (entry["Id"], entry["MessageGroupId"], entry["MessageDeduplicationId"]) == (
        "3",
        item.group_id,
        item.dedup_id,
    )
    record = {  # what Lambda's SQS event carries for that entry
        "body": entry["MessageBody"],
        "attributes": {"SentTimestamp": "1700000000123"},
        "messageAttributes": {k: {"stringValue": v["StringValue"]} for k, v in entry["MessageAttributes"].items()},
    }
    assert AuthMessage.from_sqs(record) == AuthMessage(
        "reconcile", "wwsuite", "wwcorp", entry["MessageBody"], 1700000000.123
    )


def test_a_callback_reads_back_with_its_routing_attributes() -> None:
    event = parse_event(xml(CHANGE_AUTH))
    assert isinstance(event, AuthEvent)
    item = queued_event(event, xml(CHANGE_AUTH))
    entry = batch_entry(0, item)
    record = {
        "body": entry["MessageBody"],
        "attributes": {"SentTimestamp": "5000"},
        "messageAttributes": {k: {"stringValue": v["StringValue"]} for k, v in entry["MessageAttributes"].items()},
    }
    message = AuthMessage.from_sqs(record)
    assert (message.kind, message.suite_id, message.corp_id, message.sent_at) == (
        "callback",
        event.suite_id,
        event.corp_id,
        5.0,
    )
    assert message.body.encode() == xml(CHANGE_AUTH)


def test_chatdata_requests_are_grouped_per_corp_and_collapse_when_repeated() -> None:
    request = ChatdataRequest("wwsuite", "wwcorp", 1700000000.5)
    assert ChatdataRequest.from_json(request.to_json()) == request
    sent: list[dict[str, Any]] = []

    class Client:
        def send_message(self, **kwargs: Any) -> None:
            sent.append(kwargs)

    queue: Any = Client()
    SqsChatdataRequests(queue, "https://queue").request(request)
    SqsChatdataRequests(queue, "https://queue").request(request)
    assert sent[0] == sent[1]
    assert sent[0]["MessageGroupId"] == "wwsuite:wwcorp"
    assert sent[0]["MessageDeduplicationId"] == hashlib.sha256(b"wwsuite:wwcorp:1700000000.500").hexdigest()


# -- SQS FIFO (the queue from template.yaml, in moto) ---------------------------------------------


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)


def test_template_queue_is_fifo_without_content_based_dedup(deployment: Deployment) -> None:
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=deployment.physical["AuthEventsQueue"], AttributeNames=["All"])
    assert attributes["Attributes"]["FifoQueue"] == "true"
    assert attributes["Attributes"].get("ContentBasedDeduplication", "false") == "false"


@pytest.mark.parametrize("fields", [CHANGE_AUTH, CREATE_AUTH])
def test_sqs_publisher_collapses_retries(deployment: Deployment, fields: dict[str, Any]) -> None:
    url = deployment.physical["AuthEventsQueue"]
    sqs = boto3.client("sqs")
    publisher = SqsEventPublisher(sqs, url)
    crypto = TEST_SUITE.crypto()
    message = xml(fields)
    # WeCom retries re-encrypt the same document; each decrypts and publishes again.
    items = [item_for(crypto.decrypt(crypto.encrypt(message)).message) for _ in range(3)]
    for item in items:
        publisher.publish(item)

    received = receive_all(sqs, url)
    assert len(received) == 1
    (got,) = received
    item = items[0]
    assert got["Body"] == message.decode()
    assert got["Attributes"]["MessageGroupId"] == item.group_id
    assert got["Attributes"]["MessageDeduplicationId"] == item.dedup_id
    attributes = {k: v["StringValue"] for k, v in got["MessageAttributes"].items()}
    assert attributes == item.attributes
    assert all(v["DataType"] == "String" for v in got["MessageAttributes"].values())


def test_sqs_publisher_keeps_distinct_events(deployment: Deployment) -> None:
    url = deployment.physical["AuthEventsQueue"]
    sqs = boto3.client("sqs")
    publisher = SqsEventPublisher(sqs, url)
    for ts in (1700000000, 1700000001, 1700000000):
        publisher.publish(item_for(xml({**CHANGE_AUTH, "TimeStamp": ts})))
    publisher.publish(item_for(xml(CREATE_AUTH)))
    received = receive_all(sqs, url)
    assert len(received) == 3
    assert sorted(m["Attributes"]["MessageGroupId"] for m in received).count(f"{SUITE}:{CORP}") == 2
