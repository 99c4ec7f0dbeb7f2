"""``make run``: the whole pipeline on the embedded default, played through and checked.

The local stack (moto as AWS, the emulator as WeCom, the real handlers) serves one
third-party suite and one 代开发 template. WeCom pushes a suite_ticket, then five corps
install the app — verified, unverified, 代开发, one with 数据与智能专区 editions in different
statuses, one through 上下游 sharing — and everything travels the real path: signed,
encrypted callbacks over HTTP into callback-ingest, the FIFO queue, auth-info, chatdata.
Then one corp becomes verified, one corp's chatdata scope and editions change, one corp
buys a paid edition and the provider buys it license accounts, one corp cancels. The
summary is read back through the query route and checked against the
emulator's truth; the exit code is 0 only if everything matches.

Handler logs (JSON) go to ``.local/demo.log``; the terminal shows progress and the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from authsync.aws.suites import SuiteConfig
from authsync_dev.emulator import ChatEdition, PushResult, sample_chat_editions
from authsync_dev.stack import LocalStack
from authsync_dev.stack_config import DEFAULT_SUITE, StackConfig
from authsync_dev.template import ROOT
from authsync_dev.truth import Truth

__all__ = ["main"]

CUSTOMIZED_SUITE = SuiteConfig(
    suite_id="dkdemotemplate0001",
    suite_secret="demo-customized-secret-not-real",
    token="DemoCustomizedToken",
    encoding_aes_key="ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj",
    kind="customized",
    provider_corpid="wwprovider00000001",
)

SHARING_PARENT = "wwupstreamparent01"


@dataclass
class Corp:
    key: str
    corp_id: str
    suite_id: str
    label: str


@dataclass
class Check:
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(message)


class Console:
    """Progress on the real terminal while handler output goes to the log file."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)


