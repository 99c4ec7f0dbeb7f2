"""Copy per-corp credentials from Secrets Manager into the corp credential vault, verified, idempotently.

For a stack switching ``CorpCredentialStore`` to ``DynamoDBKMS``: every secret under the corp
prefix (permanent codes and corp tokens) is read, written to the vault with the same forward-only
rule the functions use (a newer document already in the vault is kept), read back from the vault
-- which decrypts it with KMS -- and compared. Only a verified secret is deleted, and only with
``delete_old``. Running it again copies nothing twice. Names and counts are reported; values never.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authsync.aws.credentials import WriteOutcome, current_secret, secret_names
from authsync.aws.vault import CorpVault

__all__ = ["MigrationReport", "migrate"]


@dataclass
class MigrationReport:
    found: int = 0
    copied: int = 0
    already: int = 0
    """Secrets whose document (or a newer one) the vault already held."""
    verified: int = 0
    deleted: int = 0
    failed: list[str] = field(default_factory=list)
    """Names (never values) that could not be copied or verified: their secrets are kept."""


def _newer(new: dict[str, Any], old: dict[str, Any]) -> bool:
    return float(new.get("obtained_at", 0)) > float(old.get("obtained_at", 0))


def migrate(
    secrets: Any,
    vault: CorpVault,
    corp_prefix: str,
    *,
    dry_run: bool = False,
    delete_old: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    report = MigrationReport()
    names = sorted(secret_names(secrets, corp_prefix))
    report.found = len(names)
    for done, name in enumerate(names, 1):
        if progress is not None:
            progress(done, len(names))
        if dry_run:
            continue
        try:
            current = current_secret(secrets, name)
            if current is None:
                continue  # deleted meanwhile (a cancel_auth)
            document: dict[str, Any] = json.loads(current["SecretString"])
            written = vault.write(name, document, _newer)
            if written.outcome is WriteOutcome.STORED:
                report.copied += 1
            else:
                report.already += 1
            back = vault.read(name)
            kept = back[1] if back is not None else None
            if kept is None or not (kept == document or _newer(kept, document)):
                report.failed.append(name)
                continue
        except Exception as exc:  # one credential's failure must not stop the others; its secret is kept
            report.failed.append(f"{name} ({type(exc).__name__})")
            continue
        report.verified += 1
        if delete_old:
            secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            report.deleted += 1
    return report
