"""The token broker end to end: the deployed handler on moto (both credential stores) and the WeCom emulator.

Corps are installed through the real pipeline (auth-info, chatdata); the broker is then asked
through HTTP API v2 events as API Gateway sends them after IAM authorization. "Containers" are
separate imports of the handler module (own clients, caches and lease owner), as Lambda has.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from authsync.settings import FetchSettings, load
from authsync.wecom.client import WeComClient
from authsync.wiring import build_pipeline
from authsync_dev.emulator import Emulator
from authsync_dev.httpapi import http_api_event
from authsync_dev.local_functions import FunctionSpec, ModuleLoader, function_specs
from authsync_dev.template import load_template
from authsync_dev.world import World
from tests.functions.pipeline import install, make_world, publish, settle
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext
from tests.logs import structured_logs

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = "arn:aws:sts::123456789012:assumed-role/consumer-service/session-1"
TOKEN_ROUTE = "GET /corps/{suite_id}/{corp_id}/token"
INVALIDATE_ROUTE = "POST /corps/{suite_id}/{corp_id}/token/invalidate"
STORES = ["SecretsManager", "DynamoDBKMS"]


def broker_environment(world: World, monkeypatch: pytest.MonkeyPatch, store: str) -> None:
    """The broker's template environment, the chosen credential store for every function, fresh imports."""
    for name, value in world.environment("TokenBrokerFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CORP_CREDENTIAL_STORE", store)
    fresh("auth_info.app")
    fresh("chatdata.app")


@pytest.fixture(params=STORES)
def broker(request: pytest.FixtureRequest, world: World, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    broker_environment(world, monkeypatch, request.param)
    return fresh("token_broker.app")


@pytest.fixture
def containers(world: World) -> Iterator[Callable[[int], list[ModuleType]]]:
    """``containers(n)``: n separate cold imports of the broker handler, under the current environment."""
    loader = ModuleLoader()

    def load_containers(n: int) -> list[ModuleType]:
        spec: FunctionSpec = function_specs(
            load_template(), world.environments, root=ROOT, stack_name="authsync-world"
        )["TokenBrokerFunction"]
        return [loader.load(spec, container=i + 2) for i in range(n)]

    yield load_containers
    loader.unload_all()


def call(
    module: ModuleType,
    suite_id: str,
    corp_id: str,
    *,
    invalidate: str | None = None,
    body: str | None = None,
    principal: str = CONSUMER,
) -> dict[str, Any]:
    """One request as API Gateway hands it over after SigV4 authorization (``authorizer.iam``)."""
    path = f"/corps/{suite_id}/{corp_id}/token"
    if invalidate is not None or body is not None:
        method, path, route = "POST", path + "/invalidate", INVALIDATE_ROUTE
        body = body if body is not None else json.dumps({"access_token": invalidate})
    else:
        method, route = "GET", TOKEN_ROUTE
    event = http_api_event(
        method,
        path,
        body=body,
        route_key=route,
        path_parameters={"suite_id": suite_id, "corp_id": corp_id},
        headers={"content-type": "application/json"},
    )
    event["requestContext"]["authorizer"] = {
        "iam": {"accountId": "123456789012", "callerId": "AROAEXAMPLE:session-1", "userArn": principal}
    }
    response: dict[str, Any] = module.lambda_handler(event, FakeLambdaContext())
    return response


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response["body"])
    return document


def accepted(wecom: Emulator, token: str) -> bool:
    """The emulator serves a corp API with ``token`` (chatdata/get_corp_auth_info)."""
    WeComClient(wecom.base_url).get_corp_chat_auth_info(token)
    return True


def forget_corp_token(world: World, corp_id: str) -> None:
    """No stored corp token (as after a rotation): the next request must renew."""
    settings = load(FetchSettings)  # the current environment: the broker's, with the chosen store
    build_pipeline(settings).tokens.forget_corp_token(world.suite.suite_id, corp_id)


def installed(world: World, corp_id: str) -> str:
    install(world, corp_id)
    settle(world)
    return corp_id


# ---------------------------------------------------------------- GET .../token


