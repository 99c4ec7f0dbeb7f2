"""Exactly-once installs end to end: the auth-info handler on moto (journal table + KMS key from template.yaml) and
the emulator. The function dies mid-install, AuthCodes expire, messages are replayed, and nothing is lost or
exchanged twice."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from authsync_dev.emulator import sample_chat_editions
from authsync_dev.sqs import deliver_batch, lambda_sqs_event
from authsync_dev.world import World
from tests.functions.pipeline import credential, install, publish, settle, store
from tests.lambda_context import FakeLambdaContext
from tests.logs import structured_logs

CORP = "wwcorprecover00001"


class Killed(BaseException):
    """The Lambda runtime ending the invocation: not an Exception, so nothing in the handler catches it."""


def kill_after(monkeypatch: pytest.MonkeyPatch, target: Any, method: str) -> None:
    original = getattr(target, method)

    def call(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        monkeypatch.setattr(target, method, original)  # one death only
        raise Killed(method)

    monkeypatch.setattr(target, method, call)


class DyingContext(FakeLambdaContext):
    """An invocation that the runtime ends: Powertools' in-progress record (the first reading of the
    remaining time) expires at once, while the use case still sees the time it needs to work."""

    def __init__(self) -> None:
        super().__init__()
        self._reads = 0

    def get_remaining_time_in_millis(self) -> int:
        self._reads += 1
        return 1 if self._reads == 1 else 30_000


def receive(world: World, queue: str = "AuthEventsQueue") -> dict[str, Any]:
    got = boto3.client("sqs").receive_message(
        QueueUrl=world.queue_url(queue), AttributeNames=["All"], MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    return lambda_sqs_event(got, "arn:aws:sqs:us-east-1:123456789012:authsync-world-auth-events.fifo")


def journal_items(world: World) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(
        TableName=world.deployment.physical["ExchangeJournalTable"]
    )["Items"]
    return items


@pytest.mark.parametrize(
    ("port", "method"),
    [("_journal", "record"), ("_codes", "put"), ("_snapshots", "record"), ("_chatdata", "request")],
)
def test_a_function_killed_mid_install_completes_on_the_next_delivery(
    world: World, monkeypatch: pytest.MonkeyPatch, port: str, method: str
) -> None:
    from auth_info import app as auth_info

    install(world, CORP)
    event = receive(world)
    kill_after(monkeypatch, getattr(auth_info.sync, port), method)
    with pytest.raises(Killed):
        auth_info.lambda_handler(event, DyingContext())
    time.sleep(0.01)

    assert auth_info.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}  # SQS redelivers

    assert world.wecom.calls("service/v2/get_permanent_code") == 1
    state = store(world).get(world.suite.suite_id, CORP)
    assert state is not None
    assert state.status == "active"
    assert state.auth_info_version == 1
    assert state.kind("install").document is not None  # the grant's context: who installed, state
    (item,) = journal_items(world)
    assert item["status"] == {"S": "completed"}
    assert "pending_suite" not in item
    permanent_code = world.wecom.authorization(world.suite.suite_id, CORP).permanent_code
    assert permanent_code not in json.dumps(item, default=str)


def test_an_expired_auth_code_is_an_install_lost_error_with_a_metric(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from auth_info import app as auth_info

    world.wecom.add_corp(CORP)
    code = world.wecom.create_auth(world.suite.suite_id, CORP, push=False).auth_code
    assert code is not None
    world.wecom.advance(601)  # AuthCodes live 10 minutes
    publish(world, {"AuthCode": code, "InfoType": "create_auth", "TimeStamp": 1_750_000_123})

    with structured_logs(auth_info.logger) as logged:
        auth_batches, _ = settle(world)

    assert all(not b.failed for b in auth_batches)  # consumed: retrying cannot help
    (lost,) = [line for line in logged() if line.get("message", "").startswith("install lost")]
    assert lost["level"] == "ERROR"
    assert (lost["suite_id"], lost["event_time"], lost["outcome"]) == (
        world.suite.suite_id,
        1_750_000_123,
        "install_lost",
    )
    assert code not in json.dumps(logged())
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("AuthEvents_install_lost" in m for m in metrics)


def test_a_replay_answered_by_idempotency_is_counted_as_a_duplicate(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from auth_info import app as auth_info

    install(world, CORP)
    event = receive(world)
    auth_info.lambda_handler(event, FakeLambdaContext())
    capsys.readouterr()

    with structured_logs(auth_info.logger) as logged:
        assert auth_info.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}

    messages = [line.get("message") for line in logged()]
    assert "auth event duplicate" in messages
    assert "auth event processed" not in messages
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("AuthEvents_duplicate" in m for m in metrics)
    assert not any("AuthEvents_installed" in m for m in metrics)
    assert world.wecom.calls("service/v2/get_permanent_code") == 1


def test_a_failing_auth_code_message_comes_back_in_seconds_and_others_wait_the_queue_timeout(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auth_info import app as auth_info

    delays: list[int] = []
    original = auth_info.visibility.retry_in

    def retry_in(handle: str, seconds: int) -> None:
        delays.append(seconds)
        original(handle, seconds)

    monkeypatch.setattr(auth_info.visibility, "retry_in", retry_in)
    world.wecom.add_corp(CORP)
    code = world.wecom.create_auth(world.suite.suite_id, CORP, push=False).auth_code
    world.wecom.inject_fault("service/v2/get_permanent_code", "http5xx")
    publish(world, {"AuthCode": str(code), "InfoType": "create_auth", "TimeStamp": int(world.wecom.now())})
    publish(world, {"AuthCorpId": "wwcorpnotyet000001", "InfoType": "change_auth", "TimeStamp": 5})

    outcomes = [
        deliver_batch(
            world.queue_url("AuthEventsQueue"), auth_info.lambda_handler, FakeLambdaContext(), retry_visibility=180
        )
        for _ in range(2)
    ]

    assert sum(len(o.failed) for o in outcomes) == 2
    assert delays == [5]  # only the AuthCode message: its first retry after 5 s, not 180


def test_reconcile_resumes_an_install_whose_message_died_after_the_journal_write(
    suite_env: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auth_info import app as auth_info
    from reconcile import app as reconcile

    world = suite_env
    install(world, CORP)
    event = receive(world)
    kill_after(monkeypatch, auth_info.sync._journal, "record")
    with pytest.raises(Killed):
        auth_info.lambda_handler(event, DyingContext())
    # The message is gone (say, redriven to the DLQ and purged); only the journal remembers the install.
    boto3.client("sqs").purge_queue(QueueUrl=world.queue_url("AuthEventsQueue"))
    (item,) = journal_items(world)
    aged = f"{time.time() - 900:.6f}"  # open for 15 minutes
    boto3.client("dynamodb").update_item(
        TableName=world.deployment.physical["ExchangeJournalTable"],
        Key={"pk": item["pk"]},
        UpdateExpression="SET obtained_at = :t",
        ExpressionAttributeValues={":t": {"N": aged}},
    )
    assert store(world).get(world.suite.suite_id, CORP) is None

    result = reconcile.lambda_handler({}, FakeLambdaContext())
    settle(world)

    assert result["resumed"] == {world.suite.suite_id: 1}
    state = store(world).get(world.suite.suite_id, CORP)
    assert state is not None
    assert state.auth_info_version == 1
    assert world.wecom.calls("service/v2/get_permanent_code") == 1
    (closed,) = journal_items(world)
    assert closed["status"] == {"S": "completed"}


def test_a_rate_limited_auth_code_message_waits_out_wecoms_block(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from auth_info import app as auth_info

    delays: list[int] = []
    monkeypatch.setattr(auth_info.visibility, "retry_in", lambda handle, seconds: delays.append(seconds))
    world.wecom.add_corp(CORP)
    code = world.wecom.create_auth(world.suite.suite_id, CORP, push=False).auth_code
    world.wecom.inject_fault("service/v2/get_permanent_code", "45009", times=1)
    publish(world, {"AuthCode": str(code), "InfoType": "create_auth", "TimeStamp": int(world.wecom.now())})

    outcome = deliver_batch(world.queue_url("AuthEventsQueue"), auth_info.lambda_handler, FakeLambdaContext())

    assert len(outcome.failed) == 1
    assert world.wecom.calls("service/v2/get_permanent_code") == 1  # not hot-retried inside the call
    assert delays == [60]  # WeCom blocks for 60 s after a 45009
    settle(world)
    assert world.wecom.calls("service/v2/get_permanent_code") == 2
    assert store(world).get(world.suite.suite_id, CORP) is not None


def test_an_auth_code_message_failing_its_last_attempt_is_alarmed_before_the_dlq(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from auth_info import app as auth_info

    world.wecom.add_corp(CORP)
    code = world.wecom.create_auth(world.suite.suite_id, CORP, push=False).auth_code
    world.wecom.inject_fault("service/v2/get_permanent_code", "http5xx")
    publish(world, {"AuthCode": str(code), "InfoType": "create_auth", "TimeStamp": int(world.wecom.now())})
    capsys.readouterr()

    for _ in range(5):  # the queue's maxReceiveCount
        outcome = deliver_batch(world.queue_url("AuthEventsQueue"), auth_info.lambda_handler, FakeLambdaContext())
        assert len(outcome.failed) == 1

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["AuthCodeRetriesExhausted"] for m in emitted if "AuthCodeRetriesExhausted" in m] == [[1.0]]
    assert world.receive_all("AuthEventsQueue") == []  # the next receive moves it to the DLQ, as SQS does
    assert len(world.receive_all("AuthEventsDLQ")) == 1


def test_a_late_cancel_auth_never_deletes_a_newer_install_end_to_end(world: World) -> None:
    """Uninstall and re-install within seconds: the re-install's create_auth is applied before the cancel."""
    install(world, CORP)
    settle(world)
    uninstalled_at = int(world.wecom.now())
    world.wecom.cancel_auth(world.suite.suite_id, CORP, push=False)
    world.wecom.advance(5)
    code = world.wecom.create_auth(world.suite.suite_id, CORP, push=False).auth_code
    publish(world, {"AuthCode": str(code), "InfoType": "create_auth", "TimeStamp": int(world.wecom.now())})
    settle(world)
    publish(world, {"AuthCorpId": CORP, "InfoType": "cancel_auth", "TimeStamp": uninstalled_at})  # late

    auth_batches, _ = settle(world)

    assert all(not b.failed for b in auth_batches)
    state = store(world).get(world.suite.suite_id, CORP)
    assert state is not None
    assert state.status == "active"  # WeCom shows it active: so do we
    stored = credential(world, CORP, "permanent-code")
    assert stored is not None
    assert stored["permanent_code"] == world.wecom.authorization(world.suite.suite_id, CORP).permanent_code


def test_a_corp_with_100000_authorized_members_syncs(world: World) -> None:
    """chatdata's member list is paged beside the snapshot: 100 get_auth_user_list pages, one snapshot."""
    corp_id = "wwcorpbig000000001"
    members = [{"userid": f"member{i:026d}", "edition_list": [1]} for i in range(100_000)]
    world.wecom.add_corp(corp_id)
    code = world.wecom.create_auth(
        world.suite.suite_id, corp_id, push=False, chat_editions=sample_chat_editions(), members=members
    ).auth_code
    publish(world, {"AuthCode": str(code), "InfoType": "create_auth", "TimeStamp": int(world.wecom.now())})

    auth_batches, chat_batches = settle(world)

    assert [b.failed for b in auth_batches + chat_batches] == [[], []]
    assert world.wecom.calls("chatdata/get_auth_user_list") == 100
    snapshots = store(world)
    state = snapshots.get(world.suite.suite_id, corp_id)
    assert state is not None
    assert state.chatdata_version == 1
    stored = snapshots.list_items(world.suite.suite_id, corp_id, "chatdata", "auth_user_list")
    assert stored is not None
    assert len(stored) == 100_000
    assert stored[0] == members[0]
