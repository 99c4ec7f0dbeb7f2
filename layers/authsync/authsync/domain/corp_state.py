"""A corp's stored state as the snapshot rules read it: the state item and the version items (no AWS).

:mod:`authsync.domain.snapshot_rules` decides on these; :mod:`authsync.aws.snapshot_items`
reads them from DynamoDB items; :mod:`authsync.app.corps` presents them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authsync.domain.diff import Change

__all__ = ["CorpState", "KindState", "Version"]


@dataclass(frozen=True, slots=True)
class KindState:
    """One kind's part of the state item."""

    version: int = 0
    document: dict[str, Any] | None = field(default=None, repr=False)
    fetched_at: float | None = None
    updated_at: float | None = None
    derived: dict[str, Any] | None = field(default=None, repr=False)
    fetches: int = 0


@dataclass(frozen=True, slots=True)
class CorpState:
    """The state item of a corp: an active corp, or a cancelled corp's tombstone."""

    suite_id: str
    corp_id: str
    status: str
    created_at: float | None
    activated_at: float | None
    updated_at: float | None
    cancelled_at: float | None
    expires_at: int | None
    activations: int
    cancellations: int
    kinds: dict[str, KindState]
    lifecycle_at: float | None = None
    """WeCom's ``TimeStamp`` of the last install, rotation or cancellation applied (rule 0)."""

    @property
    def active(self) -> bool:
        return self.status == "active"

    def kind(self, kind: str) -> KindState:
        return self.kinds.get(kind) or KindState()

    @property
    def auth_info_version(self) -> int:
        return self.kind("auth_info").version

    @property
    def auth_info_fetched_at(self) -> float | None:
        return self.kind("auth_info").fetched_at

    @property
    def chatdata_version(self) -> int:
        return self.kind("chatdata").version

    @property
    def chatdata_fetched_at(self) -> float | None:
        return self.kind("chatdata").fetched_at

    @property
    def verification(self) -> dict[str, Any] | None:
        """``derived["verification"]`` of the auth_info kind (a dumped :class:`authinfo.Verification`)."""
        return _named(self.kind("auth_info").derived, "verification")

    @property
    def chatdata_summary(self) -> dict[str, Any] | None:
        """``derived["chatdata"]`` of the chatdata kind (a dumped :class:`chatdata.ChatdataSummary`)."""
        return _named(self.kind("chatdata").derived, "chatdata")

    @property
    def edition(self) -> dict[str, Any] | None:
        """``derived["edition"]`` of the auth_info kind: the paid edition (None: a free app, or not fetched)."""
        return _named(self.kind("auth_info").derived, "edition")

    @property
    def open_corpid(self) -> str | None:
        """The corp's open corpid (``derived["ids"]`` of auth_info), when WeCom gave one."""
        value = (_named(self.kind("auth_info").derived, "ids") or {}).get("open_corpid")
        return value if isinstance(value, str) else None

    @property
    def license_summary(self) -> dict[str, Any] | None:
        """``derived["license"]`` of the license kind (:func:`authsync.wecom.entitlements.license_summary`)."""
        return _named(self.kind("license").derived, "license")

    @property
    def orders_summary(self) -> dict[str, Any] | None:
        """``derived["orders"]`` of the orders kind (:func:`authsync.wecom.entitlements.order_summary`)."""
        return _named(self.kind("orders").derived, "orders")

    @property
    def chatdata_authorized(self) -> bool | None:
        """Whether 数据与智能专区 is authorized, per the chatdata summary; None before any chatdata fetch."""
        summary = self.chatdata_summary
        if summary is None or "authorized" not in summary:
            return None
        return bool(summary["authorized"])


def _named(derived: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    value = (derived or {}).get(name)
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Version:
    """A version item: a document as fetched, with its diff from ``diff_base``."""

    kind: str
    version: int
    document: dict[str, Any] = field(repr=False)
    diff: list[Change] = field(repr=False)
    diff_base: int | None
    fetched_at: float
    recorded_at: float
    diff_truncated: bool = False
