"""Retrying an AWS call until a deadline: for the few writes that must not be given up while time remains.

botocore's own retries (a handful of attempts within seconds) suit most calls. The exchange
journal's write is different: the AuthCode behind it cannot be asked for again, so it is
retried for as long as the function has time left. Only transient failures are retried —
throttling, 5xx answers, broken or refused connections — never an answer that will not change
(access denied, validation, a failed condition).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from authsync.aws.credentials import error_code

__all__ = ["DeadlineExceededError", "is_transient", "retry_until"]

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
        "KMSInternalException",
        "KeyUnavailableException",
        "DependencyTimeoutException",
        "LimitExceededException",
    }
)


class DeadlineExceededError(RuntimeError):
    """A transient failure lasted until the deadline; names the call and AWS's error code, never a value."""


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx answer, or no answer at all (connection refused or reset, timeouts)."""
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return status >= 500 or error_code(exc) in TRANSIENT_CODES
    return isinstance(exc, BotoCoreError)


def retry_until[T](
    call: Callable[[], T],
    *,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    what: str,
    transient: Callable[[Exception], bool] = is_transient,
    backoff_cap: float = 2.0,
) -> T:
    """``call()`` until it succeeds, a failure is not ``transient``, or the next try would start after ``deadline``."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            if not transient(exc):
                raise
            reason = error_code(exc) or type(exc).__name__
        delay = min(backoff_cap, 0.05 * 2**attempt)
        if clock() + delay >= deadline:
            raise DeadlineExceededError(f"{what} failed {attempt} time(s) until the deadline ({reason})")
        log.warning("%s attempt %d failed (%s); retrying in %.2fs", what, attempt, reason, delay)
        sleep(delay)
