"""auth-info: consumes the auth-events FIFO queue (callbacks and reconcile requests).

A thin handler: Powertools batch processing with FIFO partial failures (a failed
message holds back only the rest of its own corp's group), idempotency keyed on the
FIFO deduplication id (a WeCom retry that arrives after SQS's 5-minute window is still
processed once), and one call of :class:`authsync.app.sync.AuthorizationSync` per message.
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
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.observability import metric_hooks
from authsync.app.sync import Outcome
from authsync.aws.queues import AuthMessage
from authsync.settings import AuthInfoSettings, load
from authsync.wiring import build_authorization_sync, build_idempotency_store

logger = Logger()
metrics = Metrics()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
idempotency = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=7 * 86400)
settings = load(AuthInfoSettings, on_error=logger.error)
sync = build_authorization_sync(settings, hooks=metric_hooks(metrics))


@idempotent_function(  # type: ignore[untyped-decorator]
    data_keyword_argument="item", persistence_store=build_idempotency_store(settings), config=idempotency
)
def process(item: dict[str, Any]) -> dict[str, Any]:
    """One message, once: a redelivery with the same key gets the stored result."""
    return asdict(sync.handle(AuthMessage.from_sqs(item["record"])))


def record_handler(record: SQSRecord) -> None:
    key = record.attributes.message_deduplication_id or record.message_id
    try:
        result = process(item={"key": key, "record": record.raw_event})
    except Exception as exc:
        # Left on the queue: retried, then redriven to the DLQ (alarmed) after maxReceiveCount.
        logger.exception("auth event failed", error_type=type(exc).__name__, message_id=record.message_id)
        metrics.add_metric(name="AuthEventsFailed", unit=MetricUnit.Count, value=1)
        raise
    logger.info("auth event processed", **result)
    # An idempotency record written before outcomes were an enum may read "ignored:<kind>".
    outcome = Outcome(str(result["outcome"]).partition(":")[0])
    metrics.add_metric(name=f"AuthEvents_{outcome.value}", unit=MetricUnit.Count, value=1)
    if result.get("changed"):
        metrics.add_metric(name="SnapshotVersionsWritten", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
