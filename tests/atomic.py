"""moto made as atomic per request as AWS is, for tests that race writers against each other.

moto's backends are not thread-safe: two threads can both pass a conditional put's check
before either writes, which real DynamoDB or Secrets Manager never allows (each request is
atomic; DynamoDB is linearizable per request, a transaction included). Racing tests
therefore serialize requests, and only requests: between two calls, threads interleave
freely (a random pause *outside* the lock lets another writer in), which is where our own
compare-and-swap logic must hold.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import botocore.client
from botocore.exceptions import ClientError

LOCK = threading.RLock()
"""One lock for every client: moto's backends share state across clients."""


class Serialized:
    """A client whose calls are atomic and interleave between calls.

    ``after(name)`` runs under the lock after each call (to observe state no other writer
    can change meanwhile); ``errors`` collects the error code of each failed call.
    """

    def __init__(
        self,
        inner: Any,
        rng: random.Random,
        *,
        pause: float = 0.001,
        after: Callable[[str], None] | None = None,
        errors: list[str] | None = None,
    ) -> None:
        self._inner = inner
        self._rng = rng
        self._pause = pause
        self._after = after
        self._errors = errors

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            try:
                with LOCK:
                    try:
                        return attribute(**kwargs)
                    except ClientError as exc:
                        if self._errors is not None:
                            self._errors.append(exc.response["Error"]["Code"])
                        raise
                    finally:
                        if self._after is not None:
                            self._after(name)
            finally:
                time.sleep(self._rng.random() * self._pause)  # let another writer in between our calls

        return call


@contextmanager
def atomic_requests() -> Iterator[None]:
    """Within the block, every botocore request is atomic (clients built anywhere, e.g. by wiring)."""
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def call(self: botocore.client.BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        with LOCK:
            return original(self, operation_name, api_params)

    with patch.object(botocore.client.BaseClient, "_make_api_call", call):
        yield
