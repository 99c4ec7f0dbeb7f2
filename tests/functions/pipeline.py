"""Shared set-up for driving the fetch pipeline end to end (moto + emulator + real handlers)."""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from authsync.aws.credentials import CredentialWriter, SecretNames
from authsync.aws.queues import SqsEventPublisher, queued_event
from authsync.aws.snapshots import SnapshotStore
from authsync.settings import FetchSettings, load
from authsync.wecom.callbacks import AuthEvent, parse_event
from authsync.wiring import build_credentials
from authsync_dev.emulator import Emulator, sample_chat_editions
from authsync_dev.sqs import BatchOutcome, deliver_batch
from authsync_dev.wecom import event_xml
from authsync_dev.world import World, build_world
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext


def make_world(wecom: Emulator, monkeypatch: pytest.MonkeyPatch, kind: str = "third_party") -> World:
    world = build_world(wecom, kind=kind)
    world.deliver_ticket()
    for function in ("ChatdataFunction", "AuthInfoFunction"):
        for name, value in world.environment(function).items():
            monkeypatch.setenv(name, value)
    fresh("auth_info.app")
    fresh("chatdata.app")
    return world


def new_containers() -> None:
    """A cold start of both fetch functions: nothing cached in memory, clients rebuilt."""
    fresh("auth_info.app")
    fresh("chatdata.app")


def publish(world: World, fields: dict[str, str | int]) -> None:
    """What callback-ingest does with a verified event."""
    xml = event_xml({"SuiteId": world.suite.suite_id, **fields}).encode()
    event = parse_event(xml)
    assert isinstance(event, AuthEvent)
    SqsEventPublisher(boto3.client("sqs"), world.queue_url("AuthEventsQueue")).publish(queued_event(event, xml))


def run(world: World, logical_id: str, module: ModuleType) -> list[BatchOutcome]:
    """Deliver batches until the queue is empty (failures become visible again at once)."""
    outcomes: list[BatchOutcome] = []
    for _ in range(50):
        outcome = deliver_batch(world.queue_url(logical_id), module.lambda_handler, FakeLambdaContext())
        if not outcome.received:
            return outcomes
        outcomes.append(outcome)
        if outcome.failed:
            return outcomes
    raise AssertionError("queue never drained")


def settle(world: World) -> tuple[list[BatchOutcome], list[BatchOutcome]]:
    from auth_info import app as auth_info
    from chatdata import app as chatdata

    return run(world, "AuthEventsQueue", auth_info), run(world, "ChatdataQueue", chatdata)


def store(world: World) -> SnapshotStore:
    return SnapshotStore(boto3.client("dynamodb"), world.deployment.physical["CorpsTable"])


def secret_exists(name: str) -> bool:
    try:
        boto3.client("secretsmanager").describe_secret(SecretId=name)
    except boto3.client("secretsmanager").exceptions.ResourceNotFoundException:
        return False
    return True


def credentials() -> tuple[SecretNames, CredentialWriter]:
    """The names and the credential store the functions use now (their environment: a test may switch
    ``CORP_CREDENTIAL_STORE``), built by the functions' own wiring; reads through it are uncached."""
    settings = load(FetchSettings, os.environ)
    names = SecretNames(settings.suite_secret_prefix, settings.corp_secret_prefix)
    return names, build_credentials(settings, client=boto3.client)[1]  # type: ignore[arg-type]


def credential(world: World, corp_id: str, kind: str, suite_id: str | None = None) -> dict[str, Any] | None:
    """A corp's stored credential document, ``kind`` = ``permanent-code`` or ``access-token``."""
    names, store = credentials()
    suite = suite_id or world.suite.suite_id
    name = names.permanent_code(suite, corp_id) if kind == "permanent-code" else names.corp_token(suite, corp_id)
    found = store.read(name)
    return None if found is None else found[1]


def overwrite_credential(name: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Replace a stored credential document (a test's way of ageing a token or planting a code)."""
    store = credentials()[1]
    found = store.read(name)
    store.write(name, change({} if found is None else found[1]), lambda new, old: True)


def install(world: World, corp_id: str, **corp: Any) -> None:
    chat = corp.pop("chat_editions", sample_chat_editions())
    world.wecom.add_corp(corp_id, **corp)
    code = world.wecom.create_auth(world.suite.suite_id, corp_id, push=False, chat_editions=chat).auth_code
    assert code is not None
    publish(world, {"AuthCode": code, "InfoType": "create_auth", "TimeStamp": int(world.wecom.now())})


def held_pushes_ingested(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], object]], list[Any]]:
    """Make pushes (held back) and hand each to callback-ingest as WeCom would POST it: signed, encrypted for
    its receiveid (the suite, the corp of an Event-style document, the provider of a system event). Returns
    the handler's responses."""
    from authsync.wecom.crypto import CallbackCrypto
    from authsync_dev.emulator.pusher import receive_id_of
    from authsync_dev.httpapi import http_api_event
    from authsync_dev.wecom import sign_event

    for name, value in world.environment("CallbackIngestFunction").items():
        monkeypatch.setenv(name, value)
    app = fresh("callback_ingest.app")
    suite = world.suite
    crypto = CallbackCrypto(suite.token.get_secret_value(), suite.encoding_aes_key.get_secret_value(), suite.suite_id)

    def push(make: Callable[[], object]) -> list[Any]:
        with world.wecom.holding() as held:
            make()
        responses = []
        for document in held:
            fields = dict(document.fields)
            receiver = receive_id_of(suite.suite_id, fields)
            signed = sign_event(crypto, event_xml(fields), receive_id=receiver, to_user_name=receiver)
            event = http_api_event(
                "POST",
                f"/wecom/callback/{suite.suite_id}",
                query=signed.query,
                body=(signed.body or b"").decode(),
                path_parameters={"suite_id": suite.suite_id},
                route_key="POST /wecom/callback/{suite_id}",
            )
            responses.append(app.lambda_handler(event, FakeLambdaContext()))
        return responses

    return push
