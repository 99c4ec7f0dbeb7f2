"""Metrics hooks for the fetch pipeline: WeCom calls and errors by errcode, token renewals.

The pipeline itself knows nothing of Powertools; a handler passes these hooks to
:func:`authsync.wiring.build_pipeline`. Nothing secret reaches a metric: endpoints,
errcodes and the *kind* of token only.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from authsync.wiring import PipelineHooks

__all__ = ["metric_hooks"]


def metric_hooks(metrics: Metrics) -> PipelineHooks:
    """``on_wecom_call`` and ``on_token_renewal`` for :func:`authsync.wiring.build_pipeline`."""

    def on_wecom_call(endpoint: str, errcode: int | None, attempt: int, seconds: float) -> None:
        metrics.add_metric(name="WeComCalls", unit=MetricUnit.Count, value=1)
        if errcode != 0:
            # None: no usable answer (timeout, connection error, HTTP 5xx, malformed body).
            with single_metric(name="WeComErrors", unit=MetricUnit.Count, value=1) as metric:
                metric.add_dimension(name="errcode", value="transport" if errcode is None else str(errcode))

    def on_token_renewal(secret_name: str) -> None:
        kind = "suite" if secret_name.endswith("/suite-token") else "corp"
        metrics.add_metric(name=f"TokenRenewals_{kind}", unit=MetricUnit.Count, value=1)

    return PipelineHooks(on_wecom_call, on_token_renewal)