@contextlib.contextmanager
def handler_output_to(path: Path) -> Iterator[IO[str]]:
    """Send stdout (Powertools logs and EMF metrics) to ``path``; yield the real terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    real = sys.stdout
    with path.open("w", encoding="utf-8") as log:
        sys.stdout = log
        try:
            yield real
        finally:
            sys.stdout = real


def chat_mix(now: float) -> list[ChatEdition]:
    """Three editions in three different statuses: paid, trial expired, paid but not yet started."""
    day = 86400
    return [
        ChatEdition(1, 3, ["zhangsan", "lisi"], [1], [10], 365),
        ChatEdition(2, 2, ["zhangsan"], [2], [], 90),
        ChatEdition(3, 7, ["wangwu"], [], [11], 180, begin_time=int(now) + 7 * day, end_time=int(now) + 372 * day),
    ]


def install_all(stack: LocalStack, console: Console) -> list[Corp]:
    wecom = stack.emulator
    suite = DEFAULT_SUITE.suite_id
    corps = [
        Corp("A", "wwdemoverified0001", suite, "verified corp"),
        Corp("B", "wwdemounverified01", suite, "unverified corp"),
        Corp("C", "wwdemocustomized01", CUSTOMIZED_SUITE.suite_id, "代开发 corp"),
        Corp("D", "wwdemochatdata0001", suite, "chatdata editions"),
        Corp("E", "wwdemodownstream01", suite, "上下游 sharing"),
    ]
    wecom.add_corp(SHARING_PARENT, "上游企业")
    wecom.add_corp("wwdemoverified0001", "认证企业甲", verified=True)
    wecom.add_corp("wwdemounverified01", "注册企业乙", verified=False)
    wecom.add_corp("wwdemocustomized01", "代开发企业丙", verified=True)
    wecom.add_corp("wwdemochatdata0001", "专区企业丁", verified=True)
    wecom.add_corp("wwdemodownstream01", "下游企业戊", verified=False)
    extra: dict[str, dict[str, Any]] = {
        "A": {"chat_editions": sample_chat_editions()},
        "B": {},
        "C": {"chat_editions": sample_chat_editions()},
        "D": {"chat_editions": chat_mix(wecom.now())},
        "E": {"shared_from": {"corpid": SHARING_PARENT, "share_type": 1}},
    }
    for corp in corps:
        delivery = wecom.create_auth(corp.suite_id, corp.corp_id, **extra[corp.key])
        console.step(f"create_auth pushed for {corp.key} ({corp.label}): callback answered {_answer(delivery)}")
    return corps


def _answer(push: PushResult) -> str:
    if push.delivery is None or not push.delivery.attempts:
        return "nothing"
    last = push.delivery.attempts[-1]
    return f"{last.status} {last.answer!r}"


def editions_text(view: dict[str, Any] | None) -> str:
    chat = (view or {}).get("chatdata") or {}
    if not chat:
        return "-"
    if not chat.get("authorized"):
        return f"not authorized ({chat.get('errcode')})"
    return ", ".join(f"{e['edition']}:{e.get('status_label') or e.get('status')}" for e in chat.get("editions", []))


def subscribe(stack: LocalStack) -> str:
    """An SQS queue that a rule on the stack's change-event bus feeds (what a provider's system subscribes)."""
    sqs, events = stack.client("sqs"), stack.client("events")
    bus = stack.deployment.physical["ChangeEventBus"]
    queue: str = sqs.create_queue(QueueName="demo-change-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="demo-all-changes", EventBusName=bus, EventPattern=json.dumps({"source": ["wecom-authsync"]}))
    events.put_targets(Rule="demo-all-changes", EventBusName=bus, Targets=[{"Id": "demo", "Arn": arn}])
    return queue


def change_events(stack: LocalStack, queue: str) -> Counter[str]:
    """The change events delivered to ``queue``, by detail-type (received and deleted)."""
    sqs = stack.client("sqs")
    kinds: Counter[str] = Counter()
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            kinds[json.loads(message["Body"])["detail-type"]] += 1
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return kinds


def license_text(view: dict[str, Any]) -> str:
    """Active / purchased license accounts (``-``: no license event for the corp yet)."""
    license_view = view.get("license")
    if not license_view:
        return "-"
    return f"{license_view['active']['total']}/{license_view['purchased']['total']}"


def edition_text(view: dict[str, Any]) -> str:
    edition = view.get("edition")
    return str(edition.get("edition_name") or edition.get("edition_id")) if edition else "-"


def summary(stack: LocalStack, corps: list[Corp], console: Console, events_queue: str | None = None) -> None:
    columns = (
        "corp",
        "corp_id",
        "status",
        "verified",
        "客服 cap",
        "edition",
        "license",
        "versions",
        "calls",
        "chatdata editions",
    )
    widths = (4, 20, 10, 9, 9, 8, 8, 9, 6, 0)
    header = " ".join(f"{name:<{width}}" for name, width in zip(columns, widths, strict=True))
    console.line(header)
    console.line("-" * len(header))
    for corp in corps:
        view = Truth(stack).view(corp.suite_id, corp.corp_id) or {}
        verification = view.get("verification") or {}
        cap = verification.get("customer_cap", "-") if verification else "-"
        versions = view.get("versions") or {}
        calls = sum(stack.emulator.corp_calls(corp.corp_id).values())
        console.line(
            f"{corp.key:<4} {corp.corp_id:<20} {view.get('status', '-'):<10} "
            f"{verification.get('verified', '-')!s:<9} {('unlimited' if cap is None else str(cap)):<9} "
            f"{edition_text(view):<8} {license_text(view):<8} "
            f"{versions.get('auth_info', 0)}/{versions.get('chatdata', 0):<7} {calls:<6} {editions_text(view)}"
        )
    console.line(
        "(edition: the paid edition; license: active/purchased license accounts; versions: auth_info/chatdata "
        "snapshot versions; calls: WeCom API calls answered for that corp)"
    )
    counters = stack.emulator.counters()
    used = ", ".join(f"{name} {c.calls}" for name, c in sorted(counters.items()) if c.calls)
    console.line(f"WeCom calls in all: {sum(c.calls for c in counters.values())} ({used})")
    footprint = Truth(stack).credential_footprint()
    console.line(
        f"credentials: per-corp store {footprint['store']}; Secrets Manager secrets "
        f"{footprint['suite_secrets'] + footprint['provider_secrets'] + footprint['corp_secrets']} "
        f"({footprint['suite_secrets']} per-suite, {footprint['provider_secrets']} per-provider, "
        f"{footprint['corp_secrets']} per-corp); vault items {footprint['vault_items']} (KMS-sealed)"
    )
    if events_queue is not None:
        delivered = change_events(stack, events_queue)
        listed = ", ".join(f"{kind} {n}" for kind, n in sorted(delivered.items()))
        console.line(f"change events delivered to a subscribed queue: {sum(delivered.values())} ({listed})")


def check_truth(stack: LocalStack, corps: list[Corp]) -> Check:
    """Compare what the pipeline stored with what the emulator (WeCom) says is true."""
    truth = Truth(stack)
    check = Check(truth.ticket_divergences())
    for corp in corps:
        check.problems.extend(truth.corp_divergences(corp.suite_id, corp.corp_id, corp.key))
    return check


def run(args: argparse.Namespace, console: Console) -> int:
    config = StackConfig(
        suites=(DEFAULT_SUITE, CUSTOMIZED_SUITE),
        ticket_interval=0.0,
        parameters={"CorpCredentialStore": args.store},
    )
    with LocalStack(config, time_scale=args.time_scale, visibility_scale=0.01) as stack:
        console.step(f"local stack up: moto {stack.moto_endpoint}, WeCom emulator {stack.emulator.base_url}")
        console.step(f"callback URL {stack.callback_base_url}/<suite_id>, query API {stack.query_base_url}")
        stack.wait_idle(args.timeout)
        console.step("suite_tickets pushed by WeCom and stored for both suites")
        events_queue = subscribe(stack)

        corps = install_all(stack, console)
        stack.wait_idle(args.timeout)
        console.step("all five installs processed: permanent codes stored, auth info and chatdata fetched")

        wecom = stack.emulator
        wecom.verify_corp("wwdemounverified01")
        console.step("B completed 主体验证: change_auth pushed")
        wecom.set_chatdata_scope(
            DEFAULT_SUITE.suite_id, "wwdemochatdata0001", 1, userid_list=["zhangsan", "lisi", "zhaoliu"]
        )
        wecom.set_chatdata_status(DEFAULT_SUITE.suite_id, "wwdemochatdata0001", 2, 3)
        console.step("D changed its chatdata scope and bought edition 2: change_auth pushed")
        suite = DEFAULT_SUITE.suite_id
        wecom.buy_edition(suite, "wwdemoverified0001", edition_id="demo-edition-pro", edition_name="专业版")
        console.step("A bought the 专业版 edition: open_order, pay_for_app_success, change_editon pushed")
        wecom.buy_licenses(suite, "wwdemoverified0001", base_count=10, external_contact_count=2)
        wecom.activate_accounts(suite, "wwdemoverified0001", ["zhangsan", "lisi"], auto=True)
        console.step("the provider bought A 12 license accounts, 2 auto-activated: license_pay_success, auto_activate")
        wecom.cancel_auth(DEFAULT_SUITE.suite_id, "wwdemodownstream01")
        console.step("E uninstalled the app: cancel_auth pushed")
        stack.wait_idle(args.timeout)

        console.step("reconcile schedule fired once (catches anything a callback missed)")
        stack.fire("ReconcileFunction")
        stack.wait_idle(args.timeout)

        console.line()
        summary(stack, corps, console, events_queue)
        check = check_truth(stack, corps)
        failures = {name: stack.errors(name) for name in stack.stats() if stack.errors(name)}
        console.line()
        if failures:
            check.problems.append(f"function errors: {failures}")
        if check.problems:
            console.line("DIVERGED from WeCom's truth:")
            for problem in check.problems:
                console.line(f"  - {problem}")
            return 1
        console.line("OK: DynamoDB and the credential stores match the emulator's truth for every corp.")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the pipeline to settle")
    parser.add_argument(
        "--store",
        choices=("DynamoDBKMS", "SecretsManager"),
        default="DynamoDBKMS",
        help="the CorpCredentialStore parameter: where per-corp credentials live (default: the template's)",
    )
    parser.add_argument("--time-scale", type=float, default=60.0, help="schedule acceleration")
    parser.add_argument("--log", type=Path, default=ROOT / ".local" / "demo.log")
    args = parser.parse_args(argv)
    with handler_output_to(args.log) as terminal:
        console = Console(terminal)
        console.step(f"wecom-authsync demo (handler logs: {args.log})")
        try:
            return run(args, console)
        except Exception as exc:
            console.line(f"FAILED: {type(exc).__name__}: {exc}")
            raise


if __name__ == "__main__":
    raise SystemExit(main())
