"""Fault injection, call-rate limits and per-endpoint call counters.

Clients must survive WeCom's bad days: -1 (系统繁忙), 45009 (rate limited), a 5xx
from its front end, a slow answer, or a token WeCom ended early. Faults are drawn
from a seeded RNG so a failing test replays the same sequence. Rate limits use the
emulator clock, so a test advances past a window instead of sleeping.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FAULT_KINDS", "CallCounters", "EndpointCounters", "Fault", "FaultKind", "Faults", "RateLimiter"]

FaultKind = Literal["-1", "45009", "45033", "http5xx", "slow", "invalidate_token"]
FAULT_KINDS: tuple[FaultKind, ...] = ("-1", "45009", "45033", "http5xx", "slow", "invalidate_token")
ANY_ENDPOINT = "*"


def fault_kind(value: object) -> FaultKind:
    """Accept ``-1``/``45009``/``45033`` as ints too (that is how they appear in errcode)."""
    text = str(value)
    if text not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
    return text


@dataclass
class Fault:
    """One injected fault: on ``endpoint`` (or ``*``), with ``probability``, at most ``times`` times.

    ``delay`` is the real-time sleep of a ``slow`` fault; ``status`` the HTTP status of
    an ``http5xx`` fault.
    """

    fault_id: int
    endpoint: str
    kind: FaultKind
    probability: float = 1.0
    times: int | None = None
    delay: float = 2.0
    status: int = 503
    fired: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")
        if not 500 <= self.status <= 599:
            raise ValueError("status must be a 5xx code")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_json(self) -> dict[str, Any]:
        return {
            "fault_id": self.fault_id,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "probability": self.probability,
            "times": self.times,
            "delay": self.delay,
            "status": self.status,
            "fired": self.fired,
        }


class Faults:
    """The active faults; :meth:`draw` decides which (if any) hits one call."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        # Not for security: a seeded RNG makes injected-fault sequences reproducible.
        self._rng = random.Random(seed)  # noqa: S311

    def reseed(self, seed: int | None) -> None:
        """Restart the fault sequence from ``seed`` (a campaign replays the same faults)."""
        with self._lock:
            self._rng.seed(seed)

    def add(
        self,
        endpoint: str,
        kind: FaultKind | int | str,
        *,
        probability: float = 1.0,
        times: int | None = None,
        delay: float = 2.0,
        status: int = 503,
    ) -> Fault:
        with self._lock:
            fault = Fault(self._next_id, endpoint, fault_kind(kind), probability, times, delay, status)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self, endpoint: str | None = None) -> int:
        """Remove every fault (or those of one endpoint); returns how many were removed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if endpoint is not None and f.endpoint != endpoint]
            return before - len(self._faults)

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def draw(self, endpoint: str) -> Fault | None:
        """The first matching, non-exhausted fault whose coin comes up, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint not in (endpoint, ANY_ENDPOINT) or fault.exhausted():
                    continue
                if fault.probability >= 1.0 or self._rng.random() < fault.probability:
                    fault.fired += 1
                    return fault
            return None


@dataclass
class _Limit:
    max_calls: int
    per_seconds: float
    calls: deque[float] = field(default_factory=deque)


class RateLimiter:
    """Sliding-window call limits per endpoint on the emulator clock (45009 beyond them).

    A limit set for ``*`` applies to every endpoint, each counted separately.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, tuple[int, float]] = {}
        self._windows: dict[str, _Limit] = {}

    def set(self, endpoint: str, max_calls: int, per_seconds: float = 60.0) -> None:
        if max_calls < 0 or per_seconds <= 0:
            raise ValueError("max_calls must be >= 0 and per_seconds > 0")
        with self._lock:
            self._limits[endpoint] = (max_calls, per_seconds)
            self._windows.clear()

    def clear(self) -> None:
        with self._lock:
            self._limits.clear()
            self._windows.clear()

    def limits(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {k: {"max_calls": v[0], "per_seconds": v[1]} for k, v in self._limits.items()}

    def allow(self, endpoint: str, now: float) -> bool:
        """Record a call at ``now``; ``False`` if it exceeds the endpoint's limit."""
        with self._lock:
            spec = self._limits.get(endpoint) or self._limits.get(ANY_ENDPOINT)
            if spec is None:
                return True
            window = self._windows.setdefault(endpoint, _Limit(*spec))
            while window.calls and window.calls[0] <= now - window.per_seconds:
                window.calls.popleft()
            if len(window.calls) >= window.max_calls:
                return False
            window.calls.append(now)
            return True


@dataclass
class EndpointCounters:
    """What one endpoint saw: calls, successes, errcodes, injected faults and HTTP statuses."""

    calls: int = 0
    ok: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    http_status: Counter[int] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "ok": self.ok,
            "errors": {str(k): v for k, v in sorted(self.errors.items())},
            "faults": dict(sorted(self.faults.items())),
            "http_status": {str(k): v for k, v in sorted(self.http_status.items())},
        }


class CallCounters:
    """Per-endpoint counters, safe to read while the server is answering."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, EndpointCounters] = {}

    def record(self, endpoint: str, *, status: int, errcode: int | None, fault: str | None) -> None:
        with self._lock:
            counters = self._by_endpoint.setdefault(endpoint, EndpointCounters())
            counters.calls += 1
            counters.http_status[status] += 1
            if fault is not None:
                counters.faults[fault] += 1
            if errcode is not None:
                if errcode == 0:
                    counters.ok += 1
                else:
                    counters.errors[errcode] += 1

    def get(self, endpoint: str) -> EndpointCounters:
        """A copy of one endpoint's counters (all zero if it was never called)."""
        with self._lock:
            c = self._by_endpoint.get(endpoint, EndpointCounters())
            return EndpointCounters(c.calls, c.ok, Counter(c.errors), Counter(c.faults), Counter(c.http_status))

    def snapshot(self) -> dict[str, EndpointCounters]:
        with self._lock:
            names = list(self._by_endpoint)
        return {name: self.get(name) for name in names}

    def reset(self) -> None:
        with self._lock:
            self._by_endpoint.clear()
