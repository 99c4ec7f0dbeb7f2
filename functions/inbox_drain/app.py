"""inbox-drain (scheduled, every minute): replays callbacks that callback-ingest kept in its inbox.

callback-ingest keeps a request it could not finish (SQS or Secrets Manager failing) and
answers WeCom ``success``. Here each kept request goes through the same ingest again: verified,
decrypted and routed (enqueued with the event's own deduplication id, or its ticket stored).
A request that is handled or turns out to be invalid leaves the inbox; one that still fails
stays for the next run. ``InboxOldestAgeSeconds`` is alarmed when the inbox does not drain.
Settings and clients are built at import (Lambda's init phase).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.ingest import drain_inbox
from authsync.settings import IngestSettings, load
from authsync.wiring import build_inbox_drain

logger = Logger()
metrics = Metrics()
drain = build_inbox_drain(load(IngestSettings, on_error=logger.error))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = drain_inbox(drain.ingestor, drain.inbox)
    if report.failed:
        logger.warning("inbox drained partly", **asdict(report))
    elif report.replayed or report.rejected:
        logger.info("inbox drained", **asdict(report))
    metrics.add_metric(name="InboxReplayed", unit=MetricUnit.Count, value=sum(report.replayed.values()))
    metrics.add_metric(name="InboxRejected", unit=MetricUnit.Count, value=sum(report.rejected.values()))
    metrics.add_metric(name="InboxStillFailing", unit=MetricUnit.Count, value=sum(report.failed.values()))
    metrics.add_metric(name="InboxOldestAgeSeconds", unit=MetricUnit.Seconds, value=report.oldest_age)
    return asdict(report)
