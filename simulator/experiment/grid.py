"""Grid paths: `cgroups./app.memory.max` names one value inside a scenario, to sweep it.

A path is the keys from the top of the scenario down, joined by dots. Keys that contain dots
themselves (`memory.max`, a cgroup `/a.b`) are matched whole: at each level the longest key of
the mapping that the path continues with wins. In lists, tasks (and anything else with a
`name`) are named by their name, other items by their index: `tasks.reader.ops.1.touch.pattern`.
A path that leads nowhere is an input error naming the path and the nearest valid key.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from ..scenario_errors import ScenarioError


def _step(node: Any, parts: list[str], i: int, path: str) -> tuple[Any, Any, int]:
    """The container, key and next index for the path's component at `i`."""
    if isinstance(node, dict):
        for j in range(len(parts), i, -1):  # the longest key first
            key = ".".join(parts[i:j])
            if key in node:
                return node, key, j
        near = difflib.get_close_matches(parts[i], [str(k) for k in node], n=1)
        hint = f"; the nearest key is {near[0]!r}" if near else \
            f"; the keys here are {', '.join(map(str, node)) or 'none'}"
        raise ScenarioError(f"grid path {path!r}: no key {parts[i]!r} at "
                            f"{'.'.join(parts[:i]) or 'the top'}{hint}")
    if isinstance(node, list):
        names = [x.get("name") for x in node if isinstance(x, dict)]
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in names:
                return node, names.index(key), j
        if parts[i].isdigit() and int(parts[i]) < len(node):
            return node, int(parts[i]), i + 1
        known = [str(n) for n in names if n is not None] or [str(k) for k in range(len(node))]
        near = difflib.get_close_matches(parts[i], known, n=1)
        hint = f"; the nearest is {near[0]!r}" if near else f"; there are {', '.join(known)}"
        raise ScenarioError(f"grid path {path!r}: no item {parts[i]!r} in "
                            f"{'.'.join(parts[:i])}{hint}")
    raise ScenarioError(f"grid path {path!r}: {'.'.join(parts[:i])} is a value, not a mapping "
                        "or a list")


def set_path(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the scenario with the value at `path` replaced by `value` (the last key may
    be new: a setting the scenario left at its default)."""
    out = copy.deepcopy(raw)
    parts = path.split(".")
    node: Any = out
    i = 0
    while True:
        try:
            container, key, i = _step(node, parts, i, path)
        except ScenarioError:
            if isinstance(node, dict) and i < len(parts):
                node[".".join(parts[i:])] = value  # a new key at the end
                return out
            raise
        if i == len(parts):
            container[key] = value
            return out
        node = container[key]


def check_path(raw: dict[str, Any], path: str) -> None:
    """Fail, naming the path and the nearest key, unless `path` leads to a place in the scenario
    (its parent must exist; the last key may be a setting left at its default)."""
    parts = path.split(".")
    node: Any = raw
    i = 0
    while i < len(parts):
        if isinstance(node, dict) and i == len(parts) - 1 and parts[i] not in node:
            return  # a default being set
        try:
            container, key, i = _step(node, parts, i, path)
        except ScenarioError:
            if isinstance(node, dict) and i > 0 and "." in ".".join(parts[i:]):
                return  # e.g. cgroups./app.memory.high: a dotted setting left at its default
            raise
        node = container[key]
