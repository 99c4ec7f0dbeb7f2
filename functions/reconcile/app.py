"""reconcile (scheduled): one reconcile message per active corp onto the auth-events queue.

No WeCom call happens here: auth-info does the fetching, one message at a time, so a
large provider never has one invocation looping WeCom calls over every corp.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.schedules import fan_out_reconcile, suite_ids_from

logger = Logger()
metrics = Metrics()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    import boto3

    from authsync.snapshots import SnapshotStore

    report = fan_out_reconcile(
        SnapshotStore(boto3.client("dynamodb"), os.environ["CORPS_TABLE"]),
        boto3.client("sqs"),
        os.environ["EVENTS_QUEUE_URL"],
        suite_ids_from(os.environ.get("SUITE_IDS", "")),
    )
    logger.info("reconcile requested", requested=report.requested, total=report.total)
    metrics.add_metric(name="ReconcileRequests", unit=MetricUnit.Count, value=report.total)
    return {"requested": report.requested}
