"""callback-ingest: the WeCom 指令回调 webhook (``/wecom/callback/{suite_id}``).

A thin handler: it reads the HTTP request, sets up observability, calls one method
of :class:`authsync.ingest.CallbackIngestor` and maps domain errors to responses.
WeCom gives us one second, so settings and clients are built at import (Lambda's init
phase), once per container; a bad environment fails the init with one log line.

No Powertools ``Tracer``: it needs the X-Ray SDK, which the layer does not ship
(README, "Tracing"); ``Tracing: Active`` in the template still records every
invocation in X-Ray.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.ingest import CallbackRejected, IngestResult
from authsync.settings import IngestSettings, load
from authsync.wiring import build_ingestor

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
ingestor = build_ingestor(load(IngestSettings, on_error=logger.error))

_PARAMETERS = ("msg_signature", "timestamp", "nonce", "echostr")
TEXT = "text/plain; charset=utf-8"


def query_parameters() -> dict[str, str]:
    """The callback's query parameters, URL-decoded once (spec §1.2).

    Read from ``rawQueryString`` with ``unquote`` rather than form decoding, so a raw
    ``+`` in base64 stays a ``+``. A repeated protocol parameter is rejected.
    """
    event = app.current_event
    raw = event.raw_query_string
    if not raw:
        return {k: v for k, v in (event.query_string_parameters or {}).items() if k in _PARAMETERS}
    params: dict[str, str] = {}
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        name = unquote(name)
        if name not in _PARAMETERS:
            continue
        if name in params:
            raise CallbackRejected(400, "duplicate_parameter", name)
        params[name] = unquote(value)
    return params


def request_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "body_encoding", "body is not valid base64") from None
    return body.encode("utf-8")


@app.get("/wecom/callback/<suite_id>")
def verify_url(suite_id: str) -> Response[str]:
    plaintext = ingestor.verify_url(suite_id, query_parameters())
    logger.info("callback url verified", suite_id=suite_id)
    metrics.add_metric(name="UrlVerifications", unit=MetricUnit.Count, value=1)
    return Response(status_code=200, content_type=TEXT, body=plaintext)


@app.post("/wecom/callback/<suite_id>")
def receive_callback(suite_id: str) -> Response[str]:
    result: IngestResult = ingestor.receive(suite_id, query_parameters(), request_body())
    logger.info(
        "callback accepted",
        suite_id=suite_id,
        kind=result.kind,
        outcome=result.outcome.value,
        corp_id=result.corp_id,
        dedup_id=result.dedup_id,
    )
    metrics.add_metric(name="CallbacksAccepted", unit=MetricUnit.Count, value=1)
    with single_metric(name="CallbacksByKind", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="kind", value=result.kind)
    return Response(status_code=200, content_type=TEXT, body="success")


@app.exception_handler(CallbackRejected)  # type: ignore[untyped-decorator]
def rejected(exc: CallbackRejected) -> Response[str]:
    logger.warning("callback rejected", status=exc.status, reason=exc.reason, detail=exc.detail, suite_id=_path_suite())
    metrics.add_metric(name="CallbacksRejected", unit=MetricUnit.Count, value=1)
    with single_metric(name="CallbacksRejectedByReason", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="reason", value=exc.reason)
    return Response(status_code=exc.status, content_type=TEXT, body=exc.reason)


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def failed(exc: Exception) -> Response[str]:
    # Not the client's fault (Secrets Manager, SQS, configuration): 5xx so WeCom retries.
    logger.exception("callback failed", error_type=type(exc).__name__, suite_id=_path_suite())
    metrics.add_metric(name="CallbacksFailed", unit=MetricUnit.Count, value=1)
    return Response(status_code=503, content_type=TEXT, body="temporarily_unavailable")


def _path_suite() -> str:
    params = app.current_event.path_parameters or {}
    return str(params.get("suite_id", ""))[:64]


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
