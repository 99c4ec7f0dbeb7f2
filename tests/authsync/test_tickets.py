"""tickets: the newest suite_ticket in Secrets Manager, without regressions (moto)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.secretsmanager.models import SecretsManagerBackend

from authsync.aws.credentials import SecretNames
from authsync.aws.tickets import StoredTicket, TicketConflictError, TicketOutcome, TicketStore
from tests.atomic import Serialized

NAMES = SecretNames("wecom-authsync/test/suites/")
SUITE = "wwa1b2c3d4e5f60001"
NOW = 1_700_000_123.75


@pytest.fixture(autouse=True)
def awscurrent_is_what_get_secret_value_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Close a moto gap: ``UpdateSecretVersionStage`` moves the label but moto keeps serving the old version.

    In AWS, ``GetSecretValue`` without a version returns the version labelled
    ``AWSCURRENT``; moto 5 returns its own ``default_version_id``, which only
    ``PutSecretValue``/rotation update. Keep the two in step, as AWS does.
    """
    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self: SecretsManagerBackend, **kwargs: Any) -> tuple[str, str]:
        result = original(self, **kwargs)
        if kwargs["version_stage"] == "AWSCURRENT" and kwargs["move_to_version_id"]:
            secret: Any = self.secrets[kwargs["secret_id"]]
            secret.set_default_version_id(kwargs["move_to_version_id"])
        return result

    monkeypatch.setattr(SecretsManagerBackend, "update_secret_version_stage", update_secret_version_stage)


_CLIENT: list[Any] = []


@pytest.fixture
def client(aws: None) -> Any:
    """One client for the module: building one costs ~0.1 s, and moto serves every client it sees."""
    if not _CLIENT:
        _CLIENT.append(boto3.client("secretsmanager", region_name="us-east-1"))
    return _CLIENT[0]


def store_for(client: Any, clock: Callable[[], float] = lambda: NOW) -> TicketStore:
    return TicketStore(client, NAMES.ticket, clock=clock)


class Intercepting:
    """A client that runs ``before[method](call_number)`` before delegating a call."""

    def __init__(self, inner: Any, **before: Callable[[int], None]) -> None:
        self._inner = inner
        self._before = before
        self.counts: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        hook = self._before.get(name)
        if hook is None:
            return method

        def call(**kwargs: Any) -> Any:
            self.counts[name] = self.counts.get(name, 0) + 1
            hook(self.counts[name])
            return method(**kwargs)

        return call


def current_versions(client: Any) -> list[str]:
    versions = client.list_secret_version_ids(SecretId=NAMES.ticket(SUITE))["Versions"]
    return [v["VersionId"] for v in versions if "AWSCURRENT" in v["VersionStages"]]


# -- the plain cases -------------------------------------------------------------------------------


def test_nothing_stored_yet(client: Any) -> None:
    assert store_for(client).load(SUITE) is None


def test_first_ticket_creates_the_secret(client: Any) -> None:
    store = store_for(client)
    assert store.store(SUITE, "ticket-1", 1700000000) is TicketOutcome.STORED
    assert store.load(SUITE) == StoredTicket("ticket-1", 1700000000, int(NOW))
    described = client.describe_secret(SecretId=NAMES.ticket(SUITE))
    assert described["Name"] == NAMES.ticket(SUITE)
    assert "suite_ticket" in described["Description"]


def test_newer_ticket_replaces(client: Any) -> None:
    store = store_for(client)
    store.store(SUITE, "ticket-1", 1700000000)
    assert store.store(SUITE, "ticket-2", 1700000600) is TicketOutcome.STORED
    loaded = store.load(SUITE)
    assert loaded is not None
    assert (loaded.ticket, loaded.timestamp) == ("ticket-2", 1700000600)
    assert len(current_versions(client)) == 1
    # A third write goes through the same compare-and-swap from the new current version.
    assert store.store(SUITE, "ticket-3", 1700001200) is TicketOutcome.STORED
    loaded = store.load(SUITE)
    assert loaded is not None
    assert loaded.ticket == "ticket-3"


