"""The composition root: every function's objects, built from its settings, and the only place that creates clients.

A handler calls one ``build_*`` at import, so the AWS clients, the HTTP session and the
configuration exist before the first request (Lambda's init phase: full CPU, and not on
WeCom's one-second clock for an already-initialised container). Endpoints come from the
standard AWS configuration (``AWS_ENDPOINT_URL`` locally), never from code paths that
exist only for local runs. Clients come from one botocore session per container, not
from boto3 (see :func:`_client`). Modules a function does not use are imported here
lazily, inside its own builder.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authsync.app.broker import TokenBroker
    from authsync.app.change_publisher import ChangePublisher
    from authsync.app.chatdata_sync import ChatdataSync
    from authsync.app.ingest import CallbackIngestor
    from authsync.app.schedules import CodeHolders, DueTokens
    from authsync.app.sync import AuthorizationSync
    from authsync.aws.credentials import CredentialReader, CredentialWriter
    from authsync.aws.inbox import DynamoInbox
    from authsync.aws.journal import PendingExchanges
    from authsync.aws.queues import SqsVisibility
    from authsync.aws.snapshots import SnapshotStore
    from authsync.aws.tickets import TicketStore
    from authsync.aws.tokens import PermanentCodes, Tokens
    from authsync.settings import (
        AuthInfoSettings,
        FetchSettings,
        IngestSettings,
        PublisherSettings,
        QuerySettings,
        ReconcileSettings,
        SuiteSettings,
    )
    from authsync.wecom.client import OnCall, WeComClient

__all__ = [
    "InboxDrain",
    "Pipeline",
    "PipelineHooks",
    "Reconcile",
    "TokenRefresh",
    "build_authorization_sync",
    "build_change_publisher",
    "build_chatdata_sync",
    "build_corp_store",
    "build_credentials",
    "build_idempotency_store",
    "build_inbox_drain",
    "build_ingestor",
    "build_pipeline",
    "build_reconcile",
    "build_ticket_store",
    "build_token_broker",
    "build_token_refresh",
    "build_visibility",
]


@functools.cache
def _session() -> Any:
    """The container's one botocore session: its loaded service models and resolved credentials are shared."""
    import botocore.session

    return botocore.session.get_session()


def _client(service: str, config: dict[str, Any] | None = None) -> Any:
    """One botocore client per service and builder call.

    Created from botocore's session directly, not through boto3: region, credentials and
    ``AWS_ENDPOINT_URL`` come from the environment exactly as with ``boto3.client``, but
    callback-ingest does not pay for importing boto3 (and s3transfer) at init, about 30 ms
    of CPU on WeCom's one-second clock when the container is cold.
    """
    if config is None:
        return _session().create_client(service)
    from botocore.config import Config

    return _session().create_client(service, config=Config(**config))


@dataclass(frozen=True)
class PipelineHooks:
    """Observability callbacks (see :mod:`authsync.app.observability`)."""

    on_wecom_call: OnCall | None = None
    on_token_renewal: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Pipeline:
    tokens: Tokens
    permanent_codes: PermanentCodes
    snapshots: SnapshotStore
    client: WeComClient
    clock: Callable[[], float]


INGEST_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 1.0,
    "retries": {"mode": "standard", "total_max_attempts": 2},
}
"""callback-ingest's AWS calls must fail fast enough for the inbox fallback to answer WeCom in time
(botocore's defaults wait up to 60 s per attempt, five attempts)."""


def build_ingestor(settings: IngestSettings) -> CallbackIngestor:
    """callback-ingest: suite configs (cached), the ticket store, the FIFO publisher and the inbox.

    Nothing here imports boto3 or Powertools parameters (see :mod:`authsync.aws.suites`):
    this builder runs inside the init phase that a cold container's first callback waits for.
    The clients have short timeouts (WeCom's clock); the inbox's is built on first use (it is
    written only when SQS or Secrets Manager failed).
    """
    return _ingestor(settings, lambda service: _client(service, INGEST_CLIENT_CONFIG))


