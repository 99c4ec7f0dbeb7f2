"""A WeCom (企业微信) emulator: a faithful, stateful stand-in for WeCom's server side (issue 3).

Dev/test tooling only, never packaged into a Lambda. It serves WeCom's exact API
paths on a real 127.0.0.1 socket, keeps suites, tickets, auth codes, corps,
authorizations and tokens on an injectable :class:`Clock`, answers with WeCom's
shapes and error codes (spec ``wecom-protocol.md`` §3-§4), and acts as WeCom toward
a callback URL: it encrypts, signs and POSTs 指令回调 events and retries failed
deliveries. Faults, rate limits and counters make client resilience testable.

Python::

    with Emulator(callback_url="http://127.0.0.1:8080/wecom/callback") as wecom:
        suite = wecom.add_suite()
        corp = wecom.add_corp(verified=False)
        wecom.push_suite_ticket(suite.suite_id)
        wecom.create_auth(suite.suite_id, corp.corpid)
        wecom.buy_edition(suite.suite_id, corp.corpid)  # open_order, pay_for_app_success, change_editon
        # ... your code calls f"{wecom.base_url}/cgi-bin/service/get_suite_token" ...

HTTP: ``/admin/...`` (see :mod:`authsync_dev.emulator.admin`). CLI: ``python -m authsync_dev.emulator``.
"""

from authsync_dev.emulator.clock import Clock
from authsync_dev.emulator.emulator import Emulator, HeldPush, PushResult, sample_chat_editions
from authsync_dev.emulator.entitlement_pushes import ScenarioResult
from authsync_dev.emulator.entitlements import Provider
from authsync_dev.emulator.errors import NotFoundError, WeComError
from authsync_dev.emulator.faults import EndpointCounters, Fault
from authsync_dev.emulator.model import (
    AgentRecord,
    Authorization,
    AuthUser,
    ChatEdition,
    CorpRecord,
    Dealer,
    Member,
    PaidEdition,
    Privilege,
    RegisterCode,
    SharedFrom,
    SuiteRecord,
)
from authsync_dev.emulator.pusher import Delivery, DeliveryAttempt
from authsync_dev.httpserver import BackgroundHTTPServer, HttpRequest, HttpResponse

__all__ = [
    "AgentRecord",
    "AuthUser",
    "Authorization",
    "BackgroundHTTPServer",
    "ChatEdition",
    "Clock",
    "CorpRecord",
    "Dealer",
    "Delivery",
    "DeliveryAttempt",
    "Emulator",
    "EndpointCounters",
    "Fault",
    "HeldPush",
    "HttpRequest",
    "HttpResponse",
    "Member",
    "NotFoundError",
    "PaidEdition",
    "Privilege",
    "Provider",
    "PushResult",
    "RegisterCode",
    "ScenarioResult",
    "SharedFrom",
    "SuiteRecord",
    "WeComError",
    "sample_chat_editions",
]
