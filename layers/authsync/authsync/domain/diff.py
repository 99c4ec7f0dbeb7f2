"""Field-level differences between two JSON documents (pure: no AWS, no I/O).

The snapshot store (:mod:`authsync.aws.snapshots`) records one version per meaningful change of a
corp's documents, each with the list of :class:`Change` from the version before it.

Invariants of :func:`diff`:

* ``diff(a, a) == []``, and ``diff(a, b) == []`` exactly when the documents are equal under
  the comparison below.
* The order is deterministic: object keys in sorted order, keyed list elements by key (ints
  in numeric order before strings), depth first — independent of the input's key and
  element order.
* Swapping the arguments swaps ``added``/``removed`` and ``old``/``new``, nothing else.

How values compare:

* Objects key by key; a key on one side only is one ``added`` or ``removed`` change at its
  path, with the whole value.
* A non-empty list pair whose elements are all objects carrying one of :data:`NATURAL_KEYS`
  as an id (a string or an int, not a bool), unique within each list, is matched element by
  element on that key — the first such key in the order of :data:`NATURAL_KEYS` — at paths
  like ``auth_info.agent[agentid=1000002].privilege``.
* Any other list is one value, compared as a multiset: element order is not a change
  (WeCom's ordering of ids is not a change), but the elements are compared by their JSON
  form (so ``[1]`` and ``[1.0]`` differ, and so do ``[[1, 2]]`` and ``[[2, 1]]``).
* Other values compare with ``==``, except that a bool never equals a number (``True`` and
  ``1`` are different values; ``1`` and ``1.0`` are the same).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["NATURAL_KEYS", "Change", "diff"]

NATURAL_KEYS = ("agentid", "edition", "userid")
"""Lists of objects that all carry one of these (unique) keys are matched element by element on it."""


@dataclass(frozen=True, slots=True)
class Change:
    """One field-level difference. ``old`` is None for "added", ``new`` for "removed"."""

    path: str
    op: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(str(data["path"]), data["op"], data.get("old"), data.get("new"))


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Field-level differences from ``old`` to ``new``, in a deterministic order (see the module docstring)."""
    changes: list[Change] = []
    _diff_value("", old, new, changes)
    return changes


def _diff_value(path: str, old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(Change(sub, "added", None, new[key]))
            elif key not in new:
                out.append(Change(sub, "removed", old[key], None))
            else:
                _diff_value(sub, old[key], new[key], out)
        return
    if isinstance(old, list) and isinstance(new, list):
        natural = _natural_key(old, new)
        if natural is None:
            if _multiset(old) != _multiset(new):
                out.append(Change(path, "changed", old, new))
            return
        old_by = {element[natural]: element for element in old}
        new_by = {element[natural]: element for element in new}
        for value in sorted(set(old_by) | set(new_by), key=_id_order):
            sub = f"{path}[{natural}={value}]"
            if value not in old_by:
                out.append(Change(sub, "added", None, new_by[value]))
            elif value not in new_by:
                out.append(Change(sub, "removed", old_by[value], None))
            else:
                _diff_value(sub, old_by[value], new_by[value], out)
        return
    if not _same(old, new):
        out.append(Change(path, "changed", old, new))


def _same(old: Any, new: Any) -> bool:
    return isinstance(old, bool) == isinstance(new, bool) and bool(old == new)


def _natural_key(old: list[Any], new: list[Any]) -> str | None:
    elements = [*old, *new]
    if not elements or not all(isinstance(e, Mapping) for e in elements):
        return None
    for key in NATURAL_KEYS:
        if not all(_is_id(e.get(key)) for e in elements):
            continue
        if len({e[key] for e in old}) == len(old) and len({e[key] for e in new}) == len(new):
            return key
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _id_order(value: str | int) -> tuple[int, int, str]:
    return (0, value, "") if isinstance(value, int) else (1, 0, value)


def _multiset(values: list[Any]) -> list[str]:
    return sorted(json.dumps(v, sort_keys=True, ensure_ascii=False, default=str) for v in values)
