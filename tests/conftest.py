"""Shared fixtures: moto as AWS, with queues and tables created from template.yaml."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from authsync_dev.moto_process import linearizable_dynamodb
from authsync_dev.template import Deployment, deploy_data_resources
from authsync_dev.wecom import TEST_SUITE, TestSuite

# Set before any handler module is imported (Powertools reads them at import time).
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "WecomAuthsyncTest")
os.environ.setdefault("POWERTOOLS_DEV", "false")

STACK = "authsync-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty moto AWS account; no real credentials can leak into a test."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(), linearizable_dynamodb():  # DynamoDB is linearizable per item; moto's backend has no locks
        yield


@pytest.fixture
def deployment(aws: None) -> Deployment:
    """The template's data resources (queues, tables) created in moto."""
    return deploy_data_resources(STACK, {"Stage": "dev"})


def put_suite_config(deployment: Deployment, suite: TestSuite = TEST_SUITE, **overrides: object) -> str:
    """Create the suite's config secret, or put a new value into it (an operator fixing it)."""
    prefix = deployment.function_environment("CallbackIngestFunction")["SUITE_SECRET_PREFIX"]
    name = f"{prefix}{suite.suite_id}/config"
    secrets = boto3.client("secretsmanager")
    document = json.dumps({**suite.config(), **overrides})
    try:
        secrets.create_secret(Name=name, SecretString=document)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=name, SecretString=document)
    return name


@pytest.fixture
def suite(deployment: Deployment) -> TestSuite:
    put_suite_config(deployment)
    return TEST_SUITE
