"""What Lambda's SQS event source mapping does, for tests and the local stack.

:func:`lambda_sqs_event` turns received SQS messages into the event Lambda passes a
function; :func:`deliver_batch` receives one batch, invokes the handler, deletes what
succeeded and makes reported failures visible again (Lambda's partial batch response).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

__all__ = ["BatchOutcome", "deliver_batch", "lambda_sqs_event"]


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
    error: str | None = None
    try:
        response = handler(lambda_sqs_event(got, arn), context) or {}
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    except Exception as exc:
        response, error = {}, type(exc).__name__
        failed = {m["MessageId"] for m in got}
    for message in got:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=retry_visibility
            )
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return BatchOutcome(len(got), sorted(failed), dict(response), error)
