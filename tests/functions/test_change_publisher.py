"""change-publisher end to end on moto: the pipeline's real writes, read back from the corps table's stream as
Lambda's event source mapping delivers them, published to the stack's bus, and received through a rule's
SQS target -- each event once per stored change."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config

from authsync_dev.local_streams import lambda_stream_record, stream_event_sources
from authsync_dev.template import load_template
from authsync_dev.world import World
from tests.functions.pipeline import install, publish, settle
from tests.handlers import fresh
from tests.lambda_context import FakeLambdaContext

STREAMS = Config(account_id_endpoint_mode="disabled")  # moto serves the classic streams endpoint only
(SOURCE,) = stream_event_sources(load_template())


class Stream:
    """The corps table's stream, read from where the last batch ended (one shard in moto)."""

    def __init__(self, world: World) -> None:
        table = world.deployment.physical["CorpsTable"]
        self._arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._client = boto3.client("dynamodbstreams", config=STREAMS)
        (shard,) = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        self._iterator = self._client.get_shard_iterator(
            StreamArn=self._arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def batch(self) -> dict[str, Any]:
        """The next records as a DynamoDB stream event, through the template mapping's own filter."""
        answer = self._client.get_records(ShardIterator=self._iterator)
        self._iterator = answer["NextShardIterator"]
        records = [lambda_stream_record(r, self._arn, "us-east-1") for r in answer["Records"] if SOURCE.selects(r)]
        return {"Records": records}


@pytest.fixture
def bus(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """The publisher's environment, and an SQS queue a rule on the bus feeds (what a consumer subscribes)."""
    bus_name = world.deployment.physical["ChangeEventBus"]
    monkeypatch.setenv("EVENT_BUS_NAME", bus_name)
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events")
    events.put_rule(Name="all-changes", EventBusName=bus_name, EventPattern=json.dumps({"source": ["wecom-authsync"]}))
    events.put_targets(Rule="all-changes", EventBusName=bus_name, Targets=[{"Id": "consumer", "Arn": arn}])
    return sqs, queue


def received(sqs: Any, queue: str) -> list[tuple[str, str]]:
    out = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            event = json.loads(message["Body"])
            out.append((event["detail-type"], event["detail"]["idempotency_key"].rsplit("/", 2)[-2]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return out


def test_install_verify_uninstall_deliver_each_event_once(world: World, bus: tuple[Any, str]) -> None:
    sqs, queue = bus
    publisher = fresh("change_publisher.app")
    stream = Stream(world)
    corp = "wwcorpevents000001"

    def deliver() -> list[tuple[str, str]]:
        batch = stream.batch()
        if batch["Records"]:  # Lambda invokes only for a batch that is not empty
            assert publisher.lambda_handler(batch, FakeLambdaContext())["batchItemFailures"] == []
        return received(sqs, queue)

    install(world, corp, verified=False)
    settle(world)
    assert deliver() == [("Corp Installed", "installed"), ("Corp Chatdata Changed", "chatdata")]

    world.wecom.verify_corp(corp, push=False)
    publish(world, {"InfoType": "change_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": corp})
    settle(world)
    assert deliver() == [("Corp Authorization Changed", "auth_info"), ("Corp Verification Changed", "verification")]

    publish(world, {"InfoType": "change_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": corp})
    settle(world)  # fetched again, nothing changed: writes, but no event
    assert deliver() == []

    world.wecom.cancel_auth(world.suite.suite_id, corp, push=False)
    publish(world, {"InfoType": "cancel_auth", "TimeStamp": int(world.wecom.now()), "AuthCorpId": corp})
    settle(world)
    assert deliver() == [("Corp Cancelled", "cancelled")]


def test_a_batch_whose_events_cannot_be_published_is_retried_not_dropped(
    world: World, bus: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, queue = bus
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")  # EventBridge refuses every entry
    publisher = fresh("change_publisher.app")
    stream = Stream(world)
    install(world, "wwcorpevents000002")
    settle(world)
    batch = stream.batch()

    answer = publisher.lambda_handler(batch, FakeLambdaContext())

    assert answer["batchItemFailures"]  # Lambda retries from the first failed record
    assert received(sqs, queue) == []
    monkeypatch.setenv("EVENT_BUS_NAME", world.deployment.physical["ChangeEventBus"])
    retried = fresh("change_publisher.app").lambda_handler(batch, FakeLambdaContext())  # EventBridge is back
    assert retried["batchItemFailures"] == []
    assert [kind for kind, _ in received(sqs, queue)] == ["Corp Installed", "Corp Chatdata Changed"]
