"""AWS calls counted per service and operation, and the monthly bill they make at list prices.

Used by ``bench/economy.py`` (issue #11: cost measured, not guessed). Two halves:

* :class:`AwsCalls` -- a botocore ``before-call``/``after-call`` hook pair that counts every API call
  made while a handler runs, per (phase, function, service, operation, scope), and estimates
  DynamoDB request units from the request and answer sizes. *Scope* is ``corp`` when the request
  or the answer names a benchmark corp (its secret, vault item, lease, KMS encryption context,
  snapshot, reconcile message), else ``shared`` (suite credentials, index pages without corps):
  what grows with the number of corps is told apart from what a run pays once.
* :class:`Usage`, :class:`Prices` and :func:`dollars` -- quantities per month and what they cost.
  The prices are list prices, printed with every figure; no free tier is applied.
* :func:`steady_month` and :func:`print_costs` -- measured per-run figures scaled to a month (the
  :class:`Assumptions` say what is taken as given), and the table per store and per scale.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["PRICES", "AwsCalls", "Prices", "Usage", "dollars", "request_units"]

DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def item_size(value: Any) -> int:
    """Bytes of a DynamoDB item or attribute as DynamoDB sizes it, roughly: names plus values.

    Type tags count too (a few bytes per attribute), so this errs on the high side.
    """
    if isinstance(value, dict):
        return sum(len(str(k).encode()) + item_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(item_size(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if value is None:
        return 0
    return len(str(value).encode())


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def request_units(
    operation: str, request: dict[str, Any], answer: dict[str, Any], indexed: frozenset[str]
) -> tuple[float, float]:
    """(RRU, WRU) an on-demand table charges for one call, estimated from what was sent and answered.

    Reads: 4 KB units of the items answered (at least one), halved for eventually consistent
    reads (index queries always are). Writes: 1 KB units of the request (which holds the
    whole item for a put, and more than the changed part for an update) or of the old item
    answered, whichever is larger, plus one unit per write to a table with a global secondary
    index (an upper bound: not every write changes an index). Transactions cost double.
    """
    consistent = bool(request.get("ConsistentRead")) and "IndexName" not in request
    factor = 1.0 if consistent else 0.5
    if operation == "GetItem":
        return factor * _units(item_size(answer.get("Item")), 4096), 0.0
    if operation in ("Query", "Scan"):
        return factor * _units(sum(item_size(i) for i in answer.get("Items", [])), 4096), 0.0
    if operation in ("BatchGetItem", "TransactGetItems"):
        found = answer.get("Responses", {})
        items = [i for table in found.values() for i in table] if isinstance(found, dict) else found
        per = 2.0 if operation == "TransactGetItems" else factor
        return per * sum(_units(item_size(i), 4096) for i in items) or per, 0.0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        size = max(item_size(request), item_size(answer.get("Attributes")))
        return 0.0, float(_units(size, 1024) + (request.get("TableName") in indexed))
    if operation in ("BatchWriteItem", "TransactWriteItems"):
        if operation == "BatchWriteItem":
            writes = [(t, w) for t, ws in request.get("RequestItems", {}).items() for w in ws]
        else:
            writes = [(next(iter(w.values())).get("TableName"), w) for w in request.get("TransactItems", [])]
        per = 2 if operation == "TransactWriteItems" else 1
        return 0.0, float(sum(per * _units(item_size(w), 1024) + (t in indexed) for t, w in writes))
    return 0.0, 0.0


Key = tuple[str, str, str, str, str]
"""(phase, function, service, operation, scope)."""


class AwsCalls:
    """botocore hooks: API calls and DynamoDB request units per (phase, function, service, operation, scope).

    Register :meth:`before` for ``before-call`` and :meth:`after` for ``after-call`` in
    ``botocore.handlers.BUILTIN_HANDLERS`` before any session exists, so every client gets them.
    A call is counted once, when its answer is in (botocore's retries happen in between), and
    only while :meth:`inside` says which function runs. ``marker`` is a substring of every
    benchmark corp id: a call whose request or answer holds it is a per-corp call.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.phase = ""
        self.function: str | None = None
        self.calls: Counter[Key] = Counter()
        self.units: defaultdict[tuple[str, str, str, str], float] = defaultdict(float)
        """(phase, function, scope, "RRU" | "WRU") -> estimated request units."""
        self.indexed: frozenset[str] = frozenset()
        """Tables with a global secondary index (a write may cost one more unit)."""

    @contextmanager
    def inside(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None

    def before(self, params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        if self.function is None:
            return
        body = params.get("body", b"")
        context["bench-call"] = (self.phase, self.function, body.encode() if isinstance(body, str) else bytes(body))

    def after(
        self, event_name: str, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **kwargs: Any
    ) -> None:
        seen = context.pop("bench-call", None)
        if seen is None:
            return
        phase, function, body = seen
        _after_call, service, operation = event_name.split(".", 2)  # after-call.<service-id>.<Operation>
        content = getattr(http_response, "content", b"") or b""
        scope = "corp" if self.marker in body or self.marker in content else "shared"
        self.calls[(phase, function, service, operation, scope)] += 1
        if service == "dynamodb":
            request = json.loads(body) if body else {}
            rru, wru = request_units(operation, request, parsed, self.indexed)
            self.units[(phase, function, scope, "RRU")] += rru
            self.units[(phase, function, scope, "WRU")] += wru

    def count(
        self,
        phase: str,
        *,
        service: str | None = None,
        function: str | None = None,
        scope: str | None = None,
        operations: frozenset[str] | None = None,
    ) -> int:
        return sum(
            n
            for (p, f, s, o, sc), n in self.calls.items()
            if p == phase
            and (service is None or s == service)
            and (function is None or f == function)
            and (scope is None or sc == scope)
            and (operations is None or o in operations)
        )

    def unit(self, phase: str, kind: str, *, scope: str | None = None, function: str | None = None) -> float:
        return sum(
            n
            for (p, f, sc, k), n in self.units.items()
            if p == phase and k == kind and (scope is None or sc == scope) and (function is None or f == function)
        )

    def operations(self, phase: str, service: str, function: str | None = None) -> Counter[str]:
        result: Counter[str] = Counter()
        for (p, f, s, operation, _), n in self.calls.items():
            if p == phase and s == service and (function is None or f == function):
                result[operation] += n
        return result


@dataclass(frozen=True)
class Usage:
    """Billable quantities in one month (or one run, or per corp: anything :meth:`scaled`)."""

    secrets: float = 0.0
    """Secret-months."""
    secrets_calls: float = 0.0
    kms_keys: float = 0.0
    kms_calls: float = 0.0
    dynamodb_reads: float = 0.0
    """Read calls (GetItem, Query and Scan pages ...): shown beside the request units they cost."""
    dynamodb_writes: float = 0.0
    rru: float = 0.0
    wru: float = 0.0
    dynamodb_gb: float = 0.0
    """GB-months stored (items; point-in-time recovery is billed on the same size)."""
    lambda_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    sqs_requests: float = 0.0
    api_requests: float = 0.0
    log_gb: float = 0.0
    alarms: float = 0.0
    metrics: float = 0.0
    """CloudWatch custom metric-months (the EMF metrics the functions publish)."""
    scheduler_invocations: float = 0.0
    wecom_calls: float = 0.0
    """Not billed by AWS; shown because WeCom rate-limits them."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: Usage) -> Usage:
        return self + other.scaled(-1.0)

    def scaled(self, k: float) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) * k for f in fields(self)})


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices as assumed for issue #11 (December 2026; not fetched from the pricing pages here)."""

    source: str = "us-east-1 list prices as assumed in December 2026 (not re-checked by this run); no free tier applied"
    secret_month: float = 0.40
    secrets_per_10k_calls: float = 0.05
    kms_key_month: float = 1.00
    kms_per_10k_requests: float = 0.03
    dynamodb_per_million_wru: float = 0.625
    dynamodb_per_million_rru: float = 0.125
    dynamodb_gb_month: float = 0.25
    dynamodb_pitr_gb_month: float = 0.20
    lambda_per_million_requests: float = 0.20
    lambda_gb_second: float = 0.0000133334  # arm64
    xray_per_million_traces: float = 5.00
    sqs_fifo_per_million: float = 0.50
    http_api_per_million: float = 1.00
    logs_ingest_gb: float = 0.50
    alarm_month: float = 0.10
    metric_month: float = 0.30
    scheduler_per_million: float = 1.00

    def lines(self) -> list[str]:
        return [
            f"Secrets Manager ${self.secret_month:.2f}/secret-month + ${self.secrets_per_10k_calls:.2f}/10k API calls;"
            f" KMS ${self.kms_key_month:.2f}/key-month + ${self.kms_per_10k_requests:.2f}/10k requests",
            f"DynamoDB on-demand ${self.dynamodb_per_million_wru:.3f}/M WRU,"
            f" ${self.dynamodb_per_million_rru:.3f}/M RRU,"
            f" ${self.dynamodb_gb_month:.2f}/GB-month + PITR ${self.dynamodb_pitr_gb_month:.2f}/GB-month",
            f"Lambda arm64 ${self.lambda_per_million_requests:.2f}/M requests + ${self.lambda_gb_second:.10f}/GB-s;"
            f" X-Ray ${self.xray_per_million_traces:.2f}/M traces (Tracing: Active, every invocation counted)",
            f"SQS FIFO ${self.sqs_fifo_per_million:.2f}/M requests; HTTP API ${self.http_api_per_million:.2f}/M;"
            f" CloudWatch Logs ${self.logs_ingest_gb:.2f}/GB ingested, alarms ${self.alarm_month:.2f}/alarm-month,"
            f" custom metrics ${self.metric_month:.2f}/metric-month; EventBridge Scheduler"
            f" ${self.scheduler_per_million:.2f}/M invocations",
            self.source,
        ]


PRICES = Prices()


def dollars(usage: Usage, prices: Prices = PRICES) -> dict[str, float]:
    """Dollars per service for ``usage``."""
    p, u = prices, usage
    return {
        "Secrets Manager": u.secrets * p.secret_month + u.secrets_calls / 10_000 * p.secrets_per_10k_calls,
        "KMS": u.kms_keys * p.kms_key_month + u.kms_calls / 10_000 * p.kms_per_10k_requests,
        "DynamoDB": (
            u.rru / 1e6 * p.dynamodb_per_million_rru
            + u.wru / 1e6 * p.dynamodb_per_million_wru
            + u.dynamodb_gb * (p.dynamodb_gb_month + p.dynamodb_pitr_gb_month)
        ),
        "Lambda": u.lambda_requests / 1e6 * p.lambda_per_million_requests + u.lambda_gb_seconds * p.lambda_gb_second,
        "X-Ray": u.lambda_requests / 1e6 * p.xray_per_million_traces,
        "SQS": u.sqs_requests / 1e6 * p.sqs_fifo_per_million,
        "API Gateway": u.api_requests / 1e6 * p.http_api_per_million,
        "CloudWatch": u.log_gb * p.logs_ingest_gb + u.alarms * p.alarm_month + u.metrics * p.metric_month,
        "Scheduler": u.scheduler_invocations / 1e6 * p.scheduler_per_million,
    }


DAYS = 30
REFRESH_RUNS = DAYS * 24 * 6
"""token-refresh runs a month: rate(10 minutes)."""
DUE_FRACTION = 1 / 11
"""Share of tokens due in a typical refresh run: a token lives 7,200 s and is renewed 600 s early,
so every 6,600 s, one run in eleven."""


def runs_per_month(expression: str) -> float:
    """Runs a month of an EventBridge ``rate(N unit)`` expression (30-day month)."""
    value, unit = expression.strip().removeprefix("rate(").removesuffix(")").split()
    seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    return DAYS * 86400 / (int(value) * seconds)


@dataclass(frozen=True)
class Assumptions:
    """What the month model takes as given rather than measured; printed with the figures."""

    change_events_per_corp: float = 3.0
    """change_auth (or similar) callbacks per corp-month, each charged a whole corp's share of the burst."""
    ticket_pushes_per_suite: float = REFRESH_RUNS
    """WeCom pushes a suite_ticket every 10 minutes."""
    ticket_monitor_runs: float = DAYS * 24 * 12
    inbox_drain_runs: float = DAYS * 24 * 60
    esm_requests: float = 2 * 5 * DAYS * 86400 / 20
    """Lambda's SQS pollers on the two FIFO queues: 5 long polls of 20 s each, kept open all month."""
    platform_log_bytes: int = 300
    """Lambda's START/END/REPORT lines per invocation."""
    invocation_ms: float = 30.0
    aws_call_ms: float = 15.0
    wecom_call_ms: float = 300.0
    """Lambda duration is estimated from the measured calls (moto in-process says nothing about AWS
    latency): this much per invocation, per AWS call and per WeCom call (us-east-1 to China)."""
    memory_gb: float = 0.5

    def gb_seconds(self, invocations: float, aws_calls: float, wecom_calls: float) -> float:
        ms = invocations * self.invocation_ms + aws_calls * self.aws_call_ms + wecom_calls * self.wecom_call_ms
        return ms / 1000 * self.memory_gb

    def lines(self) -> list[str]:
        return [
            f"{self.change_events_per_corp:g} change events per corp-month (each: 1 HTTP API request, 1 callback-ingest"
            " invocation, 1 SendMessage, 1 config read, plus one corp's share of the measured burst);",
            f"per month: {self.ticket_pushes_per_suite:,.0f} suite_ticket pushes per suite (measured store cost),"
            f" {self.ticket_monitor_runs:,.0f} ticket-monitor and {self.inbox_drain_runs:,.0f} inbox-drain runs,"
            f" {self.esm_requests:,.0f} idle SQS long polls (2 queues x 5 pollers);",
            f"Lambda duration = {self.invocation_ms:g} ms/invocation + {self.aws_call_ms:g} ms/AWS call +"
            f" {self.wecom_call_ms:g} ms/WeCom call at {self.memory_gb * 1024:.0f} MB;"
            f" logs = measured handler output + {self.platform_log_bytes} B/invocation",
        ]


@dataclass(frozen=True)
class PerRun:
    """One run's usage: what it pays once (``shared``) and what it pays per corp (``corp``)."""

    shared: Usage
    corp: Usage

    def at(self, corps: float) -> Usage:
        return self.shared + self.corp.scaled(corps)


@dataclass(frozen=True)
class Month:
    """A store's steady month, by part: each pays once per deployment (``shared``) and per corp (``corp``)."""

    parts: dict[str, PerRun]

    def usage(self, corps: float) -> Usage:
        total = Usage()
        for part in self.parts.values():
            total = total + part.at(corps)
        return total

    def per_corp_month(self, corps: float, prices: Prices = PRICES) -> float:
        return sum(dollars(self.usage(corps), prices).values()) / corps


def steady_month(
    *,
    refresh_idle: PerRun,
    refresh_due: PerRun,
    reconcile: PerRun,
    reconcile_runs: float,
    events: Usage,
    storage: PerRun,
    deployment: Usage,
) -> Month:
    """Refresh runs (a typical one: ``DUE_FRACTION`` of the tokens due), reconcile runs, change events
    (``events``: per corp-month), storage, and what the deployment pays whatever its corps."""
    typical = PerRun(
        refresh_idle.shared + (refresh_due.shared - refresh_idle.shared).scaled(DUE_FRACTION),
        refresh_idle.corp + (refresh_due.corp - refresh_idle.corp).scaled(DUE_FRACTION),
    )
    return Month(
        {
            "token refresh": PerRun(typical.shared.scaled(REFRESH_RUNS), typical.corp.scaled(REFRESH_RUNS)),
            "reconcile": PerRun(reconcile.shared.scaled(reconcile_runs), reconcile.corp.scaled(reconcile_runs)),
            "change events": PerRun(Usage(), events),
            "storage": storage,
            "deployment": PerRun(deployment, Usage()),
        }
    )


SCALES = (100, 1_000, 10_000, 100_000)
TARGET_CORPS, TARGET_DOLLARS, TARGET_STORE = 10_000, 0.01, "DynamoDBKMS"
ROWS: tuple[tuple[str, str, float], ...] = (
    # (label, Usage field, multiplier)
    ("secrets (secret-months)", "secrets", 1.0),
    ("Secrets Manager API calls", "secrets_calls", 1.0),
    ("KMS requests", "kms_calls", 1.0),
    ("DynamoDB read calls", "dynamodb_reads", 1.0),
    ("DynamoDB read request units", "rru", 1.0),
    ("DynamoDB write calls", "dynamodb_writes", 1.0),
    ("DynamoDB write request units", "wru", 1.0),
    ("DynamoDB storage (MB-months)", "dynamodb_gb", 1000.0),
    ("Lambda invocations", "lambda_requests", 1.0),
    ("Lambda GB-seconds (estimated)", "lambda_gb_seconds", 1.0),
    ("SQS requests", "sqs_requests", 1.0),
    ("HTTP API requests", "api_requests", 1.0),
    ("CloudWatch Logs (MB)", "log_gb", 1000.0),
    ("WeCom calls (not billed)", "wecom_calls", 1.0),
)


def print_costs(
    months: dict[str, Month], prices: Prices, assume: Assumptions, *, metrics: int, alarms: int, measured_corps: int
) -> None:
    """The issue's cost table: usage per 1,000 corps per month by part, then dollars per corp-month by scale."""
    print(f"Cost per credential store (issue #11), steady month, one suite; measured with {measured_corps} corps")
    for store, month in months.items():
        print()
        print(f"CorpCredentialStore={store}: per 1,000 corps per month (deployment costs at 1,000 corps included)")
        names = [*month.parts, "total"]
        print(f"  {'':<31}" + "".join(f"{n:>15}" for n in names))
        per_part = {n: p.at(1_000) for n, p in month.parts.items()} | {"total": month.usage(1_000)}
        for label, name, k in ROWS:
            print(f"  {label:<31}" + "".join(f"{getattr(per_part[n], name) * k:15,.1f}" for n in names))
        cost = {n: sum(dollars(u, prices).values()) for n, u in per_part.items()}
        print(f"  {'dollars':<31}" + "".join(f"{cost[n]:15,.2f}" for n in names))
    print()
    print("Dollars per corp-month (all-in: fixed costs amortized over the corps)")
    print(f"  {'corps':<16}" + "".join(f"{store:>16}" for store in months))
    for corps in SCALES:
        print(f"  {corps:<16,}" + "".join(f"{m.per_corp_month(corps, prices):16.4f}" for m in months.values()))
    for corps in (TARGET_CORPS,):
        print(f"  by service at {corps:,} corps (dollars per corp-month):")
        for store, month in months.items():
            parts = dollars(month.usage(corps), prices)
            detail = ", ".join(f"{k} {v / corps:.5f}" for k, v in parts.items() if v)
            print(f"    {store:<15} {detail}")
    if TARGET_STORE in months:
        got = months[TARGET_STORE].per_corp_month(TARGET_CORPS, prices)
        verdict = "met" if got <= TARGET_DOLLARS else "NOT MET"
        print(
            f"Target: <= ${TARGET_DOLLARS:.2f} per corp-month at {TARGET_CORPS:,} corps ({TARGET_STORE}):"
            f" ${got:.4f}, {verdict}"
        )
    print()
    print("Prices assumed:")
    for line in prices.lines():
        print(f"  {line}")
    print("Assumed, not measured:")
    for line in assume.lines():
        print(f"  {line}")
    print(
        f"  deployment: 1 KMS key, the template's {alarms} alarms, {metrics} custom metrics (the EMF metrics seen in"
        " this run),"
        " the per-suite secrets; token refresh: a typical run renews 1/11 of the tokens"
    )
