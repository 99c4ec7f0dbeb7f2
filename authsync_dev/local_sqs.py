"""Lambda's SQS event source mappings, as poller threads (for the local stack).

One :class:`QueuePoller` per ``AWS::Lambda::EventSourceMapping`` (or SAM ``Events`` of
``Type: SQS``) with an SQS source. Like Lambda it long-polls the queue, receives up to
``BatchSize`` messages (SQS caps a receive at 10) with their system attributes,
invokes the function with the SQS event, deletes what succeeded and leaves the rest:

* an invocation that raises fails the whole batch;
* with ``FunctionResponseTypes: [ReportBatchItemFailures]`` the response's
  ``batchItemFailures`` fail only those messages; an identifier that is not in the batch
  (or empty, or a malformed response) fails the whole batch, as Lambda does (the
  rules are :func:`authsync_dev.sqs.failed_message_ids`, shared with ``deliver_batch``);
* failed messages stay invisible until the queue's ``VisibilityTimeout`` (counted from
  the receive) has passed, multiplied by ``visibility_scale`` and rounded up to SQS's
  whole seconds (0 makes them visible at once). SQS (moto) then redelivers them, and
  on the receive after ``maxReceiveCount`` moves them to the ``RedrivePolicy``'s DLQ.

FIFO order holds because SQS (moto too) does not hand out a message group while one of
its messages is in flight, and one poller handles one batch at a time.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsync_dev.local_functions import Activity, BackgroundWorker, LocalFunction, describe_error
from authsync_dev.sqs import failed_message_ids, lambda_sqs_event

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["EventSource", "QueuePoller", "sqs_event_sources"]

log = logging.getLogger(__name__)

MAX_VISIBILITY = 43_200  # SQS's limit, 12 hours


@dataclass(frozen=True)
class EventSource:
    """An SQS → function mapping from the template."""

    name: str
    function: str
    queue: str
    """The queue's logical id."""
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True


def _logical_id(value: Any, kinds: Mapping[str, str], wanted: str) -> str | None:
    """The logical id named by ``!Ref X``, ``!GetAtt X.Arn`` or a literal equal to a logical id."""
    target: Any = None
    if isinstance(value, Mapping) and "Ref" in value:
        target = value["Ref"]
    elif isinstance(value, Mapping) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"][0]
    elif isinstance(value, str):
        target = value
    return target if isinstance(target, str) and kinds.get(target) == wanted else None


def sqs_event_sources(template: Mapping[str, Any]) -> list[EventSource]:
    """Every SQS event source of ``template``; DynamoDB streams are :mod:`authsync_dev.local_streams`'; other
    sources (Kinesis, MQ …) are logged and skipped."""
    resources: Mapping[str, Any] = template["Resources"]
    kinds = {logical_id: str(resource.get("Type")) for logical_id, resource in resources.items()}
    sources: list[EventSource] = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            arn = properties.get("EventSourceArn")
            if isinstance(arn, Mapping) and (arn.get("Fn::GetAtt") or [None, None])[1] == "StreamArn":
                continue  # a DynamoDB stream: authsync_dev.local_streams runs it
            queue = _logical_id(arn, kinds, "AWS::SQS::Queue")
            function = _logical_id(properties.get("FunctionName"), kinds, "AWS::Serverless::Function")
            if queue is None or function is None:
                log.warning("%s: not an SQS queue of this template feeding one of its functions; skipped", logical_id)
                continue
            sources.append(_source(logical_id, function, queue, properties))
        elif resource.get("Type") == "AWS::Serverless::Function":
            for event_name, event in (properties.get("Events") or {}).items():
                if event.get("Type") != "SQS":
                    continue
                event_properties = event.get("Properties") or {}
                queue = _logical_id(event_properties.get("Queue"), kinds, "AWS::SQS::Queue")
                if queue is None:
                    log.warning("%s.%s: queue is not in this template; skipped", logical_id, event_name)
                    continue
                sources.append(_source(f"{logical_id}.{event_name}", logical_id, queue, event_properties))
    return sources


