"""The scheduled functions: reconcile fan-out, token refresh, ticket monitor."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from authsync import wiring
from authsync.aws.credentials import SecretNames
from authsync.aws.tickets import TicketStore
from authsync_dev.world import World
from tests.functions.pipeline import (
    credentials,
    install,
    new_containers,
    overwrite_credential,
    secret_exists,
    settle,
    store,
)
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext
from tests.logs import structured_logs


def test_a_lost_callback_is_caught_by_the_next_reconcile(suite_env: World) -> None:
    from reconcile import app as reconcile

    world = suite_env
    for i in range(12):
        install(world, f"wwcorprecon{i:07d}")
    settle(world)
    # The corp gets verified, but WeCom's change_auth never reaches us.
    world.wecom.verify_corp("wwcorprecon0000003", push=False)
    world.wecom.reset_counters()

    result = reconcile.lambda_handler({}, FakeLambdaContext())
    assert result == {
        "requested": {world.suite.suite_id: 12},
        "resumed": {world.suite.suite_id: 0},
        "orphans": {world.suite.suite_id: 0},
    }
    assert sum(c.calls for c in world.wecom.counters().values()) == 0  # the fan-out itself calls no WeCom API
    settle(world)

    state = store(world).get(world.suite.suite_id, "wwcorprecon0000003")
    assert state is not None
    assert state.verification is not None
    assert state.verification["verified"] is True
    assert state.auth_info_version == 2
    assert world.wecom.calls("service/v2/get_auth_info") == 12  # one per corp, none repeated
    others = [store(world).get(world.suite.suite_id, f"wwcorprecon{i:07d}") for i in range(12) if i != 3]
    assert all(s is not None and s.auth_info_version == 1 for s in others)


def test_reconcile_finds_a_corp_whose_code_was_stored_but_whose_state_never_was(suite_env: World) -> None:
    """An exchange that could not be journaled, DynamoDB down: the code went to the credential store first,
    no state was written, and the retry could only report install_lost. Reconcile makes the corp visible."""
    from reconcile import app as reconcile

    world = suite_env
    install(world, "wwcorpvisible00001")
    settle(world)
    orphan = "wwcorporphan000001"
    world.wecom.add_corp(orphan)
    world.wecom.create_auth(world.suite.suite_id, orphan, push=False, chat_editions=[])
    names = credentials()[0]
    code = world.wecom.authorization(world.suite.suite_id, orphan).permanent_code
    document = {"permanent_code": code, "suite_id": world.suite.suite_id, "corp_id": orphan, "obtained_at": 1.0}
    overwrite_credential(names.permanent_code(world.suite.suite_id, orphan), lambda _: document)

    result = reconcile.lambda_handler({}, FakeLambdaContext())
    assert result["orphans"] == {world.suite.suite_id: 1}
    assert result["requested"] == {world.suite.suite_id: 1}  # the visible corp, as every run
    settle(world)

    state = store(world).get(world.suite.suite_id, orphan)
    assert state is not None
    assert state.status == "active"
    assert state.auth_info_version == 1
    assert reconcile.lambda_handler({}, FakeLambdaContext())["orphans"] == {world.suite.suite_id: 0}


def test_reconcile_skips_cancelled_corps_and_a_retry_sends_no_duplicates(suite_env: World) -> None:
    from reconcile import app as reconcile

    world = suite_env
    install(world, "wwcorpkeep00000001")
    install(world, "wwcorpgone00000001")
    settle(world)
    from tests.functions.pipeline import publish

    world.wecom.cancel_auth(world.suite.suite_id, "wwcorpgone00000001", push=False)
    now = int(world.wecom.now())
    publish(world, {"InfoType": "cancel_auth", "TimeStamp": now, "AuthCorpId": "wwcorpgone00000001"})
    settle(world)
    assert reconcile.lambda_handler({}, FakeLambdaContext())["requested"] == {world.suite.suite_id: 1}
    reconcile.lambda_handler({}, FakeLambdaContext())  # the scheduler retries the same run
    messages = world.receive_all("AuthEventsQueue")
    assert [json.loads(m["Body"])["corp_id"] for m in messages] == ["wwcorpkeep00000001"]
    assert messages[0]["Attributes"]["MessageGroupId"] == f"{world.suite.suite_id}:wwcorpkeep00000001"


def test_token_refresh_reads_no_corp_credential_when_no_token_is_due(suite_env: World) -> None:
    """The vault's expiry index is queried once per suite: fresh tokens are not read, opened or renewed
    (a run's reads do not grow with the number of corps)."""
    world = suite_env
    for i in range(3):
        install(world, f"wwcorptokens00000{i}")
    settle(world)
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}:{model.name}")

    wiring._session().register("before-call", count)
    try:
        token_refresh = fresh("token_refresh.app")  # a new container: nothing cached in memory
        world.wecom.reset_counters()
        calls.clear()
        report = token_refresh.lambda_handler({}, FakeLambdaContext())
    finally:
        wiring._session().unregister("before-call", count)
    assert (report["suites"], report["corps"], report["failed"]) == (1, 0, {})
    assert world.wecom.calls("service/get_suite_token") == 0  # still fresh: nothing to renew
    assert world.wecom.calls("service/get_corp_token") == 0
    assert sorted(set(calls)) == ["dynamodb:Query", "secretsmanager:GetSecretValue"]  # the index; the suite token
    assert calls.count("dynamodb:Query") == 1


