"""Helpers for tests that run ``python -m authsync_dev.serve`` as a separate process."""

from __future__ import annotations

import subprocess
import threading


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """serve's first stdout line (its JSON description); kills the process if none comes in time."""
    lines: list[str] = []
    stdout = process.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        process.kill()
        raise AssertionError("serve printed no first line")
    return lines[0]
