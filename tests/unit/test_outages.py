"""AWS down for a while, an install under way: once the outage is over, the install completes, exchanged once.

An outage of one service for ``seconds`` (up to the AuthCode's 10 minutes), starting either when the
create_auth arrives or right after WeCom answered the exchange. The message is retried the way the
queue retries an AuthCode message (:func:`authsync.aws.queues.retry_delay`, then the DLQ after
:data:`AUTH_CODE_MAX_RECEIVES` receives and its alarm); the operator redrives it once the outage is
over, which the CLI allows while the AuthCode is younger than 10 minutes; reconcile's sweep resumes
journal entries left open. What each service stands for here:

* **DynamoDB**: the idempotency layer (the handler fails before the use case), the journal and the
  snapshots;
* **Secrets Manager**: the credential store and the suite token (the exchange needs it);
* **SQS**: the message cannot be received at all, and the chatdata request cannot be sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from authsync.app.schedules import RESUME_AFTER
from authsync.app.sync import AuthorizationSync, Outcome, SyncResult
from authsync.aws.queues import AUTH_CODE_MAX_RECEIVES, AuthMessage, retry_delay
from authsync.domain.install import auth_code_key
from authsync_ops.redrive import AUTH_CODE_TTL
from tests.unit.fakes import SUITE, Fakes, ManualClock, callback, reconcile, resume

CORP = "wwcorpoutage000001"


class Unavailable(ConnectionError):
    """An AWS service answering nothing (after botocore's own retries)."""


@dataclass
class Outage:
    service: str
    seconds: float
    clock: ManualClock
    start: float | None = None

    def down(self, service: str) -> bool:
        return service == self.service and self.start is not None and self.start <= self.clock() < self.end

    @property
    def end(self) -> float:
        return (self.start or 0.0) + self.seconds


class Behind:
    """A port reached through ``service``: every call fails while the outage lasts."""

    def __init__(self, target: Any, service: str, outage: Outage, after: Callable[[str], None] | None = None) -> None:
        self._target, self._service, self._outage, self._after = target, service, outage, after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._outage.down(self._service):
                raise Unavailable(f"{self._service} unavailable")
            result = attribute(*args, **kwargs)
            if self._after is not None:
                self._after(name)
            return result

        return call


def sync_during(fakes: Fakes, outage: Outage, starts_after_exchange: bool) -> AuthorizationSync:
    def exchanged(method: str) -> None:
        if starts_after_exchange and method == "get_permanent_code" and outage.start is None:
            outage.start = fakes.clock()  # WeCom answered; now the service goes down

    return AuthorizationSync(
        client=Behind(fakes.wecom, "wecom", outage, exchanged),
        tokens=Behind(fakes.tokens, "secrets-manager", outage),
        permanent_codes=Behind(fakes.codes, "secrets-manager", outage),
        snapshots=Behind(fakes.snapshots, "dynamodb", outage),
        chatdata=Behind(fakes.chatdata, "sqs", outage),
        journal=Behind(fakes.journal, "dynamodb", outage),
        clock=fakes.clock,
    )


def deliver(fakes: Fakes, sync: AuthorizationSync, outage: Outage, message: AuthMessage) -> SyncResult | None:
    """One receive of the message (``None``: SQS could not hand it out); raises when the handler fails."""
    if outage.down("sqs"):
        return None
    if outage.down("dynamodb"):
        raise Unavailable("idempotency record: dynamodb unavailable")  # before the use case runs
    return sync.handle(message)


CASES = [
    (service, seconds, after)
    for service in ("dynamodb", "secrets-manager", "sqs")
    for seconds in (60.0, 300.0, 540.0)
    for after in (False, True)
    if not (service == "dynamodb" and after)  # see the next test
]


@pytest.mark.parametrize(("service", "seconds", "starts_after_exchange"), CASES)
def test_an_install_completes_exchanged_once_when_an_outage_of_up_to_ten_minutes_ends(
    service: str, seconds: float, starts_after_exchange: bool
) -> None:
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    outage = Outage(service, seconds, fakes.clock, None if starts_after_exchange else fakes.clock())
    sync = sync_during(fakes, outage, starts_after_exchange)
    message = callback("create_auth", fakes.clock(), AuthCode=code)

    result: SyncResult | None = None
    receives = 0
    while result is None and receives < AUTH_CODE_MAX_RECEIVES:
        try:
            result = deliver(fakes, sync, outage, message)
        except Exception:
            receives += 1
            fakes.clock.advance(retry_delay(receives))
            continue
        if result is None:
            fakes.clock.advance(1.0)  # SQS down: nothing received, nothing counted
    if result is None:  # in the DLQ, alarmed; the operator redrives once the outage is over
        fakes.clock.advance(max(0.0, outage.end - fakes.clock()))
        if fakes.clock() - message.sent_at < AUTH_CODE_TTL:
            result = deliver(fakes, sync, outage, message)
    if fakes.journal.open_keys():  # reconcile's sweep: a resume message per entry open for 10 minutes
        fakes.clock.advance(max(RESUME_AFTER, outage.end - fakes.clock()))
        result = sync.handle(resume(auth_code_key(SUITE, code), fakes.clock()))

    assert result is not None
    assert result.outcome in {Outcome.INSTALLED, Outcome.DUPLICATE}
    assert fakes.log.names("wecom.").count("wecom.get_permanent_code") == 1
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "active"
    assert state.auth_info_version == 1
    assert fakes.journal.open_keys() == []


def test_dynamodb_down_from_the_exchange_on_keeps_the_code_and_reconcile_completes_the_install() -> None:
    """The outage the journal cannot bridge: its own table is down when the answer arrives. The code is kept
    in the credential store (before anything that needs DynamoDB); the retry meets 40078 with no journal
    entry and reports install_lost; reconcile's sweep of the code holders (a corp with a code and no state)
    sends the fetch that makes the corp visible."""
    fakes = Fakes()
    code = fakes.wecom.create_auth(CORP)
    outage = Outage("dynamodb", 60.0, fakes.clock)
    sync = sync_during(fakes, outage, starts_after_exchange=True)
    message = callback("create_auth", fakes.clock(), AuthCode=code)

    with pytest.raises(Unavailable):
        deliver(fakes, sync, outage, message)
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code
    fakes.clock.advance(outage.seconds)
    retried = deliver(fakes, sync, outage, message)

    assert retried is not None
    assert retried.outcome is Outcome.INSTALL_LOST
    assert fakes.codes.codes[(SUITE, CORP)][0] == fakes.wecom.corp(CORP).permanent_code

    fetched = sync.handle(reconcile(CORP, fakes.clock()))
    assert fetched.outcome is Outcome.FETCHED
    state = fakes.snapshots.peek(CORP)
    assert state is not None
    assert state.status == "active"
    assert fakes.log.names("wecom.").count("wecom.get_permanent_code") == 2  # the exchange, and the 40078
