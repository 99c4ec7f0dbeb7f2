"""token-refresh (scheduled, every 10 minutes): renews suite and corp tokens inside their window.

The renewal window (10 minutes before expiry) matches the schedule, so tokens are
renewed here rather than on a request path; the lease makes it single-flight with the
fetch functions. Each suite and corp is handled on its own (one suite without a ticket stops
nothing else); failures are counted in total (``TokenRenewalFailures``, alarmed) and per suite
(``SuiteTokenRefreshFailures`` with a ``suite_id`` dimension). Settings, clients and the
pipeline are built at import (Lambda's init phase).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.observability import CREDENTIAL_FAILURES, metric_hooks
from authsync.app.schedules import renew_tokens
from authsync.settings import TokenRefreshSettings, load
from authsync.wiring import build_token_refresh

logger = Logger()
metrics = Metrics()
settings = load(TokenRefreshSettings, on_error=logger.error)
refresh = build_token_refresh(settings, hooks=metric_hooks(metrics))
pipeline = refresh.pipeline


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = renew_tokens(pipeline.tokens, refresh.due, settings.suite_ids)
    failures = sum(report.failed.values()) + len(report.suite_failures)
    if failures:
        logger.warning("tokens checked with failures", **asdict(report))
    else:
        logger.info("tokens checked", **asdict(report))
    metrics.add_metric(name="TokenChecks", unit=MetricUnit.Count, value=report.suites + report.corps)
    metrics.add_metric(name="TokenRenewalFailures", unit=MetricUnit.Count, value=failures)  # alarmed
    for reason, name in CREDENTIAL_FAILURES.items():  # KMS failing, a tampered vault item: alarmed on their own
        if report.failed.get(reason):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=report.failed[reason])
    for suite_id in sorted({*report.suite_failures, *report.corp_failures}):
        per_suite = report.corp_failures.get(suite_id, 0) + (suite_id in report.suite_failures)
        with single_metric(name="SuiteTokenRefreshFailures", unit=MetricUnit.Count, value=per_suite) as metric:
            metric.add_dimension(name="suite_id", value=suite_id)
    return asdict(report)
