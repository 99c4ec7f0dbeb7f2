"""callback-ingest: the WeCom 指令回调 webhook (``/wecom/callback/{suite_id}``).

A thin handler: it reads the HTTP request, sets up observability, calls one method
of :class:`authsync.app.ingest.CallbackIngestor` and maps domain errors to responses.
WeCom gives us one second, so settings and clients are built at import (Lambda's init
phase), once per container; a bad environment fails the init with one log line.

No Powertools event handler: API Gateway has already matched the route (only ``GET`` and
``POST /wecom/callback/{suite_id}`` reach this function, see template.yaml), and importing
``aws_lambda_powertools.event_handler`` costs about 43 ms of CPU at init (its package
imports every resolver, AppSync's with asyncio, and the event data classes) -- on WeCom's
one-second clock when the container is cold. So :func:`lambda_handler` dispatches on the
HTTP API v2 event's method itself and builds the proxy response the resolver built
(``statusCode``, ``body``, ``isBase64Encoded``, ``headers``, ``cookies``); any other method
is a 405.

No Powertools ``Tracer``: it needs the X-Ray SDK, which the layer does not ship
(README, "Tracing"); ``Tracing: Active`` in the template still records every
invocation in X-Ray.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from authsync.app.ingest import CallbackRejected, IngestResult, Outcome
from authsync.domain.unmodelled import BoundedDimension
from authsync.settings import IngestSettings, load
from authsync.wiring import build_ingestor

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
ingestor = build_ingestor(load(IngestSettings, on_error=logger.error))
dimension = BoundedDimension()
"""Metric dimension values from callback kinds (untrusted text): bounded in length and number."""

_PARAMETERS = ("msg_signature", "timestamp", "nonce", "echostr")
TEXT = "text/plain; charset=utf-8"
ALLOWED = "GET, POST"

Event = dict[str, Any]
"""An API Gateway HTTP API (payload format 2.0) event."""


def response(status: int, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The HTTP API proxy response for a plain-text body, shaped as Powertools' resolver shaped it."""
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "headers": {"Content-Type": TEXT, **(headers or {})},
        "cookies": [],
    }


def query_parameters(event: Event) -> dict[str, str]:
    """The callback's query parameters, URL-decoded once (spec §1.2).

    Read from ``rawQueryString`` with ``unquote`` rather than form decoding, so a raw
    ``+`` in base64 stays a ``+``. A repeated protocol parameter is rejected.
    """
    raw = event.get("rawQueryString")
    if not raw:
        return {k: v for k, v in (event.get("queryStringParameters") or {}).items() if k in _PARAMETERS}
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


def request_body(event: Event) -> bytes:
    body: str = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "body_encoding", "body is not valid base64") from None
    return body.encode("utf-8")


def verify_url(event: Event, suite_id: str) -> dict[str, Any]:
    plaintext = ingestor.verify_url(suite_id, query_parameters(event))
    logger.info("callback url verified", suite_id=suite_id)
    metrics.add_metric(name="UrlVerifications", unit=MetricUnit.Count, value=1)
    return response(200, plaintext)


def receive_callback(event: Event, suite_id: str) -> dict[str, Any]:
    result: IngestResult = ingestor.receive(suite_id, query_parameters(event), request_body(event))
    if result.outcome is Outcome.KEPT:
        # SQS or Secrets Manager failed: the request waits in the inbox for inbox-drain, and WeCom
        # gets success (a 5xx may never be re-sent).
        logger.warning("callback kept in the inbox", suite_id=suite_id, kind=result.kind, reason=result.reason)
        metrics.add_metric(name="CallbacksKept", unit=MetricUnit.Count, value=1)
        return response(200, "success")
    if result.outcome in {Outcome.UNMODELLED, Outcome.MALFORMED}:
        return unmodelled(result, suite_id)
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
        metric.add_dimension(name="kind", value=dimension(result.kind))
    return response(200, "success")


def unmodelled(result: IngestResult, suite_id: str) -> dict[str, Any]:
    """A verified callback we cannot act on: kept for a replay (see the store), counted by type, ``success``."""
    malformed = result.outcome is Outcome.MALFORMED
    logger.warning(
        "callback malformed" if malformed else "callback unmodelled",
        suite_id=suite_id,
        info_type=result.kind,
        corp_id=result.corp_id,
        stored=result.stored,
        truncated=result.truncated,
        reason=result.reason,
    )
    metrics.add_metric(name="CallbacksAccepted", unit=MetricUnit.Count, value=1)
    name = "CallbacksMalformed" if malformed else "CallbacksUnmodelled"
    with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="info_type", value=dimension(result.kind))
    if malformed:  # the sum, without the info_type dimension, for MalformedCallbacksAlarm
        metrics.add_metric(name="CallbacksNotRoutable", unit=MetricUnit.Count, value=1)
    if not result.stored:  # UnmodelledCallbacksNotStoredAlarm
        metrics.add_metric(name="CallbacksUnmodelledNotStored", unit=MetricUnit.Count, value=1)
    return response(200, "success")


ROUTES: dict[str, Callable[[Event, str], dict[str, Any]]] = {"GET": verify_url, "POST": receive_callback}
"""``GET`` and ``POST /wecom/callback/{suite_id}``, by method: the path is API Gateway's to match."""


def rejected(exc: CallbackRejected, suite_id: str) -> dict[str, Any]:
    logger.warning("callback rejected", status=exc.status, reason=exc.reason, detail=exc.detail, suite_id=suite_id[:64])
    metrics.add_metric(name="CallbacksRejected", unit=MetricUnit.Count, value=1)
    with single_metric(name="CallbacksRejectedByReason", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="reason", value=exc.reason)
    return response(exc.status, exc.reason, {"Allow": ALLOWED} if exc.status == 405 else None)


def failed(exc: Exception, suite_id: str) -> dict[str, Any]:
    # Not the client's fault, and not even the inbox could keep the request: a 5xx, which WeCom
    # may not re-send (alarmed: CallbackServerErrorsAlarm).
    logger.exception("callback failed", error_type=type(exc).__name__, suite_id=suite_id[:64])
    metrics.add_metric(name="CallbacksFailed", unit=MetricUnit.Count, value=1)
    return response(503, "temporarily_unavailable")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: Event, context: LambdaContext) -> dict[str, Any]:
    suite_id = str((event.get("pathParameters") or {}).get("suite_id", ""))
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", ""))
    try:
        route = ROUTES.get(method)
        if route is None:
            raise CallbackRejected(405, "method_not_allowed", f"{method[:16] or 'no method'} is not {ALLOWED}")
        return route(event, suite_id)
    except CallbackRejected as exc:
        return rejected(exc, suite_id)
    except Exception as exc:
        return failed(exc, suite_id)
