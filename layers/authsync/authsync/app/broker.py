"""The token broker: a corp access token for other services, so they never call WeCom's token APIs themselves.

Invariants:

* Never a token for a corp that is unknown, cancelled, or whose authorization WeCom says is
  gone: the corp's snapshot must be active before *and* after the token is obtained (a
  cancellation processed meanwhile wins).
* A token handed out has at least :data:`MIN_VALIDITY` seconds left, unless WeCom cannot do
  better (⚠️ it hands back the same token while it lives: see :func:`authsync.aws.tokens.lasts`);
  its ``expires_at`` is never overstated either way.
* Renewal is single-flight across containers (the token store's lease), and an invalidation
  reported by many consumers for the same rejected token renews once: a stored token that
  already differs is returned without asking WeCom.
* At most one invalidation per corp and :data:`INVALIDATION_WINDOW` reaches WeCom (a buggy
  consumer reporting every token cannot burn WeCom's token quota); the limit is a DynamoDB
  conditional item, so it holds across containers.

Token values live in :class:`BrokerToken` (``repr`` hides them) and never in an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from authsync.aws.tokens import CorpNotAuthorizedError, StoredToken, TicketMissingError, TokenBusyError
from authsync.domain.corp_state import CorpState
from authsync.wecom.errors import WeComAuthorizationInvalidError, WeComConfigError, WeComTransientError

__all__ = [
    "INVALIDATION_WINDOW",
    "MIN_VALIDITY",
    "BrokerToken",
    "BrokerUnavailableError",
    "CorpNotFoundError",
    "InvalidationLimitedError",
    "Issue",
    "NotFoundReason",
    "TokenBroker",
]

MIN_VALIDITY = 300.0
"""A consumer gets a token with at least this long left (issue #11: "at least 5 more minutes")."""

INVALIDATION_WINDOW = 60.0
"""At most one WeCom-reaching invalidation per corp this often."""

RETRY_AFTER = 5
"""Seconds a consumer should wait after a 503 (WeCom busy or another container renewing)."""


class Issue(StrEnum):
    """How a token was handed out (logged and counted; never the token)."""

    STORED = "stored"
    """The stored token was good enough: WeCom not asked."""
    RENEWED = "renewed"
    """WeCom was asked (this call held the renewal lease)."""


class NotFoundReason(StrEnum):
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    NOT_AUTHORIZED = "not_authorized"
    """No permanent code held (not installed yet, or its create_auth not processed)."""
    AUTHORIZATION_INVALID = "authorization_invalid"
    """WeCom rejected the permanent code (cancelled or reset without our knowing yet)."""


class CorpNotFoundError(LookupError):
    """No token for this corp: unknown, cancelled, or not (or no longer) authorized (HTTP 404)."""

    def __init__(self, reason: NotFoundReason) -> None:
        super().__init__(f"corp not found ({reason})")
        self.reason = reason


class BrokerUnavailableError(RuntimeError):
    """WeCom cannot be reached or is busy, or the token is being renewed elsewhere (HTTP 503)."""

    def __init__(self, cause: str, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(f"token unavailable ({cause}); retry after {retry_after} s")
        self.cause = cause
        self.retry_after = retry_after


class InvalidationLimitedError(RuntimeError):
    """This corp's token was invalidated through WeCom less than a window ago (HTTP 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"invalidation rate-limited; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class BrokerToken:
    """A token for a consumer: the value, when it expires (epoch seconds) and how it was obtained."""

    value: str
    expires_at: float
    issue: Issue

    def __repr__(self) -> str:
        return f"BrokerToken(expires_at={self.expires_at}, issue={self.issue})"

    def to_json(self) -> dict[str, str | int]:
        # Rounded down: a consumer must never believe a token lives longer than it does.
        return {"access_token": self.value, "expires_at": int(self.expires_at)}


class CorpTokens(Protocol):
    """:class:`authsync.aws.tokens.Tokens`."""

    def corp_access_token(
        self,
        suite_id: str,
        corp_id: str,
        *,
        not_value: str | None = None,
        min_validity: float = 0.0,
        before_fetch: Callable[[], None] | None = None,
    ) -> StoredToken: ...


class CorpStates(Protocol):
    """:class:`authsync.aws.snapshots.SnapshotStore` (strongly consistent reads)."""

    def get(self, suite_id: str, corp_id: str) -> CorpState | None: ...


class Limiter(Protocol):
    """:class:`authsync.aws.leases.Leases`: ``acquire`` is true for the first caller per key and ``ttl``."""

    def acquire(self, key: str, ttl: float) -> bool: ...


class TokenBroker:
    """``token`` and ``invalidate`` for one (suite, corp); errors say which HTTP answer to give."""

    def __init__(
        self,
        *,
        tokens: CorpTokens,
        corps: CorpStates,
        limiter: Limiter,
        clock: Callable[[], float] = time.time,
        min_validity: float = MIN_VALIDITY,
        window: float = INVALIDATION_WINDOW,
    ) -> None:
        self._tokens = tokens
        self._corps = corps
        self._limiter = limiter
        self._clock = clock
        self._min_validity = min_validity
        self._window = window

    def token(self, suite_id: str, corp_id: str) -> BrokerToken:
        """A token with at least ``min_validity`` left, renewed (single-flight) first if needed."""
        return self._issue(suite_id, corp_id, None, None)

    def invalidate(self, suite_id: str, corp_id: str, rejected: str) -> BrokerToken:
        """A token other than ``rejected`` (which WeCom answered 40014/42001 to), renewing at most once per window.

        If the stored token already differs (another consumer reported it first, or it was renewed
        meanwhile), it is returned without asking WeCom and without using the window.
        """
        key = f"broker-invalidate:{suite_id}:{corp_id}"

        def limit() -> None:
            if not self._limiter.acquire(key, self._window):
                raise InvalidationLimitedError(int(self._window))

        return self._issue(suite_id, corp_id, rejected, limit)

    def _issue(
        self, suite_id: str, corp_id: str, rejected: str | None, limit: Callable[[], None] | None
    ) -> BrokerToken:
        self._require_active(suite_id, corp_id)
        asked: list[bool] = []

        def before_fetch() -> None:
            if limit is not None:
                limit()
            asked.append(True)

        try:
            stored = self._tokens.corp_access_token(
                suite_id, corp_id, not_value=rejected, min_validity=self._min_validity, before_fetch=before_fetch
            )
        except CorpNotAuthorizedError:
            raise CorpNotFoundError(NotFoundReason.NOT_AUTHORIZED) from None
        except WeComAuthorizationInvalidError:
            raise CorpNotFoundError(NotFoundReason.AUTHORIZATION_INVALID) from None
        except WeComConfigError as exc:
            if exc.endpoint == "gettoken" and exc.errcode == 40001:
                # 代开发: the permanent code *is* the app's secret; WeCom rejecting it means the
                # authorization we hold is void (cancelled or the secret reset), as 40084 does.
                raise CorpNotFoundError(NotFoundReason.AUTHORIZATION_INVALID) from None
            raise
        except WeComTransientError as exc:
            wait = int(WeComTransientError.RATE_LIMIT_BLOCK) if exc.rate_limited else RETRY_AFTER
            raise BrokerUnavailableError("wecom", wait) from None
        except TokenBusyError:
            raise BrokerUnavailableError("renewing") from None
        except TicketMissingError:
            raise BrokerUnavailableError("no_suite_ticket", 60) from None
        # A cancellation processed while the token was obtained wins: checked again, never handed out.
        self._require_active(suite_id, corp_id)
        return BrokerToken(stored.value, stored.expires_at, Issue.RENEWED if asked else Issue.STORED)

    def _require_active(self, suite_id: str, corp_id: str) -> None:
        state = self._corps.get(suite_id, corp_id)
        if state is None:
            raise CorpNotFoundError(NotFoundReason.UNKNOWN)
        if not state.active:
            raise CorpNotFoundError(NotFoundReason.CANCELLED)
