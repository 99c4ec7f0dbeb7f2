"""The emulator's notion of "now", injectable so tests advance time instead of sleeping.

Token expiry (7200 s), auth-code life (600 s) and ticket validity (1800 s) are all
read from one :class:`Clock`; a test that calls :meth:`Clock.advance` sees WeCom's
expiry behaviour immediately. Background threads (the ticket pusher, slow-response
faults) still wait in real time: only the *emulated* timeline jumps.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Clock"]


class Clock:
    """Wall time plus an offset (default), or a frozen instant that only moves on :meth:`advance`.

    Thread-safe: the HTTP server's worker threads read it while a test advances it.
    """

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        real = time.time()
        self._instant = real if start is None else float(start)
        self._offset = 0.0 if start is None else float(start) - real

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> float:
        """Seconds since the epoch on the emulated timeline."""
        with self._lock:
            return self._instant if self._frozen else time.time() + self._offset

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> float:
        """Move the emulated timeline forward (never backward) and return the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._instant += seconds
            self._offset += seconds
            return self._instant if self._frozen else time.time() + self._offset
