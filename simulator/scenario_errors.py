"""Scenario errors: one message naming the file, the line, the key path and the problem.

Pydantic's validation errors are turned into that one message here (the first unknown key
wins over the missing key a typo also causes), and the line is found in the
loaded data (yaml_lines.py).
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
    """The 1-based line of the deepest node of `path` found in the loaded data (yaml_lines.py's
    LineDict and LineList know the lines of their keys and items)."""
    node, line = data, None
    for key in path:
        if isinstance(node, dict) and key in node:
            lines = getattr(node, "key_lines", None)
            if lines is not None and key in lines:
                line = lines[key]
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            lines = getattr(node, "item_lines", None)
            if lines is not None:
                line = lines[key]
            node = node[key]
        else:
            break
    if line is None:
        line = getattr(data, "line", None)
    return line


def clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union tags from an error location (`touch.touch.access`)."""
    out: list[Any] = []
    for p in loc:
        if isinstance(p, str) and (
            (out and out[-1] == p)
            or p in ("str", "int", "float", "StartAfter", "ExpectTask", "SwapSize", "SwapDevice")
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
