"""The local stack (authsync_dev.stack, authsync_dev.serve): moto server, emulator, HTTP API, pollers, schedules.

No ``mock_aws`` here: the stack runs moto as a server (in this process, or in ``serve``'s).
One in-process stack runs at a time, so the shared stack lives in a class-scoped fixture
and the tests that need their own stack come after the class.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from authsync.aws.suites import SuiteConfig
from authsync_dev.emulator import sample_chat_editions
from authsync_dev.local_api import Route, api_response, http_routes, is_text, signed
from authsync_dev.local_functions import (
    Activity,
    FunctionNotReady,
    FunctionSpec,
    InvocationKilled,
    LocalFunction,
    ModuleLoader,
    in_invocation,
)
from authsync_dev.local_schedules import UnsupportedSchedule, rate_seconds, scheduled_events
from authsync_dev.local_sqs import sqs_event_sources
from authsync_dev.stack import LocalStack
from authsync_dev.stack_config import StackConfig
from authsync_dev.template import load_template
from authsync_dev.wecom import TEST_SUITE, event_xml, sign_echostr, sign_event
from tests.authsync_dev.processes import first_line

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- pieces, no stack


def test_routes_event_sources_and_schedules_come_from_the_template():
    template = load_template()
    routes = {r.route_key: r for r in http_routes(template)}
    assert set(routes) == {
        "GET /wecom/callback/{suite_id}",
        "POST /wecom/callback/{suite_id}",
        "GET /corps/{suite_id}/{corp_id}",
        "GET /corps/{suite_id}/{corp_id}/token",
        "POST /corps/{suite_id}/{corp_id}/token/invalidate",
    }
    assert routes["GET /corps/{suite_id}/{corp_id}"].iam
    assert routes["GET /corps/{suite_id}/{corp_id}/token"].function == "TokenBrokerFunction"
    assert routes["GET /corps/{suite_id}/{corp_id}/token"].iam
    assert routes["POST /corps/{suite_id}/{corp_id}/token/invalidate"].iam
    assert not routes["POST /wecom/callback/{suite_id}"].iam

    sources = {s.function: s for s in sqs_event_sources(template)}
    assert sources["AuthInfoFunction"].queue == "AuthEventsQueue"
    assert sources["ChatdataFunction"].queue == "ChatdataQueue"
    assert all(s.batch_size == 10 and s.report_batch_item_failures for s in sources.values())

    parameters = {k: v.get("Default") for k, v in template["Parameters"].items()}

    def resolve(value: Any) -> Any:
        return parameters[value["Ref"]] if isinstance(value, dict) and "Ref" in value else value

    schedules = {s.function: s for s in scheduled_events(template, resolve)}
    assert schedules["ReconcileFunction"].period == 6 * 3600
    assert schedules["TokenRefreshFunction"].max_retries == 2
    assert schedules["TicketMonitorFunction"].dead_letter_queue == "SchedulesDLQ"
    assert all(s.payload == {} and s.problem is None for s in schedules.values())


def test_rate_expressions():
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(10 minutes)") == 600
    assert rate_seconds("rate(6 hours)") == 21600
    assert rate_seconds("rate(1 day)") == 86400
    for bad in ("cron(0 12 * * ? *)", "at(2030-01-01T00:00:00)", "rate(1 minutes)", "rate(5 minute)", "rate(0 days)"):
        with pytest.raises(UnsupportedSchedule):
            rate_seconds(bad)


def test_route_matching_and_precedence():
    routes = sorted(
        [
            Route("GET", "/corps/{suite_id}/{corp_id}", "Q", "e"),
            Route("GET", "/corps/special/{corp_id}", "S", "e"),
            Route("ANY", "/files/{path+}", "F", "e"),
        ],
        key=Route.precedence,
    )
    assert [r.function for r in routes] == ["S", "Q", "F"]
    assert routes[1].match("GET", "/corps/ww1/ww%2D2") == {"suite_id": "ww1", "corp_id": "ww-2"}
    assert routes[1].match("POST", "/corps/ww1/ww2") is None
    assert routes[1].match("GET", "/corps/ww1/ww2/extra") is None
    assert routes[2].match("DELETE", "/files/a/b/c") == {"path": "a/b/c"}


def test_api_gateway_response_translation():
    status, headers, body = api_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/octet-stream"},
            "cookies": ["a=1", "b=2"],
            "body": "AAEC",
            "isBase64Encoded": True,
        }
    )
    assert (status, body) == (201, b"\x00\x01\x02")
    assert ("Set-Cookie", "a=1") in headers
    assert ("Set-Cookie", "b=2") in headers
    assert api_response({"ok": True}) == (200, [("Content-Type", "application/json")], b'{"ok": true}')
    with pytest.raises(ValueError, match="statusCode"):
        api_response({"statusCode": "200"})
    assert is_text("text/xml; charset=utf-8")
    assert is_text("application/problem+json")
    assert not is_text("application/octet-stream")
    assert not is_text("")


def test_config_file_errors_name_fields_not_secret_values():
    config = StackConfig.from_json(
        {"suites": [{**TEST_SUITE.config(), "kind": "customized"}], "ports": {"api": 8080}, "time_scale": 60}
    )
    assert config.api_port == 8080
    assert config.time_scale == 60
    assert config.suites[0].kind == "customized"
    secret = "a-very-secret-value-0001"
    with pytest.raises(ValueError, match="suite_secret") as raised:
        StackConfig.from_json({"suites": [{**TEST_SUITE.config(), "suite_secret": 12345, "token": secret}]})
    assert secret not in str(raised.value)
    with pytest.raises(ValueError, match="encoding_aes_key") as raised:
        StackConfig.from_json({"suites": [{**TEST_SUITE.config(), "encoding_aes_key": secret}]})
    assert secret not in str(raised.value)
    with pytest.raises(ValueError, match="unknown config keys"):
        StackConfig.from_json({"suite": []})
    with pytest.raises(ValueError, match="derived"):
        StackConfig.from_json({"parameters": {"Stage": "prod"}})


def test_a_placeholder_handler_fails_at_invocation_then_loads_once_written(tmp_path):
    app = tmp_path / "app.py"
    app.write_text('"""Placeholder until the handler lands."""\n', encoding="utf-8")
    spec = FunctionSpec("PendingFunction", tmp_path, "app", "lambda_handler", 10, 128, "local-Pending", {})
    function = LocalFunction(spec, loader=ModuleLoader(), activity=Activity(), region="us-east-1")
    with pytest.raises(FunctionNotReady, match="placeholder"):
        function.invoke({})
    app.write_text(
        "def lambda_handler(event, context):\n"
        "    return {'got': event, 'left': context.get_remaining_time_in_millis()}\n"
    )
    result = function.invoke({"x": 1})
    assert result["got"] == {"x": 1}
    assert 0 < result["left"] <= 10_000
    stats = function.stats()
    assert (stats.invocations, stats.errors, stats.last_error) == (2, 1, "FunctionNotReady")
    function.unload()


def test_concurrent_invocations_run_in_separate_warm_containers_and_a_killed_one_is_replaced(tmp_path):
    (tmp_path / "app.py").write_text(
        "import threading\n"
        "from authsync_dev.local_functions import Killed, in_invocation\n"
        "STATE = {'calls': 0}\n"
        "def lambda_handler(event, context):\n"
        "    STATE['calls'] += 1\n"
        "    assert in_invocation()\n"
        "    if event.get('barrier'):\n"
        "        event['barrier'].wait(timeout=10)\n"
        "    if event.get('kill'):\n"
        "        raise Killed('chaos')\n"
        "    return (id(STATE), STATE['calls'])\n",
        encoding="utf-8",
    )
    spec = FunctionSpec("BusyFunction", tmp_path, "app", "lambda_handler", 10, 128, "local-Busy", {})
    function = LocalFunction(spec, loader=ModuleLoader(), activity=Activity(), region="us-east-1", concurrency=2)
    inits: list[str] = []
    function.on_init(lambda module: inits.append(module.__name__))
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:  # both wait on one barrier: only two containers at once get past it
        first, second = pool.map(function.invoke, [{"barrier": barrier}, {"barrier": barrier}])
    assert first[0] != second[0]  # two imports of the module: two containers
    assert len(inits) == 2
    assert len(set(inits)) == 2
    warm = function.invoke({})
    assert warm[0] in {first[0], second[0]}  # a warm container, reused
    assert warm[1] == 2
    with pytest.raises(InvocationKilled):
        function.invoke({"kill": True})
    survivors = {function.invoke({})[0] for _ in range(2)}
    stats = function.stats()
    assert (stats.killed, stats.errors) == (1, 1)
    assert stats.containers == 2  # the killed container was discarded; the other one stays warm
    assert len(survivors) == 1
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(function.invoke, [{"barrier": barrier}, {"barrier": barrier}]))
    assert function.stats().containers == 3  # a new (cold) one in place of the killed one
    assert not in_invocation()
    function.unload()


def test_one_container_runs_one_invocation_at_a_time(tmp_path):
    (tmp_path / "app.py").write_text(
        "def lambda_handler(event, context):\n    event['barrier'].wait(timeout=0.5)\n", encoding="utf-8"
    )
    spec = FunctionSpec("SoloFunction", tmp_path, "app", "lambda_handler", 10, 128, "local-Solo", {})
    function = LocalFunction(spec, loader=ModuleLoader(), activity=Activity(), region="us-east-1")
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(function.invoke, {"barrier": barrier}) for _ in range(2)]
    assert all(isinstance(f.exception(), threading.BrokenBarrierError) for f in futures)
    assert function.stats().containers == 1
    function.unload()


# ---------------------------------------------------------------- one shared in-process stack


@pytest.fixture(scope="class")
def stack() -> Iterator[LocalStack]:
    # Failed SQS messages reappear after 1 s instead of 180 s; schedules only on demand.
    with LocalStack(visibility_scale=1 / 180, schedules=False) as running:
        yield running


def test_authsync_ops_works_against_the_local_stack_through_its_json_line(stack: LocalStack, tmp_path):
    """``--local``: the moto endpoint and outputs of serve's first line (a real server, not in-process moto)."""
    import io

    from authsync_ops.cli import main

    line = tmp_path / "serve.json"
    line.write_text(json.dumps(stack.describe()) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["--local", str(line), "corps", "list"], stdout=out, stderr=err) == 0, err.getvalue()
    assert out.getvalue().splitlines()[0].split()[:3] == ["suite", "corp", "status"]
    out = io.StringIO()
    assert main(["--local", str(line), "redrive", "--dry-run"], stdout=out, stderr=err) == 0
    assert "would redrive 0, refused 0" in out.getvalue()


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class TestRunningStack:
    def test_describe_and_url_verification(self, stack: LocalStack):
        info = stack.describe()
        assert info["callback_base_url"] == stack.api_base_url + "/wecom/callback"
        assert info["query_url"] == stack.api_base_url + "/corps/{suite_id}/{corp_id}"
        for key in ("api_base_url", "emulator_admin_url", "moto_endpoint", "wecom_api_base"):
            assert info[key].startswith("http://127.0.0.1:"), key
        assert info["outputs"]["CorpsTableName"] == stack.deployment.physical["CorpsTable"]  # for authsync-ops
        assert info["outputs"]["AuthEventsDLQUrl"] == stack.queue_url("AuthEventsDLQ")
        assert info["token_url"] == stack.api_base_url + "/corps/{suite_id}/{corp_id}/token"
        # The change-event bus, created in moto: subscribe to it with a rule (issue #12).
        bus = stack.client("events").describe_event_bus(Name=info["event_bus_name"])
        assert bus["Name"] == info["event_bus_name"] == stack.deployment.physical["ChangeEventBus"]
        assert info["iam_auth"]["enforced"] == "signature required, not verified"
        assert sorted(info["iam_auth"]["routes"]) == [
            "GET /corps/{suite_id}/{corp_id}",
            "GET /corps/{suite_id}/{corp_id}/token",
            "POST /corps/{suite_id}/{corp_id}/token/invalidate",
        ]
        assert info["suites"] == [
            {
                "suite_id": TEST_SUITE.suite_id,
                "token": TEST_SUITE.token,
                "encoding_aes_key": TEST_SUITE.encoding_aes_key,
                "kind": "third_party",
            }
        ]
        # GET verification with a signed echostr: the plaintext comes back byte-exact.
        signed = sign_echostr(TEST_SUITE.crypto(), "echo-1234567890")
        answer = requests.get(stack.callback_url(TEST_SUITE.suite_id), params=signed.query, timeout=10)
        assert (answer.status_code, answer.text) == (200, "echo-1234567890")
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert "Apigw-Requestid" in answer.headers
        # The ticket pushed at start-up was stored by callback-ingest in Secrets Manager.
        prefix = stack.deployment.function_environment("CallbackIngestFunction")["SUITE_SECRET_PREFIX"]
        ticket = stack.client("secretsmanager").get_secret_value(SecretId=f"{prefix}{TEST_SUITE.suite_id}/ticket")
        assert json.loads(ticket["SecretString"])["suite_ticket"] == stack.emulator.ticket(TEST_SUITE.suite_id)

    def test_the_stored_suite_config_carries_the_emulators_provider_credentials(self, stack: LocalStack):
        prefix = stack.deployment.function_environment("CallbackIngestFunction")["SUITE_SECRET_PREFIX"]
        stored = stack.client("secretsmanager").get_secret_value(SecretId=f"{prefix}{TEST_SUITE.suite_id}/config")
        config = SuiteConfig.model_validate_json(stored["SecretString"])
        provider = stack.emulator.provider
        assert config.provider_corpid == provider.corpid == TEST_SUITE.provider_corpid
        assert config.provider_secret is not None
        assert config.provider_secret.get_secret_value() == provider.secret
        body = {"corpid": config.provider_corpid, "provider_secret": config.provider_secret.get_secret_value()}
        answer = requests.post(f"{stack.emulator.api_url}/service/get_provider_token", json=body, timeout=10).json()
        assert answer["errcode"] == 0

    def test_unknown_routes_and_methods_are_404(self, stack: LocalStack):
        for method, path in [("GET", "/nope"), ("DELETE", "/wecom/callback/x"), ("GET", "/corps/only-one")]:
            answer = requests.request(method, stack.api_base_url + path, timeout=10)
            assert answer.status_code == 404, (method, path)
            assert answer.json() == {"message": "Not Found"}
        url = stack.query_url(TEST_SUITE.suite_id, "wwnosuchcorp000001")
        missing = requests.get(url, headers=signed("GET", url), timeout=10)
        assert missing.status_code == 404  # the handler's own 404

    def test_iam_routes_answer_403_to_unsigned_requests_as_api_gateway_does(self, stack: LocalStack):
        before = stack.invocations("CorpQueryFunction"), stack.invocations("TokenBrokerFunction")
        query = stack.query_url(TEST_SUITE.suite_id, "wwnosuchcorp000001")
        token = stack.token_url(TEST_SUITE.suite_id, "wwnosuchcorp000001")
        for method, url in [("GET", query), ("GET", token), ("POST", token + "/invalidate")]:
            answer = requests.request(method, url, timeout=10)
            assert (answer.status_code, answer.json()) == (403, {"message": "Forbidden"}), (method, url)
            forged = requests.request(method, url, headers={"Authorization": "Bearer x"}, timeout=10)
            assert forged.status_code == 403
        assert (stack.invocations("CorpQueryFunction"), stack.invocations("TokenBrokerFunction")) == before
        # The callback routes stay open: WeCom cannot sign (they check msg_signature instead).
        assert requests.get(stack.callback_url(TEST_SUITE.suite_id), timeout=10).status_code != 403

    def test_non_text_bodies_reach_the_handler_base64_encoded(self, stack: LocalStack):
        xml = event_xml({"SuiteId": TEST_SUITE.suite_id, "InfoType": "unknown_kind", "TimeStamp": 1})
        signed = sign_event(TEST_SUITE.crypto(), xml)
        assert signed.body is not None
        for content_type in ("application/octet-stream", "text/xml"):
            answer = requests.post(
                stack.callback_url(TEST_SUITE.suite_id),
                params=signed.query,
                data=signed.body,
                headers={"Content-Type": content_type},
                timeout=10,
            )
            assert (answer.status_code, answer.text) == (200, "success"), content_type

    def test_an_install_flows_through_the_pipeline(self, stack: LocalStack):
        corp = stack.emulator.add_corp("wwstackcorp0000001", verified=True)
        pushed = stack.emulator.create_auth(TEST_SUITE.suite_id, corp.corpid, chat_editions=sample_chat_editions())
        assert pushed.delivered
        stack.wait_idle(30)
        url = stack.query_url(TEST_SUITE.suite_id, corp.corpid)
        answer = requests.get(url, headers=signed("GET", url), timeout=10)
        assert answer.status_code == 200
        view = answer.json()
        assert view["status"] == "active"
        assert view["corp"]["corp_type"] == "verified"
        assert view["versions"] == {"auth_info": 1, "chatdata": 1, "license": 0, "orders": 0}
        assert stack.invocations("AuthInfoFunction") >= 1
        assert stack.invocations("ChatdataFunction") >= 1
        assert stack.errors("AuthInfoFunction") == 0

        # The token broker serves the installed corp a token WeCom (the emulator) accepts.
        from botocore.credentials import Credentials

        from authsync.broker_client import BrokerClient

        broker = BrokerClient(stack.api_base_url, region="us-east-1", credentials=Credentials("AKIDLOCAL", "local"))
        token = broker.token(TEST_SUITE.suite_id, corp.corpid)
        issued = stack.emulator.state.tokens[token.access_token]
        assert (issued.corpid, issued.kind) == (corp.corpid, "corp")
        assert token.remaining(stack.emulator.now()) >= 300
        assert stack.errors("TokenBrokerFunction") == 0

        # A scheduled function on demand: reconcile fans out one message per active corp.
        result = stack.fire("ReconcileFunction")
        assert isinstance(result, dict)
        stack.wait_idle(30)
        assert stack.stats()["ReconcileFunction"].invocations == 1

    def test_a_poison_message_is_redriven_to_the_dlq_after_max_receive_count(self, stack: LocalStack):
        sqs = stack.client("sqs")
        redrive = json.loads(
            sqs.get_queue_attributes(QueueUrl=stack.queue_url("AuthEventsQueue"), AttributeNames=["RedrivePolicy"])[
                "Attributes"
            ]["RedrivePolicy"]
        )
        max_receives = int(redrive["maxReceiveCount"])
        before = stack.stats()["AuthInfoFunction"]
        started = time.monotonic()
        sqs.send_message(
            QueueUrl=stack.queue_url("AuthEventsQueue"),
            MessageBody="<not-an-auth-event>",
            MessageGroupId="poison",
            MessageDeduplicationId="poison-1",
        )
        _wait_for(lambda: stack.queue_depth("AuthEventsDLQ") == 1, 30, "the poison message in the DLQ")
        elapsed = time.monotonic() - started
        stack.wait_idle(10)
        after = stack.stats()["AuthInfoFunction"]
        # Alone in its batch, the failure makes Powertools raise (all records failed): an error.
        assert after.invocations - before.invocations == max_receives
        assert (after.errors + after.failed_items) - (before.errors + before.failed_items) == max_receives
        assert elapsed >= max_receives - 1.5  # failures waited out the (scaled, 1 s) visibility timeout
        dead = sqs.receive_message(
            QueueUrl=stack.queue_url("AuthEventsDLQ"), AttributeNames=["All"], MaxNumberOfMessages=1
        )["Messages"][0]
        assert dead["Body"] == "<not-an-auth-event>"
        assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= max_receives
        assert stack.queue_depth("AuthEventsQueue") == 0


