"""diff: field-level differences, checked against hand-written expectations and an independent patcher.

No expected value here is computed by :func:`diff` itself: the tables spell the changes out,
and the property tests check the diff by applying it with a patcher written for the test.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsync.domain.diff import NATURAL_KEYS, Change, diff

ALLOW_USER = "auth_info.agent[agentid=1000002].privilege.allow_user"


def auth_doc(*, corp_type: str = "unverified", allow_user: list[str] | None = None) -> dict[str, Any]:
    return {
        "auth_corp_info": {"corpid": "wwcorp", "corp_name": "示例", "corp_type": corp_type, "corp_user_max": 200},
        "auth_info": {
            "agent": [
                {
                    "agentid": 1000002,
                    "name": "Authsync",
                    "privilege": {"level": 1, "allow_party": [1], "allow_user": allow_user or ["zhangsan"]},
                }
            ]
        },
    }


def edition(number: int, status: int) -> dict[str, Any]:
    return {"edition": number, "status": status, "auth_scope": {"userid_list": ["zhangsan"]}}


# -- hand-written tables ---------------------------------------------------------------------------

OBJECTS = [
    pytest.param({}, {}, [], id="empty"),
    pytest.param({"a": 1}, {"a": 2}, [Change("a", "changed", 1, 2)], id="scalar"),
    pytest.param({"a": 1}, {}, [Change("a", "removed", 1, None)], id="removed"),
    pytest.param({}, {"a": {"b": 1}}, [Change("a", "added", None, {"b": 1})], id="added-whole-value"),
    pytest.param(
        {"a": {"b": 1, "c": 2}},
        {"a": {"b": 1, "c": 3, "d": 4}},
        [Change("a.c", "changed", 2, 3), Change("a.d", "added", None, 4)],
        id="nested",
    ),
    pytest.param(
        {"b": 1, "a": 1, "c": 0},
        {"c": 0, "b": 2, "a": 2},
        [Change("a", "changed", 1, 2), Change("b", "changed", 1, 2)],
        id="keys-in-sorted-order",
    ),
    pytest.param({"a": {"c": 1}}, {"a": "flat"}, [Change("a", "changed", {"c": 1}, "flat")], id="object-to-string"),
    pytest.param({"a": [1]}, {"a": {"0": 1}}, [Change("a", "changed", [1], {"0": 1})], id="list-to-object"),
    pytest.param({"n": None}, {"n": 0}, [Change("n", "changed", None, 0)], id="null-is-not-zero"),
    pytest.param({"n": None}, {}, [Change("n", "removed", None, None)], id="null-removed"),
    pytest.param({"s": ""}, {"s": None}, [Change("s", "changed", "", None)], id="empty-string-is-not-null"),
]

BOOLS = [
    pytest.param({"f": 1}, {"f": True}, [Change("f", "changed", 1, True)], id="1-to-true"),
    pytest.param({"f": True}, {"f": 1}, [Change("f", "changed", True, 1)], id="true-to-1"),
    pytest.param({"f": 0}, {"f": False}, [Change("f", "changed", 0, False)], id="0-to-false"),
    pytest.param({"f": 1}, {"f": 1.0}, [], id="1-is-1.0"),
    pytest.param({"f": True}, {"f": True}, [], id="true-is-true"),
]

PLAIN_LISTS = [
    pytest.param({"ids": [3, 1, 2]}, {"ids": [1, 2, 3]}, [], id="order-is-not-a-change"),
    pytest.param({"x": [1, 1, 2]}, {"x": [1, 2, 2]}, [Change("x", "changed", [1, 1, 2], [1, 2, 2])], id="multiset"),
    pytest.param({"x": [1]}, {"x": [1, 1]}, [Change("x", "changed", [1], [1, 1])], id="duplicate-added"),
    pytest.param({"x": []}, {"x": []}, [], id="both-empty"),
    pytest.param({"x": [1]}, {"x": [1.0]}, [Change("x", "changed", [1], [1.0])], id="compared-by-json-form"),
    pytest.param({"x": [True]}, {"x": [1]}, [Change("x", "changed", [True], [1])], id="bool-in-list"),
    pytest.param({"x": [[1, 2]]}, {"x": [[2, 1]]}, [Change("x", "changed", [[1, 2]], [[2, 1]])], id="inner-order"),
    pytest.param({"x": [{"k": 1}, {"k": 2}]}, {"x": [{"k": 2}, {"k": 1}]}, [], id="objects-without-key"),
    pytest.param({"x": [{"a": 1, "b": 2}]}, {"x": [{"b": 2, "a": 1}]}, [], id="key-order-inside-elements"),
]

KEYED_LISTS = [
    pytest.param(
        {"agent": [{"agentid": 1, "n": "a"}, {"agentid": 2, "n": "b"}]},
        {"agent": [{"agentid": 2, "n": "B"}, {"agentid": 1, "n": "a"}]},
        [Change("agent[agentid=2].n", "changed", "b", "B")],
        id="matched-by-agentid",
    ),
    pytest.param(
        {"agent": [{"agentid": 1}]},
        {"agent": [{"agentid": 1}, {"agentid": 2, "n": "x"}]},
        [Change("agent[agentid=2]", "added", None, {"agentid": 2, "n": "x"})],
        id="element-added",
    ),
    pytest.param(
        {"agent": [{"agentid": 1}, {"agentid": 2}]},
        {"agent": [{"agentid": 2}]},
        [Change("agent[agentid=1]", "removed", {"agentid": 1}, None)],
        id="element-removed",
    ),
    pytest.param(
        {"agent": []},
        {"agent": [{"agentid": 7}]},
        [Change("agent[agentid=7]", "added", None, {"agentid": 7})],
        id="from-empty",
    ),
    pytest.param(
        {"a": [{"agentid": 10, "v": 0}, {"agentid": 9, "v": 0}]},
        {"a": [{"agentid": 10, "v": 1}, {"agentid": 9, "v": 1}]},
        [Change("a[agentid=9].v", "changed", 0, 1), Change("a[agentid=10].v", "changed", 0, 1)],
        id="int-ids-in-numeric-order",
    ),
    pytest.param(
        {"u": [{"userid": "b", "v": 0}, {"userid": 5, "v": 0}]},
        {"u": [{"userid": "b", "v": 1}, {"userid": 5, "v": 1}]},
        [Change("u[userid=5].v", "changed", 0, 1), Change("u[userid=b].v", "changed", 0, 1)],
        id="int-ids-before-string-ids",
    ),
    pytest.param(
        {"e": [edition(1, 1), edition(2, 1)]},
        {"e": [edition(2, 3), edition(1, 1)]},
        [Change("e[edition=2].status", "changed", 1, 3)],
        id="matched-by-edition",
    ),
    pytest.param(
        {"u": [{"userid": "a", "l": [1, 2]}, {"userid": "b", "l": [1]}]},
        {"u": [{"userid": "b", "l": [1, 3]}, {"userid": "a", "l": [2, 1]}]},
        [Change("u[userid=b].l", "changed", [1], [1, 3])],
        id="matched-by-userid-plain-lists-inside",
    ),
    pytest.param(
        {"m": [{"agentid": 1, "userid": "a", "x": 0}, {"agentid": 2, "userid": "b", "x": 0}]},
        {"m": [{"agentid": 1, "userid": "a", "x": 0}, {"agentid": 2, "userid": "b", "x": 1}]},
        [Change("m[agentid=2].x", "changed", 0, 1)],
        id="agentid-before-userid",
    ),
    pytest.param(
        {"m": [{"agentid": 1, "userid": "a", "x": 0}, {"agentid": 1, "userid": "b", "x": 0}]},
        {"m": [{"agentid": 1, "userid": "a", "x": 0}, {"agentid": 1, "userid": "b", "x": 1}]},
        [Change("m[userid=b].x", "changed", 0, 1)],
        id="duplicate-agentid-falls-back-to-userid",
    ),
]

WHOLE_VALUE_LISTS = [
    pytest.param(
        {"d": [{"agentid": 1, "n": 1}, {"agentid": 1, "n": 2}]},
        {"d": [{"agentid": 1, "n": 1}, {"agentid": 1, "n": 3}]},
        [
            Change(
                "d",
                "changed",
                [{"agentid": 1, "n": 1}, {"agentid": 1, "n": 2}],
                [{"agentid": 1, "n": 1}, {"agentid": 1, "n": 3}],
            )
        ],
        id="duplicate-key",
    ),
    pytest.param(
        {"d": [{"agentid": 1, "n": 1}, {"n": 2}]},
        {"d": [{"agentid": 1, "n": 1}, {"n": 3}]},
        [Change("d", "changed", [{"agentid": 1, "n": 1}, {"n": 2}], [{"agentid": 1, "n": 1}, {"n": 3}])],
        id="an-element-without-the-key",
    ),
    pytest.param(
        {"d": [{"agentid": True, "n": 1}]},
        {"d": [{"agentid": True, "n": 2}]},
        [Change("d", "changed", [{"agentid": True, "n": 1}], [{"agentid": True, "n": 2}])],
        id="a-bool-is-not-an-id",
    ),
    pytest.param(
        {"d": [{"agentid": 1.5, "n": 1}]},
        {"d": [{"agentid": 1.5, "n": 2}]},
        [Change("d", "changed", [{"agentid": 1.5, "n": 1}], [{"agentid": 1.5, "n": 2}])],
        id="a-float-is-not-an-id",
    ),
    pytest.param(
        {"d": [{"agentid": 1}, 2]},
        {"d": [{"agentid": 1}, 3]},
        [Change("d", "changed", [{"agentid": 1}, 2], [{"agentid": 1}, 3])],
        id="mixed-elements",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), OBJECTS + BOOLS + PLAIN_LISTS + KEYED_LISTS + WHOLE_VALUE_LISTS)
def test_diff_table(old: dict[str, Any], new: dict[str, Any], expected: list[Change]) -> None:
    assert diff(old, new) == expected
    assert diff(new, old) == [mirror(c) for c in expected]
    assert (old, new) == (copy.deepcopy(old), copy.deepcopy(new))  # inputs untouched


def test_natural_keys_are_the_wecom_ids() -> None:
    assert NATURAL_KEYS == ("agentid", "edition", "userid")


def test_auth_info_documents() -> None:
    assert diff(auth_doc(), auth_doc()) == []
    assert diff(auth_doc(), auth_doc(corp_type="verified")) == [
        Change("auth_corp_info.corp_type", "changed", "unverified", "verified")
    ]
    assert diff(auth_doc(), auth_doc(corp_type="verified", allow_user=["lisi", "zhangsan"])) == [
        Change("auth_corp_info.corp_type", "changed", "unverified", "verified"),
        Change(ALLOW_USER, "changed", ["zhangsan"], ["lisi", "zhangsan"]),
    ]
    second = {"agentid": 1000003, "name": "Second"}
    more = auth_doc()
    more["auth_info"]["agent"].insert(0, second)
    assert diff(auth_doc(), more) == [Change("auth_info.agent[agentid=1000003]", "added", None, second)]


def test_diff_order_does_not_depend_on_input_order() -> None:
    rng = random.Random(7)
    old: dict[str, Any] = {f"k{i}": {"v": i, "agents": [{"agentid": j, "x": j} for j in range(5)]} for i in range(12)}
    new = copy.deepcopy(old)
    new["k3"]["agents"][4]["x"] = -1
    new["k10"]["v"] = -10
    new["k1"]["agents"][0]["x"] = -1
    expected = [
        Change("k1.agents[agentid=0].x", "changed", 0, -1),
        Change("k10.v", "changed", 10, -10),
        Change("k3.agents[agentid=4].x", "changed", 4, -1),
    ]
    for _ in range(5):
        shuffled_old = shuffled(old, rng)
        shuffled_new = shuffled(new, rng)
        assert diff(shuffled_old, shuffled_new) == expected


def test_change_json_round_trip() -> None:
    change = Change("a[agentid=1].b", "changed", [1], {"x": None})
    assert change.to_json() == {"path": "a[agentid=1].b", "op": "changed", "old": [1], "new": {"x": None}}
    assert Change.from_json(json.loads(json.dumps(change.to_json()))) == change
    assert Change.from_json({"path": "p", "op": "removed"}) == Change("p", "removed")


# -- properties, against a patcher written here ----------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d"])
SCALARS = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "x", "y"])
VALUES = st.recursive(
    SCALARS | st.lists(SCALARS, max_size=3),
    lambda children: st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=4)


def canonical(value: Any) -> str:
    """Equality as the diff defines it for objects and lists of scalars (JSON keeps true apart from 1)."""

    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted(json.dumps(x) for x in v)
        return v

    return json.dumps(norm(value), sort_keys=True)


def patched(document: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    result = copy.deepcopy(document)
    for change in changes:
        *parents, last = change.path.split(".")
        target = result
        for name in parents:
            target = target[name]
        if change.op == "removed":
            assert last in target
            assert canonical(target.pop(last)) == canonical(change.old)
        elif change.op == "added":
            assert last not in target
            target[last] = copy.deepcopy(change.new)
        else:
            assert last in target
            assert canonical(target[last]) == canonical(change.old)
            assert canonical(target[last]) != canonical(change.new)
            target[last] = copy.deepcopy(change.new)
    return result


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, DOCUMENTS)
def test_applying_the_diff_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    changes = diff(old, new)
    assert canonical(patched(old, changes)) == canonical(new)
    assert (changes == []) == (canonical(old) == canonical(new))
    paths = [c.path for c in changes]
    assert paths == sorted(paths)
    assert len(set(paths)) == len(paths)
    assert not any(b.startswith(a + ".") for a in paths for b in paths)  # a change is never inside another


@settings(max_examples=200, deadline=None)
@given(DOCUMENTS, DOCUMENTS)
def test_swapping_the_arguments_mirrors_the_diff(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert diff(new, old) == [mirror(c) for c in diff(old, new)]
    assert diff(old, copy.deepcopy(old)) == []


MIRRORED: dict[str, Literal["added", "removed", "changed"]] = {
    "added": "removed",
    "removed": "added",
    "changed": "changed",
}


def mirror(change: Change) -> Change:
    return Change(change.path, MIRRORED[change.op], change.new, change.old)


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        items = [shuffled(v, rng) for v in value]
        rng.shuffle(items)
        return items
    return value