@dataclass(frozen=True)
class InboxDrain:
    """inbox-drain's objects: the ingest that replays and the inbox it replays from."""

    ingestor: CallbackIngestor
    inbox: DynamoInbox


def build_inbox_drain(settings: IngestSettings, *, client: Callable[[str], Any] = _client) -> InboxDrain:
    """inbox-drain (botocore's default timeouts: it has time). ``client`` makes the clients: the operator CLI
    passes its own, for the stack it was pointed at."""
    from authsync.aws.inbox import DynamoInbox

    inbox = DynamoInbox(client("dynamodb"), settings.inbox_table)
    return InboxDrain(_ingestor(settings, client, inbox), inbox)


def _ingestor(
    settings: IngestSettings, client: Callable[[str], Any], inbox: DynamoInbox | None = None
) -> CallbackIngestor:
    from authsync.app.ingest import CallbackIngestor
    from authsync.aws.credentials import SecretNames
    from authsync.aws.inbox import DynamoInbox
    from authsync.aws.queues import SqsEventPublisher
    from authsync.aws.suites import SecretsManagerJson, SuiteDirectory
    from authsync.aws.tickets import TicketStore
    from authsync.aws.unmodelled import DynamoUnmodelledStore

    secrets = client("secretsmanager")
    names = SecretNames(settings.suite_secret_prefix)
    suites = SuiteDirectory(SecretsManagerJson(secrets), names, max_age=settings.suite_config_max_age)
    publisher = SqsEventPublisher(client("sqs"), settings.events_queue_url)
    dynamodb = functools.cache(lambda: client("dynamodb"))  # one client, built on the first write of either table
    kept = inbox if inbox is not None else DynamoInbox(dynamodb, settings.inbox_table)
    unmodelled = (
        DynamoUnmodelledStore(dynamodb, settings.unmodelled_table) if settings.unmodelled_table is not None else None
    )
    return CallbackIngestor(suites, TicketStore(secrets, names.ticket), publisher, inbox=kept, unmodelled=unmodelled)


def build_pipeline(
    settings: FetchSettings,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    hooks: PipelineHooks | None = None,
) -> Pipeline:
    """Tokens, permanent codes, snapshots and the WeCom client shared by the fetch functions.

    ``clock``/``sleep`` are injectable so tests can run on the emulator's timeline; the two
    hooks let a handler turn WeCom calls and token renewals into metrics.
    """
    from authsync.aws.credentials import SecretNames
    from authsync.aws.leases import Leases
    from authsync.aws.snapshots import SnapshotStore
    from authsync.aws.suites import SecretsManagerJson, SuiteDirectory
    from authsync.aws.tickets import TicketStore
    from authsync.aws.tokens import PermanentCodes, Tokens, TokenStore
    from authsync.wecom.client import WeComClient

    secrets_client = _client("secretsmanager")
    dynamodb = _client("dynamodb")
    names = SecretNames(settings.suite_secret_prefix, settings.corp_secret_prefix)
    reader, writer = build_credentials(
        settings, clients={"secretsmanager": secrets_client, "dynamodb": dynamodb}, clock=clock
    )
    client = WeComClient(
        settings.wecom_api_base, clock=clock, sleep=sleep, on_call=hooks.on_wecom_call if hooks else None
    )
    codes = PermanentCodes(reader, writer, names)
    leases = Leases(dynamodb, settings.leases_table, clock=clock)
    store = TokenStore(
        reader, writer, leases, clock=clock, sleep=sleep, on_renew=hooks.on_token_renewal if hooks else None
    )
    tokens = Tokens(
        store=store,
        names=names,
        # The suite configs through the same port as callback-ingest's (the directory is their
        # cache), on the same client: one GetSecretValue per suite and parameters_max_age.
        suites=SuiteDirectory(
            SecretsManagerJson(secrets_client), names, max_age=settings.parameters_max_age, callbacks=False
        ),
        tickets=TicketStore(secrets_client, names.ticket),
        permanent_codes=codes,
        client=client,
    )
    snapshots = SnapshotStore(dynamodb, settings.corps_table, clock=clock)
    return Pipeline(tokens, codes, snapshots, client, clock)


