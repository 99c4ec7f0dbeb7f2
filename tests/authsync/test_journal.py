"""The exchange journal on moto (DynamoDB + KMS, both created from template.yaml): durability, sealing, retries."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from authsync.aws.journal import ExchangeJournal, PendingExchanges
from authsync.aws.kms import KmsSealer, SealError
from authsync.aws.retrying import DeadlineExceededError
from authsync.domain.install import JOURNAL_RETENTION, JournalEntry, JournalStatus, auth_code_key
from authsync_dev.template import Deployment

SUITE = "wwsuitejournal0001"
CODE = "PCODE-journal-secret-0001"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def entry(
    corp_id: str = "wwcorpjournal00001", *, auth_code: str = "AUTHCODE-1", at: float = 1_750_000_000.0
) -> JournalEntry:
    context = {"auth_corp_info": {"corpid": corp_id, "corp_name": "测试"}, "state": "from-site"}
    return JournalEntry(SUITE, auth_code_key(SUITE, auth_code), corp_id, at, False, context, CODE)


def journal(deployment: Deployment, clock: Clock, client: Any = None) -> ExchangeJournal:
    sealer = KmsSealer(boto3.client("kms"), deployment.attribute("CredentialsKey", "Arn"))
    table = deployment.physical["ExchangeJournalTable"]
    return ExchangeJournal(client or boto3.client("dynamodb"), table, sealer, clock=clock, sleep=clock.sleep)


def raw_item(deployment: Deployment, e: JournalEntry) -> dict[str, Any]:
    got = boto3.client("dynamodb").get_item(
        TableName=deployment.physical["ExchangeJournalTable"], Key={"pk": {"S": f"{e.suite_id}#{e.key}"}}
    )
    item: dict[str, Any] = got["Item"]
    return item


def test_a_recorded_entry_reads_back_whole_and_the_table_holds_no_plaintext_code(deployment: Deployment) -> None:
    clock = Clock()
    j = journal(deployment, clock)
    e = entry()

    assert j.record(e, deadline=clock() + 10) == e
    back = j.get(SUITE, e.key)

    assert back == e
    assert back is not None
    assert back.permanent_code == CODE
    item = raw_item(deployment, e)
    assert CODE.encode() not in repr(item).encode()
    assert "AUTHCODE-1" not in repr(item)  # keyed by the hash
    assert item["pending_suite"] == {"S": SUITE}
    assert int(item["expires_at"]["N"]) == int(e.obtained_at) + JOURNAL_RETENTION


def test_the_first_writer_wins_and_a_second_record_gets_its_entry(deployment: Deployment) -> None:
    clock = Clock()
    j = journal(deployment, clock)
    first = entry()
    j.record(first, deadline=clock() + 10)
    later = JournalEntry(first.suite_id, first.key, "wwothercorp0000001", first.obtained_at + 1, False, {}, "OTHER")

    assert j.record(later, deadline=clock() + 10) == first


def test_a_sealed_code_moved_to_another_entry_does_not_open(deployment: Deployment) -> None:
    clock = Clock()
    j = journal(deployment, clock)
    a, b = entry(auth_code="A"), entry("wwcorpjournal00002", auth_code="B")
    j.record(a, deadline=clock() + 10)
    j.record(b, deadline=clock() + 10)
    table = deployment.physical["ExchangeJournalTable"]
    dynamodb = boto3.client("dynamodb")
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"{SUITE}#{b.key}"}},
        UpdateExpression="SET code_blob = :blob",
        ExpressionAttributeValues={":blob": raw_item(deployment, a)["code_blob"]},
    )

    with pytest.raises(SealError) as caught:
        j.get(SUITE, b.key)
    assert CODE not in str(caught.value)
    assert caught.value.transient is False


def test_closing_removes_the_entry_from_the_pending_index_and_skips_decrypting_it(deployment: Deployment) -> None:
    clock = Clock()
    j = journal(deployment, clock)
    pending = PendingExchanges(boto3.client("dynamodb"), deployment.physical["ExchangeJournalTable"])
    old, recent = entry(auth_code="old", at=clock() - 3600), entry("wwcorpjournal00002", auth_code="new")
    j.record(old, deadline=clock() + 10)
    j.record(recent, deadline=clock() + 10)

    assert list(pending.keys(SUITE, obtained_before=clock() - 600)) == [old.key]
    assert sorted(pending.keys(SUITE, obtained_before=clock() + 1)) == sorted([old.key, recent.key])
    assert list(pending.keys("wwanothersuite0001", obtained_before=clock() + 1)) == []

    j.close(old, JournalStatus.COMPLETED)

    assert list(pending.keys(SUITE, obtained_before=clock() + 1)) == [recent.key]
    closed = j.get(SUITE, old.key)
    assert closed is not None
    assert (closed.status, closed.permanent_code) == (JournalStatus.COMPLETED, "")  # never opened again


class Flaky:
    """A DynamoDB client whose first ``failures`` put_item calls fail with ``error``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self._client = boto3.client("dynamodb")
        self._failures = failures
        self._error = error
        self.puts = 0

    def put_item(self, **kwargs: Any) -> Any:
        self.puts += 1
        if self.puts <= self._failures:
            raise self._error
        return self._client.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutItem")


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException", 400),
        client_error("ThrottlingException", 400),
        client_error("InternalServerError", 500),
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
)
def test_transient_failures_are_retried_until_the_write_lands(deployment: Deployment, error: Exception) -> None:
    clock = Clock()
    flaky = Flaky(6, error)
    j = journal(deployment, clock, flaky)

    j.record(entry(), deadline=clock() + 20)

    assert flaky.puts == 7
    assert j.get(SUITE, entry().key) is not None
    assert clock.sleeps == sorted(clock.sleeps)  # backing off, capped
    assert max(clock.sleeps) <= 2.0


def test_a_transient_failure_lasting_past_the_deadline_raises_naming_no_secret(deployment: Deployment) -> None:
    clock = Clock()
    flaky = Flaky(10_000, client_error("ThrottlingException", 400))
    j = journal(deployment, clock, flaky)

    with pytest.raises(DeadlineExceededError, match="ThrottlingException") as caught:
        j.record(entry(), deadline=clock() + 25)

    assert clock() <= 1_750_000_000.0 + 25
    assert clock() >= 1_750_000_000.0 + 20  # it used the time it was given
    assert CODE not in str(caught.value)


def test_a_permanent_failure_is_not_retried(deployment: Deployment) -> None:
    clock = Clock()
    flaky = Flaky(1, client_error("AccessDeniedException", 400))
    j = journal(deployment, clock, flaky)

    with pytest.raises(ClientError):
        j.record(entry(), deadline=clock() + 25)
    assert flaky.puts == 1
    assert clock.sleeps == []


def test_kms_refusing_to_seal_is_retried_when_transient(deployment: Deployment) -> None:
    clock = Clock()
    key = deployment.attribute("CredentialsKey", "Arn")

    class FlakyKms:
        def __init__(self) -> None:
            self.kms = boto3.client("kms")
            self.calls = 0

        def encrypt(self, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls < 3:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "Encrypt")
            return self.kms.encrypt(**kwargs)

        def decrypt(self, **kwargs: Any) -> Any:
            return self.kms.decrypt(**kwargs)

    kms = FlakyKms()
    j = ExchangeJournal(
        boto3.client("dynamodb"),
        deployment.physical["ExchangeJournalTable"],
        KmsSealer(kms, key),  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
    )

    j.record(entry(), deadline=clock() + 10)

    assert kms.calls == 3
    back = j.get(SUITE, entry().key)
    assert back is not None
    assert back.permanent_code == CODE
