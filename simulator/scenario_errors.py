"""Scenario errors: one message naming the file, the line, the key path and the problem.

Pydantic's validation errors are turned into that one message here (the first unknown key
wins over the missing key a typo also causes), and the line is found in ruamel's round-trip
data.
"""

from __future__ import annotations

from typing import Any


class ScenarioError(Exception):
    """A scenario that cannot run: the message names file, line, key path and the problem."""

    def __init__(self, message: str, path: tuple[Any, ...] = (), file: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.path, self.file, self.line = message, path, file, line

    def __str__(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        key = keypath(self.path)
        return f"{where}: {key + ': ' if key else ''}{self.message}"


def keypath(path: tuple[Any, ...]) -> str:
    """`tasks[1].ops[2].touch.access` for ('tasks', 1, 'ops', 2, 'touch', 'access')."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def line_of(data: Any, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of `path` found in ruamel's round-trip data."""
    node, line = data, None
    for key in path:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and key in node:
                if lc is not None:
                    line = lc.key(key)[0] + 1
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                if lc is not None:
                    line = lc.item(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, TypeError, AttributeError):
            break
    if line is None and getattr(data, "lc", None) is not None:
        line = data.lc.line + 1
    return line


def clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union tags from an error location (`touch.touch.access`)."""
    out: list[Any] = []
    for p in loc:
        if isinstance(p, str) and (
            (out and out[-1] == p) or p in ("str", "int", "float", "StartAfter", "ExpectTask")
            or p.startswith("literal[") or p.startswith("function-")
        ):
            continue
        out.append(p)
    return tuple(out)


def describe(err: Any) -> str:
    """The message of one pydantic error, without its "Value error, " prefix."""
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        return "unknown key (a typo?)"
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    if err["type"] not in ("value_error",) and not isinstance(got, (dict, list)):
        msg += f", got {got!r}"
    return msg
