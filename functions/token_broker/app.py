"""token-broker: ``GET /corps/{suite_id}/{corp_id}/token`` and ``POST .../token/invalidate`` (IAM-authorized).

A thin handler over :class:`authsync.app.broker.TokenBroker`: it validates the path and body,
maps the broker's typed errors to answers (404 unknown/cancelled/unauthorized corp, 429 an
invalidation inside the corp's window, 503 WeCom unreachable or busy, each with ``Retry-After``
where waiting helps), and logs one line per request naming the corp, the caller's IAM principal
and the outcome, never the token. Token answers carry ``Cache-Control: no-store``. Anything
else is an error (a 500, alarmed). The broker is built at import (Lambda's init phase).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from authsync.app.broker import BrokerToken, BrokerUnavailableError, CorpNotFoundError, InvalidationLimitedError
from authsync.app.observability import count_credential_failure, metric_hooks
from authsync.aws.suites import valid_suite_id
from authsync.settings import FetchSettings, load
from authsync.wiring import build_token_broker

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
broker = build_token_broker(load(FetchSettings, on_error=logger.error), hooks=metric_hooks(metrics))

MAX_TOKEN_LENGTH = 512
"""WeCom's tokens are at most 512 bytes (spec §3); anything longer is not one of ours."""

NO_STORE = {"Cache-Control": "no-store"}


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, body, headers={**NO_STORE, **(headers or {})})


def caller() -> str:
    """The consumer's IAM principal as API Gateway authenticated it (HTTP API v2 ``authorizer.iam``)."""
    context = app.current_event.raw_event.get("requestContext") or {}
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("callerId") or iam.get("accountId") or "unknown")


def _serve(action: str, suite_id: str, corp_id: str, call: Callable[[], BrokerToken]) -> Response[Any]:
    where: dict[str, Any] = {"action": action, "suite_id": suite_id, "corp_id": corp_id, "principal": caller()}
    if not (valid_suite_id(suite_id) and valid_suite_id(corp_id)):
        logger.info("token refused", outcome="not_found", reason="malformed_id", **where)
        metrics.add_metric(name="TokenBrokerNotFound", unit=MetricUnit.Count, value=1)
        return _answer(404, {"message": "corp not found"})
    try:
        token = call()
    except CorpNotFoundError as exc:
        logger.info("token refused", outcome="not_found", reason=str(exc.reason), **where)
        metrics.add_metric(name="TokenBrokerNotFound", unit=MetricUnit.Count, value=1)
        return _answer(404, {"message": "corp not found"})
    except InvalidationLimitedError as exc:
        logger.warning("token invalidation limited", outcome="limited", retry_after=exc.retry_after, **where)
        metrics.add_metric(name="TokenInvalidationsLimited", unit=MetricUnit.Count, value=1)
        return _answer(429, {"message": "invalidated recently"}, {"Retry-After": str(exc.retry_after)})
    except BrokerUnavailableError as exc:
        logger.warning("token unavailable", outcome="unavailable", cause=exc.cause, **where)
        metrics.add_metric(name="TokenBrokerUnavailable", unit=MetricUnit.Count, value=1)
        return _answer(503, {"message": "token unavailable"}, {"Retry-After": str(exc.retry_after)})
    except Exception as exc:  # a 500 (alarmed); KMS failing or a tampered vault item also counted on its own
        logger.exception("token failed", outcome="error", error_type=type(exc).__name__, **where)
        count_credential_failure(metrics, exc)
        raise
    logger.info("token issued", outcome="issued", issue=str(token.issue), expires_at=int(token.expires_at), **where)
    metrics.add_metric(
        name="TokenInvalidations" if action == "invalidate" else "TokensIssued", unit=MetricUnit.Count, value=1
    )
    return _answer(200, token.to_json())


@app.get("/corps/<suite_id>/<corp_id>/token")
def get_token(suite_id: str, corp_id: str) -> Response[Any]:
    return _serve("token", suite_id, corp_id, lambda: broker.token(suite_id, corp_id))


@app.post("/corps/<suite_id>/<corp_id>/token/invalidate")
def invalidate_token(suite_id: str, corp_id: str) -> Response[Any]:
    rejected = _rejected_token(app.current_event.decoded_body)
    if rejected is None:
        logger.info("token invalidation malformed", outcome="bad_request", principal=caller())
        metrics.add_metric(name="TokenBrokerBadRequests", unit=MetricUnit.Count, value=1)
        return _answer(400, {"message": 'expected {"access_token": "<the token WeCom rejected>"}'})
    return _serve("invalidate", suite_id, corp_id, lambda: broker.invalidate(suite_id, corp_id, rejected))


def _rejected_token(body: str | None) -> str | None:
    """The reported token, or None for a malformed body (never echoed: it is a secret)."""
    try:
        document = json.loads(body or "")
    except ValueError:
        return None
    token = document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    return token


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
