"""token-refresh (scheduled, every 10 minutes): renews suite and corp tokens inside their window.

The renewal window (10 minutes before expiry) matches the schedule, so tokens are
renewed here rather than on a request path; the lease makes it single-flight with the
fetch functions.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.observability import metric_hooks
from authsync.runtime import Pipeline, build_pipeline
from authsync.schedules import renew_tokens, suite_ids_from

logger = Logger()
metrics = Metrics()
tracer = Tracer()


@functools.cache
def pipeline() -> Pipeline:
    return build_pipeline(hooks=metric_hooks(metrics))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    p = pipeline()
    report = renew_tokens(p.tokens, p.snapshots, suite_ids_from(os.environ.get("SUITE_IDS", "")))
    logger.info("tokens checked", **asdict(report))
    metrics.add_metric(name="TokenChecks", unit=MetricUnit.Count, value=report.suites + report.corps)
    if report.failed:
        metrics.add_metric(name="TokenRenewalFailures", unit=MetricUnit.Count, value=sum(report.failed.values()))
    return asdict(report)