def test_with_a_secret_per_corp_token_refresh_reads_every_active_corps_token(
    suite_env: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CorpCredentialStore=SecretsManager has no expiry index: each run reads each active corp's token."""
    monkeypatch.setenv("CORP_CREDENTIAL_STORE", "SecretsManager")
    new_containers()
    world = suite_env
    install(world, "wwcorptokens000001")
    settle(world)
    assert secret_exists(credentials()[0].corp_token(world.suite.suite_id, "wwcorptokens000001"))
    token_refresh = fresh("token_refresh.app")
    world.wecom.reset_counters()
    report = token_refresh.lambda_handler({}, FakeLambdaContext())
    assert (report["suites"], report["corps"], report["failed"]) == (1, 1, {})
    assert world.wecom.calls("service/get_corp_token") == 0


def test_one_suite_without_a_ticket_does_not_stop_token_refresh_for_the_others(
    suite_env: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from authsync_dev.world import suite_config_document

    world = suite_env
    install(world, "wwcorptokens000002")
    settle(world)
    # A second suite, configured first in SuiteIds, whose tickets never arrived.
    broken = world.suite.model_copy(update={"suite_id": "wwsuitenoticket001"})
    boto3.client("secretsmanager").create_secret(
        Name=SecretNames(world.suite_prefix).config(broken.suite_id), SecretString=suite_config_document(broken)
    )
    monkeypatch.setenv("SUITE_IDS", f"{broken.suite_id},{world.suite.suite_id}")
    token_refresh = fresh("token_refresh.app")
    _age_stored_token(credentials()[0].corp_token(world.suite.suite_id, "wwcorptokens000002"), 60)
    world.wecom.reset_counters()
    capsys.readouterr()

    report = token_refresh.lambda_handler({}, FakeLambdaContext())

    assert report["suite_failures"] == {broken.suite_id: "TicketMissingError"}
    assert (report["suites"], report["corps"]) == (1, 1)
    assert world.wecom.calls("service/get_corp_token") == 1  # the healthy suite's corp was renewed
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["TokenRenewalFailures"] for m in emitted if "TokenRenewalFailures" in m] == [[1.0]]
    per_suite = [m for m in emitted if "SuiteTokenRefreshFailures" in m]
    assert [m["suite_id"] for m in per_suite] == [broken.suite_id]


def test_a_suite_whose_fan_out_fails_does_not_starve_the_others_and_fails_the_run(
    suite_env: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = suite_env
    install(world, "wwcorprecon0000099")
    settle(world)
    monkeypatch.setenv("SUITE_IDS", f"wwsuitebroken00001,{world.suite.suite_id}")
    reconcile = fresh("reconcile.app")
    iter_active = reconcile.reconcile.snapshots.iter_active

    def failing(suite_id: str) -> Any:
        if suite_id == "wwsuitebroken00001":
            raise RuntimeError("DynamoDB: InternalServerError")
        return iter_active(suite_id)

    monkeypatch.setattr(reconcile.reconcile.snapshots, "iter_active", failing)

    with pytest.raises(reconcile.ReconcileIncompleteError, match="wwsuitebroken00001"):
        reconcile.lambda_handler({}, FakeLambdaContext())

    sent = world.receive_all("AuthEventsQueue")
    assert [json.loads(m["Body"])["corp_id"] for m in sent] == ["wwcorprecon0000099"]  # the healthy suite was served


def _age_stored_token(name: str, seconds_left: float) -> None:
    """Make a stored token look nearly expired (handlers run on real time; so does this)."""
    now = time.time()
    aged = {"obtained_at": now - 7200 + seconds_left, "expires_at": now + seconds_left, "renew_after": now - 1}
    overwrite_credential(name, lambda document: document | aged)


def test_token_refresh_renews_a_token_inside_its_window(suite_env: World) -> None:
    from token_refresh import app as token_refresh

    world = suite_env
    install(world, "wwcorprenew0000001")
    settle(world)
    env = world.environment("TokenRefreshFunction")
    suite = world.suite.suite_id
    _age_stored_token(f"{env['SUITE_SECRET_PREFIX']}{suite}/suite-token", 300)
    _age_stored_token(f"{env['CORP_SECRET_PREFIX']}{suite}/wwcorprenew0000001/access-token", 300)
    world.wecom.advance(7200 - 300)  # WeCom agrees: five minutes left on both
    world.deliver_ticket()
    world.wecom.reset_counters()
    fresh("token_refresh.app")  # a new container: nothing cached in memory
    token_refresh.lambda_handler({}, FakeLambdaContext())
    assert world.wecom.calls("service/get_suite_token") == 1
    assert world.wecom.calls("service/get_corp_token") == 1


def test_ticket_monitor_reports_ages_and_flags_a_suite_without_a_ticket(
    suite_env: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = suite_env
    monkeypatch.setenv("SUITE_IDS", f"{world.suite.suite_id},wwsuitewithoutticket")
    ticket_monitor = fresh("ticket_monitor.app")  # the environment is read at init
    result = ticket_monitor.lambda_handler({}, FakeLambdaContext())
    ages = result["ages"]
    assert ages["wwsuitewithoutticket"] is None
    assert 0 <= ages[world.suite.suite_id] < 60
    emitted = capsys.readouterr().out
    oldest = [json.loads(line) for line in emitted.splitlines() if "OldestSuiteTicketAgeSeconds" in line]
    assert oldest
    assert oldest[-1]["OldestSuiteTicketAgeSeconds"] == [ticket_monitor.NEVER]


def test_ticket_monitor_sees_a_stale_ticket(
    suite_env: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = suite_env
    stale = "wwsuitestale000001"  # WeCom stopped pushing to this suite 31 minutes ago
    monkeypatch.setenv("SUITE_IDS", f"{world.suite.suite_id},{stale}")
    ticket_monitor = fresh("ticket_monitor.app")  # the environment is read at init
    names = SecretNames(world.environment("TicketMonitorFunction")["SUITE_SECRET_PREFIX"])
    TicketStore(boto3.client("secretsmanager"), names.ticket).store(stale, "old-ticket", int(time.time()) - 31 * 60)
    with structured_logs(ticket_monitor.logger) as lines:
        ages = ticket_monitor.lambda_handler({}, FakeLambdaContext())["ages"]
    assert ages[stale] >= 31 * 60
    assert ages[world.suite.suite_id] < 60
    warnings = [line for line in lines() if line["message"] == "suite_ticket stale"]
    assert [w["suite_id"] for w in warnings] == [stale]
    output = capsys.readouterr().out
    oldest = [json.loads(line) for line in output.splitlines() if "OldestSuiteTicketAgeSeconds" in line]
    assert oldest[-1]["OldestSuiteTicketAgeSeconds"][0] >= 31 * 60
