"""auth-info: consumes the auth-events FIFO queue (callbacks and reconcile requests).

A thin handler: Powertools batch processing with FIFO partial failures (a failed
message holds back only the rest of its own corp's group), idempotency keyed on the
FIFO deduplication id (a WeCom retry that arrives after SQS's 5-minute window is still
processed once; such a replay is logged and counted as a duplicate, not as a new
install), and one call of :class:`authsync.app.sync.AuthorizationSync` per message,
given the invocation's remaining time (an AuthCode is only exchanged when its answer can
still be journaled). A failed AuthCode message is brought back within seconds instead of
the queue's 180 s (:func:`authsync.aws.queues.retry_delay`): its code lives 10 minutes.
An ``install_lost`` outcome is an ERROR line and a metric with its own alarm.
Settings, clients and the use case are built at import (Lambda's init phase).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.observability import count_credential_failure, metric_hooks
from authsync.app.sync import Outcome
from authsync.aws.queues import AUTH_CODE_MAX_RECEIVES, AuthMessage, retry_delay
from authsync.settings import AuthInfoSettings, load
from authsync.wecom.errors import WeComTransientError
from authsync.wiring import build_authorization_sync, build_idempotency_store, build_visibility

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

REPLAYED = "_replayed"
"""Marks a result answered from an idempotency record (a duplicate delivery), not computed now."""


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, REPLAYED: True}


logger = Logger()
metrics = Metrics()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
idempotency = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=7 * 86400, response_hook=_replayed)
settings = load(AuthInfoSettings, on_error=logger.error)
sync = build_authorization_sync(settings, hooks=metric_hooks(metrics))
visibility = build_visibility(settings)
invocation: list[LambdaContext] = []
"""The invocation being handled (one at a time per container): its remaining time bounds an exchange."""


def _remaining() -> float:
    return invocation[-1].get_remaining_time_in_millis() / 1000 if invocation else 30.0


@idempotent_function(  # type: ignore[untyped-decorator]
    data_keyword_argument="item", persistence_store=build_idempotency_store(settings), config=idempotency
)
def process(item: dict[str, Any]) -> dict[str, Any]:
    """One message, once: a redelivery with the same key gets the stored result."""
    return asdict(sync.handle(AuthMessage.from_sqs(item["record"]), remaining=_remaining))


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def record_handler(record: SQSRecord) -> None:
    key = record.attributes.message_deduplication_id or record.message_id
    try:
        result = process(item={"key": key, "record": record.raw_event})
    except Exception as exc:
        # Left on the queue: retried, then redriven to the DLQ (alarmed) after maxReceiveCount.
        logger.exception("auth event failed", error_type=type(exc).__name__, message_id=record.message_id)
        _count("AuthEventsFailed")
        count_credential_failure(metrics, exc)  # KMS failing or a tampered vault item: alarmed
        _retry_soon(record, exc)
        raise
    if result.pop(REPLAYED, False):
        logger.info("auth event duplicate", message_id=record.message_id, **result)
        _count(f"AuthEvents_{Outcome.DUPLICATE.value}")
        return
    # An idempotency record written before outcomes were an enum may read "ignored:<kind>".
    outcome = Outcome(str(result["outcome"]).partition(":")[0])
    if outcome is Outcome.INSTALL_LOST:
        logger.error(
            "install lost: the AuthCode was spent or expired and no exchange was journaled; "
            "ask the corp to re-authorize the app",
            message_id=record.message_id,
            **result,
        )
    else:
        logger.info("auth event processed", **result)
    _count(f"AuthEvents_{outcome.value}")
    if result.get("changed"):
        _count("SnapshotVersionsWritten")


def _retry_soon(record: SQSRecord, error: Exception) -> None:
    """An AuthCode message is retried within seconds (its code lives 10 minutes), not after 180 s.

    Never sooner than WeCom's 60 s block after a 45009; other messages keep the queue's 180 s."""
    message = AuthMessage.from_sqs(record.raw_event)
    if not message.spends_auth_code:
        return
    receives = int(record.attributes.approximate_receive_count or "1")
    if receives >= AUTH_CODE_MAX_RECEIVES:
        # Its last attempt: SQS moves it to the DLQ; the AuthCode will not outlive a slow redrive.
        logger.error("AuthCode message retries exhausted: redrive it now", message_id=record.message_id)
        _count("AuthCodeRetriesExhausted")
        return
    delay = retry_delay(receives)
    if isinstance(error, WeComTransientError) and error.rate_limited:
        delay = max(delay, int(WeComTransientError.RATE_LIMIT_BLOCK))
    try:
        visibility.retry_in(record.receipt_handle, delay)
    except Exception as exc:  # the queue's own visibility timeout still brings it back
        logger.warning("could not shorten the retry delay", error_type=type(exc).__name__)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    invocation[:] = [context]
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        invocation.clear()
