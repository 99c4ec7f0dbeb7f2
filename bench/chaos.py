"""The chaos campaign (``make chaos``): hundreds of corps through the local stack on WeCom's and AWS's bad day.

    python bench/chaos.py [--corps 300] [--clean] [--seed 7] ...   (--help lists every knob)

The local stack (:class:`authsync_dev.stack.LocalStack`: moto in server mode as AWS, the WeCom
emulator as WeCom, the real handlers in concurrent containers, SQS pollers, schedules) serves a
third-party suite and a 代开发 template. Then, all at once:

* **Corps of every kind** install: verified, unverified (later verified), with 数据与智能专区
  editions (later re-scoped), 上下游-shared, 代开发 (some later reset their secret). Some
  uninstall and re-install, some uninstall for good. Some of those that stay buy the paid edition
  (``open_order``, ``pay_for_app_success``, ``change_editon``) or get license accounts from the
  provider (``license_pay_success``, ``auto_activate``): the truth check covers edition, licenses
  and orders.
* **WeCom fails** ``--wecom-faults`` of its API calls, spread over every fault kind the emulator
  has (-1, 45009, 45033, an HTTP 5xx, a slow answer, a token ended early).
* **Every callback is delivered** ``--copies`` times (the same signed request), and
  ``--reorder`` of the events that have a successor are delivered late, after it (their
  TimeStamp still the time they happened).
* **AWS fails**: SQS, then Secrets Manager, then DynamoDB, then KMS (the vault's and the journal's
  sealing), each for ``--aws-window`` seconds (throttling, 5xx, and calls that succeed but time out:
  :mod:`authsync_dev.aws_faults`).
* **auth-info is killed** mid-message ``--kills`` times after each named step of an install
  (before the exchange, after it, after the journal write, after the code is stored, after the
  first state, after the snapshot): the container dies, as when Lambda stops one.

Then faults clear, the callback inbox is drained, the DLQs are redriven with the operator CLI
(``authsync-ops redrive``), reconcile runs, and every corp is compared with the emulator's
truth (:class:`authsync_dev.truth.Truth`). A kill *after* the exchange is the one window no
store can close (WeCom's answer existed only in the dead process): such an install must come
back as an alarmed ``install_lost`` for exactly that corp, which then re-authorizes, as an
operator would ask it to; any other loss is a failure. Exit status 1 on any divergence, any
unexplained loss, or a DLQ not empty after one redrive.

WeCom calls are held against a lower bound computed from what happened (each install,
change, reset and reconcile fetch needs its calls; each token WeCom ended early needs one
more); calls that an injected fault answered are not counted. ``--clean`` runs the same
scenario with no faults, copies, reordering or kills: its ratio shows the bound is tight.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import random
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from authsync_dev.aws_faults import AwsFaults
from authsync_dev.demo import CUSTOMIZED_SUITE, Console, chat_mix, handler_output_to
from authsync_dev.emulator import Emulator, HeldPush, sample_chat_editions
from authsync_dev.emulator.faults import FAULT_KINDS
from authsync_dev.local_functions import Killed, in_invocation
from authsync_dev.stack import LocalStack
from authsync_dev.stack_config import DEFAULT_SUITE, StackConfig
from authsync_dev.template import ROOT
from authsync_dev.truth import Truth
from authsync_ops.cli import main as ops

KINDS = ("verified", "unverified", "chatdata", "shared", "customized")
PARENT = "wwchaosupstream001"
AWS_SERVICES = ("sqs", "secrets-manager", "dynamodb", "kms")
TARGET = 1.05
# (step, port of AuthorizationSync, method, kill before the call, only for this snapshot kind)
KILL_STEPS: tuple[tuple[str, str, str, bool, str | None], ...] = (
    ("before exchange", "_client", "get_permanent_code", True, None),
    ("after exchange", "_client", "get_permanent_code", False, None),
    ("after journal write", "_journal", "record", False, None),
    ("after code stored", "_codes", "put", False, None),
    ("after first state", "_snapshots", "record", False, "install"),
    ("after snapshot", "_snapshots", "record", False, "auth_info"),
)
ENDED_EARLY = "(a token for each WeCom ended early)"
WECOMS_FAULT = frozenset({"-1", "45009", "45033", "http5xx", "invalidate_token", "ended_early"})
"""Calls a fault answered for WeCom (the call did nothing), or that presented a token WeCom had ended
early (every container holding it fails once before it knows): not counted against the bound."""


@dataclass
class Corp:
    corp_id: str
    suite_id: str
    kind: str
    steps: list[str]


@dataclass
class KillPlan:
    """Kills auth-info containers: ``left`` kills per step, shared by every container."""

    left: dict[str, int]
    done: Counter[str] = field(default_factory=Counter)
    lost_corps: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, step: str) -> bool:
        with self.lock:
            if self.left.get(step, 0) <= 0:
                return False
            self.left[step] -= 1
            self.done[step] += 1
            return True

    def arm(self, module: ModuleType) -> None:
        """on_init hook: wrap a new container's ports (the use case the handler built at import)."""
        sync = module.sync
        for port in {p for _, p, _, _, _ in KILL_STEPS}:
            setattr(sync, port, _Dying(getattr(sync, port), port, self))


