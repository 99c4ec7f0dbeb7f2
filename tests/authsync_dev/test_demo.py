"""End to end through the local stack: the demo's scenario, and a lost callback caught by reconciliation.

Final DynamoDB and Secrets Manager state is compared with the emulator's truth.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from authsync.aws.credentials import SecretNames
from authsync_dev.emulator import sample_chat_editions
from authsync_dev.local_api import signed
from authsync_dev.stack import LocalStack
from authsync_dev.template import ROOT


def test_make_run_plays_the_demo_and_matches_wecoms_truth(tmp_path: Any) -> None:
    """What `make run` does, as a user would run it."""
    log = tmp_path / "demo.log"
    result = subprocess.run(
        [sys.executable, "-m", "authsync_dev.demo", "--log", str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "OK: DynamoDB and the credential stores match the emulator's truth for every corp." in out
    # The default store: no Secrets Manager secret per corp; 4 installed corps x (code, token) in the vault.
    # The provider's token is one secret whichever suite asks.
    assert (
        "per-corp store DynamoDBKMS; Secrets Manager secrets 7 (6 per-suite, 1 per-provider, 0 per-corp); vault items 8"
    ) in out
    # Through the stream, the publisher and a rule on the bus: 5 installs, B verified, D's chatdata, A's edition
    # (its auth info changed, and an order) and licenses, E gone.
    assert (
        "change events delivered to a subscribed queue: 17 (Corp Authorization Changed 2, Corp Cancelled 1, "
        "Corp Chatdata Changed 6, Corp Installed 5, Corp License Changed 1, Corp Order Changed 1, "
        "Corp Verification Changed 1)"
    ) in out
    # The license and edition columns (A: 2 of 12 accounts active, the 专业版 edition).
    assert "专业版" in out
    assert " 2/12 " in out
    for corp in ("wwdemoverified0001", "wwdemounverified01", "wwdemocustomized01", "wwdemochatdata0001"):
        assert f"{corp}   active" in out
    assert "wwdemodownstream01   cancelled" in out
    assert log.exists()
    assert "test-suite-secret-not-a-real-one" not in out + log.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(visibility_scale=0.01, schedules=False) as running:
        running.wait_idle(30)
        yield running


def view(stack: LocalStack, suite_id: str, corp_id: str) -> Any:
    """The query route's answer (an IAM route: the request is SigV4-signed)."""
    url = stack.query_url(suite_id, corp_id)
    return requests.get(url, headers=signed("GET", url), timeout=10).json()


def test_a_lost_callback_is_caught_by_reconciliation(stack: LocalStack) -> None:
    wecom = stack.emulator
    suite = stack.suites[0].suite_id
    corp = wecom.add_corp("wwlostcallback0001", "回调丢失企业", verified=False)
    wecom.create_auth(suite, corp.corpid, chat_editions=sample_chat_editions())
    stack.wait_idle(60)
    before = view(stack, suite, corp.corpid)
    assert before["verification"]["verified"] is False
    assert before["verification"]["customer_cap"] == 100

    # The corp completes verification; WeCom's change_auth is lost on the way.
    wecom.verify_corp(corp.corpid, push=False)
    wecom.set_chatdata_status(suite, corp.corpid, 1, 3, push=False)
    stack.wait_idle(30)
    stale = view(stack, suite, corp.corpid)
    assert stale["verification"]["verified"] is False  # nothing told us yet

    stack.fire("ReconcileFunction")
    stack.wait_idle(60)

    after = view(stack, suite, corp.corpid)
    truth = wecom.corp(corp.corpid)
    authorization = wecom.authorization(suite, corp.corpid)
    assert after["verification"]["verified"] is truth.verified is True
    assert after["verification"]["customer_cap"] is None
    assert after["versions"]["auth_info"] == 2
    assert sorted((e["edition"], e["status"]) for e in after["chatdata"]["editions"]) == sorted(
        (e.edition, e.status) for e in authorization.chat_editions
    )
    environment = stack.deployment.function_environment("AuthInfoFunction")
    names = SecretNames(environment["SUITE_SECRET_PREFIX"], environment["CORP_SECRET_PREFIX"])
    stored = stack.credential(names.permanent_code(suite, corp.corpid))
    assert stored is not None
    assert stored["permanent_code"] == authorization.permanent_code
    ticket = stack.secret(f"{environment['SUITE_SECRET_PREFIX']}{suite}/ticket")
    assert ticket is not None
    assert ticket["suite_ticket"] == wecom.ticket(suite)
    assert stack.errors("AuthInfoFunction") == 0
    assert stack.errors("ChatdataFunction") == 0
