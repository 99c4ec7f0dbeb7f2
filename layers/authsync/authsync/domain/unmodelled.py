"""Unmodelled callbacks: what of one is kept for a later replay, and how it is counted (no AWS).

A callback whose InfoType this project does not model yet (a new WeCom feature), or a known one
that cannot be routed (a field missing), is acknowledged with ``success`` — never a retry loop —
and kept so it can be replayed once modelled. What is kept must be safe to keep for 30 days:

* **no secrets**: the text of every element whose name looks like a credential (``AuthCode``,
  ``SuiteTicket``, ``PermanentCode``, ``Token``, anything ending in code/ticket/token/secret/
  password/key) is replaced by :data:`REDACTED` in the XML itself, so the document stays XML
  and replayable. The result is parsed again and checked; if anything secret-looking still has
  a value (a CDATA trick, a parse failure), the document is withheld and only its element names
  are kept;
* **bounded**: documents over :data:`MAX_KEPT_BYTES` are cut (on a UTF-8 boundary) and flagged.

Metric dimensions built from a callback's InfoType are bounded too (:class:`BoundedDimension`):
each metric dimension value is a CloudWatch time series, paid for by the month.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from authsync.wecom import safexml

__all__ = [
    "MAX_KEPT_BYTES",
    "REDACTED",
    "UNMODELLED_RETENTION",
    "BoundedDimension",
    "KeptDocument",
    "is_secret_name",
    "keep",
]

UNMODELLED_RETENTION = 30 * 86400
"""How long an unmodelled callback is kept (issue #12): time to model a new InfoType and replay it."""

MAX_KEPT_BYTES = 32 * 1024
"""Largest document kept whole. Real 指令回调 documents are well under 4 KiB; the cap bounds each
write (DynamoDB bills per KiB) against a new InfoType with a large payload."""

REDACTED = "[redacted]"

_SECRET_SUFFIXES = r"(?:code|ticket|token|secret|password|passwd|key)"  # noqa: S105 - names, not a value
_SECRET_NAME = re.compile(rf"[\w.\-]*{_SECRET_SUFFIXES}", re.IGNORECASE)
_SECRET_ELEMENT = re.compile(
    rf"<(?P<name>[\w.\-]*{_SECRET_SUFFIXES})(?P<attrs>\s[^>]*)?>(?P<body>.*?)</(?P=name)\s*>",
    re.IGNORECASE | re.DOTALL,
)


def is_secret_name(name: str) -> bool:
    """Whether an element of this name may hold a credential (AuthCode, SuiteTicket, Token, ...)."""
    return _SECRET_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class KeptDocument:
    """What is stored of one callback (safe to store and to show: no secret values)."""

    key: str
    """SHA-256 of suite and document: WeCom's re-sends of one callback are one item."""
    document: str | None
    """The decrypted XML with secrets redacted, cut to :data:`MAX_KEPT_BYTES`; None if withheld."""
    size: int
    """Bytes of the document as received."""
    truncated: bool
    redacted: tuple[str, ...]
    """Names of the elements whose text was redacted."""
    elements: tuple[str, ...]
    """The document's top-level element names (all that is kept of a withheld document)."""


def keep(suite_id: str, message: bytes, fields: dict[str, Any]) -> KeptDocument:
    """What to store of ``message`` (the decrypted document; ``fields`` as :func:`safexml.parse` read it)."""
    digest = hashlib.sha256(suite_id.encode("utf-8") + b"\x1f" + message).hexdigest()
    elements = tuple(str(name)[:64] for name in list(fields)[:64])
    text = message.decode("utf-8", errors="replace")
    redacted_names: list[str] = []

    def redact(match: re.Match[str]) -> str:
        redacted_names.append(match.group("name"))
        return f"<{match.group('name')}{match.group('attrs') or ''}>{REDACTED}</{match.group('name')}>"

    redacted = _SECRET_ELEMENT.sub(redact, text)
    if not _clean(redacted):
        return KeptDocument(digest, None, len(message), False, tuple(sorted(set(redacted_names))), elements)
    encoded = redacted.encode("utf-8")
    truncated = len(encoded) > MAX_KEPT_BYTES
    if truncated:
        redacted = encoded[:MAX_KEPT_BYTES].decode("utf-8", errors="ignore")
    return KeptDocument(digest, redacted, len(message), truncated, tuple(sorted(set(redacted_names))), elements)


def _clean(document: str) -> bool:
    """Whether ``document`` parses and no secret-looking element in it still holds a value."""
    try:
        fields = safexml.parse(document.encode("utf-8"), max_bytes=len(document.encode("utf-8")) + 1)
    except safexml.XmlError:
        return False
    return _no_secret_values(fields)


def _no_secret_values(value: Any, name: str = "") -> bool:
    if isinstance(value, dict):
        return all(_no_secret_values(child, key) for key, child in value.items())
    if isinstance(value, list):
        return all(_no_secret_values(child, name) for child in value)
    return not is_secret_name(name) or value in ("", REDACTED)


class BoundedDimension:
    """A metric dimension value from an untrusted string, with bounded length and cardinality.

    Each distinct value is a CloudWatch series (paid monthly): values are cut to ``max_length``
    safe characters, and once ``limit`` distinct values were seen by this container, any new
    one is reported as ``other``.
    """

    OTHER = "other"

    def __init__(self, *, limit: int = 50, max_length: int = 64) -> None:
        self._limit = limit
        self._max_length = max_length
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        text = re.sub(r"[^\w.:\-]", "_", (value or "unknown").strip())[: self._max_length] or "unknown"
        if text in self._seen:
            return text
        if len(self._seen) >= self._limit:
            return self.OTHER
        self._seen.add(text)
        return text
