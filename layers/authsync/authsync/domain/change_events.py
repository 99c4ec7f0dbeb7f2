"""What the provider's other systems hear: typed change events derived from one stored change (no AWS).

Issue #12 item 1. A change is the corps table's state item before and after one write, as a
DynamoDB stream record carries it (``OLD_IMAGE``/``NEW_IMAGE`` read with
:func:`authsync.aws.snapshot_items.read_state`): events are derived from what was *stored*, never
from what a function meant to store, so a writer that crashes after its write loses no event and
one that retries a write that changed nothing publishes none.

Rules (each event once per stored change; the ``idempotency_key`` names the change, so a
redelivered stream record or a retried publish carries the same key and consumers drop it):

* ``Corp Installed``: the corp becomes *installed* -- active, with auth info fetched since its
  (re)activation -- when it was not before. Key: the activation count.
* ``Corp Authorization Changed``: an installed corp's auth info got a new version; ``changes``
  is the field-level diff of the stored documents (volatile fields left out, as in the versions).
* ``Corp Verification Changed``: the derived verification (主体验证, the 微信客服 customer cap)
  of an installed corp changed: its old and new values are in ``changes``.
* ``Corp Chatdata Changed``: an active corp's chatdata got a new version (its first one too:
  that is when 数据与智能专区 becomes known); the summary's old and new values in ``changes``.
* ``Corp Cancelled``: the corp was active and is now cancelled. Key: the cancellation count.
* ``Corp License Changed`` / ``Corp Order Changed``: an active corp's license (接口调用许可) or
  paid-app orders (应用版本付费) section got a new version (its first one too); ``changes`` is the
  field-level diff of the summary and of the stored document (the license's ``account_list`` is
  counted in the summary, not listed: it grows with the corp and lives in pages beside the snapshot).

``detail`` never holds a secret: the stored documents have none (:func:`authsync.wecom.authinfo.strip_secrets`),
and only derived state, versions and diffs are carried.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from authsync.domain.corp_state import CorpState
from authsync.domain.diff import Change, diff
from authsync.domain.snapshot_rules import comparable

__all__ = ["SOURCE", "ChangeEvent", "DetailType", "EventDetail", "FieldChange", "derive_events", "event_schema"]

SOURCE = "wecom-authsync"
"""The events' ``source`` on the bus."""

VERIFICATION_FIELDS = ("verified", "customer_cap", "corp_type", "verified_end_time", "verification_may_have_lapsed")
"""What a verification change is about (``evaluated_at`` and the install facts are not changes)."""


class DetailType(enum.StrEnum):
    INSTALLED = "Corp Installed"
    AUTHORIZATION_CHANGED = "Corp Authorization Changed"
    VERIFICATION_CHANGED = "Corp Verification Changed"
    CHATDATA_CHANGED = "Corp Chatdata Changed"
    LICENSE_CHANGED = "Corp License Changed"
    ORDER_CHANGED = "Corp Order Changed"
    CANCELLED = "Corp Cancelled"


class FieldChange(BaseModel):
    """One field-level difference (``old`` None: added; ``new`` None: removed)."""

    model_config = ConfigDict(frozen=True)

    path: str
    op: str = Field(pattern="^(added|removed|changed)$")
    old: Any = None
    new: Any = None


