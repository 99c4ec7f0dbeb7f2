"""What Lambda's SQS event source mapping does, for tests and the local stack.

:func:`lambda_sqs_event` turns received SQS messages into the event Lambda passes a
function; :func:`failed_message_ids` decides which messages of a batch failed (Lambda's
partial batch response rules); :func:`deliver_batch` receives one batch, invokes the
handler, deletes what succeeded and makes failures visible again. The local stack's
pollers (:mod:`authsync_dev.local_sqs`) settle their batches with the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

__all__ = ["BatchOutcome", "deliver_batch", "failed_message_ids", "lambda_sqs_event"]


def lambda_sqs_event(
    messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """The ``Records`` event Lambda builds from SQS ``ReceiveMessage`` output."""
    records = []
    for message in messages:
        attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(
    response: Any, batch: Sequence[str], *, report: bool = True, error: BaseException | None = None
) -> set[str]:
    """Which messages of ``batch`` (message ids) failed, by Lambda's rules.

    ``error``: the invocation raised, so the whole batch failed. Otherwise, without
    ``ReportBatchItemFailures`` (``report=False``) the response is ignored and all
    succeeded. With it, a null/empty response or a null/empty ``batchItemFailures`` list
    means all succeeded; a response that is not an object, a ``batchItemFailures`` that
    is not a list, or any entry whose ``itemIdentifier`` is missing, null, empty, not a
    string or not a message of this batch fails the whole batch. FIFO order is the
    function's business (it reports the failed message and all after it); Lambda, and
    this, only deletes the successes.
    """
    if error is not None:
        return set(batch)
    if not report or response is None:
        return set()
    if not isinstance(response, Mapping):
        return set(batch)
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return set(batch)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return set(batch)  # Lambda: an invalid identifier fails the whole batch
        failed.add(identifier)
    return failed


@dataclass
class BatchOutcome:
    received: int = 0
    failed: list[str] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def deliver_batch(
    queue_url: str,
    handler: Callable[[dict[str, Any], Any], Any],
    context: Any,
    *,
    batch_size: int = 10,
    wait_seconds: int = 0,
    retry_visibility: int = 0,
) -> BatchOutcome:
    """Receive up to ``batch_size`` messages, invoke ``handler``, settle them as Lambda does."""
    sqs = boto3.client("sqs")
    got = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=wait_seconds,
    ).get("Messages", [])
    if not got:
        return BatchOutcome()
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    response: Any = None
    raised: Exception | None = None
    try:
        response = handler(lambda_sqs_event(got, arn), context)
    except Exception as exc:
        raised = exc
    failed = failed_message_ids(response, [m["MessageId"] for m in got], error=raised)
    for message in got:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=retry_visibility
            )
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return BatchOutcome(
        len(got),
        sorted(failed),
        dict(response) if raised is None and isinstance(response, Mapping) else {},
        type(raised).__name__ if raised is not None else None,
    )
