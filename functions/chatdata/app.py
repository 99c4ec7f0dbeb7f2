"""chatdata: consumes the chatdata FIFO queue; one :class:`authsync.app.chatdata_sync.ChatdataSync` call per message.

Requests are naturally idempotent (a request older than the stored snapshot is a no-op,
an identical fetch writes no version), so no idempotency table is needed here.
Settings, clients and the use case are built at import (Lambda's init phase).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.observability import count_credential_failure, metric_hooks
from authsync.aws.queues import ChatdataRequest
from authsync.settings import FetchSettings, load
from authsync.wiring import build_chatdata_sync

logger = Logger()
metrics = Metrics()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
sync = build_chatdata_sync(load(FetchSettings, on_error=logger.error), hooks=metric_hooks(metrics))


def record_handler(record: SQSRecord) -> None:
    try:
        result = sync.handle(ChatdataRequest.from_json(record.body))
    except Exception as exc:
        logger.exception("chatdata request failed", error_type=type(exc).__name__, message_id=record.message_id)
        metrics.add_metric(name="ChatdataFailed", unit=MetricUnit.Count, value=1)
        count_credential_failure(metrics, exc)  # KMS failing or a tampered vault item: alarmed
        raise
    logger.info("chatdata request processed", **asdict(result))
    metrics.add_metric(name=f"Chatdata_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    if result.changed:
        metrics.add_metric(name="SnapshotVersionsWritten", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
