"""reconcile (scheduled): one reconcile message per active corp, one resume message per stale open install,
one reconcile message per corp that holds a permanent code but no stored state.

No WeCom call happens here: auth-info does the fetching, one message at a time, so a
large provider never has one invocation looping WeCom calls over every corp.
Settings and clients are built at import (Lambda's init phase).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.schedules import fan_out_reconcile
from authsync.settings import ReconcileSettings, load
from authsync.wiring import build_reconcile


class ReconcileIncompleteError(RuntimeError):
    """Some suites could not be reconciled (named in the log line before it)."""


logger = Logger()
metrics = Metrics()
reconcile = build_reconcile(load(ReconcileSettings, on_error=logger.error))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = fan_out_reconcile(
        reconcile.snapshots,
        reconcile.sqs,
        reconcile.queue_url,
        reconcile.suite_ids,
        pending=reconcile.pending,
        holders=reconcile.holders,
    )
    logger.info(
        "reconcile requested",
        requested=report.requested,
        total=report.total,
        resumed=report.resumed,
        orphans=report.orphans,
    )
    metrics.add_metric(name="ReconcileRequests", unit=MetricUnit.Count, value=report.total)
    metrics.add_metric(name="InstallsResumed", unit=MetricUnit.Count, value=sum(report.resumed.values()))
    if report.failures:
        # Every other suite was served; failing the run makes the scheduler retry it (the same
        # window's deduplication ids keep the served suites' messages from being sent twice).
        logger.error("reconcile failed for some suites", failures=report.failures)
        raise ReconcileIncompleteError(f"reconcile failed for suites {sorted(report.failures)}")
    return {"requested": report.requested, "resumed": report.resumed, "orphans": report.orphans}
