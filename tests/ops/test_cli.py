"""authsync-ops against moto (resources from template.yaml): redrive, corps, refetch, inbox drain.

The CLI reads the stack like it reads ``make serve``'s first JSON line (``--local``): the
template's outputs, here resolved for the test deployment (``moto_endpoint`` null: moto in this
process).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3

from authsync.aws.queues import SqsEventPublisher, queued_event
from authsync.aws.snapshots import SnapshotStore
from authsync.wecom.callbacks import AuthEvent, parse_event
from authsync.wecom.entitlements import edition_of, license_summary
from authsync_dev.template import Deployment
from authsync_dev.wecom import TEST_SUITE, event_xml, sign_event
from authsync_ops.cli import main
from tests.conftest import put_suite_config
from tests.ops.conftest import run

SUITE = TEST_SUITE.suite_id


def event(fields: dict[str, str | int]) -> tuple[AuthEvent, bytes]:
    xml = event_xml({"SuiteId": SUITE, **fields}).encode()
    parsed = parse_event(xml)
    assert isinstance(parsed, AuthEvent)
    return parsed, xml


def to_dlq(deployment: Deployment, fields: dict[str, str | int]) -> str:
    """A message as auth-info's queue gave up on it: same body, group, dedup id and attributes, in the DLQ."""
    parsed, xml = event(fields)
    item = queued_event(parsed, xml)
    SqsEventPublisher(boto3.client("sqs"), deployment.physical["AuthEventsDLQ"]).publish(item)
    return item.dedup_id


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not got:
            return out
        for message in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        out.extend(dict(m) for m in got)


def test_redrive_resends_with_fresh_dedup_ids_and_refuses_expired_auth_codes(
    deployment: Deployment, serve_line: Path
) -> None:
    now = int(time.time())
    # The original went through the source queue minutes ago (its dedup id is remembered for 5 minutes).
    parsed, xml = event({"InfoType": "change_auth", "TimeStamp": now - 60, "AuthCorpId": "wwcorpops000000001"})
    original = queued_event(parsed, xml)
    SqsEventPublisher(boto3.client("sqs"), deployment.physical["AuthEventsQueue"]).publish(original)
    assert len(drain(deployment.physical["AuthEventsQueue"])) == 1
    to_dlq(deployment, {"InfoType": "change_auth", "TimeStamp": now - 60, "AuthCorpId": "wwcorpops000000001"})
    to_dlq(deployment, {"InfoType": "create_auth", "TimeStamp": now - 700, "AuthCode": "AUTHCODE-EXPIRED"})
    to_dlq(deployment, {"InfoType": "create_auth", "TimeStamp": now - 30, "AuthCode": "AUTHCODE-FRESH"})

    dry = run(serve_line, "redrive", "--dry-run")
    code, out, _ = run(serve_line, "redrive")

    assert dry[0] == 1
    assert "would redrive 2, refused 1" in dry[1]
    assert code == 1  # one refused: the operator must decide
    assert "redriven 2, refused 1" in out
    moved = drain(deployment.physical["AuthEventsQueue"])
    assert len(moved) == 2  # an old dedup id would have been dropped by SQS: the redrive's are fresh
    assert original.dedup_id not in {m["Attributes"]["MessageDeduplicationId"] for m in moved}
    assert {m["Attributes"]["MessageGroupId"] for m in moved} >= {f"{SUITE}:wwcorpops000000001"}
    assert "AUTHCODE-EXPIRED" not in json.dumps(moved)

    forced = run(serve_line, "redrive", "--force")
    assert (forced[0], "redriven 1, refused 0" in forced[1]) == (0, True)
    assert "AUTHCODE-EXPIRED" in json.dumps(drain(deployment.physical["AuthEventsQueue"]))
    assert drain(deployment.physical["AuthEventsDLQ"]) == []


