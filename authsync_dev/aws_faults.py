"""AWS-side outages for the local stack: failures injected into botocore calls.

The chaos benchmark needs DynamoDB, Secrets Manager, SQS and KMS to throttle, fail or time out for a
while, without touching moto or the code under test. :class:`AwsFaults` is a botocore ``before-send``
handler, hooked in the way moto's ``mock_aws`` does it: appended to ``botocore.handlers.BUILTIN_HANDLERS``,
so every botocore session created *afterwards* carries it. Inside an active :class:`Window` for a service
it answers a call itself with a throttling error (HTTP 400) or a server error (HTTP 500), which botocore
parses and retries like a real one, or it sends the request and then raises ``ReadTimeoutError`` (the
write happened, the caller never hears it), which botocore retries like a network failure.

Where it differs from a real outage: throttles and 5xx fail a request before it reaches moto (a real 5xx
may follow a partial write); faults are per request, not per partition or per key; the error bodies are
minimal; only the services named by a window are affected, in this process, in sessions created after
:meth:`AwsFaults.install`. It is meant for moto in server mode: under ``mock_aws`` moto's own stubber
answers first and the injected responses are ignored. Request bodies and headers are never logged.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Literal, Self, get_args

import requests
from botocore import handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError

__all__ = ["FAULT_KINDS", "AwsFaults", "FaultKind", "Window"]

logger = logging.getLogger(__name__)

FaultKind = Literal["throttle", "5xx", "timeout_after_success"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

_MESSAGE = "injected by authsync_dev.aws_faults"
_JSON_VERSION = {"dynamodb": "1.0", "sqs": "1.0"}  # everything else here (secrets-manager, kms) speaks 1.1
_SEND_TIMEOUT = 60.0  # botocore's default read timeout


@dataclass(frozen=True)
class Window:
    """Calls to ``service`` (hyphenized service id, e.g. ``"secrets-manager"``) fail during [start, end)."""

    service: str
    start: float
    end: float
    probability: float = 1.0
    kinds: tuple[FaultKind, ...] = FAULT_KINDS


class _RawBody(BytesIO):
    """What ``AWSResponse.raw`` must offer: ``stream()`` yielding the body."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(65536):
            yield chunk


class AwsFaults:
    """A ``before-send`` handler failing calls inside its windows; seeded, thread-safe."""

    def __init__(
        self,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        scope: Callable[[], bool] | None = None,
    ) -> None:
        """``scope``: only calls for which it answers true can fail (e.g. calls made inside a
        function's invocation, not the local stack's own SQS pollers, which stand for AWS's)."""
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        self._clock = clock
        self._scope = scope
        self._lock = threading.Lock()
        self._windows: list[Window] = []
        self._injected: dict[str, Counter[str]] = {}

    def install(self) -> Self:
        """Hook into every botocore session created from now on (idempotent).

        Sessions (and so clients) created before this call are NOT affected: botocore copies the builtin
        handlers into a session when it is created. Install before the code under test builds its clients.
        """
        if ("before-send", self) not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(("before-send", self))
        return self

    def uninstall(self) -> None:
        """Stop hooking into new sessions (safe twice). Sessions created meanwhile keep the handler:
        :meth:`clear` is what makes their calls succeed again."""
        while ("before-send", self) in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.remove(("before-send", self))

    def window(
        self,
        service: str,
        seconds: float,
        *,
        start_in: float = 0.0,
        probability: float = 1.0,
        kinds: Sequence[FaultKind] = FAULT_KINDS,
    ) -> Window:
        """Open a window of ``seconds`` starting ``start_in`` seconds from now; each call to ``service``
        inside it fails with ``probability``, with a kind drawn from ``kinds``."""
        unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {FAULT_KINDS}, got {tuple(kinds)}")
        if not service or "." in service:
            raise ValueError(f"service must be a hyphenized botocore service id, got {service!r}")
        if not seconds > 0 or not start_in >= 0:
            raise ValueError(f"need seconds > 0 and start_in >= 0, got {seconds} and {start_in}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {probability}")
        start = self._clock() + start_in
        window = Window(service, start, start + seconds, probability, tuple(kinds))
        with self._lock:
            self._windows.append(window)
        return window

    def clear(self) -> None:
        """Drop every window: calls succeed again at once."""
        with self._lock:
            self._windows.clear()

    def active(self) -> list[Window]:
        """The windows covering the present moment (ended ones are dropped)."""
        now = self._clock()
        with self._lock:
            self._windows = [w for w in self._windows if now < w.end]
            return [w for w in self._windows if w.start <= now]

    def injected(self) -> dict[str, Counter[str]]:
        """Faults injected so far: per service, counts by kind (a copy)."""
        with self._lock:
            return {service: Counter(counts) for service, counts in self._injected.items()}

    def __call__(self, request: AWSPreparedRequest, event_name: str, **kwargs: Any) -> AWSResponse | None:
        """The ``before-send.<service-id>.<Operation>`` handler: ``None`` lets the call through."""
        _, service, operation = event_name.split(".", 2)
        if self._scope is not None and not self._scope():
            return None
        kind = self._draw(service)
        if kind is None:
            return None
        logger.debug("injecting %s into %s.%s", kind, service, operation)
        if kind == "timeout_after_success":
            payload = bytes(request.body) if isinstance(request.body, bytearray) else request.body
            try:
                fields = dict(request.headers.items())
                requests.request(request.method, request.url, headers=fields, data=payload, timeout=_SEND_TIMEOUT)
            except requests.RequestException:
                logger.debug("the request behind an injected timeout failed too (%s.%s)", service, operation)
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "throttle":
            status, code = 400, "ThrottlingException"
        else:
            status, code = 500, "InternalServerError" if service == "dynamodb" else "InternalFailure"
        headers = {"Content-Type": f"application/x-amz-json-{_JSON_VERSION.get(service, '1.1')}"}
        if service == "sqs":  # SQS's JSON protocol is query-compatible: botocore reads the code from here
            headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
        body = json.dumps({"__type": code, "message": _MESSAGE}).encode()
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _RawBody(body))

    def _draw(self, service: str) -> FaultKind | None:
        """Toss each active window's coin for ``service``; the first that comes up picks the kind."""
        for window in self.active():
            if window.service != service:
                continue
            with self._lock:
                if self._rng.random() < window.probability:
                    kind = self._rng.choice(window.kinds)
                    self._injected.setdefault(service, Counter())[kind] += 1
                    return kind
        return None
