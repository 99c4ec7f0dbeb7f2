"""chatdata: 数据与智能专区 authorization documents and their summary (spec §3.5, §3.6)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from authsync.wecom.chatdata import (
    ACTIVE_STATUSES,
    EDITION_LABELS,
    STATUS_LABELS,
    AuthUserListResponse,
    CorpAuthInfoResponse,
    not_authorized,
    snapshot_document,
    summarize,
)
from authsync_dev.emulator.model import ChatEdition, Member

# Seed-0 (D-55567), the sample response verbatim.
SEED_0: dict[str, Any] = json.loads("""
{
 "errcode": 0,
 "errmsg": "ok",
 "auth_edition_list": [
     {
      "edition": 1,
      "auth_scope": {"userid_list": ["xxxx"], "department_id_list": [1, 2, 3], "tag_id_list": [10, 11]},
      "status": 1,
      "begin_time": 1726588800,
      "end_time": 1729180799,
      "msg_duration_days": 90,
      "auth_user_count":20
    },
    {
      "edition": 2,
      "auth_scope": {"userid_list": ["xxxx"], "department_id_list": [1, 2], "tag_id_list": [10]},
      "status": 1,
      "begin_time": 1726588800,
      "end_time": 1729180799,
      "msg_duration_days": 90,
      "auth_user_count":23
    }]
}
""")


def edition(number: int, status: int, **fields: Any) -> dict[str, Any]:
    return {"edition": number, "auth_scope": {"userid_list": ["u1"]}, "status": status, **fields}


def test_seed_0_parses() -> None:
    parsed = CorpAuthInfoResponse.model_validate(SEED_0)
    first, second = parsed.editions
    assert (first.edition, first.edition_label, first.status_label) == (1, "内部会话", "试用中")
    assert first.auth_scope is not None
    assert first.auth_scope.department_id_list == [1, 2, 3]
    assert first.auth_scope.tag_id_list == [10, 11]
    assert first.period == (1726588800, 1729180799)
    assert (first.msg_duration_days, first.auth_user_count) == (90, 20)
    assert second.auth_user_count == 23
    assert parsed.model_extra == {}


def test_labels_cover_the_documented_values() -> None:
    assert EDITION_LABELS == {1: "内部会话", 2: "内外部会话", 3: "内外部会话及语音通话"}
    assert list(STATUS_LABELS) == [1, 2, 3, 4, 5, 6, 7]
    assert {1, 3, 5} == ACTIVE_STATUSES


@pytest.mark.parametrize(
    ("status", "label", "active"),
    [
        (1, "试用中", True),
        (2, "试用已到期", False),
        (3, "付费使用中", True),
        (4, "付费使用已到期", False),
        (5, "免费使用中", True),
        (6, "免费使用已到期", False),
        (7, "付费待生效", False),
    ],
)
def test_every_status(status: int, label: str, active: bool) -> None:
    doc = {"auth_edition_list": [edition(3, status, begin_time=100, end_time=200, msg_duration_days=365)]}
    parsed = CorpAuthInfoResponse.model_validate(doc)
    (entry,) = parsed.editions
    assert (entry.status_label, entry.active) == (label, active)
    (summary,) = summarize(doc).editions
    assert (summary.label, summary.status, summary.status_label, summary.active) == (
        "内外部会话及语音通话",
        status,
        label,
        active,
    )
    assert (summary.begin_time, summary.end_time) == (100, 200)


def test_begin_and_end_are_omitted_after_the_shared_trial() -> None:
    """An edition authorized after the trial ended and never bought has no begin_time/end_time."""
    doc = {"auth_edition_list": [edition(1, 3, begin_time=1, end_time=2), edition(2, 2, msg_duration_days=90)]}
    parsed = CorpAuthInfoResponse.model_validate(doc)
    late = parsed.editions[1]
    assert late.begin_time is None
    assert late.end_time is None
    assert late.period is None
    assert late.auth_user_count is None  # optional: absent from the older page
    summary = summarize(doc)
    assert summary.editions[1].begin_time is None
    assert summary.editions[1].end_time is None
    assert summary.active_editions == [1]


@pytest.mark.parametrize("authorized_late", [False, True])
def test_the_emulators_editions_parse_without_extras(authorized_late: bool) -> None:
    trial = (1_726_588_800, 1_729_180_799)
    chat = ChatEdition(2, status=1, userid_list=["u1", "u2"], authorized_at=trial[1] + (10 if authorized_late else -10))
    rendered = chat.to_json(trial[0] + 5, trial, [Member("u1", [2])])
    parsed = CorpAuthInfoResponse.model_validate({"errcode": 0, "errmsg": "ok", "auth_edition_list": [rendered]})
    (entry,) = parsed.editions
    assert entry.model_extra == {}
    assert (entry.period is None) is authorized_late
    assert entry.auth_user_count == 1


def test_unknown_values_and_fields_survive() -> None:
    doc = copy.deepcopy(SEED_0)
    doc["auth_edition_list"].append({"edition": 9, "status": 42, "future_field": {"x": 1}})
    doc["new_top_level"] = "y"
    parsed = CorpAuthInfoResponse.model_validate(doc)
    odd = parsed.editions[-1]
    assert (odd.edition_label, odd.status_label, odd.active) == ("未知版本(9)", "未知状态(42)", False)
    assert odd.model_extra == {"future_field": {"x": 1}}
    assert parsed.model_extra == {"new_top_level": "y"}


def test_summary_is_sorted_by_edition_and_lists_active_ones() -> None:
    doc = {"auth_edition_list": [edition(3, 7), edition(1, 3), edition(2, 5)]}
    summary = summarize(doc)
    assert summary.authorized is True
    assert [e.edition for e in summary.editions] == [1, 2, 3]
    assert summary.active_editions == [1, 2]
    assert summary.errcode is None
    assert summarize(CorpAuthInfoResponse.model_validate(doc)) == summary


def test_no_editions_or_a_refusal_means_not_authorized() -> None:
    assert summarize({"errcode": 0, "errmsg": "ok", "auth_edition_list": []}).authorized is False
    assert summarize({}).authorized is False
    assert summarize({"errcode": 48002, "errmsg": "api forbidden"}) == not_authorized(48002)
    refused = not_authorized(48002)
    assert (refused.authorized, refused.errcode, refused.editions) == (False, 48002, [])
    assert json.loads(refused.model_dump_json()) == {
        "authorized": False,
        "editions": [],
        "active_editions": [],
        "errcode": 48002,
    }


@pytest.mark.parametrize(("raw", "expected"), [(True, True), (False, False), (1, True), (0, False), (None, None)])
def test_auth_user_list_has_more_is_bool_or_int(raw: Any, expected: bool | None) -> None:
    page = {
        "errcode": 0,
        "errmsg": "ok",
        "auth_user_list": [{"userid": "zhangsan", "edition_list": [1, 2]}, {"userid": "lisi", "edition_list": [3]}],
        "next_cursor": "CURSOR-2",
        "has_more": raw,
    }
    parsed = AuthUserListResponse.model_validate(page)
    assert parsed.has_more is expected
    assert parsed.next_cursor == "CURSOR-2"
    assert parsed.auth_user_list is not None
    assert [(u.userid, u.edition_list) for u in parsed.auth_user_list] == [("zhangsan", [1, 2]), ("lisi", [3])]


def test_auth_user_list_keeps_unknown_fields() -> None:
    parsed = AuthUserListResponse.model_validate({"auth_user_list": [{"userid": "a", "open_userid": "wo"}], "x": 1})
    assert parsed.model_extra == {"x": 1}
    assert parsed.auth_user_list is not None
    assert parsed.auth_user_list[0].model_extra == {"open_userid": "wo"}


def test_snapshot_document_drops_the_envelope_and_orders_members() -> None:
    before = copy.deepcopy(SEED_0)
    pages = [[{"userid": "zhao", "edition_list": [1]}], [{"userid": "li", "edition_list": [1, 2]}]]
    doc = snapshot_document(SEED_0, [u for page in pages for u in page])
    assert before == SEED_0
    assert "errcode" not in doc
    assert "errmsg" not in doc
    assert doc["auth_edition_list"] == SEED_0["auth_edition_list"]
    assert [u["userid"] for u in doc["auth_user_list"]] == ["li", "zhao"]
    assert "auth_user_list" not in snapshot_document(SEED_0)
    assert summarize(doc).authorized is True