def test_older_ticket_is_stale_and_not_stored(client: Any) -> None:
    store = store_for(client)
    store.store(SUITE, "ticket-2", 1700000600)
    assert store.store(SUITE, "ticket-1", 1700000000) is TicketOutcome.STALE
    loaded = store.load(SUITE)
    assert loaded is not None
    assert (loaded.ticket, loaded.timestamp) == ("ticket-2", 1700000600)
    assert len(client.list_secret_version_ids(SecretId=NAMES.ticket(SUITE))["Versions"]) == 1  # nothing staged


def test_same_push_again_is_a_duplicate(client: Any) -> None:
    store = store_for(client)
    store.store(SUITE, "ticket-1", 1700000000)
    assert store.store(SUITE, "ticket-1", 1700000000) is TicketOutcome.DUPLICATE
    # Two different tickets in one second: the first one stays.
    assert store.store(SUITE, "ticket-1b", 1700000000) is TicketOutcome.STALE
    loaded = store.load(SUITE)
    assert loaded is not None
    assert loaded.ticket == "ticket-1"


def test_suites_are_independent(client: Any) -> None:
    store = store_for(client)
    store.store(SUITE, "a-newer", 1700000600)
    assert store.store("wwother", "b-older", 1700000000) is TicketOutcome.STORED
    a, b = store.load(SUITE), store.load("wwother")
    assert a is not None
    assert b is not None
    assert (a.ticket, b.ticket) == ("a-newer", "b-older")


def test_received_at_comes_from_the_clock(client: Any) -> None:
    times = iter([100.9, 200.2])
    store = store_for(client, clock=lambda: next(times))
    store.store(SUITE, "t1", 1)
    store.store(SUITE, "t2", 2)
    loaded = store.load(SUITE)
    assert loaded is not None
    assert loaded.received_at == 200


# -- the compare-and-swap --------------------------------------------------------------------------


def test_a_newer_ticket_written_during_our_swap_survives(client: Any) -> None:
    other = store_for(client)
    other.store(SUITE, "ticket-old", 1700000000)

    def newer_ticket_lands_first(n: int) -> None:
        if n == 1:  # between our read and our label swap
            assert other.store(SUITE, "ticket-newest", 1700001200) is TicketOutcome.STORED

    racing = Intercepting(client, put_secret_value=newer_ticket_lands_first)
    assert store_for(racing).store(SUITE, "ticket-ours", 1700000600) is TicketOutcome.STALE
    loaded = other.load(SUITE)
    assert loaded is not None
    assert (loaded.ticket, loaded.timestamp) == ("ticket-newest", 1700001200)
    assert racing.counts["put_secret_value"] == 1
    assert len(current_versions(client)) == 1


def test_an_older_ticket_written_during_our_swap_is_replaced_by_ours(client: Any) -> None:
    other = store_for(client)
    other.store(SUITE, "ticket-old", 1700000000)

    def older_ticket_lands_first(n: int) -> None:
        if n == 1:
            assert other.store(SUITE, "ticket-middle", 1700000300) is TicketOutcome.STORED

    racing = Intercepting(client, put_secret_value=older_ticket_lands_first)
    assert store_for(racing).store(SUITE, "ticket-ours", 1700000600) is TicketOutcome.STORED
    loaded = other.load(SUITE)
    assert loaded is not None
    assert loaded.ticket == "ticket-ours"
    assert racing.counts["put_secret_value"] == 2  # lost the first swap, re-read, won the second
    assert len(current_versions(client)) == 1


def test_losing_every_swap_raises_conflict_and_never_regresses(client: Any) -> None:
    other = store_for(client)
    other.store(SUITE, "ticket-0", 1700000000)

    def always_someone_first(n: int) -> None:
        other.store(SUITE, f"ticket-{n}", 1700000000 + n)

    racing = Intercepting(client, put_secret_value=always_someone_first)
    with pytest.raises(TicketConflictError):
        store_for(racing).store(SUITE, "ticket-ours", 1700009999)
    loaded = other.load(SUITE)
    assert loaded is not None
    assert loaded.ticket != "ticket-ours"
    assert loaded.timestamp == 1700000000 + racing.counts["put_secret_value"]


