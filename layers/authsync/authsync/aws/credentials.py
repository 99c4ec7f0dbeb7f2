"""Where credentials live in Secrets Manager, and how they are written without regressions.

Names (``<Stage>`` from the stack; prefixes come from the functions' environment):

* ``wecom-authsync/<Stage>/suites/<suite_id>/config``        suite configuration (operator-written)
* ``wecom-authsync/<Stage>/suites/<suite_id>/ticket``        newest suite_ticket (callback-ingest)
* ``wecom-authsync/<Stage>/suites/<suite_id>/suite-token``   suite_access_token
* ``wecom-authsync/<Stage>/corps/<suite_id>/<corp_id>/permanent-code``
* ``wecom-authsync/<Stage>/corps/<suite_id>/<corp_id>/access-token``

Secrets Manager has no conditional put, but moving the ``AWSCURRENT`` label with
``RemoveFromVersionId`` fails if another writer moved it first: a compare-and-swap.
:class:`ForwardOnlySecrets` writes *stage a new version, then swap the label from the
version we compared against*; losing the swap means re-read and decide again, so a
value judged older than the stored one (a ticket's TimeStamp, a token's issue time)
never replaces it, whatever the interleaving of Lambda instances.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

__all__ = [
    "CredentialReader",
    "CredentialWriter",
    "ForwardOnlySecrets",
    "SecretConflictError",
    "SecretNames",
    "SecretReader",
    "WriteOutcome",
    "WriteResult",
    "current_secret",
    "error_code",
    "secret_names",
]

_INCOMING = "INCOMING"
_ATTEMPTS = 5


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ``ClientError`` (or of one wrapped as ``__context__``)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return error_code(exc.__context__) if exc is not None and exc.__context__ is not exc else ""


class CredentialReader(Protocol):
    """Cached reads of credential documents (:class:`SecretReader`, :class:`authsync.aws.vault.VaultReader`)."""

    def read(self, name: str, *, force: bool = False) -> dict[str, Any] | None: ...
    def forget(self, name: str) -> None: ...


class CredentialWriter(Protocol):
    """Forward-only credential documents (:class:`ForwardOnlySecrets`, :class:`authsync.aws.vault.CorpVault`)."""

    def read(self, name: str) -> tuple[str, dict[str, Any]] | None: ...
    def write(
        self,
        name: str,
        document: dict[str, Any],
        is_newer: Callable[[dict[str, Any], dict[str, Any]], bool],
        *,
        probably_new: bool = False,
    ) -> WriteResult: ...
    def delete(self, name: str, *, keep: Callable[[dict[str, Any]], bool] | None = None) -> bool:
        """Delete ``name`` unless ``keep(stored)`` says the stored document must stay; whether it was deleted."""
        ...


class SecretReader:
    """JSON secrets through Powertools' cache, with per-name invalidation.

    Powertools can only clear its whole cache; after this container deletes or rewrites a
    secret, :meth:`forget` makes just that name's next read bypass the cache.
    AWSCURRENT is named explicitly, as in :meth:`ForwardOnlySecrets.read`.
    """

    def __init__(self, provider: SecretsProvider, *, max_age: int) -> None:
        self._provider = provider
        self._max_age = max_age
        self._stale: set[str] = set()

    def read(self, name: str, *, force: bool = False) -> dict[str, Any] | None:
        """The document, or ``None`` if the secret does not exist (never cached: always asked)."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        force = force or name in self._stale
        try:
            document = self._provider.get(
                name, max_age=self._max_age, transform="json", force_fetch=force, VersionStage="AWSCURRENT"
            )
        except GetParameterError as exc:
            if error_code(exc.__context__) == "ResourceNotFoundException":
                self._stale.discard(name)
                return None
            raise
        self._stale.discard(name)
        return document if isinstance(document, dict) else None

    def forget(self, name: str) -> None:
        self._stale.add(name)


@dataclass(frozen=True, slots=True)
class SecretNames:
    """Where every secret of one stage lives (the only place names are made). Prefixes end with ``/``.

    ``corp_prefix`` is empty for functions that touch no corp credential (callback-ingest,
    ticket-monitor); asking them for a corp secret's name is a programming error.
    """

    suite_prefix: str
    corp_prefix: str = ""

    def config(self, suite_id: str) -> str:
        return f"{self.suite_prefix}{suite_id}/config"

    def ticket(self, suite_id: str) -> str:
        return f"{self.suite_prefix}{suite_id}/ticket"

    def suite_token(self, suite_id: str) -> str:
        return f"{self.suite_prefix}{suite_id}/suite-token"

    def provider_token(self, provider_corpid: str) -> str:
        """One provider_access_token per provider, whichever of its suites asks (⚠️ whether a new one
        voids the previous is undocumented: one shared token cannot make two suites evict each other).
        Named by the provider corpid beside the suites' secrets: no suite secret is called provider-token."""
        return f"{self.suite_prefix}{provider_corpid}/provider-token"

    def permanent_code(self, suite_id: str, corp_id: str) -> str:
        return f"{self._corps()}{suite_id}/{corp_id}/permanent-code"

    def corp_token(self, suite_id: str, corp_id: str) -> str:
        return f"{self._corps()}{suite_id}/{corp_id}/access-token"

    def _corps(self) -> str:
        if not self.corp_prefix:
            raise RuntimeError("no corp secret prefix configured for this function")
        return self.corp_prefix


