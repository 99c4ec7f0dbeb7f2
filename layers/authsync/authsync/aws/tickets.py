"""The newest suite_ticket per suite, kept in Secrets Manager without regressions.

WeCom pushes a ticket every ~10 minutes and it stays valid for 30 (spec §2); a
retried or delayed push may arrive after a newer one, and two Lambda instances may
handle two pushes at once. Writes go through :class:`authsync.aws.credentials.ForwardOnlySecrets`
(a compare-and-swap on the ``AWSCURRENT`` label), so a ticket older than the stored
one (by ``TimeStamp``) never wins, whatever the interleaving.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsync.aws.credentials import ForwardOnlySecrets, SecretConflictError, WriteOutcome

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = ["StoredTicket", "TicketConflictError", "TicketOutcome", "TicketStore"]

TicketConflictError = SecretConflictError
"""Lost the compare-and-swap more often than plausible; the caller should fail so WeCom retries."""


class TicketOutcome(enum.Enum):
    STORED = "stored"
    STALE = "stale"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class StoredTicket:
    """A ticket as stored. ``repr`` hides the ticket itself."""

    ticket: str
    timestamp: int
    received_at: int

    def __repr__(self) -> str:
        return f"StoredTicket(timestamp={self.timestamp}, received_at={self.received_at})"

    def to_document(self) -> dict[str, Any]:
        return {"suite_ticket": self.ticket, "timestamp": self.timestamp, "received_at": self.received_at}

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> StoredTicket:
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
        self._secrets = ForwardOnlySecrets(
            client, description="Newest WeCom suite_ticket (written by wecom-authsync callback-ingest)"
        )
        self._name_for = name_for
        self._clock = clock

    def load(self, suite_id: str) -> StoredTicket | None:
        """The current ticket, or ``None`` if none was ever stored."""
        current = self._secrets.read(self._name_for(suite_id))
        return None if current is None else StoredTicket.from_document(current[1])

    def store(self, suite_id: str, ticket: str, timestamp: int) -> TicketOutcome:
        """Store ``ticket`` unless a ticket with a newer (or equal) ``TimeStamp`` is already stored."""
        incoming = StoredTicket(ticket, timestamp, int(self._clock()))
        written = self._secrets.write(
            self._name_for(suite_id),
            incoming.to_document(),
            # Equal TimeStamps: the same push again, or (vanishingly rare) two tickets in one second: keep the first.
            lambda new, old: int(new["timestamp"]) > int(old["timestamp"]),
        )
        if written.outcome is WriteOutcome.STORED:
            return TicketOutcome.STORED
        stored = StoredTicket.from_document(written.stored or {})
        return (
            TicketOutcome.DUPLICATE if (stored.timestamp, stored.ticket) == (timestamp, ticket) else TicketOutcome.STALE
        )