def build_credentials(
    settings: FetchSettings,
    *,
    client: Callable[[str], Any] = _client,
    clients: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[CredentialReader, CredentialWriter]:
    """The credential store for every name: per-suite ones in Secrets Manager, per-corp ones where
    ``CorpCredentialStore`` says (the one line that chooses). ``clients`` are ones the caller already
    built; ``client`` makes the others (the operator CLI and dev tools pass their stack's)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from authsync.aws.credentials import ForwardOnlySecrets, SecretNames, SecretReader

    made = dict(clients or {})

    def get(service: str) -> Any:
        if service not in made:
            made[service] = client(service)
        return made[service]

    reader: CredentialReader = SecretReader(
        SecretsProvider(boto3_client=get("secretsmanager")), max_age=settings.parameters_max_age
    )
    writer: CredentialWriter = ForwardOnlySecrets(
        get("secretsmanager"), description="WeCom credential (wecom-authsync)"
    )
    if settings.corp_credential_store == "DynamoDBKMS":
        # Per-corp names go to the KMS-sealed vault table; suite tokens stay secrets.
        from authsync.aws.kms import KmsSealer
        from authsync.aws.vault import CorpVault, RoutedSecrets, VaultReader

        vault = CorpVault(
            get("dynamodb"), settings.vault_table, KmsSealer(get("kms"), settings.credentials_key), clock=clock
        )
        routed = RoutedSecrets(
            SecretNames(settings.suite_secret_prefix, settings.corp_secret_prefix).corp_prefix,
            corp=(VaultReader(vault, max_age=settings.parameters_max_age), vault),
            other=(reader, writer),
        )
        return routed.reader(), routed.writer()
    return reader, writer


def build_authorization_sync(settings: AuthInfoSettings, **overrides: Any) -> AuthorizationSync:
    """auth-info's use case: the pipeline plus the chatdata queue it feeds."""
    from authsync.app.entitlements import EntitlementSync
    from authsync.app.sync import AuthorizationSync
    from authsync.aws.journal import ExchangeJournal
    from authsync.aws.kms import KmsSealer
    from authsync.aws.queues import SqsChatdataRequests
    from authsync.wecom.entitlements import EntitlementsApi

    pipeline = build_pipeline(settings, **overrides)
    journal = ExchangeJournal(
        _client("dynamodb"),
        settings.journal_table,
        KmsSealer(_client("kms"), settings.credentials_key),
        clock=pipeline.clock,
        sleep=overrides.get("sleep", time.sleep),
    )
    return AuthorizationSync(
        client=pipeline.client,
        tokens=pipeline.tokens,
        permanent_codes=pipeline.permanent_codes,
        snapshots=pipeline.snapshots,
        chatdata=SqsChatdataRequests(_client("sqs"), settings.chatdata_queue_url),
        journal=journal,
        entitlements=EntitlementSync(
            api=EntitlementsApi(pipeline.client),
            tokens=pipeline.tokens,
            snapshots=pipeline.snapshots,
            clock=pipeline.clock,
        ),
        clock=pipeline.clock,
    )


def build_visibility(settings: AuthInfoSettings) -> SqsVisibility:
    """auth-info: how a failed AuthCode message is brought back early (its own queue only)."""
    from authsync.aws.queues import SqsVisibility

    return SqsVisibility(_client("sqs"), settings.events_queue_url)


def build_idempotency_store(settings: AuthInfoSettings) -> Any:
    """auth-info's Powertools idempotency persistence, on the function's own table."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=_client("dynamodb"))


def build_chatdata_sync(settings: FetchSettings, **overrides: Any) -> ChatdataSync:
    from authsync.app.chatdata_sync import ChatdataSync

    pipeline = build_pipeline(settings, **overrides)
    return ChatdataSync(
        client=pipeline.client, tokens=pipeline.tokens, snapshots=pipeline.snapshots, clock=pipeline.clock
    )


def build_token_broker(settings: FetchSettings, **overrides: Any) -> TokenBroker:
    """token-broker: the pipeline's tokens and snapshots, and the leases table as the invalidation rate limit."""
    from authsync.app.broker import TokenBroker
    from authsync.aws.leases import Leases

    pipeline = build_pipeline(settings, **overrides)
    limiter = Leases(_client("dynamodb"), settings.leases_table, clock=pipeline.clock)
    return TokenBroker(tokens=pipeline.tokens, corps=pipeline.snapshots, limiter=limiter, clock=pipeline.clock)


def build_change_publisher(settings: PublisherSettings) -> ChangePublisher:
    """change-publisher: the use case over the stack's bus."""
    from authsync.app.change_publisher import ChangePublisher
    from authsync.aws.change_bus import EventBusPublisher

    return ChangePublisher(EventBusPublisher(_client("events"), settings.event_bus_name))


def build_corp_store(settings: QuerySettings) -> SnapshotStore:
    """corp-query: read-only snapshots."""
    from authsync.aws.snapshots import SnapshotStore

    return SnapshotStore(_client("dynamodb"), settings.corps_table)


@dataclass(frozen=True)
class Reconcile:
    """reconcile's objects: where active corps and open exchanges are listed and where their messages go."""

    snapshots: SnapshotStore
    pending: PendingExchanges
    sqs: Any
    queue_url: str
    suite_ids: tuple[str, ...]
    holders: CodeHolders


def build_reconcile(settings: ReconcileSettings) -> Reconcile:
    from authsync.aws.journal import PendingExchanges
    from authsync.aws.snapshots import SnapshotStore

    dynamodb = _client("dynamodb")
    holders: CodeHolders
    if settings.corp_credential_store == "DynamoDBKMS":
        from authsync.aws.vault import VaultIndex

        holders = VaultIndex(dynamodb, settings.vault_table)  # index keys only: no KMS, no item read
    else:
        from authsync.aws.credentials import SecretCodeHolders, SecretNames

        holders = SecretCodeHolders(_client("secretsmanager"), SecretNames("", settings.corp_secret_prefix))
    return Reconcile(
        SnapshotStore(dynamodb, settings.corps_table),
        PendingExchanges(dynamodb, settings.journal_table),
        _client("sqs"),
        settings.events_queue_url,
        settings.suite_ids,
        holders,
    )


@dataclass(frozen=True)
class TokenRefresh:
    """token-refresh's objects: the pipeline's tokens and where the corp tokens that are due are listed."""

    pipeline: Pipeline
    due: DueTokens


def build_token_refresh(settings: FetchSettings, *, hooks: PipelineHooks | None = None) -> TokenRefresh:
    """With the vault, due tokens come from its expiry index (one query per suite and run); with a
    secret per corp, from the active corps (every token read every run: that store has no index)."""
    from authsync.app.schedules import EveryActiveCorp

    pipeline = build_pipeline(settings, hooks=hooks)
    due: DueTokens
    if settings.corp_credential_store == "DynamoDBKMS":
        from authsync.aws.vault import VaultIndex

        due = VaultIndex(_client("dynamodb"), settings.vault_table)
    else:
        due = EveryActiveCorp(pipeline.snapshots)
    return TokenRefresh(pipeline, due)


def build_ticket_store(settings: SuiteSettings) -> TicketStore:
    """ticket-monitor: read-only tickets."""
    from authsync.aws.credentials import SecretNames
    from authsync.aws.tickets import TicketStore

    return TicketStore(_client("secretsmanager"), SecretNames(settings.suite_secret_prefix).ticket)
