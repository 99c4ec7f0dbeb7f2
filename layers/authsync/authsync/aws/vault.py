"""The corp credential vault: per-corp credentials as KMS-sealed items in one DynamoDB table.

A provider with thousands of corps cannot pay a Secrets Manager secret per permanent code and
per corp token (issue #11: $0.40 a secret-month, ~96 % of the bill). Per-suite credentials stay
in Secrets Manager; what exists per corp lives here, one item per credential, keyed by the same
name the secret would have (:class:`authsync.aws.credentials.SecretNames`), so the rest of the
code -- :class:`~authsync.aws.tokens.PermanentCodes`, :class:`~authsync.aws.tokens.TokenStore` --
is unchanged: :class:`CorpVault` and :class:`VaultReader` have the shapes of
:class:`~authsync.aws.credentials.ForwardOnlySecrets` and
:class:`~authsync.aws.credentials.SecretReader`, and :class:`RoutedSecrets` sends each name to
its store.

Invariants (the same as the secrets'):

* **Only ciphertext is stored.** The JSON document is sealed by :class:`~authsync.aws.kms.KmsSealer`
  under the stack's key with the encryption context ``{purpose, suite_id, corp_id, kind}``: a
  ciphertext copied to another item does not open (:class:`TamperedCredentialError`).
* **Forward-only, compare-and-swap.** A write reads the item, asks ``is_newer(new, stored)``, and
  puts on the condition that the item's ``version`` is still the one it read (or that there is
  none): an older token or code never replaces a newer one, whoever writes concurrently.
* **KMS is asked once per ciphertext.** A container that opened (or sealed) a ciphertext under a
  name keeps the document for those exact bytes: the same bytes under the same encryption context
  can only open to the same document, so a forced re-read, the re-check under a lease or the read
  before a compare-and-swap costs a ``GetItem``, not a ``Decrypt`` (issue #11: KMS was most of a
  corp-month). A ciphertext moved from another item is new bytes for this name: it goes to KMS and
  is refused.
* **No silent fallback.** KMS or DynamoDB failing fails the call (the message is retried);
  nothing is ever written in plaintext or to another store.
* **Two sparse indexes, keys only, never a ciphertext.** A permanent-code item carries
  ``code_suite`` (index :data:`CODES_INDEX`: which corps of a suite hold a code, for reconcile);
  a corp-token item carries ``token_suite`` and ``expires_at`` (index :data:`TOKENS_INDEX`:
  which tokens of a suite expire before a time, for token refresh). Both are read by
  :class:`VaultIndex`, which needs no KMS grant and reads no item.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from authsync.aws.credentials import (
    CredentialReader,
    CredentialWriter,
    SecretConflictError,
    WriteOutcome,
    WriteResult,
    error_code,
)
from authsync.aws.kms import SealError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from authsync.aws.kms import KmsSealer

__all__ = [
    "CODES_INDEX",
    "TOKENS_INDEX",
    "CorpVault",
    "RoutedSecrets",
    "TamperedCredentialError",
    "VaultIndex",
    "VaultReader",
]

PURPOSE = "corp-credential"
CODES_INDEX = "CodesBySuite"
"""Sparse GSI: ``code_suite`` (hash) and ``corp_id`` (range), permanent-code items only, keys only."""
TOKENS_INDEX = "TokensByExpiry"
"""Sparse GSI: ``token_suite`` (hash) and ``expires_at`` (range), corp-token items only, plus ``corp_id``."""
_INDEXED_BY_KIND = {"permanent-code": "code_suite", "access-token": "token_suite"}
Store = tuple[CredentialReader, CredentialWriter]
_ATTEMPTS = 5
_OPENED = 4096
"""Opened ciphertexts a container remembers (least recently used first out): a few hundred bytes each."""


class TamperedCredentialError(RuntimeError):
    """A vault item whose ciphertext does not open under its own encryption context (moved or altered)."""


def context_of(name: str) -> dict[str, str]:
    """``{purpose, suite_id, corp_id, kind}`` from ``<corp prefix><suite>/<corp>/<kind>``."""
    parts = name.rsplit("/", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise ValueError("not a per-corp credential name")
    return {"purpose": PURPOSE, "suite_id": parts[1], "corp_id": parts[2], "kind": parts[3]}


class CorpVault:
    """Per-corp credential documents in ``table`` (key ``pk`` = the credential's name), sealed with KMS."""

    def __init__(
        self, client: DynamoDBClient, table: str, sealer: KmsSealer, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table
        self._sealer = sealer
        self._clock = clock
        self._opened: OrderedDict[tuple[str, bytes], dict[str, Any]] = OrderedDict()

    def read(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """``(version, document)``, or ``None`` if there is no such credential."""
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": name}}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return item["version"]["N"], self._open(name, item["sealed"]["B"])

    def _open(self, name: str, sealed: bytes) -> dict[str, Any]:
        key = (name, hashlib.sha256(sealed).digest())
        known = self._opened.get(key)
        if known is not None:
            self._opened.move_to_end(key)
            return dict(known)
        try:
            text = self._sealer.open(sealed, context_of(name))
        except SealError as exc:
            if exc.code == "InvalidCiphertextException":
                raise TamperedCredentialError(f"vault item {context_of(name)['kind']} does not open here") from None
            raise
        document: dict[str, Any] = json.loads(text)
        self._remember(key, document)
        return dict(document)

    def _remember(self, key: tuple[str, bytes], document: dict[str, Any]) -> None:
        self._opened[key] = dict(document)
        self._opened.move_to_end(key)
        while len(self._opened) > _OPENED:
            self._opened.popitem(last=False)

    def write(
        self,
        name: str,
        document: dict[str, Any],
        is_newer: Callable[[dict[str, Any], dict[str, Any]], bool],
        *,
        probably_new: bool = False,
    ) -> WriteResult:
        """Store ``document`` unless ``is_newer(document, stored)`` is false for what is stored (compare-and-swap)."""
        context = context_of(name)
        sealed = self._sealer.seal(json.dumps(document, separators=(",", ":"), ensure_ascii=False), context)
        current = None if probably_new else self.read(name)
        for _ in range(_ATTEMPTS):
            if current is not None and not is_newer(document, current[1]):
                return WriteResult(WriteOutcome.NOT_NEWER, current[1])
            version = 1 if current is None else int(current[0]) + 1
            item: dict[str, AttributeValueTypeDef] = {
                "pk": {"S": name},
                "sealed": {"B": sealed},
                "version": {"N": str(version)},
                "suite_id": {"S": context["suite_id"]},
                "corp_id": {"S": context["corp_id"]},
                "kind": {"S": context["kind"]},
                "updated_at": {"N": f"{self._clock():.3f}"},
            }
            if "expires_at" in document:  # tokens: their expiry, in the clear, for refresh queries
                item["expires_at"] = {"N": str(int(float(document["expires_at"])))}
            indexed = _INDEXED_BY_KIND.get(context["kind"])
            if indexed is not None and (indexed != "token_suite" or "expires_at" in item):
                item[indexed] = {"S": context["suite_id"]}
            try:
                if current is None:
                    self._client.put_item(
                        TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                    )
                else:
                    self._client.put_item(
                        TableName=self._table,
                        Item=item,
                        ConditionExpression="version = :read",
                        ExpressionAttributeValues={":read": {"N": current[0]}},
                    )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                current = self.read(name)  # another writer won the race: compare against theirs
                continue
            self._remember((name, hashlib.sha256(sealed).digest()), document)
            return WriteResult(WriteOutcome.STORED, replaced=current is not None)
        raise SecretConflictError("vault write kept losing the compare-and-swap")

    def delete(self, name: str, *, keep: Callable[[dict[str, Any]], bool] | None = None) -> bool:
        """Delete the item; with ``keep``, only the version read and found not worth keeping (compare-and-swap):
        a newer document written meanwhile is read again and judged, never deleted unseen."""
        if keep is None:
            answer = self._client.delete_item(TableName=self._table, Key={"pk": {"S": name}}, ReturnValues="ALL_OLD")
            return "Attributes" in answer
        for _ in range(_ATTEMPTS):
            current = self.read(name)
            if current is None or keep(current[1]):
                return False
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": {"S": name}},
                    ConditionExpression="version = :read",
                    ExpressionAttributeValues={":read": {"N": current[0]}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                continue
            return True
        raise SecretConflictError("vault delete kept losing the compare-and-swap")


class VaultIndex:
    """What the vault's sparse indexes tell without opening anything: code holders and tokens due.

    Reads index keys only (no ciphertext, no KMS): reconcile and token refresh list corps here and
    open a credential, if at all, through the stores. The indexes are eventually consistent: a
    credential written a moment ago may be missing, which the next run catches.
    """

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def corps(self, suite_id: str) -> Iterator[str]:
        """Corp ids of the suite that hold a permanent code (the reconcile sweep's code holders)."""
        for item in self._query(CODES_INDEX, "code_suite = :s", {":s": {"S": suite_id}}):
            yield item["corp_id"]["S"]

    def tokens_due(self, suite_id: str, before: float) -> Iterator[str]:
        """Corp ids of the suite whose stored corp token expires before ``before`` (one query, paged)."""
        values: dict[str, AttributeValueTypeDef] = {":s": {"S": suite_id}, ":t": {"N": str(int(before))}}
        for item in self._query(TOKENS_INDEX, "token_suite = :s AND expires_at < :t", values):
            yield item["corp_id"]["S"]

    def _query(
        self, index: str, condition: str, values: dict[str, AttributeValueTypeDef]
    ) -> Iterator[dict[str, AttributeValueTypeDef]]:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table, IndexName=index, KeyConditionExpression=condition, ExpressionAttributeValues=values
        ):
            yield from page.get("Items", [])


class VaultReader:
    """Cached reads for a container (the :class:`~authsync.aws.credentials.SecretReader` contract).

    A document is served from memory for ``max_age`` seconds; :meth:`forget` makes one name's
    next read go to the table (after this container wrote or deleted it). Absence is not cached.
    """

    def __init__(self, vault: CorpVault, *, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._vault = vault
        self._max_age = max_age
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def read(self, name: str, *, force: bool = False) -> dict[str, Any] | None:
        cached = None if force else self._cache.get(name)
        if cached is not None and self._clock() - cached[0] < self._max_age:
            return dict(cached[1])
        found = self._vault.read(name)
        if found is None:
            self._cache.pop(name, None)
            return None
        self._cache[name] = (self._clock(), found[1])
        return dict(found[1])

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)


class RoutedSecrets:
    """Per-corp names (under ``corp_prefix``) to the vault, every other name to Secrets Manager.

    One object serves as both the reader and the writer of :class:`~authsync.aws.tokens.TokenStore`
    and :class:`~authsync.aws.tokens.PermanentCodes`: suite tokens stay secrets, corp ones do not.
    """

    def __init__(
        self,
        corp_prefix: str,
        *,
        corp: Store,
        other: Store,
    ) -> None:
        if not corp_prefix.endswith("/"):
            raise ValueError("corp_prefix must end with '/'")
        self._prefix = corp_prefix
        self._corp = corp
        self._other = other

    def _pick(self, name: str) -> Store:
        return self._corp if name.startswith(self._prefix) else self._other

    def reader(self) -> _RoutedReader:
        return _RoutedReader(self._pick)

    def writer(self) -> _RoutedWriter:
        return _RoutedWriter(self._pick)


class _RoutedReader:
    def __init__(self, pick: Callable[[str], Store]) -> None:
        self._pick = pick

    def read(self, name: str, *, force: bool = False) -> dict[str, Any] | None:
        return self._pick(name)[0].read(name, force=force)

    def forget(self, name: str) -> None:
        self._pick(name)[0].forget(name)


class _RoutedWriter:
    def __init__(self, pick: Callable[[str], Store]) -> None:
        self._pick = pick

    def read(self, name: str) -> tuple[str, dict[str, Any]] | None:
        return self._pick(name)[1].read(name)

    def write(
        self,
        name: str,
        document: dict[str, Any],
        is_newer: Callable[[dict[str, Any], dict[str, Any]], bool],
        *,
        probably_new: bool = False,
    ) -> WriteResult:
        return self._pick(name)[1].write(name, document, is_newer, probably_new=probably_new)

    def delete(self, name: str, *, keep: Callable[[dict[str, Any]], bool] | None = None) -> bool:
        return self._pick(name)[1].delete(name, keep=keep)
