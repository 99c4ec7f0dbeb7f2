"""Client-side encryption of one credential with AWS KMS, bound to where it is stored.

Why client-side: a table's encryption at rest protects the disks, not the data from
anyone who may read the table. A value sealed here needs ``kms:Decrypt`` on the stack's
key as well, and its *encryption context* (suite, corp or journal entry, purpose) is
authenticated with it: a ciphertext copied to another item does not decrypt. A
permanent code is far below KMS's 4 KiB limit for direct ``Encrypt``, so no data key
and no cipher code of ours is involved. The plaintext never reaches a log or an
exception: a failure names the operation and AWS's error code only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from authsync.aws.credentials import error_code
from authsync.aws.retrying import is_transient

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

__all__ = ["KmsSealer", "SealError"]


class SealError(RuntimeError):
    """KMS refused or failed to seal or open a value (its message names no value)."""

    def __init__(self, operation: str, code: str, *, transient: bool) -> None:
        super().__init__(f"KMS {operation} failed ({code or 'no answer'})")
        self.operation = operation
        self.code = code
        self.transient = transient


class KmsSealer:
    """``seal``/``open`` one text value under ``key_id`` with an encryption context."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, plaintext: str, context: Mapping[str, str]) -> bytes:
        failure: tuple[str, bool] | None = None
        try:
            answer = self._client.encrypt(
                KeyId=self._key_id, Plaintext=plaintext.encode("utf-8"), EncryptionContext=dict(context)
            )
        except (ClientError, BotoCoreError) as exc:
            failure = (error_code(exc) or type(exc).__name__, is_transient(exc))
        if failure is not None:
            raise SealError("Encrypt", failure[0], transient=failure[1])
        return bytes(answer["CiphertextBlob"])

    def open(self, blob: bytes, context: Mapping[str, str]) -> str:
        failure: tuple[str, bool] | None = None
        try:
            answer = self._client.decrypt(KeyId=self._key_id, CiphertextBlob=blob, EncryptionContext=dict(context))
        except (ClientError, BotoCoreError) as exc:
            failure = (error_code(exc) or type(exc).__name__, is_transient(exc))
        if failure is not None:
            raise SealError("Decrypt", failure[0], transient=failure[1])
        return bytes(answer["Plaintext"]).decode("utf-8")
