"""The local stack publishes change events: its corps-table stream runs the change publisher, and a rule on
the stack's bus delivers to an SQS queue -- installing, verifying and uninstalling a corp through WeCom's
callbacks delivers each event exactly once (issue #12's done-when)."""

from __future__ import annotations

import json
from typing import Any

from authsync_dev.local_streams import matches, stream_event_sources
from authsync_dev.stack import LocalStack
from authsync_dev.template import load_template


def test_the_template_stream_source_is_read_with_its_filter() -> None:
    (source,) = stream_event_sources(load_template())
    assert (source.function, source.table, source.on_failure_queue) == (
        "ChangePublisherFunction",
        "CorpsTable",
        "ChangeEventsDLQ",
    )
    (pattern,) = source.patterns
    assert matches(pattern, {"dynamodb": {"Keys": {"pk": {"S": "CORP#s#c"}, "sk": {"S": "STATE"}}}})
    assert not matches(pattern, {"dynamodb": {"Keys": {"pk": {"S": "CORP#s#c"}, "sk": {"S": "V#auth_info#1"}}}})


def subscribe(stack: LocalStack) -> str:
    """An SQS queue fed by a rule on the stack's bus (what a provider's billing system subscribes)."""
    bus = stack.deployment.physical["ChangeEventBus"]
    sqs, events = stack.client("sqs"), stack.client("events")
    queue: str = sqs.create_queue(QueueName="billing")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="billing", EventBusName=bus, EventPattern=json.dumps({"source": ["wecom-authsync"]}))
    events.put_targets(Rule="billing", EventBusName=bus, Targets=[{"Id": "billing", "Arn": arn}])
    return queue


def received(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    delivered: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            delivered.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return delivered


def test_install_verify_uninstall_through_the_local_stack_deliver_each_event_once() -> None:
    with LocalStack(visibility_scale=1 / 180, schedules=False) as stack:
        queue = subscribe(stack)
        wecom, suite, corp = stack.emulator, stack.suites[0].suite_id, "wwcorplocalevents1"

        wecom.add_corp(corp, verified=False)
        wecom.create_auth(suite, corp)
        stack.wait_idle(60)
        wecom.verify_corp(corp)  # change_auth pushed
        stack.wait_idle(60)
        wecom.cancel_auth(suite, corp)
        stack.wait_idle(60)

        delivered = received(stack, queue)
        kinds = [event["detail-type"] for event in delivered]
        for once in ("Corp Installed", "Corp Verification Changed", "Corp Cancelled"):
            assert kinds.count(once) == 1, kinds
        assert kinds.index("Corp Installed") < kinds.index("Corp Verification Changed") < kinds.index("Corp Cancelled")
        assert len({event["detail"]["idempotency_key"] for event in delivered}) == len(delivered)
        verified = next(e for e in delivered if e["detail-type"] == "Corp Verification Changed")["detail"]
        assert (verified["corp_id"], verified["verification"]["customer_cap"]) == (corp, None)
        assert stack.errors("ChangePublisherFunction") == 0


def test_a_license_purchase_and_an_edition_upgrade_through_the_local_stack_deliver_their_events_once() -> None:
    with LocalStack(visibility_scale=1 / 180, schedules=False) as stack:
        queue = subscribe(stack)
        wecom, suite, corp = stack.emulator, stack.suites[0].suite_id, "wwcorplocalbilling"
        wecom.add_corp(corp, verified=True)
        wecom.create_auth(suite, corp)
        stack.wait_idle(60)
        received(stack, queue)  # the install's own events

        wecom.buy_licenses(suite, corp, base_count=5)  # license_pay_success
        stack.wait_idle(60)
        wecom.buy_edition(suite, corp, edition_id="ed-pro", edition_name="专业版")  # open, pay, change_editon
        stack.wait_idle(60)

        delivered = received(stack, queue)
        kinds = [event["detail-type"] for event in delivered]
        assert kinds.count("Corp License Changed") == 1, kinds
        assert 1 <= kinds.count("Corp Order Changed") <= 2, kinds  # open and pay coalesce when read late
        assert len({event["detail"]["idempotency_key"] for event in delivered}) == len(delivered)
        license_event = next(e for e in delivered if e["detail-type"] == "Corp License Changed")["detail"]
        assert license_event["license"]["purchased"]["total"] == 5
        assert license_event["open_corpid"] == wecom.open_corpid(corp)
        last_order = [e for e in delivered if e["detail-type"] == "Corp Order Changed"][-1]["detail"]
        assert last_order["orders"]["latest"]["edition_id"] == "ed-pro"
        assert last_order["orders"]["paid"] == 1
        edition = next(e for e in delivered if e["detail-type"] == "Corp Authorization Changed")["detail"]
        assert any(change["path"].startswith("edition_info") for change in edition["changes"])
        assert edition["edition"]["edition_id"] == "ed-pro"
        assert stack.errors("ChangePublisherFunction") == 0