class EventDetail(BaseModel):
    """The ``detail`` of every change event (one schema per detail-type under ``events/schemas/``)."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str = Field(description="The same for every delivery of one stored change: drop repeats")
    suite_id: str
    corp_id: str
    open_corpid: str | None = Field(
        default=None, description="The corp id as this provider sees it after WeCom's ID encryption, when known"
    )
    status: str = Field(description="active or cancelled, after the change")
    occurred_at: float = Field(description="When the change was stored (epoch seconds)")
    versions: dict[str, int] = Field(
        description="Snapshot version per kind after the change (auth_info, chatdata, license, orders)"
    )
    verification: dict[str, Any] | None = Field(
        default=None, description="Derived 主体验证 state: verified, customer_cap (None = unlimited), ..."
    )
    chatdata: dict[str, Any] | None = Field(default=None, description="数据与智能专区 summary: authorized, editions")
    edition: dict[str, Any] | None = Field(
        default=None, description="Paid edition from get_auth_info's edition_info (None: a free app, or not read yet)"
    )
    license: dict[str, Any] | None = Field(
        default=None, description="接口调用许可 summary: license_status, trial end, active and purchased accounts"
    )
    orders: dict[str, Any] | None = Field(default=None, description="Paid-app orders summary: counts, the latest order")
    changes: list[FieldChange] = Field(default_factory=list, description="What changed, field by field")


class ChangeEvent(BaseModel):
    """One event for the bus: ``source``, ``detail-type`` and ``detail``."""

    model_config = ConfigDict(frozen=True)

    detail_type: DetailType
    detail: EventDetail

    def entry(self, bus_name: str) -> dict[str, Any]:
        """A PutEvents entry (``Detail`` as JSON text)."""
        return {
            "Source": SOURCE,
            "DetailType": self.detail_type.value,
            "Detail": self.detail.model_dump_json(),
            "EventBusName": bus_name,
        }


def derive_events(old: CorpState | None, new: CorpState | None) -> list[ChangeEvent]:
    """The events one stored change means: ``old`` and ``new`` are the state before and after (None: absent)."""
    if new is None:  # the tombstone expired (TTL) or was deleted: nothing the corp did
        return []
    events: list[ChangeEvent] = []

    def add(detail_type: DetailType, key: str, changes: list[Change] | None = None) -> None:
        detail = _detail(new, f"{new.suite_id}/{new.corp_id}/{key}", changes or [])
        events.append(ChangeEvent(detail_type=detail_type, detail=detail))

    was_active = old is not None and old.active
    if not new.active:
        if was_active:
            add(DetailType.CANCELLED, f"cancelled/{new.cancellations}")
        return events
    was_installed = old is not None and _installed(old)
    if _installed(new) and not was_installed:
        add(DetailType.INSTALLED, f"installed/{new.activations}")
    elif was_installed and old is not None:
        if new.auth_info_version > old.auth_info_version:
            changes = _document_diff("auth_info", old, new)
            if changes:
                add(DetailType.AUTHORIZATION_CHANGED, f"auth_info/{new.auth_info_version}", changes)
        before, after = _verification(old.verification), _verification(new.verification)
        if before != after:
            add(DetailType.VERIFICATION_CHANGED, f"verification/{new.auth_info_version}", diff(before, after))
    # Within one activation, a new chatdata version; a re-install's first fetch is new again.
    previous = old if was_active and old is not None and old.activations == new.activations else None
    if _since_activation(new, "chatdata") > (_since_activation(previous, "chatdata") if previous else 0):
        before_chat = (previous.chatdata_summary if previous is not None else None) or {}
        changes = diff(before_chat, new.chatdata_summary or {})
        add(DetailType.CHATDATA_CHANGED, f"chatdata/{new.chatdata_version}", changes)
    for kind, detail_type in ENTITLEMENT_KINDS:
        version = _since_activation(new, kind)
        if version > (_since_activation(previous, kind) if previous else 0):
            add(detail_type, f"{kind}/{version}", _entitlement_diff(kind, previous, new))
    return events


ENTITLEMENT_KINDS = (("license", DetailType.LICENSE_CHANGED), ("orders", DetailType.ORDER_CHANGED))
PAGED_LISTS = {"license": "account_list"}
"""Lists kept in pages beside the snapshot: the state item holds a reference, so they are not diffed here."""


def _entitlement_diff(kind: str, old: CorpState | None, new: CorpState) -> list[Change]:
    """The summary's changes, then the document's (without its paged list)."""

    def parts(state: CorpState | None) -> tuple[dict[str, Any], dict[str, Any]]:
        if state is None:
            return {}, {}
        part = state.kind(kind)
        document = {k: v for k, v in comparable(kind, part.document or {}).items() if k != PAGED_LISTS.get(kind)}
        summary = (part.derived or {}).get(kind)
        return (summary if isinstance(summary, dict) else {}), document

    (old_summary, old_document), (new_summary, new_document) = parts(old), parts(new)
    summary_changes = [replace(c, path=f"summary.{c.path}") for c in diff(old_summary, new_summary)]
    return summary_changes + diff(old_document, new_document)


def _since_activation(state: CorpState, kind: str) -> int:
    """The kind's version if the corp is active and the kind was fetched since it was (re)activated, else 0."""
    part = state.kind(kind)
    fetched = part.fetched_at
    if not state.active or fetched is None or fetched < (state.activated_at or 0):
        return 0
    return part.version


def _installed(state: CorpState) -> bool:
    """Active, with auth info fetched since it was (re)activated: something to announce."""
    return _since_activation(state, "auth_info") > 0


def _verification(verification: dict[str, Any] | None) -> dict[str, Any]:
    return {name: (verification or {}).get(name) for name in VERIFICATION_FIELDS}


def _document_diff(kind: str, old: CorpState, new: CorpState) -> list[Change]:
    before, after = old.kind(kind).document, new.kind(kind).document
    return diff(comparable(kind, before or {}), comparable(kind, after or {}))


def _detail(state: CorpState, key: str, changes: list[Change]) -> EventDetail:
    return EventDetail(
        idempotency_key=key,
        suite_id=state.suite_id,
        corp_id=state.corp_id,
        open_corpid=state.open_corpid,
        status=state.status,
        occurred_at=(state.updated_at if state.active else state.cancelled_at) or state.updated_at or 0.0,
        versions={kind: state.kind(kind).version for kind in ("auth_info", "chatdata", "license", "orders")},
        verification=state.verification,
        chatdata=state.chatdata_summary,
        edition=state.edition,
        license=state.license_summary,
        orders=state.orders_summary,
        changes=[FieldChange(**change.to_json()) for change in changes],
    )


def event_schema(detail_type: DetailType) -> dict[str, Any]:
    """The JSON schema of one detail-type's events as the bus delivers them (``events/schemas/``)."""
    detail = EventDetail.model_json_schema()
    definitions = detail.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": detail_type.value,
        "description": f"An EventBridge event from {SOURCE} (authsync/domain/change_events.py).",
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"const": SOURCE},
            "detail-type": {"const": detail_type.value},
            "detail": detail,
        },
        "$defs": definitions,
    }
