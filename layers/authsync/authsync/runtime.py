"""Builds the fetch pipeline's objects from a function's environment (one place, both functions).

Environment (set by template.yaml): SUITE_SECRET_PREFIX, CORP_SECRET_PREFIX, CORPS_TABLE,
LEASES_TABLE, WECOM_API_BASE, and for auth-info CHATDATA_QUEUE_URL. Clients are created
here, once per container; endpoints come from the standard AWS configuration
(``AWS_ENDPOINT_URL`` locally), never from code paths that exist only for local runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authsync.client import OnCall, WeComClient
from authsync.credentials import CredentialNames, ForwardOnlySecrets, SecretReader
from authsync.snapshots import SnapshotStore
from authsync.suites import SecretNames, SuiteDirectory
from authsync.sync import AuthorizationSync, ChatdataSync, SqsChatdataRequests
from authsync.tickets import TicketStore
from authsync.tokens import Leases, PermanentCodes, Tokens, TokenStore

__all__ = ["Pipeline", "PipelineHooks", "build_authorization_sync", "build_chatdata_sync", "build_pipeline"]


@dataclass(frozen=True)
class PipelineHooks:
    """Observability callbacks (see :mod:`authsync.observability`)."""

    on_wecom_call: OnCall | None = None
    on_token_renewal: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Pipeline:
    tokens: Tokens
    permanent_codes: PermanentCodes
    snapshots: SnapshotStore
    client: WeComClient
    clock: Callable[[], float]


def build_pipeline(
    env: Mapping[str, str] = os.environ,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    hooks: PipelineHooks | None = None,
) -> Pipeline:
    """``clock``/``sleep`` are injectable so tests can run on the emulator's timeline; the two
    hooks let a handler turn WeCom calls and token renewals into metrics."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    secrets_client = boto3.client("secretsmanager")
    dynamodb = boto3.client("dynamodb")
    max_age = int(env.get("POWERTOOLS_PARAMETERS_MAX_AGE", "300"))
    names = CredentialNames(env["SUITE_SECRET_PREFIX"], env["CORP_SECRET_PREFIX"])
    suite_names = SecretNames(env["SUITE_SECRET_PREFIX"])
    provider = SecretsProvider(boto3_client=secrets_client)
    reader = SecretReader(provider, max_age=max_age)
    writer = ForwardOnlySecrets(secrets_client, description="WeCom credential (wecom-authsync)")
    client = WeComClient(
        env.get("WECOM_API_BASE", "https://qyapi.weixin.qq.com"),
        clock=clock,
        sleep=sleep,
        on_call=hooks.on_wecom_call if hooks else None,
    )
    codes = PermanentCodes(reader, writer, names)
    leases = Leases(dynamodb, env["LEASES_TABLE"], clock=clock)
    store = TokenStore(
        reader, writer, leases, clock=clock, sleep=sleep, on_renew=hooks.on_token_renewal if hooks else None
    )
    tokens = Tokens(
        store=store,
        names=names,
        suites=SuiteDirectory(provider, suite_names, max_age=max_age),
        tickets=TicketStore(secrets_client, suite_names.ticket),
        permanent_codes=codes,
        client=client,
    )
    snapshots = SnapshotStore(dynamodb, env["CORPS_TABLE"], clock=clock)
    return Pipeline(tokens, codes, snapshots, client, clock)


def build_authorization_sync(env: Mapping[str, str] = os.environ, **overrides: Any) -> AuthorizationSync:
    import boto3

    pipeline = build_pipeline(env, **overrides)
    return AuthorizationSync(
        client=pipeline.client,
        tokens=pipeline.tokens,
        permanent_codes=pipeline.permanent_codes,
        snapshots=pipeline.snapshots,
        chatdata=SqsChatdataRequests(boto3.client("sqs"), env["CHATDATA_QUEUE_URL"]),
        clock=pipeline.clock,
    )


def build_chatdata_sync(env: Mapping[str, str] = os.environ, **overrides: Any) -> ChatdataSync:
    pipeline = build_pipeline(env, **overrides)
    return ChatdataSync(
        client=pipeline.client, tokens=pipeline.tokens, snapshots=pipeline.snapshots, clock=pipeline.clock
    )
