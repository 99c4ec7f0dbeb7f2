"""``authsync-ops``: redrive DLQs, list and show corps, re-fetch a corp, drain the callback inbox.

Usage::

    authsync-ops --stack wecom-authsync-prod corps list
    authsync-ops --stack wecom-authsync-prod corps show SUITE CORP [--history]
    authsync-ops --stack wecom-authsync-prod refetch SUITE CORP
    authsync-ops --stack wecom-authsync-prod redrive [--queue auth-events|chatdata] [--dry-run] [--force]
    authsync-ops --stack wecom-authsync-prod inbox drain
    authsync-ops --stack wecom-authsync-prod callbacks unmodelled [--info-type X] [--limit N]
    authsync-ops --stack wecom-authsync-prod callbacks replay --info-type X [--dry-run]
    authsync-ops --stack wecom-authsync-prod credentials migrate [--dry-run] [--delete-old]
    make serve > serve.json &   authsync-ops --local serve.json corps list

Exit status: 0 done, 1 the command found a problem (messages refused, a failure), 2 bad usage or an
unreachable stack. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from authsync_ops.redrive import QUEUES, redrive
from authsync_ops.target import Target, TargetError, from_local, from_stack

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authsync-ops", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack's name (its CloudFormation outputs name the resources)")
    where.add_argument("--local", metavar="FILE", help="make serve's first JSON line (a file, or - for stdin)")
    parser.add_argument("--region", help="AWS region of --stack (default: your configuration's)")
    parser.add_argument("--profile", help="AWS profile for --stack")
    commands = parser.add_subparsers(dest="command", required=True)

    corps = commands.add_parser("corps", help="the corps the stack holds")
    corps_commands = corps.add_subparsers(dest="corps_command", required=True)
    listing = corps_commands.add_parser("list", help="a table of corps (status, versions, verification)")
    listing.add_argument("--suite", action="append", help="only these suites (repeatable)")
    show = corps_commands.add_parser("show", help="one corp's state as the query route answers it (JSON)")
    show.add_argument("suite_id")
    show.add_argument("corp_id")
    show.add_argument("--history", action="store_true", help="with every version's diff")

    refetch = commands.add_parser("refetch", help="fetch a corp's authorization again now (a reconcile message)")
    refetch.add_argument("suite_id")
    refetch.add_argument("corp_id")

    again = commands.add_parser("redrive", help="move a DLQ's messages back with fresh deduplication ids")
    again.add_argument("--queue", choices=sorted(QUEUES), default="auth-events")
    again.add_argument("--dry-run", action="store_true", help="count what would move; move nothing")
    again.add_argument("--force", action="store_true", help="also AuthCode messages past the code's 10 minutes")

    credentials = commands.add_parser("credentials", help="per-corp credentials (CorpCredentialStore)")
    credential_commands = credentials.add_subparsers(dest="credentials_command", required=True)
    move = credential_commands.add_parser(
        "migrate", help="copy per-corp secrets into the KMS-sealed vault, verify each, optionally delete them"
    )
    move.add_argument("--dry-run", action="store_true", help="count what would be copied; copy nothing")
    move.add_argument("--delete-old", action="store_true", help="delete each secret once its copy is verified")

    inbox = commands.add_parser("inbox", help="the callback inbox (callbacks kept while SQS failed)")
    inbox_commands = inbox.add_subparsers(dest="inbox_command", required=True)
    inbox_commands.add_parser("drain", help="replay every kept callback now (as inbox-drain does each minute)")

    callbacks = commands.add_parser("callbacks", help="callbacks kept because no model handles them (yet)")
    callback_commands = callbacks.add_subparsers(dest="callbacks_command", required=True)
    unmodelled = callback_commands.add_parser(
        "unmodelled", help="count per InfoType and status, newest first; --info-type lists its newest items"
    )
    unmodelled.add_argument("--info-type", help="show this InfoType's kept documents (secrets redacted)")
    unmodelled.add_argument("--limit", type=int, default=20, help="items shown with --info-type (default 20)")
    replayed = callback_commands.add_parser(
        "replay", help="enqueue the kept callbacks of an InfoType that this version models (then forget them)"
    )
    replayed.add_argument("--info-type", required=True)
    replayed.add_argument("--dry-run", action="store_true", help="count what would be replayed; send nothing")
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.stack:
            target = from_stack(args.stack, region=args.region, profile=args.profile)
        else:
            target = from_local(sys.stdin if args.local == "-" else Path(args.local))
        return _run(args, target, stdout, stderr)
    except TargetError as exc:
        stderr.write(f"authsync-ops: {exc}\n")
        return 2


def _run(args: argparse.Namespace, target: Target, stdout: TextIO, stderr: TextIO) -> int:
    if args.command == "corps" and args.corps_command == "list":
        return _corps_list(target, args.suite, stdout)
    if args.command == "corps":
        return _corps_show(target, args, stdout, stderr)
    if args.command == "refetch":
        return _refetch(target, args.suite_id, args.corp_id, stdout)
    if args.command == "redrive":
        return _redrive(target, args, stdout, stderr)
    if args.command == "credentials":
        return _migrate(target, args, stdout, stderr)
    if args.command == "callbacks":
        return _unmodelled(target, args, stdout)
    return _inbox_drain(target, stdout)


def _unmodelled(target: Target, args: argparse.Namespace, stdout: TextIO) -> int:
    from authsync.aws.unmodelled import DynamoUnmodelledStore
    from authsync_ops.unmodelled import summary

    store = DynamoUnmodelledStore(target.client("dynamodb"), target.output("UnmodelledCallbacksTableName"))
    if args.callbacks_command == "replay":
        from authsync.aws.queues import SqsEventPublisher
        from authsync_ops.unmodelled import replay

        publisher = SqsEventPublisher(target.client("sqs"), target.output("AuthEventsQueueUrl"))
        report = replay(store, publisher, info_type=args.info_type, dry_run=args.dry_run)
        stdout.write(json.dumps(asdict(report)) + "\n")
        return 0
    stdout.write(json.dumps(summary(store, info_type=args.info_type, limit=args.limit), ensure_ascii=False) + "\n")
    return 0


def _migrate(target: Target, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from authsync.aws.kms import KmsSealer
    from authsync.aws.vault import CorpVault
    from authsync_ops.migrate import migrate

    vault = CorpVault(
        target.client("dynamodb"),
        target.output("CorpVaultTableName"),
        KmsSealer(target.client("kms"), target.output("CredentialsKeyArn")),
    )
    report = migrate(
        target.client("secretsmanager"),
        vault,
        target.output("CorpSecretPrefix"),
        dry_run=args.dry_run,
        delete_old=args.delete_old,
        progress=lambda done, total: _progress(stderr, f"\r{done}/{total} secret(s)"),
    )
    if report.found:
        stderr.write("\n")
    if args.dry_run:
        stdout.write(f"credentials migrate: {report.found} per-corp secret(s) would be copied (dry run)\n")
        return 0
    stdout.write(
        f"credentials migrate: {report.found} per-corp secret(s): copied {report.copied}, "
        f"already in the vault {report.already}, verified {report.verified}, deleted {report.deleted}, "
        f"failed {len(report.failed)}\n"
    )
    for name in report.failed:
        stdout.write(f"  not migrated (secret kept): {name}\n")
    return 1 if report.failed else 0


def _store(target: Target) -> Any:
    from authsync.aws.snapshots import SnapshotStore

    return SnapshotStore(target.client("dynamodb"), target.output("CorpsTableName"))


def _corps_list(target: Target, suites: list[str] | None, stdout: TextIO) -> int:
    from authsync.aws.snapshot_items import decode_item, read_state

    dynamodb, table = target.client("dynamodb"), target.output("CorpsTableName")
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :s",
        "ExpressionAttributeValues": {":s": {"S": "STATE"}},
    }
    rows = []
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            decoded = decode_item(item)
            state = read_state(decoded, str(decoded.get("suite_id", "")), str(decoded.get("corp_id", "")))
            if suites and state.suite_id not in suites:
                continue
            verification = state.verification or {}
            cap = verification.get("customer_cap")
            edition, license_summary = state.edition or {}, state.license_summary
            rows.append(
                [
                    state.suite_id,
                    state.corp_id,
                    state.status,
                    str(state.auth_info_version),
                    str(state.chatdata_version),
                    str(verification.get("verified", "-")),
                    "unlimited" if verification and cap is None else str(cap or "-"),
                    str(edition.get("edition_name") or edition.get("edition_id") or "-"),
                    (
                        f"{license_summary['active']['total']}/{license_summary['purchased']['total']}"
                        if license_summary
                        else "-"
                    ),
                    time.strftime("%Y-%m-%d %H:%M", time.gmtime(state.updated_at)) if state.updated_at else "-",
                ]
            )
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    header = [
        "suite",
        "corp",
        "status",
        "auth_info",
        "chatdata",
        "verified",
        "客服 cap",
        "edition",
        "license",
        "updated (UTC)",
    ]
    _table(sorted(rows), header, stdout)
    stdout.write(f"{len(rows)} corp(s)\n")
    return 0


def _table(rows: list[list[str]], header: list[str], stdout: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    stdout.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    stdout.write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _corps_show(target: Target, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from authsync.app.corps import corp_view

    suite_id, corp_id, history = args.suite_id, args.corp_id, args.history
    store = _store(target)
    state = store.get(suite_id, corp_id)
    if state is None:
        stderr.write(f"authsync-ops: no corp {corp_id} in suite {suite_id}\n")
        return 1
    stdout.write(json.dumps(corp_view(state, store, history=history), ensure_ascii=False, indent=2) + "\n")
    return 0


def _refetch(target: Target, suite_id: str, corp_id: str, stdout: TextIO) -> int:
    from authsync.aws.queues import SqsEventPublisher, reconcile_request

    queue = target.output("AuthEventsQueueUrl")
    SqsEventPublisher(target.client("sqs"), queue).publish(reconcile_request(suite_id, corp_id, time.time_ns()))
    stdout.write(f"refetch of {corp_id} ({suite_id}) queued\n")
    return 0


def _redrive(target: Target, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    queue, dry_run, force = args.queue, args.dry_run, args.force
    dlq_output, source_output = QUEUES[queue]
    report = redrive(
        target.client("sqs"),
        target.output(dlq_output),
        target.output(source_output),
        force=force,
        dry_run=dry_run,
        progress=lambda n: _progress(stderr, f"\rredriven {n}"),
    )
    if report.redriven and not dry_run:
        stderr.write("\n")
    verb = "would redrive" if dry_run else "redriven"
    stdout.write(f"{queue}: {verb} {report.redriven}, refused {len(report.refused)}")
    if report.refused:
        stdout.write(" (AuthCode messages past the code's 10 minutes: --force to send them anyway)")
    stdout.write("\n")
    return 1 if report.refused else 0


def _progress(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def _inbox_drain(target: Target, stdout: TextIO) -> int:
    """Replay the kept callbacks here, with the operator's credentials (the objects inbox-drain builds)."""
    from authsync.app.ingest import drain_inbox
    from authsync.settings import IngestSettings, load
    from authsync.wiring import build_inbox_drain

    settings = load(
        IngestSettings,
        {
            "SUITE_SECRET_PREFIX": target.output("SuiteSecretPrefix"),
            "EVENTS_QUEUE_URL": target.output("AuthEventsQueueUrl"),
            "INBOX_TABLE": target.output("InboxTableName"),
            **(
                {"UNMODELLED_TABLE": target.outputs["UnmodelledCallbacksTableName"]}
                if "UnmodelledCallbacksTableName" in target.outputs
                else {}
            ),
        },
    )
    drain = build_inbox_drain(settings, client=target.client)
    report = drain_inbox(drain.ingestor, drain.inbox)
    stdout.write(json.dumps(asdict(report)) + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
