"""``python -m authsync_dev.serve`` stops on SIGTERM and SIGINT while busy, even when signals come in a burst.

Issue #9: the old signal handler called ``Event.set()`` while the main thread sat in
``Event.wait()`` on the same Event; a signal landing while the main thread held the Event's
(non-reentrant) Condition lock ran the handler right there, and the handler blocked forever
on that lock, each further signal re-entering it. Now the handler only records the signal
and the wakeup fd wakes the main loop (:class:`authsync_dev.serve.StopSignals`).

The old window was a few microseconds per 0.5 s wait, so the end-to-end test (a burst
against a stack kept busy by client threads: exit 0, promptly, one stop) rarely caught it;
the hot-loop test keeps the main thread where that window lives nearly all the time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from authsync_dev.serve import StopSignals
from authsync_dev.wecom import TEST_SUITE, event_xml, sign_echostr, sign_event
from tests.authsync_dev.processes import first_line

ROOT = Path(__file__).resolve().parents[2]
SERVE_MODULE = "authsync_dev.serve"

CLIENTS = 6  # threads keeping the stack busy
BURST = 5  # signals sent 10 ms apart
STOP_TIMEOUT = 15.0


def test_stop_signals_record_the_first_count_the_rest_then_restore_or_ignore():
    before = {signum: signal.getsignal(signum) for signum in StopSignals.SIGNALS}
    wakeup_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_fd)
    with StopSignals() as signals:
        assert signals.wait(0) is None
        started = time.monotonic()
        assert signals.wait(0.2) is None  # the timeout bounds the wait
        assert time.monotonic() - started >= 0.15
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            os.kill(os.getpid(), signum)  # handled in this (the main) thread before kill returns
        assert signals.wait(5) == signal.SIGTERM
        assert signals.ignored == 2
        assert signals.wait(5) == signal.SIGTERM  # and it stays so
    assert {signum: signal.getsignal(signum) for signum in StopSignals.SIGNALS} == before
    assert signal.set_wakeup_fd(wakeup_fd) == wakeup_fd  # the wakeup fd was given back

    try:
        with StopSignals(restore=False):
            pass
        assert [signal.getsignal(signum) for signum in StopSignals.SIGNALS] == [signal.SIG_IGN] * 2
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


# The worst case for the old Event-based loop: the main thread spends nearly all its time inside
# the wait machinery (``Event.wait(0)`` in this loop hung about every other run on a burst).
HOT_LOOP = textwrap.dedent(
    """
    from authsync_dev.serve import StopSignals
    with StopSignals(restore=False) as signals:  # as main() does
        print("ready", flush=True)
        while (received := signals.wait(0)) is None:
            pass
    print(received.name, signals.ignored, flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_burst_of_signals_ends_a_hot_wait_loop(signum):
    children = [
        subprocess.Popen([sys.executable, "-c", HOT_LOOP], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    try:
        for child in children:
            assert first_line(child, 30) == "ready\n"
        time.sleep(0.2)
        for _ in range(BURST):
            for child in children:
                child.send_signal(signum)
            time.sleep(0.01)
        for child in children:
            try:
                out, _ = child.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"a hot wait loop hung on {BURST} × {signal.Signals(signum).name} (the issue #9 hang)")
            assert child.returncode == 0
            name, ignored = out.split()
            assert name == signal.Signals(signum).name
            assert 0 <= int(ignored) < BURST
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()


def _keep_busy(info: dict[str, Any], stop: threading.Event, counts: list[int], index: int) -> None:
    """Callback posts, URL verifications and ticket pushes (each one a callback-ingest run) until ``stop``."""
    suite_id = TEST_SUITE.suite_id
    callback = f"{info['callback_base_url']}/{suite_id}"
    admin = info["emulator_admin_url"]
    crypto = TEST_SUITE.crypto()
    with requests.Session() as session:
        while not stop.is_set():
            try:
                kind = counts[index] % 3
                if kind == 0:
                    xml = event_xml({"SuiteId": suite_id, "InfoType": "unknown_kind", "TimeStamp": 1})
                    signed = sign_event(crypto, xml)
                    session.post(callback, params=signed.query, data=signed.body, timeout=5)
                elif kind == 1:
                    signed = sign_echostr(crypto, f"echo-{index}-{counts[index]}")
                    session.get(callback, params=signed.query, timeout=5)
                else:
                    session.post(f"{admin}/push/suite_ticket", json={"suite_id": suite_id}, timeout=5)
            except requests.RequestException:
                if stop.wait(0.05):  # the stack is going away
                    return
            counts[index] += 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_burst_of_signals_stops_a_busy_stack_promptly_with_status_0(tmp_path, signum):
    config = tmp_path / "local.json"
    config.write_text(json.dumps({"suites": [TEST_SUITE.config()], "ticket_interval": 0}), encoding="utf-8")
    stderr_path = tmp_path / "serve.stderr"
    stop_load = threading.Event()
    counts = [0] * CLIENTS
    clients = []
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", SERVE_MODULE, "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            info = json.loads(first_line(process, 60))
            clients = [
                threading.Thread(target=_keep_busy, args=(info, stop_load, counts, i), daemon=True)
                for i in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            deadline = time.monotonic() + 30
            while min(counts) < 10:  # every client is getting answers: the stack is busy
                assert time.monotonic() < deadline, f"the stack never got busy: {counts}"
                assert process.poll() is None, "serve exited under load"
                time.sleep(0.05)
            time.sleep(0.5)
            stopping = time.monotonic()
            for _ in range(BURST):
                process.send_signal(signum)
                time.sleep(0.01)
            try:
                rest, _ = process.communicate(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                pytest.fail(
                    f"serve did not stop within {STOP_TIMEOUT:.0f} s of {BURST} × {signal.Signals(signum).name}"
                    " (the issue #9 hang); stderr tail:\n" + stderr_path.read_text(encoding="utf-8")[-2000:]
                )
            elapsed = time.monotonic() - stopping
        finally:
            stop_load.set()
            for client in clients:
                client.join(10)
            if process.poll() is None:
                process.kill()
                process.communicate()
    logs = stderr_path.read_text(encoding="utf-8")
    assert process.returncode == 0, logs[-4000:]
    assert elapsed < 10, f"stopping took {elapsed:.1f} s"
    assert rest == ""  # stdout carries the one JSON line only
    assert logs.count("stopping on") == 1, logs[-4000:]  # one stop, however many signals came
    assert "stopped in" in logs