def test_a_token_the_emulator_accepts_valid_for_five_minutes_and_not_cached(world: World, broker: ModuleType) -> None:
    corp_id = installed(world, "wwcorpbroker000001")
    with structured_logs(broker.logger) as logs:
        response = call(broker, world.suite.suite_id, corp_id)
    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Content-Type"] == "application/json"
    body = body_of(response)
    assert set(body) == {"access_token", "expires_at"}
    truth = world.wecom.state.tokens[body["access_token"]]
    assert truth.kind == "corp"
    assert truth.corpid == corp_id
    assert body["expires_at"] <= truth.expires_at
    assert body["expires_at"] - world.wecom.now() >= 300
    assert accepted(world.wecom, body["access_token"])
    (line,) = [entry for entry in logs() if entry["message"] == "token issued"]
    assert line["principal"] == CONSUMER
    assert (line["suite_id"], line["corp_id"], line["action"], line["outcome"]) == (
        world.suite.suite_id,
        corp_id,
        "token",
        "issued",
    )
    assert body["access_token"] not in json.dumps(logs())


def test_eight_concurrent_containers_renew_with_one_wecom_call(
    world: World, monkeypatch: pytest.MonkeyPatch, containers: Callable[[int], list[ModuleType]]
) -> None:
    broker_environment(world, monkeypatch, "DynamoDBKMS")
    corp_id = installed(world, "wwcorpbrokerconc01")
    forget_corp_token(world, corp_id)
    callers = containers(8)
    world.wecom.reset_counters()
    barrier = threading.Barrier(len(callers))
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def ask(module: ModuleType) -> None:
        try:
            barrier.wait()
            answers.append(call(module, world.suite.suite_id, corp_id))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(m,)) for m in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [a["statusCode"] for a in answers] == [200] * 8
    tokens = {body_of(a)["access_token"] for a in answers}
    assert len(tokens) == 1
    assert world.wecom.calls("service/get_corp_token") == 1
    assert accepted(world.wecom, tokens.pop())


def test_unknown_cancelled_and_malformed_corps_get_404_and_no_token(world: World, broker: ModuleType) -> None:
    suite_id = world.suite.suite_id
    gone = installed(world, "wwcorpbrokergone01")
    world.wecom.cancel_auth(suite_id, gone, push=False)
    publish(world, {"InfoType": "cancel_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": gone})
    settle(world)
    world.wecom.reset_counters()
    for corp_id in (gone, "wwnosuchcorp000001", "ww$bad..id"):
        response = call(broker, suite_id, corp_id)
        assert response["statusCode"] == 404, corp_id
        assert body_of(response) == {"message": "corp not found"}
        assert call(broker, suite_id, corp_id, invalidate="x" * 40)["statusCode"] == 404
    assert world.wecom.calls("service/get_corp_token") == 0


def test_a_corp_cancelled_at_wecom_but_not_yet_here_gets_404(world: World, broker: ModuleType) -> None:
    corp_id = installed(world, "wwcorpbrokervoid01")
    world.wecom.cancel_auth(world.suite.suite_id, corp_id, push=False)  # cancel_auth not delivered (yet)
    forget_corp_token(world, corp_id)
    response = call(broker, world.suite.suite_id, corp_id)
    assert response["statusCode"] == 404
    assert "access_token" not in body_of(response)


def test_wecom_down_is_503_with_retry_after(world: World, broker: ModuleType) -> None:
    corp_id = installed(world, "wwcorpbrokerdown01")
    forget_corp_token(world, corp_id)
    world.wecom.inject_fault("service/get_corp_token", "http5xx")
    response = call(broker, world.suite.suite_id, corp_id)
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) > 0
    assert "access_token" not in body_of(response)
    world.wecom.clear_faults()
    world.wecom.inject_fault("service/get_corp_token", "-1")
    assert call(broker, world.suite.suite_id, corp_id)["statusCode"] == 503
    world.wecom.clear_faults()
    assert call(broker, world.suite.suite_id, corp_id)["statusCode"] == 200  # back once WeCom is