class _Dying:
    """Delegates to a port; at a planned step the call completes (or not) and the container dies."""

    def __init__(self, target: Any, port: str, plan: KillPlan) -> None:
        self._target, self._port, self._plan = target, port, plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        steps = [s for s in KILL_STEPS if s[1] == self._port and s[2] == name]
        if not steps:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            for step, _, _, before, _ in steps:
                if before and self._plan.take(step):
                    raise Killed(step)
            result = attribute(*args, **kwargs)
            for step, _, _, before, kind in steps:
                if before or (kind is not None and kind not in args):
                    continue
                if self._plan.take(step):
                    if step == "after exchange":
                        self._plan.lost_corps.append(result.corp_id)
                    raise Killed(step)
            return result

        return call


def plan_corps(count: int, rng: random.Random) -> list[Corp]:
    corps = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        suite = CUSTOMIZED_SUITE.suite_id if kind == "customized" else DEFAULT_SUITE.suite_id
        steps = ["create"]
        if rng.random() < 0.3:
            steps.append("change")
        if rng.random() < 0.1:
            steps += ["cancel", "create"]
        if rng.random() < 0.05:
            steps.append("cancel")
        if suite == DEFAULT_SUITE.suite_id and "cancel" not in steps:
            # Paid editions and license accounts (issue #12), for corps that stay installed: a re-install
            # starts a new snapshot, while WeCom keeps the orders of the install before.
            if rng.random() < 0.2:
                steps.append("edition")
            if rng.random() < 0.2:
                steps.append("licenses")
        corps.append(Corp(f"wwchaos{kind[:4]}{i:07d}", suite, kind, steps))
    return corps


def install_kwargs(corp: Corp, wecom: Emulator) -> dict[str, Any]:
    if corp.kind in ("verified", "customized"):
        return {"chat_editions": sample_chat_editions()}
    if corp.kind == "chatdata":
        return {"chat_editions": chat_mix(wecom.now())}
    if corp.kind == "shared":
        return {"shared_from": {"corpid": PARENT, "share_type": 1}}
    return {}


def act(wecom: Emulator, corp: Corp, step: str) -> None:
    if step == "create":
        wecom.create_auth(corp.suite_id, corp.corp_id, **install_kwargs(corp, wecom))
    elif step == "cancel":
        wecom.cancel_auth(corp.suite_id, corp.corp_id)
    elif step == "edition":  # open_order, pay_for_app_success, change_editon
        wecom.buy_edition(corp.suite_id, corp.corp_id, edition_id="chaos-pro", edition_name="专业版")
    elif step == "licenses":  # license_pay_success, auto_activate
        wecom.buy_licenses(corp.suite_id, corp.corp_id, base_count=5, external_contact_count=1)
        wecom.activate_accounts(corp.suite_id, corp.corp_id, ["zhangsan", "lisi"], auto=True)
    elif corp.kind == "unverified":
        wecom.verify_corp(corp.corp_id)
    elif corp.kind == "chatdata":
        wecom.set_chatdata_scope(corp.suite_id, corp.corp_id, 1, userid_list=["zhangsan", "lisi", "zhaoliu"])
    elif corp.kind == "customized":
        wecom.reset_permanent_code(corp.suite_id, corp.corp_id)
    else:
        wecom.change_auth(corp.suite_id, corp.corp_id)


def play(wecom: Emulator, corp: Corp, rng: random.Random, late: Counter[str], *, reorder: float, gap: float) -> None:
    """One corp's script; an event may be held and delivered after its successor.

    A corp's events are ``gap`` seconds apart, as a person's are: more than the second that
    TimeStamps resolve (WeCom orders an uninstall and a re-install by them), and enough for most
    installs to be processed before the corp changes anything.
    """
    held: list[HeldPush] = []
    for index, step in enumerate(corp.steps):
        if index:
            time.sleep(gap)
        if not held and index + 1 < len(corp.steps) and rng.random() < reorder:
            with wecom.holding() as held:
                act(wecom, corp, step)
            continue
        act(wecom, corp, step)
        for push in held:
            wecom.deliver_held(push)
            late[push.event] += 1
        held = []