class WriteOutcome(enum.Enum):
    STORED = "stored"
    NOT_NEWER = "not_newer"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome; for ``NOT_NEWER`` the stored document that won (it may hold secrets: never log it);
    ``replaced`` when a previous value existed."""

    outcome: WriteOutcome
    stored: dict[str, Any] | None = None
    replaced: bool = False

    def __repr__(self) -> str:
        return f"WriteResult(outcome={self.outcome})"


class SecretConflictError(RuntimeError):
    """Lost the compare-and-swap more often than plausible; fail so the caller's retry happens later."""


def current_secret(client: SecretsManagerClient, name: str) -> GetSecretValueResponseTypeDef | None:
    """``GetSecretValue`` of AWSCURRENT, or ``None`` if the secret does not exist.

    AWSCURRENT is named explicitly: it is AWS's default, but moto's default ignores
    label moves made with UpdateSecretVersionStage.
    """
    try:
        return client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


class ForwardOnlySecrets:
    """JSON documents in Secrets Manager that only ever move forward."""

    def __init__(self, client: SecretsManagerClient, *, description: str) -> None:
        self._client = client
        self._description = description

    def read(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """``(version_id, document)`` of AWSCURRENT, or ``None`` if the secret does not exist."""
        current = current_secret(self._client, name)
        if current is None:
            return None
        document: dict[str, Any] = json.loads(current["SecretString"])
        return current["VersionId"], document

    def write(
        self,
        name: str,
        document: dict[str, Any],
        is_newer: Callable[[dict[str, Any], dict[str, Any]], bool],
        *,
        probably_new: bool = False,
    ) -> WriteResult:
        """Store ``document`` unless ``is_newer(document, stored)`` is false for what is stored.

        ``probably_new``: the caller just saw no such secret, so try creating it first
        (if someone else created it meanwhile, this falls back to compare-and-swap).
        """
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        if probably_new and self._create(name, text):
            return WriteResult(WriteOutcome.STORED)
        for _ in range(_ATTEMPTS):
            current = self.read(name)
            if current is None:
                if self._create(name, text):
                    return WriteResult(WriteOutcome.STORED)
                continue  # someone created it first: compare against theirs
            version_id, stored = current
            if not is_newer(document, stored):
                return WriteResult(WriteOutcome.NOT_NEWER, stored)
            staged = self._client.put_secret_value(SecretId=name, SecretString=text, VersionStages=[_INCOMING])
            # (a NOT_NEWER answer above carries what won; a STORED one below replaced ``stored``)
            try:
                self._client.update_secret_version_stage(
                    SecretId=name,
                    VersionStage="AWSCURRENT",
                    MoveToVersionId=staged["VersionId"],
                    RemoveFromVersionId=version_id,
                )
            except ClientError as exc:
                if error_code(exc) != "InvalidParameterException":
                    raise
                continue  # another writer moved AWSCURRENT since we read it
            return WriteResult(WriteOutcome.STORED, replaced=True)
        raise SecretConflictError("secret write kept losing the compare-and-swap")

    def delete(self, name: str, *, keep: Callable[[dict[str, Any]], bool] | None = None) -> bool:
        """Delete at once (no recovery window): used when WeCom says the data must go.

        ⚠️ ``keep`` is checked on a read before the delete: Secrets Manager has no conditional
        delete, so a write landing between the two is deleted too (the vault's delete is atomic).
        """
        if keep is not None:
            found = self.read(name)
            if found is None:
                return False
            if keep(found[1]):
                return False
        try:
            self._client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def _create(self, name: str, text: str) -> bool:
        try:
            self._client.create_secret(Name=name, SecretString=text, Description=self._description)
        except ClientError as exc:
            if error_code(exc) == "ResourceExistsException":
                return False
            raise
        return True


def secret_names(client: SecretsManagerClient, prefix: str) -> Iterator[str]:
    """The names of every secret whose name starts with ``prefix`` (ListSecrets, paged; no value is read)."""
    for page in client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}]):
        for secret in page.get("SecretList", []):
            name = secret.get("Name", "")
            if name.startswith(prefix):  # the filter matches a prefix of any word of the name, too
                yield name


class SecretCodeHolders:
    """The corps of a suite that hold a permanent code, from the secrets' names (ListSecrets; no value is read).

    Reconcile uses it to find a corp whose code was stored but whose state never was: an exchange
    that could not be journaled while DynamoDB was down keeps its code here first.
    """

    def __init__(self, client: SecretsManagerClient, names: SecretNames) -> None:
        self._client = client
        self._names = names

    def corps(self, suite_id: str) -> Iterator[str]:
        prefix, _, suffix = self._names.permanent_code(suite_id, "\0").partition("\0")
        for name in secret_names(self._client, prefix):
            corp_id = name[len(prefix) : -len(suffix)] if name.endswith(suffix) else ""
            if corp_id and "/" not in corp_id:
                yield corp_id
