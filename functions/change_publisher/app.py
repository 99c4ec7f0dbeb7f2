"""change-publisher: the corps table's DynamoDB stream in, change events on the stack's EventBridge bus out.

One :class:`authsync.app.change_publisher.ChangePublisher` call per stream record; a record whose
events could not be published is reported as a batch item failure, so Lambda retries from it
(and, after its retries, bisects and sends it to the on-failure queue: alarmed). Settings, the
client and the use case are built at import (Lambda's init phase).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.change_publisher import PublishOutcome
from authsync.settings import PublisherSettings, load
from authsync.wiring import build_change_publisher

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
publisher = build_change_publisher(load(PublisherSettings, on_error=logger.error))


def record_handler(record: DynamoDBRecord) -> None:
    # Every record counts: most stored changes (a fetch that changed nothing) mean no event, and a
    # batch of only those would otherwise flush an empty metrics document (Powertools warns).
    metrics.add_metric(name="ChangeRecordsRead", unit=MetricUnit.Count, value=1)
    try:
        result = publisher.handle(record.raw_event)
    except Exception as exc:
        logger.exception("change events not published", error_type=type(exc).__name__, event_id=record.event_id)
        metrics.add_metric(name="ChangeEventsFailed", unit=MetricUnit.Count, value=1)
        raise
    if result.outcome is PublishOutcome.PUBLISHED:
        logger.info("change events published", **asdict(result))
        metrics.add_metric(name="ChangeEventsPublished", unit=MetricUnit.Count, value=len(result.detail_types))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
