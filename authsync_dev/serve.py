"""``python -m authsync_dev.serve [--config FILE] [--template FILE] [--time-scale N]``: the local stack, foreground.

``make serve`` runs it. The first (and only) line on stdout is one JSON object
(:meth:`authsync_dev.stack.LocalStack.describe`): ``callback_base_url`` (WeCom posts to
``<it>/<suite_id>``), ``query_url``, ``emulator_admin_url``, ``moto_endpoint``, … and
``suites`` with each configured suite's ``suite_id``, ``token`` and ``encoding_aes_key``
— the credentials a client needs to sign callbacks (the fake test suite's unless
``--config`` names yours). Everything else goes to stderr: this tool's log lines and the
functions' own Powertools logs and metrics. SIGINT or SIGTERM stops the stack cleanly
(exit status 0); 1 if the stack cannot start, 2 for a bad command line or config.

Stopping is signal-safe (issue #9): the handler only records the signal (a plain
attribute; :func:`signal.set_wakeup_fd` also writes its number to a non-blocking
socketpair); the main thread, blocked in a selector on the other end, wakes, logs
``stopping on SIGTERM`` and stops the stack. A signal that comes before the stack is up
stops it as soon as it is. Further SIGINTs or SIGTERMs while stopping are ignored (the
stack's own joins are bounded) and counted in a log line once it has stopped; send
SIGKILL to end it at once. :func:`main` returns with both signals ignored (``SIG_IGN``):
the process is about to exit, and a straggler from a burst must not turn a clean exit 0
into death by signal.

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
import selectors
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
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


class StopSignals:
    """SIGINT and SIGTERM as a flag the main loop polls: the handler takes no lock and calls nothing.

    Issue #9: a handler calling ``threading.Event.set()`` runs *in the main thread*, between two
    bytecodes of whatever it is doing; when that was ``Event.wait()`` on the same Event holding
    its (non-reentrant) Condition lock, the handler blocked on that lock forever, and every
    further signal re-entered it. Here the handler only assigns an attribute or bumps a counter
    (both idempotent), and :func:`signal.set_wakeup_fd` writes the signal number to a
    non-blocking socketpair whose read end :meth:`wait` selects on, so the main thread wakes at
    once wherever the signal was delivered. Install in the main thread (a ``with`` block);
    leaving it gives back the previous wakeup fd and restores the previous handlers, or with
    ``restore=False`` ignores both signals from then on (what a process about to exit wants).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, *, restore: bool = True) -> None:
        self.restore = restore
        self.received: int | None = None  # the first stop signal's number
        self.ignored = 0  # stop signals after the first
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._reader, selectors.EVENT_READ)
        self._previous_handlers: dict[signal.Signals, Any] = {}
        self._previous_wakeup_fd: int | None = None

    def __enter__(self) -> StopSignals:
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self.SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler if self.restore else signal.SIG_IGN)
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._selector.close()
        self._reader.close()
        self._writer.close()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Nothing here may take a lock, block or call into the stack: plain assignments only.
        if self.received is None:
            self.received = signum
        else:
            self.ignored += 1

    def wait(self, timeout: float) -> signal.Signals | None:
        """Block until a stop signal or for ``timeout`` seconds; the stop signal, if one has come."""
        if self.received is None:
            self._selector.select(timeout)
            self._drain()
        return None if self.received is None else signal.Signals(self.received)

    def _drain(self) -> None:
        """Empty the wakeup socket; a stop signal's byte counts even if its Python handler has not run yet."""
        while True:
            try:
                data = self._reader.recv(512)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                if signum in self.SIGNALS and self.received is None:
                    self.received = signum


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
        with StopSignals(restore=False) as signals:
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
                while (received := signals.wait(1.0)) is None:
                    pass
                log.info("stopping on %s", received.name)
            finally:
                stack.stop()
            if signals.ignored:
                log.info("ignored %d further stop signal(s) while stopping", signals.ignored)
        return 0
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    raise SystemExit(main())
