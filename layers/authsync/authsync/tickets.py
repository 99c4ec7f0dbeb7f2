"""The newest suite_ticket per suite, kept in Secrets Manager without regressions.

WeCom pushes a ticket every ~10 minutes and it stays valid for 30 (spec §2); a
retried or delayed push may arrive after a newer one, and two Lambda instances may
handle two pushes at once. Secrets Manager has no conditional put, but moving the
``AWSCURRENT`` label with ``RemoveFromVersionId`` is a compare-and-swap: it fails if
another writer moved the label first. So a write is *stage new version → swap the
label from the version we compared against*; losing the swap means re-read and
compare again. A ticket older than the stored one (by ``TimeStamp``) never wins.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = ["StoredTicket", "TicketConflictError", "TicketOutcome", "TicketStore"]

_INCOMING = "INCOMING"
# Reads name AWSCURRENT explicitly: it is the default in AWS, but moto's default ignores
# label moves made with UpdateSecretVersionStage.
_ATTEMPTS = 5


class TicketOutcome(enum.Enum):
    STORED = "stored"
    STALE = "stale"
    DUPLICATE = "duplicate"


class TicketConflictError(RuntimeError):
    """Lost the compare-and-swap more often than plausible; the caller should fail so WeCom retries."""


@dataclass(frozen=True, slots=True)
class StoredTicket:
    """A ticket as stored. ``repr`` hides the ticket itself."""

    ticket: str
    timestamp: int
    received_at: int

    def __repr__(self) -> str:
        return f"StoredTicket(timestamp={self.timestamp}, received_at={self.received_at})"

    def to_json(self) -> str:
        return json.dumps({"suite_ticket": self.ticket, "timestamp": self.timestamp, "received_at": self.received_at})

    @classmethod
    def from_json(cls, text: str) -> StoredTicket:
        data: dict[str, Any] = json.loads(text)
        return cls(str(data["suite_ticket"]), int(data["timestamp"]), int(data.get("received_at", 0)))


class TicketStore:
    """Read and write the suite_ticket secrets named by ``name_for(suite_id)``."""

    def __init__(
        self,
        client: SecretsManagerClient,
        name_for: Callable[[str], str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._name_for = name_for
        self._clock = clock

    def load(self, suite_id: str) -> StoredTicket | None:
        """The current ticket, or ``None`` if none was ever stored."""
        try:
            current = self._client.get_secret_value(SecretId=self._name_for(suite_id), VersionStage="AWSCURRENT")
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return StoredTicket.from_json(current["SecretString"])

    def store(self, suite_id: str, ticket: str, timestamp: int) -> TicketOutcome:
        """Store ``ticket`` unless a ticket with a newer (or equal) ``TimeStamp`` is already stored."""
        name = self._name_for(suite_id)
        incoming = StoredTicket(ticket, timestamp, int(self._clock()))
        for _ in range(_ATTEMPTS):
            try:
                current = self._client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                if self._create(name, incoming):
                    return TicketOutcome.STORED
                continue  # someone created it first: compare against theirs
            stored = StoredTicket.from_json(current["SecretString"])
            if timestamp < stored.timestamp:
                return TicketOutcome.STALE
            if timestamp == stored.timestamp:
                # Same push again, or (vanishingly rare) two tickets in one second: keep the first.
                return TicketOutcome.DUPLICATE if stored.ticket == ticket else TicketOutcome.STALE
            staged = self._client.put_secret_value(
                SecretId=name,
                SecretString=incoming.to_json(),
                VersionStages=[_INCOMING],
            )
            try:
                self._client.update_secret_version_stage(
                    SecretId=name,
                    VersionStage="AWSCURRENT",
                    MoveToVersionId=staged["VersionId"],
                    RemoveFromVersionId=current["VersionId"],
                )
            except ClientError as exc:
                if _code(exc) != "InvalidParameterException":
                    raise
                continue  # another writer moved AWSCURRENT since we read it
            return TicketOutcome.STORED
        raise TicketConflictError("suite_ticket write kept losing the compare-and-swap")

    def _create(self, name: str, incoming: StoredTicket) -> bool:
        try:
            self._client.create_secret(
                Name=name,
                SecretString=incoming.to_json(),
                Description="Newest WeCom suite_ticket (written by wecom-authsync callback-ingest)",
            )
        except ClientError as exc:
            if _code(exc) == "ResourceExistsException":
                return False
            raise
        return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
