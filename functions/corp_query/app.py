"""corp-query: ``GET /corps/{suite_id}/{corp_id}`` (IAM-authorized), a corp's current state.

A thin handler over :func:`authsync.app.corps.corp_view`; ``?history=1`` adds the version diffs.
The store and its client are built at import (Lambda's init phase).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.corps import corp_view
from authsync.aws.suites import valid_suite_id
from authsync.settings import QuerySettings, load
from authsync.wiring import build_corp_store

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
store = build_corp_store(load(QuerySettings, on_error=logger.error))


@app.get("/corps/<suite_id>/<corp_id>")
def get_corp(suite_id: str, corp_id: str) -> Response[Any]:
    if not (valid_suite_id(suite_id) and valid_suite_id(corp_id)):
        raise NotFoundError("corp not found")
    state = store.get(suite_id, corp_id)
    if state is None:
        metrics.add_metric(name="CorpQueriesNotFound", unit=MetricUnit.Count, value=1)
        raise NotFoundError("corp not found")
    history = (app.current_event.query_string_parameters or {}).get("history") in ("1", "true")
    metrics.add_metric(name="CorpQueries", unit=MetricUnit.Count, value=1)
    return Response(200, content_types.APPLICATION_JSON, corp_view(state, store, history=history))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
