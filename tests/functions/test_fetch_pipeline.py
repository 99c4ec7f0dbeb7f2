"""The fetch pipeline end to end: auth-events message → auth-info λ → chatdata message → chatdata λ.

AWS is moto with resources from template.yaml, WeCom is the emulator over HTTP, and the
handlers are the deployed modules invoked with Lambda's SQS event shape.
"""

from __future__ import annotations

import json

import boto3
import pytest

from authsync_dev.emulator import Emulator
from authsync_dev.wecom import event_xml
from authsync_dev.world import World
from tests.functions.pipeline import credential, install, make_world, new_containers, publish, settle, store
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext


def test_create_auth_ends_with_snapshot_verification_chatdata_and_credentials(world: World) -> None:
    install(world, "wwcorpinstall00001", verified=False)
    auth_batches, chat_batches = settle(world)
    assert [b.failed for b in auth_batches + chat_batches] == [[], []]

    state = store(world).get(world.suite.suite_id, "wwcorpinstall00001")
    assert state is not None
    assert state.status == "active"
    assert state.auth_info_version == 1
    assert state.verification is not None
    assert state.verification["verified"] is False
    assert state.verification["customer_cap"] == 100
    assert state.chatdata_version == 1
    assert state.chatdata_authorized is True
    stored = credential(world, "wwcorpinstall00001", "permanent-code")
    assert stored is not None
    assert credential(world, "wwcorpinstall00001", "access-token") is not None
    truth = world.wecom.authorization(world.suite.suite_id, "wwcorpinstall00001")
    assert stored["permanent_code"] == truth.permanent_code
    assert world.wecom.calls("service/v2/get_permanent_code") == 1
    assert world.wecom.calls("service/v2/get_auth_info") == 1
    assert world.wecom.calls("chatdata/get_corp_auth_info") == 1


def test_change_auth_after_verification_adds_exactly_one_version_with_the_diff(world: World) -> None:
    install(world, "wwcorpverify000001", verified=False)
    settle(world)
    world.wecom.verify_corp("wwcorpverify000001", push=False)
    publish(world, {"InfoType": "change_auth", "TimeStamp": 2, "AuthCorpId": "wwcorpverify000001"})
    settle(world)

    snapshots = store(world)
    state = snapshots.get(world.suite.suite_id, "wwcorpverify000001")
    assert state is not None
    assert state.auth_info_version == 2
    assert state.verification is not None
    assert state.verification["verified"] is True
    assert state.verification["customer_cap"] is None
    versions = snapshots.versions(world.suite.suite_id, "wwcorpverify000001", "auth_info")
    changed = {c.path: (c.old, c.new) for c in versions[-1].diff}
    assert changed["auth_corp_info.corp_type"] == ("unverified", "verified")
    assert state.chatdata_version == 1  # chatdata re-fetched, unchanged: no new version


def test_change_auth_without_a_change_writes_no_version(world: World) -> None:
    install(world, "wwcorpsame00000001")
    settle(world)
    publish(world, {"InfoType": "change_auth", "TimeStamp": 3, "AuthCorpId": "wwcorpsame00000001"})
    settle(world)
    state = store(world).get(world.suite.suite_id, "wwcorpsame00000001")
    assert state is not None
    assert (state.auth_info_version, state.chatdata_version) == (1, 1)
    assert world.wecom.calls("service/v2/get_auth_info") == 2  # fetched again, nothing new


def test_a_burst_of_change_auth_for_one_corp_costs_one_fetch(world: World) -> None:
    install(world, "wwcorpburst0000001")
    settle(world)
    world.wecom.reset_counters()
    for i in range(10):
        publish(world, {"InfoType": "change_auth", "TimeStamp": 100 + i, "AuthCorpId": "wwcorpburst0000001"})
    settle(world)
    assert world.wecom.calls("service/v2/get_auth_info") == 1
    assert world.wecom.calls("chatdata/get_corp_auth_info") == 1


def test_cancel_auth_removes_credentials_and_data_without_calling_wecom(world: World) -> None:
    install(world, "wwcorpcancel000001")
    settle(world)
    world.wecom.cancel_auth(world.suite.suite_id, "wwcorpcancel000001", push=False)
    world.wecom.reset_counters()
    now = int(world.wecom.now())  # WeCom's clock: lifecycle events apply in its TimeStamp order
    publish(world, {"InfoType": "cancel_auth", "TimeStamp": now, "AuthCorpId": "wwcorpcancel000001"})
    settle(world)
    assert sum(c.calls for c in world.wecom.counters().values()) == 0
    assert credential(world, "wwcorpcancel000001", "permanent-code") is None
    assert credential(world, "wwcorpcancel000001", "access-token") is None
    snapshots = store(world)
    state = snapshots.get(world.suite.suite_id, "wwcorpcancel000001")
    assert state is not None
    assert state.status == "cancelled"
    assert snapshots.versions(world.suite.suite_id, "wwcorpcancel000001", "auth_info") == []
    assert "wwcorpcancel000001" not in list(snapshots.iter_active(world.suite.suite_id))
    # A later change_auth for the cancelled corp makes no WeCom call either.
    publish(world, {"InfoType": "change_auth", "TimeStamp": now + 1, "AuthCorpId": "wwcorpcancel000001"})
    settle(world)
    assert sum(c.calls for c in world.wecom.counters().values()) == 0


