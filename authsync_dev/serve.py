"""``python -m authsync_dev.serve [--config FILE] [--template FILE] [--time-scale N]``: the local stack, foreground.

``make serve`` runs it. The first (and only) line on stdout is one JSON object
(:meth:`authsync_dev.stack.LocalStack.describe`): ``callback_base_url`` (WeCom posts to
``<it>/<suite_id>``), ``query_url``, ``emulator_admin_url``, ``moto_endpoint``, … and
``suites`` with each configured suite's ``suite_id``, ``token`` and ``encoding_aes_key``
— the credentials a client needs to sign callbacks (the fake test suite's unless
``--config`` names yours). Everything else goes to stderr: this tool's log lines and the
functions' own Powertools logs and metrics. SIGINT or SIGTERM stops the stack cleanly
(exit status 0); 1 if the stack cannot start, 2 for a bad command line or config.

``--config FILE`` is JSON; its shape is documented in :mod:`authsync_dev.stack_config`.

``--template FILE`` runs another template than the repository's ``template.yaml``: with
``.aws-sam/build/template.yaml`` the functions are the built ones (``sam build``'s CodeUri
folders); the layer package is whatever ``import authsync`` finds, so put the built layer's
host view (:mod:`authsync_dev.built_layer`) on ``PYTHONPATH`` to run the built layer too. The
JSON line's ``code`` says which code runs: ``template``, ``authsync`` (the package directory
imported), ``functions`` (each function's handler file).
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

import authsync
from authsync_dev.stack import LocalStack, routes_table
from authsync_dev.stack_config import StackConfig, load_config
from authsync_dev.template import TEMPLATE

__all__ = ["main"]

log = logging.getLogger("authsync_dev.serve")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m authsync_dev.serve", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--config", type=Path, metavar="FILE", help="JSON config: suites, ports, … (see README)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        metavar="N",
        help="run schedules N times faster (360: rate(6 hours) every 60 s); default 1 or the config's",
    )
    parser.add_argument(
        "--visibility-scale",
        type=float,
        default=None,
        metavar="F",
        help="failed SQS messages reappear after VisibilityTimeout × F; default 1 or the config's",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE,
        metavar="FILE",
        help="the SAM template to run (default: the repository's template.yaml; .aws-sam/build/template.yaml: "
        "the built functions)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def code_info(stack: LocalStack) -> dict[str, Any]:
    """Which code this process runs: the template, the ``authsync`` package imported, each handler file."""
    return {
        "template": str(stack.template_path.resolve()),
        "authsync": str(Path(authsync.__file__).parent),
        "functions": {logical_id: str(stack.function(logical_id).spec.module_file) for logical_id in stack.stats()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stdout = sys.stdout
    # Handlers write Powertools logs and metrics to stdout: send them to stderr, keep stdout for one line.
    sys.stdout = sys.stderr
    try:
        logging.basicConfig(
            stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        for chatty in ("botocore", "boto3", "urllib3"):  # "Found credentials in environment variables" …
            logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
        try:
            config = load_config(args.config) if args.config else StackConfig()
            if not args.template.is_file():
                raise ValueError(f"--template {args.template}: no such file")
            stack = LocalStack(
                config, time_scale=args.time_scale, visibility_scale=args.visibility_scale, template=args.template
            )
        except ValueError as exc:
            log.error("%s", exc)
            return 2
        done = threading.Event()

        def _stop(signum: int, frame: object) -> None:
            done.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            stack.start()
        except Exception as exc:
            log.error("the local stack did not start: %s: %s", type(exc).__name__, exc)
            return 1
        try:
            stdout.write(json.dumps({**stack.describe(), "code": code_info(stack)}, ensure_ascii=False) + "\n")
            stdout.flush()
            log.info("callbacks: %s/<suite_id>", stack.callback_base_url)
            log.info("corp query: %s/<suite_id>/<corp_id>", stack.query_base_url)
            if stack.uses_emulator:
                log.info("WeCom emulator: %s (admin API %s)", stack.emulator.base_url, stack.emulator.admin_url)
            else:
                log.info("real WeCom: callbacks need a public URL forwarding to %s", stack.callback_base_url)
            log.info("moto (AWS): %s", stack.moto_endpoint)
            for line in routes_table(stack.routes):
                log.info("route %s", line)
            log.info("serving; Ctrl-C or SIGTERM stops")
            while not done.wait(0.5):
                pass
            log.info("stopping")
        finally:
            stack.stop()
        return 0
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    raise SystemExit(main())