def _source(name: str, function: str, queue: str, properties: Mapping[str, Any]) -> EventSource:
    return EventSource(
        name=name,
        function=function,
        queue=queue,
        batch_size=int(properties.get("BatchSize", 10)),
        report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        enabled=properties.get("Enabled", True) not in (False, "false", "False"),
    )


def _receive_count(message: MessageTypeDef) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


class QueuePoller(BackgroundWorker):
    """Runs one :class:`EventSource` against its queue in a daemon thread."""

    def __init__(
        self,
        source: EventSource,
        function: LocalFunction,
        sqs: SQSClient,
        *,
        queue_url: str,
        activity: Activity,
        region: str,
        visibility_scale: float = 1.0,
        wait_seconds: int = 1,
    ) -> None:
        super().__init__(f"poller-{source.name}")
        self.source = source
        self.function = function
        self.queue_url = queue_url
        self.queue_name = queue_url.rsplit("/", 1)[-1]
        self._sqs = sqs
        self._activity = activity
        self._region = region
        self._scale = visibility_scale
        self._wait = wait_seconds
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.visibility_timeout = int(attributes.get("VisibilityTimeout", "30"))
        redrive = json.loads(attributes.get("RedrivePolicy", "null") or "null")
        self.max_receive_count: int | None = int(redrive["maxReceiveCount"]) if redrive else None
        self.dead_letter_queue: str | None = str(redrive["deadLetterTargetArn"]).rsplit(":", 1)[-1] if redrive else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(self._wait)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("poller %s: %s; retrying in 1 s", self.source.name, type(exc).__name__)
                self._stop.wait(1.0)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch and settle it; returns how many messages it received."""
        received_at = time.monotonic()
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(self.source.batch_size, 10)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait_seconds,
        ).get("Messages", [])
        if not messages:
            return 0
        with self._activity.busy():
            self._settle(messages, received_at)
        return len(messages)

    def _settle(self, messages: list[MessageTypeDef], received_at: float) -> None:
        ids = [m["MessageId"] for m in messages]
        event = lambda_sqs_event(messages, self.queue_arn, self._region)
        error: str | None = None
        response: Any = None
        raised: Exception | None = None
        try:
            response = self.function.invoke(event)
        except Exception as exc:
            raised, error = exc, describe_error(exc)
        failed = failed_message_ids(response, ids, report=self.source.report_batch_item_failures, error=raised)
        if raised is None:
            self.function.record_failed_items(len(failed))
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(succeeded), 10):
            chunk = succeeded[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if not failed:
            log.info("%s <- %s: %d message(s) ok", self.function.logical_id, self.queue_name, len(messages))
            return
        retry_in = self._retry_delay(received_at)
        receives = max(_receive_count(m) for m in messages if m["MessageId"] in failed)
        for message in messages:
            if message["MessageId"] in failed:
                try:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=retry_in
                    )
                except Exception as exc:  # the receipt may have expired meanwhile: SQS redelivers anyway
                    log.debug("change_message_visibility failed (%s)", type(exc).__name__)
        limit = f" of {self.max_receive_count}" if self.max_receive_count else ""
        log.warning(
            "%s <- %s: %d message(s), %d failed%s (receive %d%s); visible again in %d s%s",
            self.function.logical_id,
            self.queue_name,
            len(messages),
            len(failed),
            f": {error}" if error else "",
            receives,
            limit,
            retry_in,
            f", then to {self.dead_letter_queue}"
            if self.max_receive_count is not None and receives >= self.max_receive_count
            else "",
        )

    def _retry_delay(self, received_at: float) -> int:
        """Seconds until failed messages reappear: the rest of the (scaled) visibility timeout."""
        remaining = self.visibility_timeout * self._scale - (time.monotonic() - received_at)
        return min(MAX_VISIBILITY, max(0, math.ceil(remaining))) if self._scale > 0 else 0
