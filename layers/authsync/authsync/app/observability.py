"""Metrics hooks for the fetch pipeline: WeCom calls and errors by errcode, token renewals.

The pipeline itself knows nothing of Powertools; a handler passes these hooks to
:func:`authsync.wiring.build_pipeline`. Nothing secret reaches a metric: endpoints,
errcodes and the *kind* of token only.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from authsync.wiring import PipelineHooks

__all__ = ["CREDENTIAL_FAILURES", "count_credential_failure", "metric_hooks"]

CREDENTIAL_FAILURES = {"SealError": "CredentialSealFailures", "TamperedCredentialError": "CredentialsTampered"}
"""Failure types of the credential vault → their metric (each alarmed in template.yaml): KMS refused or
failed (unavailable, access denied: the message is retried, nothing is written in plaintext), and a
ciphertext that does not open under its own item's encryption context (moved or altered: tampering)."""


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


def count_credential_failure(metrics: Metrics, error: BaseException) -> str | None:
    """Count ``error`` if it, or what it was raised from, is a credential-store failure; its metric name.

    Matched by type name, so handlers need not import the vault's modules to classify a failure.
    """
    seen: BaseException | None = error
    for _ in range(5):  # the error and the few it may have been raised from
        if seen is None:
            return None
        name = CREDENTIAL_FAILURES.get(type(seen).__name__)
        if name is not None:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
            return name
        seen = seen.__cause__ or seen.__context__
    return None