# ---------------------------------------------------------------- stacks of their own


def test_schedules_fire_on_the_accelerated_clock_and_failures_retry_into_the_dlq():
    monitor_runs: list[float] = []
    bodies: list[str] = []

    def monitor(event: Any, context: Any) -> dict[str, Any]:
        assert event == {}
        monitor_runs.append(time.monotonic())
        return {}

    def refresh(event: Any, context: Any) -> None:
        raise RuntimeError("token endpoint down")

    processed: list[str] = []

    def chatdata(event: Any, context: Any) -> dict[str, Any]:
        records = event["Records"]
        bodies.extend(r["body"] for r in records)
        if any(r["body"] == "raise" for r in records):
            raise ValueError("chatdata broken")
        failed: list[str] = []
        for record in records:
            body, blocked = record["body"], bool(failed) and record["attributes"]["MessageGroupId"] == "order"
            if body == "fail" or blocked or (body == "order-1" and bodies.count(body) == 1):
                failed.append(record["messageId"])  # like SqsFifoPartialProcessor: the rest of the group too
            else:
                processed.append(body)
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}

    handlers = {"TicketMonitorFunction": monitor, "TokenRefreshFunction": refresh, "ChatdataFunction": chatdata}
    # rate(5 minutes) → every 0.5 s, rate(10 minutes) → every 1 s; failed messages reappear at once.
    with LocalStack(time_scale=600, visibility_scale=0, handlers=handlers) as stack:
        _wait_for(lambda: len(monitor_runs) >= 3, 15, "three ticket-monitor runs")
        assert all(0.3 < b - a < 1.0 for a, b in itertools.pairwise(monitor_runs))

        _wait_for(lambda: stack.queue_depth("SchedulesDLQ") >= 1, 15, "a failed token refresh in the DLQ")
        retries = next(s for s in stack.schedules if s.function == "TokenRefreshFunction").max_retries
        assert stack.errors("TokenRefreshFunction") >= retries + 1
        dead = stack.client("sqs").receive_message(
            QueueUrl=stack.queue_url("SchedulesDLQ"), MessageAttributeNames=["All"], MaxNumberOfMessages=1
        )["Messages"][0]
        assert json.loads(dead["Body"]) == {}
        attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
        assert attributes["ERROR_CODE"] == "RuntimeError"
        assert attributes["RETRY_ATTEMPTS"] == str(retries)
        assert "token endpoint down" not in json.dumps(attributes)

        with pytest.raises(RuntimeError):
            stack.fire("TokenRefreshFunction")

        # Reported failures are redelivered (successes deleted); an exception fails its whole batch.
        sqs = stack.client("sqs")

        def send(group: str, body: str) -> None:
            sqs.send_message(
                QueueUrl=stack.queue_url("ChatdataQueue"),
                MessageBody=body,
                MessageGroupId=group,
                MessageDeduplicationId=f"{group}-{body}",
            )

        send("g1", "ok")
        send("g2", "fail")
        _wait_for(lambda: stack.queue_depth("ChatdataDLQ") == 1, 15, "the reported failure in the DLQ")
        stack.wait_idle(10)
        assert (bodies.count("ok"), bodies.count("fail")) == (1, 5)
        assert stack.stats()["ChatdataFunction"].failed_items == 5
        send("g3", "raise")
        _wait_for(lambda: stack.queue_depth("ChatdataDLQ") == 2, 15, "the raising message in the DLQ")
        stack.wait_idle(10)
        assert bodies.count("raise") == 5
        assert stack.errors("ChatdataFunction") == 5

        # FIFO: after order-1 fails once (holding back 2 and 3), the group still completes in order.
        for body in ("order-1", "order-2", "order-3"):
            send("order", body)
        stack.wait_idle(10)
        assert [b for b in processed if b.startswith("order-")] == ["order-1", "order-2", "order-3"]
        assert bodies.count("order-1") == 2