def counted_calls(wecom: Emulator) -> Counter[str]:
    """WeCom calls per endpoint, minus those an injected fault answered for WeCom (the call did nothing)."""
    calls: Counter[str] = Counter()
    for endpoint, c in wecom.counters().items():
        calls[endpoint] = c.calls - sum(n for kind, n in c.faults.items() if kind in WECOMS_FAULT)
    return +calls


def dlq_depths(stack: LocalStack) -> dict[str, int]:
    return {q: stack.queue_depth(q) for q in ("AuthEventsDLQ", "ChatdataDLQ")}


def operator(stack: LocalStack, *argv: str) -> str:
    """One ``authsync-ops --local`` command against this stack; its stdout."""
    with tempfile.TemporaryDirectory() as folder:
        serve = Path(folder) / "serve.json"
        serve.write_text(json.dumps(stack.describe()), encoding="utf-8")
        out = io.StringIO()
        status = ops(["--local", str(serve), *argv], stdout=out, stderr=io.StringIO())
    return f"authsync-ops {' '.join(argv)}: {out.getvalue().strip()} (exit {status})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corps", type=int, default=300)
    parser.add_argument("--wecom-faults", type=float, default=0.30, help="share of WeCom API calls that fail")
    parser.add_argument("--copies", type=int, default=3, help="deliveries of every callback")
    parser.add_argument("--reorder", type=float, default=0.15, help="share of events delivered after their successor")
    parser.add_argument("--aws-window", type=float, default=20.0, help="seconds each of SQS, SM, DynamoDB, KMS fails")
    parser.add_argument("--kills", type=int, default=1, help="auth-info containers killed after each install step")
    parser.add_argument("--concurrency", type=int, default=6, help="containers per function")
    parser.add_argument("--drivers", type=int, default=64, help="corps whose events WeCom sends at once")
    parser.add_argument("--gap", type=float, default=6.0, help="seconds between one corp's events (> 1)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the clean run (no calls ratio)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--settle", type=float, default=240.0, help="seconds to wait for the pipeline to settle")
    parser.add_argument("--log", type=Path, default=ROOT / ".local" / "chaos.log")
    args = parser.parse_args(argv)
    if args.corps < 1 or args.copies < 1 or not 0 <= args.wecom_faults < 1 or not 0 <= args.reorder <= 1:
        parser.error("--corps and --copies must be >= 1, --wecom-faults within [0, 1), --reorder within [0, 1]")
    return args


@dataclass(frozen=True)
class Chaos:
    """What goes wrong in one run (all zero: the clean baseline)."""

    wecom_faults: float = 0.0
    copies: int = 1
    reorder: float = 0.0
    aws_window: float = 0.0
    kills: int = 0

    def __str__(self) -> str:
        if self == Chaos():
            return "clean run (nothing fails: the baseline)"
        return (
            f"chaos: {self.wecom_faults:.0%} WeCom faults, every callback {self.copies}x, {self.reorder:.0%} late, "
            f"SQS/Secrets Manager/DynamoDB/KMS down {self.aws_window:g} s each, {self.kills} kill(s) per install step"
        )


@dataclass
class Run:
    """One scenario's outcome."""

    corps: list[Corp]
    calls: Counter[str] = field(default_factory=Counter)
    wecom_faults: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    dlq_before: dict[str, int] = field(default_factory=dict)
    dlq_after: dict[str, int] = field(default_factory=dict)
    reauthorized: set[str] = field(default_factory=set)
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems or any(self.dlq_after.values()))


def inject_wecom_faults(wecom: Emulator, rate: float, seed: int) -> None:
    """``rate`` of all calls fail, spread evenly over every fault kind (each kind's coin is tossed in turn)."""
    wecom.faults.reseed(seed)
    if rate <= 0:
        return
    each = 1 - (1 - rate) ** (1 / len(FAULT_KINDS))
    for kind in FAULT_KINDS:
        wecom.faults.add("*", kind, probability=each, delay=1.5)  # slow: well inside the client's timeout


def settle(stack: LocalStack, seconds: float) -> str:
    started = time.monotonic()
    try:
        stack.wait_idle(seconds)
    except TimeoutError as exc:
        return f"NOT settled: {exc}"
    return f"settled in {time.monotonic() - started:.0f} s"


