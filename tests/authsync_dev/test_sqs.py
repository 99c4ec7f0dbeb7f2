"""Lambda's partial batch response rules (shared by ``deliver_batch`` and the local stack's pollers)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from authsync_dev.sqs import deliver_batch, failed_message_ids

BATCH = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}, {"m2", "m3"}),
        ({"batchItemFailures": [{"itemIdentifier": "nope"}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "nope"}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemIdentifier": 2}]}, set(BATCH)),
        ({"batchItemFailures": [{"itemId": "m2"}]}, set(BATCH)),
        ({"batchItemFailures": ["m2"]}, set(BATCH)),
        ({"batchItemFailures": "m1"}, set(BATCH)),
        ("not an object", set(BATCH)),
        (["m1"], set(BATCH)),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(response: Any, failed: set[str]) -> None:
    assert failed_message_ids(response, BATCH) == failed
    assert failed_message_ids(response, BATCH, report=True) == failed


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}, BATCH, report=False) == set()
    assert failed_message_ids("not an object", BATCH, report=False) == set()


def test_an_invocation_that_raised_fails_the_whole_batch() -> None:
    error = RuntimeError("boom")
    assert failed_message_ids(None, BATCH, error=error) == set(BATCH)
    assert failed_message_ids({"batchItemFailures": []}, BATCH, report=False, error=error) == set(BATCH)


def _queue(n: int) -> tuple[str, list[str]]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="settle")["QueueUrl"]
    ids = [sqs.send_message(QueueUrl=url, MessageBody=str(i))["MessageId"] for i in range(n)]
    return url, ids


def _left(url: str) -> int:
    return len(boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))


@pytest.mark.usefixtures("aws")
def test_deliver_batch_deletes_only_reported_successes() -> None:
    url, ids = _queue(3)
    outcome = deliver_batch(url, lambda event, _: {"batchItemFailures": [{"itemIdentifier": ids[1]}]}, None)
    assert (outcome.received, outcome.failed, outcome.error) == (3, [ids[1]], None)
    assert _left(url) == 1


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("response", [{"batchItemFailures": [{"itemIdentifier": "unknown"}]}, "malformed"])
def test_deliver_batch_fails_the_whole_batch_on_an_invalid_response(response: Any) -> None:
    url, ids = _queue(3)
    outcome = deliver_batch(url, lambda event, _: response, None)
    assert (outcome.received, outcome.failed, outcome.error) == (3, sorted(ids), None)
    assert _left(url) == 3


@pytest.mark.usefixtures("aws")
def test_deliver_batch_fails_the_whole_batch_when_the_handler_raises() -> None:
    url, ids = _queue(2)

    def handler(event: dict[str, Any], context: Any) -> Any:
        raise ValueError("boom")

    outcome = deliver_batch(url, handler, None)
    assert (outcome.received, outcome.failed, outcome.error, outcome.response) == (2, sorted(ids), "ValueError", {})
    assert _left(url) == 2


@pytest.mark.usefixtures("aws")
def test_deliver_batch_treats_an_empty_response_as_success() -> None:
    url, _ids = _queue(2)
    outcome = deliver_batch(url, lambda event, _: None, None)
    assert (outcome.received, outcome.failed) == (2, [])
    assert _left(url) == 0
