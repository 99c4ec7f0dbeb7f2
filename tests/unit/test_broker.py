"""The token broker's use case (:class:`authsync.app.broker.TokenBroker`) with in-memory fakes: no AWS, no WeCom.

The fakes keep the contracts the broker relies on: the token source calls ``before_fetch``
only when it would ask WeCom and then hands out a new token; the limiter says yes once per
key and window; the corp states are what the test says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from authsync.app.broker import (
    BrokerUnavailableError,
    CorpNotFoundError,
    InvalidationLimitedError,
    Issue,
    NotFoundReason,
    TokenBroker,
)
from authsync.aws.tokens import CorpNotAuthorizedError, StoredToken, TicketMissingError, TokenBusyError
from authsync.domain.corp_state import CorpState
from authsync.wecom.errors import WeComError, error_for
from tests.unit.fakes import ManualClock

SUITE, CORP = "wwsuitefake0000001", "wwcorpfake00000001"


def state(status: str) -> CorpState:
    return CorpState(SUITE, CORP, status, 1.0, 1.0, 1.0, None, None, 1, 0, {})


@dataclass
class FakeTokenSource:
    clock: ManualClock
    stored: StoredToken | None = None
    fail: list[Exception] = field(default_factory=list)
    wecom_calls: int = 0
    during_fetch: Callable[[], None] | None = None
    asked_validity: list[float] = field(default_factory=list)

    def corp_access_token(
        self,
        suite_id: str,
        corp_id: str,
        *,
        not_value: str | None = None,
        min_validity: float = 0.0,
        before_fetch: Callable[[], None] | None = None,
    ) -> StoredToken:
        self.asked_validity.append(min_validity)
        now = self.clock()
        stored = self.stored
        if stored is not None and stored.value != not_value and stored.expires_at - now >= min_validity:
            return stored
        if before_fetch is not None:
            before_fetch()
        self.wecom_calls += 1
        if self.during_fetch is not None:
            self.during_fetch()
        if self.fail:
            raise self.fail.pop(0)
        self.stored = StoredToken(f"token-{self.wecom_calls}", now, now + 7200, now + 6600)
        return self.stored


@dataclass
class FakeCorpStates:
    status: str | None = "active"

    def get(self, suite_id: str, corp_id: str) -> CorpState | None:
        return None if self.status is None else state(self.status)


@dataclass
class FakeLimiter:
    clock: ManualClock
    until: dict[str, float] = field(default_factory=dict)

    def acquire(self, key: str, ttl: float) -> bool:
        if self.until.get(key, 0.0) > self.clock():
            return False
        self.until[key] = self.clock() + ttl
        return True


@dataclass
class Rig:
    clock: ManualClock
    tokens: FakeTokenSource
    corps: FakeCorpStates
    broker: TokenBroker


@pytest.fixture
def rig() -> Rig:
    clock = ManualClock()
    tokens, corps = FakeTokenSource(clock), FakeCorpStates()
    return Rig(clock, tokens, corps, TokenBroker(tokens=tokens, corps=corps, limiter=FakeLimiter(clock), clock=clock))


def test_a_token_is_asked_for_with_five_minutes_of_validity_and_reused(rig: Rig) -> None:
    first = rig.broker.token(SUITE, CORP)
    assert (first.value, first.issue) == ("token-1", Issue.RENEWED)
    again = rig.broker.token(SUITE, CORP)
    assert (again.value, again.issue) == ("token-1", Issue.STORED)
    assert rig.tokens.asked_validity == [300.0, 300.0]
    assert again.to_json() == {"access_token": "token-1", "expires_at": int(rig.clock() + 7200)}
    assert "token-1" not in repr(again)


@pytest.mark.parametrize(
    ("status", "reason"), [(None, NotFoundReason.UNKNOWN), ("cancelled", NotFoundReason.CANCELLED)]
)
def test_unknown_and_cancelled_corps_are_not_found_before_any_token_is_read(
    rig: Rig, status: str | None, reason: NotFoundReason
) -> None:
    rig.corps.status = status
    with pytest.raises(CorpNotFoundError) as raised:
        rig.broker.token(SUITE, CORP)
    assert raised.value.reason is reason
    with pytest.raises(CorpNotFoundError):
        rig.broker.invalidate(SUITE, CORP, "token-0")
    assert rig.tokens.asked_validity == []


def test_a_cancellation_processed_while_the_token_was_renewed_wins(rig: Rig) -> None:
    rig.tokens.during_fetch = lambda: setattr(rig.corps, "status", "cancelled")
    with pytest.raises(CorpNotFoundError) as raised:
        rig.broker.token(SUITE, CORP)
    assert raised.value.reason is NotFoundReason.CANCELLED


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (CorpNotAuthorizedError("no code"), NotFoundReason.NOT_AUTHORIZED),
        (error_for("service/get_corp_token", 40084), NotFoundReason.AUTHORIZATION_INVALID),
        (error_for("gettoken", 40001), NotFoundReason.AUTHORIZATION_INVALID),
    ],
)
def test_a_corp_without_a_live_authorization_is_not_found(rig: Rig, error: Exception, reason: NotFoundReason) -> None:
    rig.tokens.fail.append(error)
    with pytest.raises(CorpNotFoundError) as raised:
        rig.broker.token(SUITE, CORP)
    assert raised.value.reason is reason


def test_a_wrong_suite_secret_is_not_hidden_as_not_found(rig: Rig) -> None:
    rig.tokens.fail.append(error_for("service/get_suite_token", 40001))  # our configuration: a 500, alarmed
    with pytest.raises(WeComError):
        rig.broker.token(SUITE, CORP)


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (error_for("service/get_corp_token", -1), 5),
        (error_for("service/get_corp_token", 45009), 60),
        (TokenBusyError("renewing elsewhere"), 5),
        (TicketMissingError("no ticket"), 60),
    ],
)
def test_wecom_busy_or_unreachable_is_unavailable_with_a_retry_after(
    rig: Rig, error: Exception, retry_after: int
) -> None:
    rig.tokens.fail.append(error)
    with pytest.raises(BrokerUnavailableError) as raised:
        rig.broker.token(SUITE, CORP)
    assert raised.value.retry_after == retry_after


def test_an_invalidation_renews_once_per_window_and_per_rejected_token(rig: Rig) -> None:
    first = rig.broker.token(SUITE, CORP).value
    second = rig.broker.invalidate(SUITE, CORP, first)
    assert (second.value, second.issue) == ("token-2", Issue.RENEWED)
    # The same rejected token again: the stored one differs, no WeCom call, the window is not needed.
    assert rig.broker.invalidate(SUITE, CORP, first).value == "token-2"
    assert rig.tokens.wecom_calls == 2
    with pytest.raises(InvalidationLimitedError) as raised:
        rig.broker.invalidate(SUITE, CORP, "token-2")
    assert raised.value.retry_after == 60
    assert rig.tokens.wecom_calls == 2
    assert "token-2" not in str(raised.value)
    rig.clock.advance(61)
    assert rig.broker.invalidate(SUITE, CORP, "token-2").value == "token-3"
    assert rig.tokens.wecom_calls == 3


def test_the_invalidation_window_is_per_corp(rig: Rig) -> None:
    other = "wwcorpfake00000002"
    rig.broker.invalidate(SUITE, CORP, rig.broker.token(SUITE, CORP).value)
    rig.tokens.stored = None
    assert rig.broker.invalidate(SUITE, other, "token-x").issue is Issue.RENEWED
