"""WeCom calls of the fetch pipeline for a burst of change_auth events, beside the lower bound.

    python bench/economy.py [--corps 100] [--events 1000]

The world: moto in-process (``mock_aws``) with the queues and tables of template.yaml
(:func:`authsync_dev.world.build_world`), the WeCom emulator on 127.0.0.1, one suite with a
stored suite_ticket. The deployed handlers ``functions/auth_info/app.py`` and
``functions/chatdata/app.py`` run unmodified with their template environment;
:func:`authsync_dev.sqs.deliver_batch` plays Lambda's SQS event source mapping (batches of
10, partial batch failures made visible again). Each round delivers one batch of the
auth-events queue, then one of the chatdata queue, until both are empty.

Two phases, measured separately:

* install -- ``--corps`` corps install the suite: a ``create_auth`` per corp goes on the
  auth-events queue exactly as callback-ingest puts it there, and the pipeline runs to
  the end (get_permanent_code, get_auth_info, chatdata). This is where the suite token
  and the corp tokens are obtained; it is reported, then the emulator's counters and the
  AWS call counters are reset.
* burst -- ``--events`` ``change_auth`` events, round-robin over the corps (10 per corp
  by default), all on the queue before the first delivery, as a burst arrives.

The burst starts in a *cold container*: the handler modules are imported afresh (a new
init), so the warm Powertools caches are empty and every credential is read again -- from Secrets Manager, not from
WeCom: the tokens obtained during install are still valid. Within a phase the handlers
run in one process, so their caches persist across invocations as in *one* warm
container per function. Real Lambda may run several containers for 100 message groups;
each cold one adds Secrets Manager reads, never WeCom calls (tokens are shared through
Secrets Manager with a DynamoDB single-flight lease).

Lower bounds: a suite token and a corp token per corp, once for the whole run (they last
7200 s); get_permanent_code once per installed corp; get_auth_info and
chatdata/get_corp_auth_info once per corp and phase (create_auth needs the fetch, and so
does the first change_auth after it; the other change_auth of the burst coalesce);
chatdata/get_auth_user_list, listed on its own, one page per fetch of a corp with
chatdata (every corp here: sample editions, 3 members). The issue's bound (1 suite
token + 100 corp tokens + one get_auth_info and one chatdata fetch per corp) counts the
tokens for the whole run and the fetches of the burst, so it is compared with exactly
those calls; the burst alone and the whole run are compared with their own bounds.

AWS calls are counted with a botocore ``before-call`` hook added to
``botocore.handlers.BUILTIN_HANDLERS`` before any session exists (moto hooks in the same
way): it reaches the handlers' clients from boto3's default session *and* the
idempotency layer's clients from its own ``boto3.session.Session()``. Only calls made
while a handler runs are counted, not the benchmark's own polling and publishing.
moto's SQS clock is swapped for ``time.time`` during the run (same values, see
:func:`authsync_dev.moto_process.quick_sqs_clock`): about a minute on 2 cores instead of four.

Target (issue #4): total WeCom calls within 1.10x of the lower bound. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.handlers import BUILTIN_HANDLERS
from moto import mock_aws

from authsync.aws.queues import SqsEventPublisher, queued_event
from authsync.aws.snapshots import SnapshotStore
from authsync.wecom.callbacks import AuthEvent, parse_event
from authsync_dev.emulator import Emulator, sample_chat_editions
from authsync_dev.moto_process import quick_sqs_clock
from authsync_dev.sqs import deliver_batch
from authsync_dev.wecom import event_xml
from authsync_dev.world import World, build_world

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
QUEUES = (("AuthEventsQueue", "auth-info"), ("ChatdataQueue", "chatdata"))
SERVICES = (("secrets-manager", "Secrets Manager"), ("dynamodb", "DynamoDB"), ("sqs", "SQS"))
SUITE_TOKEN, CORP_TOKEN = "service/get_suite_token", "service/get_corp_token"
PERMANENT_CODE, AUTH_INFO = "service/v2/get_permanent_code", "service/v2/get_auth_info"
CHAT_INFO, USER_LIST = "chatdata/get_corp_auth_info", "chatdata/get_auth_user_list"
BOUNDED = (SUITE_TOKEN, CORP_TOKEN, PERMANENT_CODE, AUTH_INFO, CHAT_INFO)  # the "total" rows
TARGET = 1.10


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` by its file path, as the module ``<name>.app``.

    Lambda imports a handler with its CodeUri folder as the import root, and pytest puts
    ``functions/`` on the path through its ``pythonpath`` setting; a script must not edit
    ``sys.path``, so the file is loaded by location. Its own imports (authsync,
    Powertools) resolve through the installed environment, as through the layer in Lambda.
    """
    spec = importlib.util.spec_from_file_location(f"{name}.app", FUNCTIONS / name / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/bench"
    log_stream_name: str = "bench"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class AwsCalls:
    """A botocore ``before-call`` hook: API calls per (phase, function, service, operation).

    Fires once per API call (retries happen after it). Counts only while :meth:`inside`
    says which function is running.
    """

    def __init__(self) -> None:
        self.phase = ""
        self.function: str | None = None
        self.counts: Counter[tuple[str, str, str, str]] = Counter()

    def __call__(self, event_name: str, **kwargs: Any) -> None:
        if self.function is None:
            return
        _before_call, service, operation = event_name.split(".", 2)  # before-call.<service-id>.<Operation>
        self.counts[(self.phase, self.function, service, operation)] += 1

    @contextmanager
    def inside(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None

    def total(self, phase: str, service: str, function: str | None = None) -> int:
        return sum(
            n
            for (p, f, s, _), n in self.counts.items()
            if p == phase and s == service and (function is None or f == function)
        )

    def operations(self, phase: str, service: str, function: str) -> Counter[str]:
        result: Counter[str] = Counter()
        for (p, f, s, operation), n in self.counts.items():
            if p == phase and s == service and f == function:
                result[operation] += n
        return result


@dataclass
class Delivery:
    """What one phase's deliveries did, per queue."""

    batches: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


class Phase:
    """One phase's deliveries and the WeCom calls the emulator counted during it."""

    def __init__(self, name: str, events: int, delivery: Delivery, emulator: Emulator) -> None:
        self.name, self.events, self.delivery = name, events, delivery
        counters = emulator.counters()
        self.wecom: Counter[str] = Counter({endpoint: c.calls for endpoint, c in counters.items() if c.calls})
        errors = {endpoint: {code: n for code, n in c.errors.items() if code} for endpoint, c in counters.items()}
        self.errors = {endpoint: codes for endpoint, codes in errors.items() if codes}


def publish(world: World, publisher: SqsEventPublisher, fields: dict[str, str | int]) -> None:
    """What callback-ingest does with a verified event: parse, build the FIFO message, send."""
    xml = event_xml({"SuiteId": world.suite.suite_id, **fields}).encode()
    event = parse_event(xml)
    assert isinstance(event, AuthEvent)
    publisher.publish(queued_event(event, xml))


def counted(calls: AwsCalls, function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """The handler as Lambda invokes it, with its AWS calls counted and Powertools' output discarded."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        # Metrics print an EMF blob per invocation (CloudWatch's job, not this table's).
        with calls.inside(function), redirect_stdout(io.StringIO()):
            return handler(event, context)

    return invoke


def deliver_all(world: World, invokers: dict[str, Callable[..., Any]], limit: int) -> Delivery:
    """Round after round, one batch of each queue, until a round finds both empty."""
    result = Delivery()
    started = time.perf_counter()
    for _ in range(limit):
        received = 0
        for logical_id, function in QUEUES:
            outcome = deliver_batch(world.queue_url(logical_id), invokers[function], LambdaContext(function))
            if outcome.received:
                result.batches[function] += 1
                result.received[function] += outcome.received
                result.failed[function] += len(outcome.failed)
            received += outcome.received
        if not received:
            result.seconds = time.perf_counter() - started
            return result
    raise SystemExit(f"the queues did not drain in {limit} rounds: {dict(result.failed)} messages failed")


def ratio(calls: int, bound: int) -> str:
    if bound == 0:
        return "    -" if calls == 0 else "  inf"
    return f"{calls / bound:5.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corps", type=int, default=100, help="corps installed before the burst")
    parser.add_argument("--events", type=int, default=1000, help="change_auth events in the burst")
    args = parser.parse_args()
    corps, events = args.corps, args.events
    if corps < 1 or events < 0:
        parser.error("--corps must be >= 1 and --events >= 0")

    # Before any botocore session exists, so every session (and client) gets the hook.
    calls = AwsCalls()
    BUILTIN_HANDLERS.append(("before-call", calls))
    # moto only: never a real account, endpoint or profile.
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    started = time.perf_counter()
    try:
        with (
            mock_aws(),
            quick_sqs_clock(),
            Emulator(retry_delays=(0.0, 0.0, 0.0), seed=3) as emulator,  # wall clock, as Lambda has
        ):
            world = build_world(emulator, stack_name="authsync-bench")
            world.deliver_ticket()
            for function in ("ChatdataFunction", "AuthInfoFunction"):
                os.environ.update(world.environment(function))
            # Output only, read at import: no X-Ray daemon here, no log line per message.
            os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
            auth_info, chatdata = load_function("auth_info"), load_function("chatdata")
            invokers = {
                "auth-info": counted(calls, "auth-info", auth_info.lambda_handler),
                "chatdata": counted(calls, "chatdata", chatdata.lambda_handler),
            }
            publisher = SqsEventPublisher(boto3.client("sqs"), world.queue_url("AuthEventsQueue"))
            corp_ids = [f"wwbenchcorp{i:07d}" for i in range(corps)]

            # -- install ------------------------------------------------------------------
            calls.phase = "install"
            for corp_id in corp_ids:
                emulator.add_corp(corp_id)
                code = emulator.create_auth(
                    world.suite.suite_id, corp_id, push=False, chat_editions=sample_chat_editions()
                ).auth_code
                assert code is not None
                fields: dict[str, str | int] = {
                    "AuthCode": code,
                    "InfoType": "create_auth",
                    "TimeStamp": int(emulator.now()),
                }
                publish(world, publisher, fields)
            install = Phase("install", corps, deliver_all(world, invokers, limit=10 * corps + 100), emulator)

            # -- burst: a cold container, tokens from Secrets Manager ----------------------
            emulator.reset_counters()
            calls.phase = "burst"
            auth_info, chatdata = load_function("auth_info"), load_function("chatdata")  # a fresh init
            invokers = {
                "auth-info": counted(calls, "auth-info", auth_info.lambda_handler),
                "chatdata": counted(calls, "chatdata", chatdata.lambda_handler),
            }
            base = int(emulator.now())
            for i in range(events):
                # Distinct TimeStamps: distinct FIFO deduplication ids, so no event collapses in SQS.
                fields = {"InfoType": "change_auth", "TimeStamp": base + i, "AuthCorpId": corp_ids[i % corps]}
                publish(world, publisher, fields)
            burst = Phase("burst", events, deliver_all(world, invokers, limit=2 * events + 100), emulator)

            snapshots = SnapshotStore(boto3.client("dynamodb"), world.deployment.physical["CorpsTable"])
            states = [snapshots.get(world.suite.suite_id, corp_id) for corp_id in corp_ids]
    finally:
        BUILTIN_HANDLERS.remove(("before-call", calls))

    report(corps, install, burst, calls)
    active = sum(1 for s in states if s is not None and s.active)
    unchanged = sum(1 for s in states if s is not None and (s.auth_info_version, s.chatdata_version) == (1, 1))
    print()
    print(f"snapshots: {active}/{corps} corps active, {unchanged}/{corps} at version 1 (the burst changed nothing)")
    print(f"runtime: {time.perf_counter() - started:.1f} s")
    return 0


def report(corps: int, install: Phase, burst: Phase, calls: AwsCalls) -> None:
    touched = min(corps, burst.events)  # corps the burst has an event for
    bounds: dict[str, Counter[str]] = {
        "install": Counter({SUITE_TOKEN: 1, CORP_TOKEN: corps, PERMANENT_CODE: corps}),
        "burst": Counter(),
    }
    for endpoint in (AUTH_INFO, CHAT_INFO, USER_LIST):
        bounds["install"][endpoint], bounds["burst"][endpoint] = corps, touched
    bounds["whole run"] = bounds["install"] + bounds["burst"]
    measured = {"install": install.wecom, "burst": burst.wecom, "whole run": install.wecom + burst.wecom}
    columns = ("install", "burst", "whole run")
    endpoints = list(BOUNDED) + sorted(set(measured["whole run"]) - {*BOUNDED, USER_LIST})

    def total(counts: Counter[str]) -> int:
        return sum(counts[e] for e in endpoints)

    print(
        f"fetch pipeline economy: {corps} corps installed, then {burst.events} change_auth "
        f"({burst.events / corps:.3g} per corp), Python {sys.version.split()[0]}"
    )
    for phase in (install, burst):
        queues = ", ".join(
            f"{f} {phase.delivery.received[f]} msgs in {phase.delivery.batches[f]} batches "
            f"({phase.delivery.failed[f]} failed)"
            for _, f in QUEUES
        )
        print(f"  {phase.name:<8} {phase.delivery.seconds:6.1f} s   {queues}")
    print()
    print(f"{'WeCom calls per endpoint':<34}" + "".join(f"{c:>23}" for c in columns))
    print(f"{'':<34}" + "    calls  bound  ratio" * len(columns))

    def row(label: str, values: dict[str, tuple[int, int]]) -> None:
        cells = "".join(f"{c:9d}{b:7d}{ratio(c, b):>7}" for c, b in (values[column] for column in columns))
        print(f"{label:<34}{cells}")

    for endpoint in endpoints:
        row(endpoint, {c: (measured[c][endpoint], bounds[c][endpoint]) for c in columns})
    row("  total", {c: (total(measured[c]), total(bounds[c])) for c in columns})
    row(f"{USER_LIST} (pages)", {c: (measured[c][USER_LIST], bounds[c][USER_LIST]) for c in columns})
    for phase in (install, burst):
        if phase.errors:
            print(f"  WeCom errors during {phase.name} (endpoint: {{errcode: count}}): {phase.errors}")

    # The issue's bound: 1 suite token + one corp token per corp (for the whole run: they
    # are obtained once and last 7200 s), one get_auth_info and one chatdata fetch per corp.
    whole = measured["whole run"]
    issue = whole[SUITE_TOKEN] + whole[CORP_TOKEN] + burst.wecom[AUTH_INFO] + burst.wecom[CHAT_INFO]
    checks = [
        ("issue's bound: run's tokens + burst's fetches", issue, 1 + corps + 2 * touched),
        ("burst alone (tokens already stored)", total(burst.wecom), total(bounds["burst"])),
        ("whole run (install + burst)", total(whole), total(bounds["whole run"])),
    ]
    print()
    print(f"Targets: total WeCom calls within {TARGET:.2f}x of the lower bound (issue #4)")
    print(f"  issue's bound = 1 suite token + {corps} corp tokens + {touched} get_auth_info + {touched} chatdata")
    for label, got, bound in checks:
        verdict = "met" if got <= TARGET * bound else "MISSED"
        print(f"  {label:<46} {got:6d} / {bound:<6d} {ratio(got, bound)}   {verdict}")

    print()
    print("AWS API calls made inside the handlers (botocore before-call hook)")
    print(f"{'':<16}" + "".join(f"{f'{p.name} ({p.events} events)':>38}" for p in (install, burst)))
    print(f"{'':<16}" + "   auth-info chatdata  total per event" * 2)
    for service, title in SERVICES:
        cells = ""
        for phase in (install, burst):
            a, c = calls.total(phase.name, service, "auth-info"), calls.total(phase.name, service, "chatdata")
            cells += f"{a:12d}{c:9d}{a + c:7d}{(a + c) / max(phase.events, 1):10.2f}"
        print(f"{title:<16}{cells}")
        for phase in (install, burst):
            for function in ("auth-info", "chatdata"):
                operations = calls.operations(phase.name, service, function)
                if operations:
                    detail = ", ".join(f"{op} {n}" for op, n in operations.most_common())
                    print(f"    {phase.name:<8}{function:<10} {detail}")


if __name__ == "__main__":
    raise SystemExit(main())