def test_corps_list_show_and_refetch(deployment: Deployment, serve_line: Path) -> None:
    store = SnapshotStore(boto3.client("dynamodb"), deployment.physical["CorpsTable"])
    for corp in ("wwcorpops000000002", "wwcorpops000000003"):
        store.record(SUITE, corp, "auth_info", {"auth_corp_info": {"corpid": corp, "corp_type": "verified"}}, 100.0)
    store.mark_cancelled(SUITE, "wwcorpops000000003", at=200.0, retention_seconds=60)
    edition = {"edition_info": {"agent": [{"agentid": 1, "edition_id": "pro", "edition_name": "Pro"}]}}
    store.record(SUITE, "wwcorpops000000002", "auth_info", edition, 101.0, derived={"edition": edition_of(edition)})
    licenses = {
        "account_list": [{"userid": "u1", "type": 1}],
        "orders": {"O": {"order_status": 1, "account_count": {"base_count": 5}}},
    }
    store.record(
        SUITE, "wwcorpops000000002", "license", licenses, 102.0, derived={"license": license_summary(licenses)}
    )

    code, out, _ = run(serve_line, "corps", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["suite", "corp", "status"]
    assert lines[0].split()[7:10] == ["cap", "edition", "license"]
    assert [line.split()[1:3] for line in lines[2:4]] == [
        ["wwcorpops000000002", "active"],
        ["wwcorpops000000003", "cancelled"],
    ]
    assert lines[2].split()[7:9] == ["Pro", "1/5"]  # the paid edition; active/purchased license accounts
    assert lines[-1] == "2 corp(s)"

    code, out, _ = run(serve_line, "corps", "show", SUITE, "wwcorpops000000002", "--history")
    shown = json.loads(out)
    assert (code, shown["status"], shown["versions"]["auth_info"]) == (0, "active", 2)  # the edition's document
    assert (shown["edition"]["edition_id"], shown["license"]["purchased"]["total"]) == ("pro", 5)
    assert "history" in shown
    missing = run(serve_line, "corps", "show", SUITE, "wwnosuchcorp000001")
    assert missing[0] == 1
    assert "no corp" in missing[2]

    code, out, _ = run(serve_line, "refetch", SUITE, "wwcorpops000000002")
    (message,) = drain(deployment.physical["AuthEventsQueue"])
    assert code == 0
    assert json.loads(message["Body"]) == {"kind": "reconcile", "suite_id": SUITE, "corp_id": "wwcorpops000000002"}


def test_inbox_drain_replays_kept_callbacks(deployment: Deployment, serve_line: Path) -> None:
    from authsync.aws.inbox import DynamoInbox, KeptCallback

    put_suite_config(deployment, TEST_SUITE)
    signed = sign_event(
        TEST_SUITE.crypto(),
        event_xml({"SuiteId": SUITE, "InfoType": "change_auth", "TimeStamp": 7, "AuthCorpId": "wwcorpops000000004"}),
    )
    assert signed.body is not None
    query = signed.query
    kept = KeptCallback(
        SUITE, query["msg_signature"], query["timestamp"], query["nonce"], signed.body, time.time(), "X"
    )
    DynamoInbox(boto3.client("dynamodb"), deployment.physical["InboxTable"]).put(kept)

    code, out, _ = run(serve_line, "inbox", "drain")

    assert (code, json.loads(out)["replayed"]) == (0, {"enqueued": 1})
    assert len(drain(deployment.physical["AuthEventsQueue"])) == 1


def test_an_unreadable_local_description_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "serve.json"
    path.write_text('{"api_base_url": "http://127.0.0.1:1"}\n', encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["--local", str(path), "corps", "list"], stdout=out, stderr=err) == 2
    assert "moto_endpoint" in err.getvalue()


def test_callbacks_unmodelled_counts_by_type_and_shows_redacted_documents(
    deployment: Deployment, serve_line: Path
) -> None:
    from authsync.aws.unmodelled import DynamoUnmodelledStore, UnmodelledCallback
    from authsync.domain.unmodelled import keep
    from authsync.wecom import safexml

    store = DynamoUnmodelledStore(boto3.client("dynamodb"), deployment.physical["UnmodelledCallbacksTable"])
    documents = [
        (
            "new_feature",
            "unmodelled",
            100.0,
            b"<xml><InfoType>new_feature</InfoType><AuthCode>SECRET1</AuthCode></xml>",
        ),
        ("new_feature", "unmodelled", 300.0, b"<xml><InfoType>new_feature</InfoType><N>2</N></xml>"),
        ("change_auth", "malformed", 200.0, b"<xml><InfoType>change_auth</InfoType></xml>"),
    ]
    for info_type, kind, at, message in documents:
        kept = keep(SUITE, message, safexml.parse(message, max_bytes=4096))
        store.put(UnmodelledCallback(SUITE, info_type, kind, at, kept))

    code, out, _ = run(serve_line, "callbacks", "unmodelled")
    assert code == 0
    assert json.loads(out)["types"] == [
        {"info_type": "new_feature", "status": "unmodelled", "count": 2, "newest": 300.0},
        {"info_type": "change_auth", "status": "malformed", "count": 1, "newest": 200.0},
    ]

    code, out, _ = run(serve_line, "callbacks", "unmodelled", "--info-type", "new_feature", "--limit", "5")
    assert code == 0
    shown = json.loads(out)
    assert [item["received_at"] for item in shown["items"]] == [300.0, 100.0]
    assert shown["items"][1]["redacted"] == ["AuthCode"]
    assert "SECRET1" not in out


def test_callbacks_replay_enqueues_what_now_routes_and_skips_the_rest(deployment: Deployment, serve_line: Path) -> None:
    from authsync.aws.unmodelled import DynamoUnmodelledStore, UnmodelledCallback
    from authsync.domain.unmodelled import keep
    from authsync.wecom import safexml

    corp = "wwcorpops000000009"
    store = DynamoUnmodelledStore(boto3.client("dynamodb"), deployment.physical["UnmodelledCallbacksTable"])
    documents = [  # as an older version kept them: corp_arch_auth was not modelled then
        f"<xml><SuiteId>{SUITE}</SuiteId><InfoType>corp_arch_auth</InfoType><TimeStamp>5</TimeStamp>"
        f"<AuthCorpId>{corp}</AuthCorpId></xml>",
        f"<xml><SuiteId>{SUITE}</SuiteId><InfoType>corp_arch_auth</InfoType><TimeStamp>6</TimeStamp></xml>",
        f"<xml><SuiteId>{SUITE}</SuiteId><InfoType>corp_arch_auth</InfoType><TimeStamp>7</TimeStamp>"
        f"<AuthCorpId>{corp}</AuthCorpId><AuthCode>SECRET</AuthCode></xml>",
    ]
    for at, text in enumerate(documents):
        message = text.encode()
        kept = keep(SUITE, message, safexml.parse(message, max_bytes=4096))
        store.put(UnmodelledCallback(SUITE, "corp_arch_auth", "unmodelled", float(at), kept))
    queue = deployment.physical["AuthEventsQueue"]

    code, out, _ = run(serve_line, "callbacks", "replay", "--info-type", "corp_arch_auth", "--dry-run")
    assert code == 0
    assert json.loads(out) == {
        "replayed": {"corp_arch_auth": 1},
        "skipped": {"still_malformed": 1, "redacted": 1},
    }
    assert boto3.client("sqs").receive_message(QueueUrl=queue).get("Messages", []) == []

    code, out, _ = run(serve_line, "callbacks", "replay", "--info-type", "corp_arch_auth")
    assert code == 0
    assert json.loads(out)["replayed"] == {"corp_arch_auth": 1}
    (sent,) = boto3.client("sqs").receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert sent["MessageAttributes"]["corp_id"]["StringValue"] == corp
    assert len(list(store.items())) == 2  # the replayed one is forgotten; the others stay
    code, out, _ = run(serve_line, "callbacks", "replay", "--info-type", "corp_arch_auth")
    assert json.loads(out)["replayed"] == {}
