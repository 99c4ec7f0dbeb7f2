"""moto's server in a child process: the local stack's AWS on a core of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from authsync_dev.local_api import HOST
from authsync_dev.moto_process import MotoProcess, quick_sqs_clock
from authsync_dev.stack_config import StackConfig


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    process = MotoProcess(HOST).start()
    yield process
    process.stop()


def client(service: str, moto: MotoProcess) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_cancelled_transaction_leaves_every_item_as_it_was(moto: MotoProcess) -> None:
    dynamodb = client("dynamodb", moto)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    before = [{"pk": {"S": k}, "sk": {"S": "1"}, "v": {"N": "1"}} for k in ("a", "b")]
    for item in before:
        dynamodb.put_item(TableName="t", Item=item)
    doomed = [
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
        {
            "Update": {
                "TableName": "t",
                "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                "UpdateExpression": "SET v = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}},
                "ConditionExpression": "v = :nine",
                "ExpressionAttributeValues": {":nine": {"N": "9"}},
            }
        },
    ]
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=doomed)
    assert sorted(dynamodb.scan(TableName="t")["Items"], key=str) == sorted(before, key=str)
    dynamodb.transact_write_items(TransactItems=doomed[:2])  # without the failing check: both apply
    assert len(dynamodb.scan(TableName="t")["Items"]) == 3
    got = dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]
    assert got["v"] == {"N": "2"}


def test_moto_in_a_child_process_serves_aws_until_stopped() -> None:
    moto = MotoProcess(HOST).start()
    try:
        sqs = client("sqs", moto)
        url = sqs.create_queue(QueueName="probe.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])] == ["x"]
        requests.post(f"{moto.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        assert sqs.list_queues().get("QueueUrls", []) == []
    finally:
        moto.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{moto.endpoint}/moto-api/data.json", timeout=2)
    moto.stop()  # twice is fine


def test_the_quick_sqs_clock_tells_the_same_time() -> None:
    from moto.core import utils
    from moto.sqs import models

    with quick_sqs_clock():
        assert abs(models.unix_time() - utils.unix_time()) < 1.0  # type: ignore[attr-defined]
        assert abs(models.unix_time_millis() - time.time() * 1000) < 1000.0  # type: ignore[attr-defined]
    assert models.unix_time is utils.unix_time  # type: ignore[attr-defined]


def test_the_stack_config_chooses_where_moto_runs() -> None:
    assert StackConfig().moto == "thread"
    assert StackConfig.from_json({"moto": "process", "concurrency": 4}).moto == "process"
    with pytest.raises(ValueError, match="moto"):
        StackConfig.from_json({"moto": "docker"})
    with pytest.raises(ValueError, match="concurrency"):
        StackConfig.from_json({"concurrency": 0})