SERVE_CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import requests
    from wechatpy.enterprise.crypto import WeChatCrypto

    args = json.loads(sys.argv[1])
    crypto = WeChatCrypto(args["token"], args["encoding_aes_key"], args["suite_id"])
    xml = (
        "<xml><SuiteId><![CDATA[%s]]></SuiteId><AuthCode><![CDATA[%s]]></AuthCode>"
        "<InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>%d</TimeStamp></xml>"
        % (args["suite_id"], args["auth_code"], int(time.time()))
    )
    nonce, timestamp = "1234567890", str(int(time.time()))
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    encrypt = envelope.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
    signature = envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
    body = (
        "<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt>"
        "<AgentID><![CDATA[]]></AgentID></xml>" % (args["suite_id"], encrypt)
    )
    answer = requests.post(
        args["url"],
        params={"msg_signature": signature, "timestamp": timestamp, "nonce": nonce},
        data=body.encode("utf-8"),
        timeout=10,
    )
    print(json.dumps({"status": answer.status_code, "body": answer.text}))
    """
)


def test_serve_answers_a_wechatpy_callback_from_another_process_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "local.json"
    config.write_text(json.dumps({"suites": [TEST_SUITE.config()], "ticket_interval": 0}), encoding="utf-8")
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "authsync_dev.serve", "--config", str(config), "--visibility-scale", "0.01"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            info = json.loads(first_line(process, 60))
            suite = info["suites"][0]
            assert suite["suite_id"] == TEST_SUITE.suite_id
            admin = info["emulator_admin_url"]
            corpid = "wwservecorp0000001"
            created = requests.post(f"{admin}/corps", json={"corpid": corpid, "verified": True}, timeout=10)
            assert created.status_code == 200, created.text
            minted = requests.post(
                f"{admin}/push/create_auth",
                json={"suite_id": suite["suite_id"], "corpid": corpid, "push": False},
                timeout=10,
            ).json()
            client_args = {
                **suite,
                "auth_code": minted["auth_code"],
                "url": f"{info['callback_base_url']}/{suite['suite_id']}",
            }
            posted = subprocess.run(
                [sys.executable, "-c", SERVE_CLIENT, json.dumps(client_args)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            assert json.loads(posted.stdout) == {"status": 200, "body": "success"}

            query = info["query_url"].format(suite_id=suite["suite_id"], corp_id=corpid)
            deadline = time.monotonic() + 30

            def fetched(answer: requests.Response) -> bool:
                # The install's first state (from the exchange) is visible before its auth info is.
                return answer.status_code == 200 and bool(answer.json().get("versions", {}).get("auth_info"))

            while (
                not fetched(answer := requests.get(query, headers=signed("GET", query), timeout=10))
                and time.monotonic() < deadline
            ):
                time.sleep(0.2)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "active"
            assert answer.json()["corp"]["corp_type"] == "verified"
        finally:
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                rest, _ = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert process.returncode == 0, stderr_path.read_text(encoding="utf-8")[-4000:]
    assert time.monotonic() - stopping < 5
    assert rest == ""  # stdout carries the one JSON line only
    logs = stderr_path.read_text(encoding="utf-8")
    assert TEST_SUITE.suite_secret not in logs
    assert minted["auth_code"] not in logs