@pytest.mark.parametrize("store", STORES)
def test_a_customized_suite_gets_its_token_from_gettoken(
    aws: None, wecom: Emulator, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    world = make_world(wecom, monkeypatch, kind="customized")
    broker_environment(world, monkeypatch, store)
    broker = fresh("token_broker.app")
    corp_id = installed(world, "wwcorpbrokerdk0001")
    forget_corp_token(world, corp_id)
    wecom.reset_counters()
    response = call(broker, world.suite.suite_id, corp_id)
    assert response["statusCode"] == 200
    assert wecom.calls("gettoken") == 1
    assert wecom.calls("service/get_corp_token") == 0
    assert accepted(wecom, body_of(response)["access_token"])


# ---------------------------------------------------------------- POST .../token/invalidate


def test_an_invalidation_renews_once_and_a_second_within_the_window_is_429(world: World, broker: ModuleType) -> None:
    suite_id, corp_id = world.suite.suite_id, installed(world, "wwcorpbrokerinv001")
    first = body_of(call(broker, suite_id, corp_id))["access_token"]
    world.wecom.invalidate_tokens(corpid=corp_id)  # WeCom ends it early: a consumer meets 42001
    world.wecom.reset_counters()

    with structured_logs(broker.logger) as logs:
        renewed = call(broker, suite_id, corp_id, invalidate=first)
    assert renewed["statusCode"] == 200
    assert renewed["headers"]["Cache-Control"] == "no-store"
    second = body_of(renewed)["access_token"]
    assert second != first
    assert accepted(world.wecom, second)
    assert world.wecom.calls("service/get_corp_token") == 1
    (line,) = [e for e in logs() if e["message"] == "token issued"]
    assert (line["action"], line["issue"], line["principal"]) == ("invalidate", "renewed", CONSUMER)
    assert first not in json.dumps(logs())
    assert second not in json.dumps(logs())

    # Another consumer reports the same old token: the stored one already differs, no WeCom call.
    again = call(broker, suite_id, corp_id, invalidate=first)
    assert (again["statusCode"], body_of(again)["access_token"]) == (200, second)
    # A report of the fresh token inside the window: refused, WeCom not asked, the token still served.
    limited = call(broker, suite_id, corp_id, invalidate=second)
    assert limited["statusCode"] == 429
    assert limited["headers"]["Retry-After"] == "60"
    assert second not in limited["body"]
    assert world.wecom.calls("service/get_corp_token") == 1
    assert body_of(call(broker, suite_id, corp_id))["access_token"] == second


def test_concurrent_reports_of_the_same_rejected_token_renew_once(
    world: World, monkeypatch: pytest.MonkeyPatch, containers: Callable[[int], list[ModuleType]]
) -> None:
    broker_environment(world, monkeypatch, "SecretsManager")
    corp_id = installed(world, "wwcorpbrokerinvc01")
    callers = containers(8)
    first = body_of(call(callers[0], world.suite.suite_id, corp_id))["access_token"]
    world.wecom.invalidate_tokens(corpid=corp_id)
    world.wecom.reset_counters()
    barrier = threading.Barrier(len(callers))
    answers: list[dict[str, Any]] = []

    def report(module: ModuleType) -> None:
        barrier.wait()
        answers.append(call(module, world.suite.suite_id, corp_id, invalidate=first))

    threads = [threading.Thread(target=report, args=(m,)) for m in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a["statusCode"] for a in answers] == [200] * 8
    assert len({body_of(a)["access_token"] for a in answers} - {first}) == 1
    assert world.wecom.calls("service/get_corp_token") == 1


@pytest.mark.parametrize(
    "body", ["", "not json", "[]", '{"token": "x"}', '{"access_token": ""}', '{"access_token": 7}', "{}"]
)
def test_a_malformed_invalidation_is_400_without_echo(world: World, broker: ModuleType, body: str) -> None:
    response = call(broker, world.suite.suite_id, "wwcorpbrokerbad001", body=body)
    assert response["statusCode"] == 400
    assert "access_token" in body_of(response)["message"]  # says what is expected, echoes nothing


@pytest.mark.parametrize("sample", ["token_broker_get", "token_broker_invalidate"])
def test_the_sample_events_reach_the_broker_routes(world: World, broker: ModuleType, sample: str) -> None:
    from authsync_dev.make_events import EVENTS

    event = json.loads((EVENTS / f"{sample}.json").read_text(encoding="utf-8"))
    with structured_logs(broker.logger) as logs:
        response = broker.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 404  # the sample corp is not installed here
    assert body_of(response) == {"message": "corp not found"}  # the route's answer, not "no route"
    (line,) = [e for e in logs() if e["message"] == "token refused"]
    assert line["principal"] == "arn:aws:sts::123456789012:assumed-role/sample-consumer/session"
    assert line["reason"] == "unknown"