@dataclass
class Campaign:
    """Runs one scenario on a fresh local stack."""

    args: argparse.Namespace
    chaos: Chaos
    aws: AwsFaults
    console: Console

    def run(self) -> Run:
        args, chaos = self.args, self.chaos
        corps = plan_corps(args.corps, random.Random(args.seed))
        kills = KillPlan({step: chaos.kills for step, *_ in KILL_STEPS})
        suites = (DEFAULT_SUITE, CUSTOMIZED_SUITE)
        config = StackConfig(suites=suites, ticket_interval=0.0, concurrency=args.concurrency, moto="process")
        self.console.step(f"{chaos}; {len(corps)} corps, {args.concurrency} containers per function")
        with LocalStack(config, visibility_scale=0.1) as stack:
            stack.wait_idle(60)
            stack.function("AuthInfoFunction").on_init(kills.arm)
            return self._play(stack, corps, kills)

    def _play(self, stack: LocalStack, corps: list[Corp], kills: KillPlan) -> Run:
        args, chaos, step = self.args, self.chaos, self.console.step
        wecom = stack.emulator
        wecom.add_corp(PARENT, "上游企业")
        for corp in corps:
            wecom.add_corp(corp.corp_id, f"混沌企业{corp.corp_id[-4:]}", verified=corp.kind != "unverified")
        wecom.reset_counters()
        inject_wecom_faults(wecom, chaos.wecom_faults, args.seed)
        wecom.pusher.copies = chaos.copies
        started = time.monotonic()
        at = 5.0
        for service in AWS_SERVICES if chaos.aws_window > 0 else ():
            self.aws.window(service, chaos.aws_window, start_in=at)
            at += chaos.aws_window + 5.0
        late: Counter[str] = Counter()
        seeds = [random.Random(args.seed * 100_003 + i) for i in range(len(corps))]
        with ThreadPoolExecutor(args.drivers, thread_name_prefix="wecom") as pool:
            script = functools.partial(play, wecom, reorder=chaos.reorder, gap=args.gap)
            for future in [pool.submit(script, c, r, late) for c, r in zip(corps, seeds, strict=True)]:
                future.result()
        step(f"WeCom sent {sum(len(c.steps) for c in corps)} events ({sum(late.values())} late: {dict(late)})")
        time.sleep(max(0.0, started + at - time.monotonic()))  # the last outage is over
        run = Run(corps, wecom_faults=self._faults(wecom))
        self.aws.clear()
        wecom.faults.clear()
        wecom.pusher.copies = 1
        truth = Truth(stack)
        self._reauthorize(stack, run, kills, truth)
        step(f"faults cleared; {settle(stack, args.settle)}")
        step(operator(stack, "inbox", "drain"))
        run.dlq_before = dlq_depths(stack)
        for queue in ("auth-events", "chatdata"):
            step(operator(stack, "redrive", "--queue", queue))
        step(f"redriven; {settle(stack, args.settle)}")
        stack.fire("ReconcileFunction")
        step(f"reconcile fired; {settle(stack, args.settle)}")
        run.seconds = time.monotonic() - started
        run.calls = counted_calls(wecom)
        run.dlq_after = dlq_depths(stack)
        run.problems = truth.ticket_divergences()
        for corp in corps:
            run.problems += truth.corp_divergences(corp.suite_id, corp.corp_id)
        run.lines = self._describe(stack, run, kills)
        return run

    def _reauthorize(self, stack: LocalStack, run: Run, kills: KillPlan, truth: Truth) -> None:
        """Installs killed between WeCom's answer and the journal write are lost (alarmed as install_lost):
        the operator asks those corps to re-authorize (an uninstall and an install at WeCom)."""
        lost = {
            c.corp_id
            for c in run.corps
            if c.corp_id in kills.lost_corps and truth.stored_code(c.suite_id, c.corp_id) is None
        }
        run.reauthorized = lost
        wecom = stack.emulator
        for corp in (c for c in run.corps if c.corp_id in lost):
            wecom.cancel_auth(corp.suite_id, corp.corp_id)
            time.sleep(1.1)
            wecom.create_auth(corp.suite_id, corp.corp_id, **install_kwargs(corp, wecom))
        if lost:
            self.console.step(f"{len(lost)} install(s) lost after the exchange: the corp re-authorizes")

    @staticmethod
    def _faults(wecom: Emulator) -> Counter[str]:
        faults: Counter[str] = Counter()
        for counters in wecom.counters().values():
            faults.update(counters.faults)
        return faults

    def _describe(self, stack: LocalStack, run: Run, kills: KillPlan) -> list[str]:
        deliveries = stack.emulator.deliveries()
        attempts = [a for d in deliveries for a in d.attempts]
        stats = stack.stats()
        functions = ", ".join(
            f"{name.removesuffix('Function')} {s.invocations}/{s.errors}/{s.containers}"
            for name, s in sorted(stats.items())
            if s.invocations
        )
        errors = {
            endpoint: answers
            for endpoint, c in sorted(stack.emulator.counters().items())
            if (
                answers := dict(c.errors - Counter({int(k): n for k, n in c.faults.items() if k.lstrip("-").isdigit()}))
            )
        }
        return [
            f"WeCom faults injected: {dict(sorted(run.wecom_faults.items()))}",
            f"WeCom error answers (errcode: calls; injected errcodes left out): {errors}",
            f"AWS faults injected: { {s: dict(c) for s, c in self.aws.injected().items()} }",
            f"auth-info killed: {dict(kills.done)}",
            f"callbacks: {len(deliveries)} deliveries, {len(attempts)} POSTs, "
            f"{sum(1 for a in attempts if a.outcome == 'timeout')} answered after WeCom's deadline",
            f"functions (invocations/errors/containers started): {functions}",
        ]


