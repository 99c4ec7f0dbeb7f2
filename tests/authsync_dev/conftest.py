"""Fixtures for the WeCom emulator tests: a running emulator, a provider-side caller, a receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from authsync_dev.emulator import (
    BackgroundHTTPServer,
    Clock,
    CorpRecord,
    Emulator,
    HttpRequest,
    HttpResponse,
    SuiteRecord,
)

Caller = Callable[..., dict[str, Any]]


@pytest.fixture
def clock() -> Clock:
    return Clock(start=1_750_000_000, frozen=True)


@pytest.fixture
def wecom(clock: Clock) -> Iterator[Emulator]:
    """A started emulator on a frozen clock; failed callbacks are re-sent without delay."""
    with Emulator(clock=clock, retry_delays=(0.0, 0.0, 0.0), seed=7) as emulator:
        yield emulator


@pytest.fixture
def call(wecom: Emulator) -> Caller:
    """``call(path, body=None, *, method="POST", **query)``: one request to ``/cgi-bin/<path>``, JSON back."""

    def _call(path: str, body: dict[str, Any] | None = None, *, method: str = "POST", **query: str) -> dict[str, Any]:
        response = requests.request(
            method, f"{wecom.api_url}/{path}", params=query, json=body if body is not None else None, timeout=10
        )
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        document: dict[str, Any] = response.json()
        return document

    return _call


@dataclass
class Installed:
    """A suite with a ticket, a corp that installed it, and the provider's credentials."""

    suite: SuiteRecord
    corp: CorpRecord
    suite_token: str
    permanent_code: str
    corp_token: str


@pytest.fixture
def provider(wecom: Emulator, call: Caller) -> Callable[..., Installed]:
    """``provider(kind="third_party", verified=False, chat=True)``: drive an install through the API."""

    def _install(kind: str = "third_party", *, verified: bool = False, chat: bool = True) -> Installed:
        from authsync_dev.emulator import sample_chat_editions

        suite = wecom.add_suite(kind=kind)  # type: ignore[arg-type]
        corp = wecom.add_corp(verified=verified)
        ticket = wecom.push_suite_ticket(suite.suite_id).suite_ticket
        token = call(
            "service/get_suite_token",
            {"suite_id": suite.suite_id, "suite_secret": suite.suite_secret, "suite_ticket": ticket},
        )["suite_access_token"]
        code = wecom.create_auth(
            suite.suite_id, corp.corpid, chat_editions=sample_chat_editions() if chat else ()
        ).auth_code
        permanent = call("service/v2/get_permanent_code", {"auth_code": code}, suite_access_token=token)
        body = {"auth_corpid": corp.corpid, "permanent_code": permanent["permanent_code"]}
        if kind == "customized":
            corp_token = call("gettoken", method="GET", corpid=corp.corpid, corpsecret=permanent["permanent_code"])[
                "access_token"
            ]
        else:
            corp_token = call("service/get_corp_token", body, suite_access_token=token)["access_token"]
        return Installed(suite, corp, token, permanent["permanent_code"], corp_token)

    return _install


@dataclass
class Receiver:
    """A provider's callback URL: records requests, answers from a script, then ``success``."""

    script: list[tuple[int, bytes, float]] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)
    server: BackgroundHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: HttpRequest) -> HttpResponse:
        with self.lock:
            self.requests.append(request)
            status, body, delay = self.script.pop(0) if self.script else (200, b"success", 0.0)
        if delay:
            time.sleep(delay)
        return HttpResponse(status, body)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/wecom/callback"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    recv.server = BackgroundHTTPServer(recv.handle).start()
    try:
        yield recv
    finally:
        recv.server.stop()


@pytest.fixture
def pushing(clock: Clock, receiver: Receiver) -> Iterator[Emulator]:
    """An emulator whose callbacks go to ``receiver``; short delivery timeout for timeout tests."""
    with Emulator(
        clock=clock, callback_url=receiver.url, retry_delays=(0.0, 0.0, 0.0), delivery_timeout=0.5
    ) as emulator:
        yield emulator