@pytest.mark.parametrize(
    ("theirs", "expected"), [(1700000600, TicketOutcome.STALE), (1700000000, TicketOutcome.STORED)]
)
def test_losing_the_create_race_compares_against_the_winner(client: Any, theirs: int, expected: TicketOutcome) -> None:
    other = store_for(client)

    def they_create_first(n: int) -> None:
        if n == 1:
            assert other.store(SUITE, "ticket-theirs", theirs) is TicketOutcome.STORED

    racing = Intercepting(client, create_secret=they_create_first)
    assert store_for(racing).store(SUITE, "ticket-ours", 1700000300) is expected
    loaded = other.load(SUITE)
    assert loaded is not None
    assert loaded.timestamp == max(theirs, 1700000300)


def test_concurrent_writers_never_regress_and_end_with_the_newest_ticket(client: Any) -> None:
    rng = random.Random(20240607)
    timestamps = rng.sample(range(1700000000, 1700010000), 40)
    threads_count = 8
    outcomes: list[TicketOutcome] = []
    history: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def record_current(call: str) -> None:
        """After every write that can change the current ticket, its timestamp (under the lock)."""
        if call in {"create_secret", "update_secret_version_stage"}:
            current = client.get_secret_value(SecretId=NAMES.ticket(SUITE))["SecretString"]
            history.append(StoredTicket.from_document(json.loads(current)).timestamp)

    def writer(index: int) -> None:
        store = store_for(Serialized(client, random.Random(index), after=record_current))
        start.wait()
        try:
            for ts in timestamps[index::threads_count]:
                while True:
                    try:
                        outcomes.append(store.store(SUITE, f"ticket-{ts}", ts))
                        break
                    except TicketConflictError:
                        continue  # what WeCom's retry would do
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(outcomes) == len(timestamps)
    assert history == sorted(history), "the stored ticket went back in time"
    loaded = store_for(client).load(SUITE)
    assert loaded is not None
    assert (loaded.ticket, loaded.timestamp) == (f"ticket-{max(timestamps)}", max(timestamps))
    assert outcomes.count(TicketOutcome.STORED) == len(set(history))
    assert len(current_versions(client)) == 1


# -- errors and secrecy ----------------------------------------------------------------------------


def test_other_read_errors_propagate(client: Any) -> None:
    def denied(_: int) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    failing = Intercepting(client, get_secret_value=denied)
    with pytest.raises(ClientError, match="AccessDenied"):
        store_for(failing).store(SUITE, "t", 1)
    with pytest.raises(ClientError, match="AccessDenied"):
        store_for(failing).load(SUITE)


def test_other_swap_errors_propagate(client: Any) -> None:
    store_for(client).store(SUITE, "t1", 1)

    def throttled(_: int) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "UpdateSecretVersionStage")

    failing = Intercepting(client, update_secret_version_stage=throttled)
    with pytest.raises(ClientError, match="Throttling"):
        store_for(failing).store(SUITE, "t2", 2)
    loaded = store_for(client).load(SUITE)
    assert loaded is not None
    assert loaded.ticket == "t1"


def test_stored_ticket_repr_hides_the_ticket() -> None:
    ticket = StoredTicket("Cfp0_givEagXcYJIztF6sfbdmIZCmpaR8ZBsvJEFFNBrWmnD5", 1700000000, 1700000005)
    for shown in (repr(ticket), str(ticket), f"{ticket}", f"{[ticket]}"):
        assert ticket.ticket not in shown
        assert "1700000000" in shown
    assert StoredTicket.from_document(ticket.to_document()) == ticket


def test_stored_ticket_json_tolerates_missing_received_at() -> None:
    assert StoredTicket.from_document({"suite_ticket": "t", "timestamp": "5"}) == StoredTicket("t", 5, 0)


def test_moto_gap_is_closed(client: Any) -> None:
    """The fixture above is what makes these tests meaningful; check it models AWS."""
    name = NAMES.ticket(SUITE)
    first = client.create_secret(Name=name, SecretString="one")["VersionId"]
    second = client.put_secret_value(SecretId=name, SecretString="two", VersionStages=["STAGED"])["VersionId"]
    assert client.get_secret_value(SecretId=name)["SecretString"] == "one"
    client.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=second, RemoveFromVersionId=first
    )
    assert client.get_secret_value(SecretId=name)["SecretString"] == "two"
    with pytest.raises(ClientError, match="InvalidParameter"):
        client.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=first
        )