def report(chaos: Run, baseline: Run | None, console: Console) -> None:
    line = console.line
    corps = chaos.corps
    diverged = {p.split(":", 1)[0] for p in chaos.problems}
    converged = sum(1 for c in corps if f"{c.suite_id}/{c.corp_id}" not in diverged)
    lost = sum(1 for p in chaos.problems if "missing" in p or "permanent code" in p)
    line()
    line(f"converged: {converged}/{len(corps)} corps")
    line(
        f"lost: {lost} ({len(chaos.reauthorized)} install_lost alarmed for corps killed between WeCom's answer and "
        "the journal write, the one window no store closes: re-authorized)"
    )
    line(f"DLQ messages before redrive: {chaos.dlq_before}; after one redrive: {chaos.dlq_after}")
    for text in chaos.lines:
        line(text)
    line(f"chaos phase (first event to settled, reconciled): {chaos.seconds:.0f} s")
    if baseline is not None:
        # Each token WeCom ended early must be obtained once more; everything else the clean run did.
        forced = Counter({ENDED_EARLY: chaos.wecom_faults["invalidate_token"]})
        bound = baseline.calls + forced
        line()
        line(f"{'WeCom calls (injected faults excluded)':<40}{'chaos':>8}{'bound':>8}{'ratio':>8}")
        for endpoint in sorted(set(bound) | set(chaos.calls)):
            got, most = chaos.calls[endpoint], bound[endpoint]
            line(f"{endpoint:<40}{got:>8}{most:>8}{_ratio(got, most)}")
        total, limit = sum(chaos.calls.values()), sum(bound.values())
        verdict = "met" if total <= TARGET * limit else "MISSED"
        line(f"{'total':<40}{total:>8}{limit:>8}{_ratio(total, limit)}   target <= {TARGET:.2f}x: {verdict}")
        line("(bound: the clean run of the same scenario, plus one token per token WeCom ended early)")
        if baseline.failed:
            line(f"the clean run itself diverged: {baseline.problems[:5]}")
    line()
    if chaos.problems:
        line(f"DIVERGED from WeCom's truth ({len(chaos.problems)}):")
        for problem in chaos.problems[:30]:
            line(f"  - {problem}")
    elif not chaos.failed:
        line("OK: every corp matches WeCom's truth, nothing lost, DLQs empty after one redrive.")


def _ratio(calls: int, bound: int) -> str:
    return f"{calls / bound:7.2f}x" if bound else "      -"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before any botocore session exists; the functions' calls fail, not the pollers' (Lambda's, AWS's own).
    aws = AwsFaults(seed=args.seed, scope=in_invocation).install()
    chaos = Chaos(args.wecom_faults, args.copies, args.reorder, args.aws_window, args.kills)
    with handler_output_to(args.log) as terminal:
        console = Console(terminal)
        console.step(f"chaos campaign (handler logs: {args.log})")
        try:
            baseline = None if args.no_baseline else Campaign(args, Chaos(), aws, console).run()
            run = Campaign(args, chaos, aws, console).run()
        finally:
            aws.uninstall()
        report(run, baseline, console)
    return 1 if run.failed or (baseline is not None and baseline.failed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