def test_chatdata_not_authorized_is_a_state_not_an_error_loop(world: World) -> None:
    install(world, "wwcorpnochat000001", chat_editions=[])
    _auth_batches, chat_batches = settle(world)
    assert all(not b.failed for b in chat_batches)
    state = store(world).get(world.suite.suite_id, "wwcorpnochat000001")
    assert state is not None
    assert state.chatdata_authorized is False
    assert world.wecom.calls("chatdata/get_corp_auth_info") == 1


def test_redelivered_create_auth_exchanges_the_code_once(world: World) -> None:
    from auth_info import app as auth_info

    install(world, "wwcorpredeliver001")
    sqs = boto3.client("sqs")
    got = sqs.receive_message(
        QueueUrl=world.queue_url("AuthEventsQueue"), AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    from authsync_dev.sqs import lambda_sqs_event

    event = lambda_sqs_event(got, "arn:aws:sqs:us-east-1:123456789012:authsync-world-auth-events.fifo")
    assert auth_info.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert auth_info.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}  # SQS redelivery
    assert world.wecom.calls("service/v2/get_permanent_code") == 1
    state = store(world).get(world.suite.suite_id, "wwcorpredeliver001")
    assert state is not None
    assert state.auth_info_version == 1


def test_customized_app_corp_uses_gettoken(aws: None, wecom: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(wecom, monkeypatch, kind="customized")
    try:
        install(world, "wwcorpcustomized01")
        settle(world)
        state = store(world).get(world.suite.suite_id, "wwcorpcustomized01")
        assert state is not None
        assert state.chatdata_version == 1
        assert wecom.calls("gettoken") == 1
        assert wecom.calls("service/get_corp_token") == 0
    finally:
        new_containers()


def test_reset_permanent_code_rotates_the_secret(aws: None, wecom: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(wecom, monkeypatch, kind="customized")
    try:
        install(world, "wwcorpreset0000001")
        settle(world)
        old = world.wecom.authorization(world.suite.suite_id, "wwcorpreset0000001").permanent_code
        code = world.wecom.reset_permanent_code(world.suite.suite_id, "wwcorpreset0000001", push=False).auth_code
        assert code is not None
        publish(world, {"InfoType": "reset_permanent_code", "TimeStamp": 9, "AuthCode": code})
        auth_batches, _ = settle(world)
        assert all(not b.failed for b in auth_batches)
        stored = credential(world, "wwcorpreset0000001", "permanent-code")
        assert stored is not None
        new = world.wecom.authorization(world.suite.suite_id, "wwcorpreset0000001").permanent_code
        assert stored["permanent_code"] == new != old
    finally:
        new_containers()


def test_configuration_errors_fail_the_message_for_redrive(world: World) -> None:
    install(world, "wwcorpconfig000001")
    world.wecom.suite(world.suite.suite_id).suite_secret = "rotated-in-the-console"  # our config is now wrong
    auth_batches, _ = settle(world)
    assert auth_batches[-1].failed  # left on the queue (and, after maxReceiveCount, in the DLQ)


def test_transient_wecom_errors_are_retried_inside_the_call(world: World) -> None:
    install(world, "wwcorptransient001")
    world.wecom.inject_fault("service/v2/get_auth_info", "-1", times=2)
    auth_batches, _ = settle(world)
    assert all(not b.failed for b in auth_batches)
    assert world.wecom.calls("service/v2/get_auth_info") == 3


def test_change_auth_for_a_corp_not_installed_yet_is_retried(world: World) -> None:
    world.wecom.add_corp("wwcorplate00000001")
    publish(world, {"InfoType": "change_auth", "TimeStamp": 6, "AuthCorpId": "wwcorplate00000001"})
    auth_batches, _ = settle(world)
    assert auth_batches[-1].failed  # its create_auth may still be on its way: try again later


def test_query_route_answers_the_corp_state_and_404s_unknown_corps(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authsync_dev.httpapi import http_api_event

    install(world, "wwcorpquery0000001", verified=True)
    settle(world)
    for name, value in world.environment("CorpQueryFunction").items():
        monkeypatch.setenv(name, value)
    corp_query = fresh("corp_query.app")
    suite = world.suite.suite_id
    route = "GET /corps/{suite_id}/{corp_id}"
    event = http_api_event(
        "GET",
        f"/corps/{suite}/wwcorpquery0000001",
        query={"history": "1"},
        route_key=route,
        path_parameters={"suite_id": suite, "corp_id": "wwcorpquery0000001"},
    )
    response = corp_query.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    truth = world.wecom.corp("wwcorpquery0000001")
    assert body["status"] == "active"
    assert body["corp"]["corp_name"] == truth.corp_name
    assert body["verification"]["verified"] is True
    assert body["verification"]["customer_cap"] is None
    assert body["versions"] == {"auth_info": 1, "chatdata": 1, "license": 0, "orders": 0}
    assert [e["edition"] for e in body["chatdata"]["editions"]] == [1, 2]
    assert body["agents"]
    assert len(body["history"]["auth_info"]) == 1
    missing = http_api_event("GET", f"/corps/{suite}/wwnosuchcorp", route_key=route)
    assert corp_query.lambda_handler(missing, FakeLambdaContext())["statusCode"] == 404


def test_an_invalid_permanent_code_is_consumed_not_looped_and_keeps_the_data(world: World) -> None:
    install(world, "wwcorpinvalid00001")
    settle(world)
    # WeCom voids the permanent code without a cancel_auth reaching us.
    world.wecom.cancel_auth(world.suite.suite_id, "wwcorpinvalid00001", push=False)
    world.wecom.reset_counters()
    publish(world, {"InfoType": "change_auth", "TimeStamp": 7, "AuthCorpId": "wwcorpinvalid00001"})
    auth_batches, _ = settle(world)
    assert all(not b.failed for b in auth_batches)
    assert world.wecom.calls("service/v2/get_auth_info") == 1  # no retry loop
    state = store(world).get(world.suite.suite_id, "wwcorpinvalid00001")
    assert state is not None
    assert state.auth_info_version == 1


def test_a_used_auth_code_is_consumed_without_retrying(world: World) -> None:
    world.wecom.add_corp("wwcorpcodeused0001")
    code = world.wecom.create_auth(world.suite.suite_id, "wwcorpcodeused0001", push=False).auth_code
    assert code is not None
    world.wecom.advance(601)  # AuthCodes live 10 minutes
    publish(world, {"AuthCode": code, "InfoType": "create_auth", "TimeStamp": 8})
    auth_batches, _ = settle(world)
    assert all(not b.failed for b in auth_batches)
    assert world.wecom.calls("service/v2/get_permanent_code") == 1


def test_wecom_errors_and_token_renewals_become_metrics(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    install(world, "wwcorpmetrics00001")
    world.wecom.inject_fault("service/v2/get_auth_info", "-1", times=1)
    settle(world)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    errors = [m for m in emitted if "WeComErrors" in m]
    assert [m["errcode"] for m in errors] == ["-1"]
    assert sum(sum(m.get("WeComCalls", [])) for m in emitted) >= 5
    assert any("TokenRenewals_suite" in m for m in emitted)
    assert any("TokenRenewals_corp" in m for m in emitted)


def test_a_data_permission_event_refreshes_the_corp(world: World) -> None:
    install(world, "wwcorpdataperm0001")
    settle(world)
    world.wecom.set_chatdata_status(world.suite.suite_id, "wwcorpdataperm0001", 1, 3, push=False)
    publish(
        world,
        {
            "InfoType": "auth_data_permission",
            "TimeStamp": 11,
            "AuthCorpId": "wwcorpdataperm0001",
            "AuthType": "data_zone_chat",
        },
    )
    auth_batches, chat_batches = settle(world)
    assert all(not b.failed for b in auth_batches + chat_batches)
    state = store(world).get(world.suite.suite_id, "wwcorpdataperm0001")
    assert state is not None
    assert state.chatdata_version == 2
    summary = state.chatdata_summary
    assert summary is not None
    assert [e["status"] for e in summary["editions"] if e["edition"] == 1] == [3]


def test_outcomes_are_typed_and_name_the_metrics(world: World) -> None:
    """The use case answers an Outcome; an event it does not act on is IGNORED with its kind."""
    from auth_info import app as auth_info

    from authsync.app.sync import Outcome
    from authsync.aws.queues import AuthMessage

    install(world, "wwcorpoutcome00001")
    settle(world)
    xml = event_xml({"SuiteId": world.suite.suite_id, "InfoType": "change_contact", "TimeStamp": 7})
    ignored = auth_info.sync.handle(AuthMessage("callback", world.suite.suite_id, None, xml, 0.0))
    assert (ignored.outcome, ignored.detail) == (Outcome.IGNORED, "change_contact")
    reconcile = json.dumps({"suite_id": world.suite.suite_id, "corp_id": "wwcorpoutcome00001"})
    fresh = auth_info.sync.handle(AuthMessage("reconcile", world.suite.suite_id, "wwcorpoutcome00001", reconcile, 0.0))
    assert fresh.outcome is Outcome.FRESH  # fetched after this (old) message was sent: coalesced
    assert {o.value for o in Outcome} >= {"installed", "fetched", "fresh", "ignored", "auth_code_invalid"}
