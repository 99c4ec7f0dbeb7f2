"""The read model other services query instead of WeCom: one corp's current authorization.

Built from the snapshot store's state item: status, the 主体验证 status with the 微信客服
customer cap, the authorized agents and their visibility, the 数据与智能专区 editions,
and version numbers. With ``history``, each version's field-level diff (never the
stored documents themselves).
"""

from __future__ import annotations

from typing import Any

from authsync.aws.snapshots import CorpState, Kind, SnapshotStore

__all__ = ["corp_view"]

_CORP_FIELDS = (
    "corp_name",
    "corp_full_name",
    "corp_type",
    "subject_type",
    "corp_scale",
    "corp_industry",
    "corp_sub_industry",
    "corp_user_max",
    "verified_end_time",
)


def _agents(document: dict[str, Any]) -> list[dict[str, Any]]:
    agents = (document.get("auth_info") or {}).get("agent") or []
    out = []
    for agent in agents:
        privilege = agent.get("privilege") or {}
        out.append(
            {
                "agentid": agent.get("agentid"),
                "name": agent.get("name"),
                "auth_mode": agent.get("auth_mode"),
                "is_customized_app": agent.get("is_customized_app"),
                "privilege_level": privilege.get("level"),
                "visible": {k: privilege.get(k, []) for k in ("allow_party", "allow_user", "allow_tag")},
                "shared_from": agent.get("shared_from"),
            }
        )
    return out


VIEW_KINDS: tuple[Kind, ...] = ("auth_info", "chatdata", "license", "orders")
"""The fetched kinds a corp's view reports (``install`` is the grant's context, not a fetch)."""


def corp_view(state: CorpState, store: SnapshotStore | None = None, *, history: bool = False) -> dict[str, Any]:
    """The JSON answer of ``GET /corps/{suite_id}/{corp_id}``."""
    auth_info = state.kind("auth_info")
    document = auth_info.document or {}
    corp_info = document.get("auth_corp_info") or {}
    view: dict[str, Any] = {
        "suite_id": state.suite_id,
        "corp_id": state.corp_id,
        "open_corpid": state.open_corpid,
        "status": state.status,
        "created_at": state.created_at,
        "activated_at": state.activated_at,
        "updated_at": state.updated_at,
        "cancelled_at": state.cancelled_at,
        "corp": {k: corp_info[k] for k in _CORP_FIELDS if k in corp_info},
        "dealer": document.get("dealer_corp_info"),
        "verification": state.verification,
        "agents": _agents(document),
        "chatdata": state.chatdata_summary,
        "edition": state.edition,
        "license": state.license_summary,
        "orders": state.orders_summary,
        "versions": {kind: state.kind(kind).version for kind in VIEW_KINDS},
        "fetched_at": {kind: state.kind(kind).fetched_at for kind in VIEW_KINDS},
    }
    if history and store is not None:
        view["history"] = {
            kind: [
                {
                    "version": v.version,
                    "fetched_at": v.fetched_at,
                    "changes": [c.to_json() for c in v.diff],
                }
                for v in store.versions(state.suite_id, state.corp_id, kind)
            ]
            for kind in VIEW_KINDS
        }
    return view
