"""ticket-monitor (scheduled, every 5 minutes): each suite's suite_ticket age as a metric.

``OldestSuiteTicketAgeSeconds`` feeds the staleness alarm (30 minutes: WeCom pushes every
10 and a ticket lives 30). A suite with no ticket at all reports a very large age, so a
suite that never received one alarms too; no data at all also alarms (TreatMissingData).
Settings and the client are built at import (Lambda's init phase).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.schedules import ticket_ages
from authsync.settings import SuiteSettings, load
from authsync.wiring import build_ticket_store

logger = Logger()
metrics = Metrics()
settings = load(SuiteSettings, on_error=logger.error)
tickets = build_ticket_store(settings)

NEVER = 10**9
STALE_AFTER = 1800


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ages = ticket_ages(tickets, settings.suite_ids)
    for suite_id, age in ages.items():
        value = NEVER if age is None else age
        with single_metric(name="SuiteTicketAgeSeconds", unit=MetricUnit.Seconds, value=value) as metric:
            metric.add_dimension(name="suite_id", value=suite_id)
        if age is None or age > STALE_AFTER:
            logger.warning("suite_ticket stale", suite_id=suite_id, age_seconds=age)
    if ages:
        oldest = max(NEVER if a is None else a for a in ages.values())
        metrics.add_metric(name="OldestSuiteTicketAgeSeconds", unit=MetricUnit.Seconds, value=oldest)
    return {"ages": ages}
