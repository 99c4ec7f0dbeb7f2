"""``python -m authsync_dev.emulator``: run the WeCom emulator standalone.

Prints one JSON line with its URLs (never a secret: fetch suite credentials from
``GET /admin/suite?suite_id=…``), then serves until SIGINT or SIGTERM and stops
cleanly (exit status 0). Without ``--suite-config`` it registers the documented
fake test suite of :mod:`authsync_dev.wecom`, so a client configured for the tests works
unchanged.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from authsync_dev.emulator.emulator import Emulator, sample_chat_editions
from authsync_dev.emulator.pusher import DEFAULT_RETRY_DELAYS
from authsync_dev.wecom import TEST_SUITE

__all__ = ["main"]

DEMO_CORPS = (
    ("wwemulatordemo0001", "演示企业（已验证）", True),
    ("wwemulatordemo0002", "演示企业（未验证）", False),
)
SUITE_KEYS = frozenset(
    {
        "suite_id",
        "suite_secret",
        "token",
        "encoding_aes_key",
        "kind",
        "provider_corpid",
        "provider_secret",
        "callback_url",
    }
)


def _delays(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated seconds, e.g. 1,2,4") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m authsync_dev.emulator", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: ephemeral, the default)")
    parser.add_argument("--callback-url", help="指令回调 base URL; events go to <URL>/<suite_id>")
    parser.add_argument(
        "--ticket-interval",
        type=float,
        default=None,
        help="push a suite_ticket every N seconds (default 600 with --callback-url, else off; 0: off)",
    )
    parser.add_argument("--token-ttl", type=int, default=7200, help="token lifetime in seconds (default 7200)")
    parser.add_argument(
        "--suite-config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="JSON suite config (suite_id, suite_secret, token, encoding_aes_key[, kind, provider_corpid, "
        "provider_secret]); repeatable, one provider for all",
    )
    parser.add_argument("--demo", action="store_true", help="add two demo corps installed (silently) in every suite")
    parser.add_argument("--retries", type=int, default=3, help="re-sends of a failed callback (default 3)")
    parser.add_argument(
        "--retry-delays", type=_delays, default=DEFAULT_RETRY_DELAYS, help="seconds between re-sends (default 1,2,4)"
    )
    parser.add_argument("--delivery-timeout", type=float, default=5.0, help="callback answer deadline (default 5 s)")
    parser.add_argument(
        "--retry-on",
        choices=("network", "any"),
        default="network",
        help="re-send after a timeout or connection failure only (WeCom's documented behaviour, default), "
        "or after any failed answer (the older text)",
    )
    parser.add_argument(
        "--auth-deadline",
        type=float,
        default=1.0,
        help="answer deadline of create/change/cancel_auth and reset_permanent_code (default 1 s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for injected-fault probabilities")
    parser.add_argument("--has-more-as-int", action="store_true", help="get_auth_user_list has_more as 1/0")
    return parser


def _load_suite(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: expected a JSON object")
    return {k: v for k, v in document.items() if k in SUITE_KEYS}


def build(args: argparse.Namespace) -> Emulator:
    """An emulator (not yet started) configured from parsed arguments."""
    interval = args.ticket_interval
    if interval is None:
        interval = 600.0 if args.callback_url else 0.0
    configs = [_load_suite(path) for path in args.suite_config] or [TEST_SUITE.config()]
    emulator = Emulator(
        port=args.port,
        callback_url=args.callback_url,
        token_ttl=args.token_ttl,
        ticket_interval=interval or None,
        retries=args.retries,
        retry_delays=args.retry_delays,
        delivery_timeout=args.delivery_timeout,
        retry_on=args.retry_on,
        auth_deadline=args.auth_deadline,
        seed=args.seed,
        has_more_as_int=args.has_more_as_int,
        provider_corpid=next((c["provider_corpid"] for c in configs if c.get("provider_corpid")), None),
        provider_secret=next((c["provider_secret"] for c in configs if c.get("provider_secret")), None),
    )
    for config in configs:
        emulator.add_suite(**config)
    if args.demo:
        for corpid, name, verified in DEMO_CORPS:
            emulator.add_corp(corpid, name, verified=verified, ex_names=["演示"] if verified else [])
            for suite_id in list(emulator.state.suites):
                emulator.create_auth(suite_id, corpid, push=False, chat_editions=sample_chat_editions())
    return emulator


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator = build(args)
    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    emulator.start()
    try:
        line = {
            "base_url": emulator.base_url,
            "api_url": emulator.api_url,
            "admin_url": emulator.admin_url,
            "callback_url": emulator.callback_url,
            "ticket_interval": emulator.ticket_interval,
            "suites": sorted(emulator.state.suites),
            "corps": sorted(emulator.state.corps),
        }
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        while not done.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
