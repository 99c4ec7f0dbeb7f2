"""WeCom's side of 指令回调: encrypt, sign, POST, judge the answer, re-send, and log it all.

A delivery succeeds only on HTTP 200 with the body exactly ``success`` within the
deadline: 1,000 ms for the four authorization InfoTypes (create_auth, change_auth,
cancel_auth, reset_permanent_code; spec §1.4, D-90642), 5 s for everything else.
Anything else -- another status, another body, a late answer, a refused connection --
is a failed attempt.

Which failures are re-sent is the ``retry_on`` policy. WeCom's current documentation
(spec §1.4, §7) re-sends only after a **network failure or timeout** (``"network"``, the
default): an answer of 503 or ``fail`` is *not* retried, so a receiver that counts on a
5xx being retried loses the event. ``"any"`` is the older text's behaviour (every
non-``success`` answer is retried), kept for tests of a receiver's idempotency. Up to three
retries ("总共重试三次"; ⚠️ we read it as 3 retries, 4 attempts). Every attempt is
recorded with its latency and the receiver's answer, never with the plaintext event (it
carries tickets and auth codes).

Duplicate deliveries: WeCom may deliver one callback more than once (a re-send after a
timeout carries the same event), so a receiver must be idempotent. With ``copies=N``
(``CallbackPusher(copies=N)``, ``Emulator(copies=N)``, or ``pusher.copies = N`` on a running
emulator) :meth:`CallbackPusher.deliver` POSTs the *same signed request* -- the same query
and body -- N times, one copy after the other. Each copy is a complete delivery with its
own retry loop under ``retry_on``; its attempts carry ``copy`` (1..N) and are numbered
from 1 again. The :class:`Delivery` holds every attempt of every copy and is ``delivered``
only when each copy's last attempt succeeded.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import requests

from authsync_dev.wecom import EventValue, event_xml, sign_event

if TYPE_CHECKING:
    from authsync_dev.emulator.clock import Clock
    from authsync_dev.emulator.model import SuiteRecord

__all__ = [
    "AUTH_DEADLINE",
    "AUTH_INFO_TYPES",
    "DEFAULT_RETRY_DELAYS",
    "CallbackPusher",
    "Delivery",
    "DeliveryAttempt",
    "Outcome",
    "RetryPolicy",
    "app_event",
    "receive_id_of",
]

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)
ANSWER_CHARS = 200

Outcome = Literal["success", "http_status", "bad_answer", "timeout", "connection_error", "no_callback_url"]

RetryPolicy = Literal["network", "any"]
"""``network``: re-send after a timeout or a connection failure only (WeCom's current documentation);
``any``: after every failed attempt (the older text)."""

NETWORK_FAILURES: frozenset[str] = frozenset({"timeout", "connection_error"})

AUTH_INFO_TYPES = frozenset({"create_auth", "change_auth", "cancel_auth", "reset_permanent_code"})
AUTH_DEADLINE = 1.0
"""Seconds within which WeCom wants the authorization InfoTypes answered (spec §1.4)."""


def app_event(corpid: str, event: str, agent_id: int, now: float) -> dict[str, str | int]:
    """An Event-style document about the app in ``corpid`` (the 数据回调 URL's shape: change_app_admin,
    unlicensed_notify): from ``sys`` to the corp, which is also whom it is encrypted for."""
    return {
        "ToUserName": corpid,
        "FromUserName": "sys",
        "CreateTime": int(now),
        "MsgType": "event",
        "Event": event,
        "AgentID": agent_id,
    }


def receive_id_of(suite_id: str, fields: Mapping[str, EventValue]) -> str:
    """Whom WeCom encrypts a document for: its receiveid, also the envelope's ToUserName (spec §1.1).

    An Event-style document (``MsgType``: change_app_admin, unlicensed_notify) is a 数据回调 one,
    encrypted for the corp it names in ``ToUserName``. A provider-level system event (系统事件, no
    ``SuiteId`` but a ``ServiceCorpId``: the license events) is encrypted for the provider corpid
    (⚠️ assumed: the provider's own receiveid, as its URL verification is). Everything else is a
    指令回调 document, encrypted for the suite.
    """
    if "MsgType" in fields and "ToUserName" in fields:
        return str(fields["ToUserName"])
    if "SuiteId" not in fields and "ServiceCorpId" in fields:
        return str(fields["ServiceCorpId"])
    return suite_id


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of one event. ``attempt`` 1 is the first delivery, 2..4 the retries, within copy ``copy`` (1..N)."""

    delivery_id: int
    event: str
    suite_id: str
    corpid: str | None
    attempt: int
    url: str
    status: int | None
    outcome: Outcome
    latency_ms: float
    answer: str
    at: float
    copy: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "event": self.event,
            "suite_id": self.suite_id,
            "corpid": self.corpid,
            "copy": self.copy,
            "attempt": self.attempt,
            "url": self.url,
            "status": self.status,
            "outcome": self.outcome,
            "latency_ms": round(self.latency_ms, 3),
            "answer": self.answer,
            "at": self.at,
        }


@dataclass(frozen=True)
class Delivery:
    """All attempts of one event, of all its ``copies``. No attempts: not (yet) delivered."""

    delivery_id: int
    event: str
    suite_id: str
    corpid: str | None
    attempts: tuple[DeliveryAttempt, ...]
    copies: int = 1

    @property
    def delivered(self) -> bool:
        """Whether every copy was attempted and its last attempt succeeded."""
        last: dict[int, DeliveryAttempt] = {}
        for attempt in self.attempts:
            last[attempt.copy] = attempt
        return len(last) == self.copies and all(a.ok for a in last.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "event": self.event,
            "suite_id": self.suite_id,
            "corpid": self.corpid,
            "copies": self.copies,
            "delivered": self.delivered,
            "attempts": [a.to_json() for a in self.attempts],
        }


class CallbackPusher:
    """Delivers events for suites; thread-safe, blocking per delivery.

    ``copies`` (settable while running) is how many times each event is delivered (see the module docstring).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        stopping: threading.Event | None = None,
        retry_on: RetryPolicy = "network",
        auth_deadline: float = AUTH_DEADLINE,
        copies: int = 1,
    ) -> None:
        if timeout <= 0 or auth_deadline <= 0 or retries < 0 or any(d < 0 for d in retry_delays):
            raise ValueError("timeouts must be > 0, retries and retry delays >= 0")
        if retry_on not in ("network", "any"):
            raise ValueError("retry_on must be 'network' or 'any'")
        self._clock = clock
        self.timeout = timeout
        self.retry_on: RetryPolicy = retry_on
        self.auth_deadline = auth_deadline
        self.retries = retries
        self.retry_delays = tuple(retry_delays) or (0.0,)
        self._copies = 1
        self.copies = copies
        self._stopping = stopping or threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._log: list[DeliveryAttempt] = []
        self._deliveries: list[Delivery] = []

    @property
    def copies(self) -> int:
        """How many times each event is delivered (>= 1); 1 is a single delivery."""
        return self._copies

    @copies.setter
    def copies(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("copies must be an integer >= 1")
        self._copies = value

    def next_id(self) -> int:
        """Reserve a delivery id (for an event delivered later with ``deliver(..., delivery_id=...)``)."""
        return next(self._ids)

    def deliver(
        self,
        suite: SuiteRecord,
        url: str | None,
        event: str,
        fields: Mapping[str, EventValue],
        *,
        corpid: str | None = None,
        delivery_id: int | None = None,
    ) -> Delivery:
        """Encrypt and sign ``fields`` (an InfoType document) for ``suite`` and deliver it to ``url``.

        The one signed request is POSTed :attr:`copies` times, each copy with its own retries.
        """
        if delivery_id is None:
            delivery_id = self.next_id()
        copies = self._copies
        if not url:
            at = self._clock.now()
            missing = tuple(
                DeliveryAttempt(
                    delivery_id, event, suite.suite_id, corpid, 1, "", None, "no_callback_url", 0.0, "", at, copy
                )
                for copy in range(1, copies + 1)
            )
            with self._lock:
                self._log.extend(missing)
            return self._finish(Delivery(delivery_id, event, suite.suite_id, corpid, missing, copies))
        receiver = receive_id_of(suite.suite_id, fields)
        signed = sign_event(
            suite.crypto(),
            event_xml(fields),
            to_user_name=receiver,
            timestamp=int(self._clock.now()),
            receive_id=receiver,
        )
        attempts: list[DeliveryAttempt] = []
        for copy in range(1, copies + 1):
            if self._stopping.is_set():
                break
            for number in range(1, self.retries + 2):
                if number > 1:
                    delay = self.retry_delays[min(number - 2, len(self.retry_delays) - 1)]
                    if self._stopping.wait(delay):
                        break
                attempt = self._attempt(
                    delivery_id=delivery_id,
                    event=event,
                    suite_id=suite.suite_id,
                    corpid=corpid,
                    copy=copy,
                    number=number,
                    url=url,
                    query=signed.query,
                    body=signed.body,
                    deadline=self.deadline(event),
                )
                attempts.append(attempt)
                with self._lock:
                    self._log.append(attempt)
                if attempt.ok or not self.retried(attempt):
                    break
        delivery = Delivery(delivery_id, event, suite.suite_id, corpid, tuple(attempts), copies)
        if not delivery.delivered:
            last = attempts[-1] if attempts else None
            log.warning(
                "callback delivery failed: event=%s suite_id=%s copies=%d attempts=%d last_outcome=%s last_status=%s",
                event,
                suite.suite_id,
                copies,
                len(attempts),
                last.outcome if last else "stopped",
                last.status if last else None,
            )
        return self._finish(delivery)

    def deadline(self, event: str) -> float:
        """Seconds the receiver has to answer ``event``: 1 s for the authorization InfoTypes, else the timeout."""
        return min(self.timeout, self.auth_deadline) if event in AUTH_INFO_TYPES else self.timeout

    def retried(self, attempt: DeliveryAttempt) -> bool:
        """Whether a failed ``attempt`` is re-sent under the ``retry_on`` policy."""
        return self.retry_on == "any" or attempt.outcome in NETWORK_FAILURES

    def _finish(self, delivery: Delivery) -> Delivery:
        with self._lock:
            self._deliveries.append(delivery)
        return delivery

    def _attempt(
        self,
        *,
        delivery_id: int,
        event: str,
        suite_id: str,
        corpid: str | None,
        copy: int,
        number: int,
        url: str,
        query: dict[str, str],
        body: bytes | None,
        deadline: float,
    ) -> DeliveryAttempt:
        at = self._clock.now()
        started = time.perf_counter()
        status: int | None = None
        answer = ""
        outcome: Outcome
        try:
            response = requests.post(
                url,
                params=query,
                data=body,
                headers={"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0 (WeCom emulator)"},
                timeout=deadline,
                allow_redirects=False,
            )
            status = response.status_code
            answer = response.content[: ANSWER_CHARS * 4].decode("utf-8", "replace")[:ANSWER_CHARS]
            if status != 200:
                outcome = "http_status"
            elif response.content != b"success":
                outcome = "bad_answer"
            else:
                outcome = "success"
        except requests.Timeout:
            outcome = "timeout"
        except requests.RequestException:
            outcome = "connection_error"
        latency_ms = (time.perf_counter() - started) * 1000
        if outcome == "success" and latency_ms > deadline * 1000:
            outcome = "timeout"  # answered, but after WeCom had given up on it
        return DeliveryAttempt(
            delivery_id, event, suite_id, corpid, number, url, status, outcome, latency_ms, answer, at, copy
        )

    def log(self) -> list[DeliveryAttempt]:
        """Every attempt so far, oldest first."""
        with self._lock:
            return list(self._log)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def clear(self) -> None:
        with self._lock:
            self._log.clear()
            self._deliveries.clear()
