"""Scenario YAML read at C speed, keeping the line of every key and item.

libyaml's parser (PyYAML's `CSafeLoader`, pure Python where libyaml is missing) hands over
events with a mark on each; they are built straight into plain dicts and lists that also know
their lines (`LineDict.key_lines`, `LineList.item_lines`), which `scenario_errors.line_of`
reads to put a line on every error. The 3.1 MB 10,000-task file of benchmarks/load_large.py
loads (parsed, validated, cross-checked) in about 1.5 s this way; the round-trip parser this
replaced took 26 s to parse it.

A file that is one line of JSON (what programs write: JSON is YAML 1.2) is read by the json
module instead (`load_json_line`), every key and item on line 1: the same values, four times
faster; a repeated key, a merge key, NaN or Infinity go the YAML way.

Scalars are read as YAML 1.2's core schema reads them (as the round-trip parser did): `true`
and `false` are booleans but `yes`, `no`, `on`, `off` are strings; `0755` is decimal, `0o755`
octal; `1e3` is a float. Only plain data is allowed: a tag other than YAML's own `!!str`,
`!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq` (for example a
`!!python/object/apply:...`) is refused with its name and line. A key given twice is an
error, as are aliases that contain themselves.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

_T = "tag:yaml.org,2002:"


class YamlError(ValueError):
    """Text that is not the plain YAML a scenario is: the message and its 1-based line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping that knows the line of itself and of each of its keys."""

    line: int
    key_lines: dict[Any, int]


class LineList(list):  # type: ignore[type-arg]
    """A list that knows the line of itself and of each of its items."""

    line: int
    item_lines: list[int]


_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"~", "null", "Null", "NULL", ""}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_INT_BASE = re.compile(r"0o[0-7]+\Z|0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf, "+.inf": math.inf,
        "+.Inf": math.inf, "+.INF": math.inf, "-.inf": -math.inf, "-.Inf": -math.inf,
        "-.INF": -math.inf, ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}

ALLOWED_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def tag_name(tag: str) -> str:
    """`!!python/object/apply:os.system` for its full tag."""
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag


def plain(v: str) -> Any:
    """A plain (unquoted, untagged) scalar as YAML 1.2's core schema reads it."""
    if v in _BOOL:
        return _BOOL[v]
    if v in _NULL:
        return None
    if _INT.match(v):
        return int(v, 10)
    if _INT_BASE.match(v):
        return int(v, 0)
    if _FLOAT.match(v):
        return float(v)
    return _INF.get(v, v)


def tagged(tag: str, v: str, line: int) -> Any:
    """A scalar with an explicit tag (`!!int 3`, `!!str yes`)."""
    if tag == _T + "str":
        return v
    want = {_T + "int": int, _T + "float": float, _T + "bool": bool, _T + "null": type(None)}
    if tag not in want:
        raise YamlError(f"the tag {tag_name(tag)} is not allowed (plain YAML only: mappings, lists, "
                        "strings, numbers, booleans)", line)
    out = plain(v)
    if tag == _T + "float" and isinstance(out, int) and not isinstance(out, bool):
        out = float(out)
    if not isinstance(out, want[tag]) or (tag == _T + "int" and isinstance(out, bool)):
        raise YamlError(f"{v!r} is not a valid {tag_name(tag)}", line)
    return out


class _Builder:
    """Parser events -> LineDict/LineList/scalars, with no node tree in between (libyaml's
    events are the cheapest thing it hands to Python); an alias is its anchor's value."""

    def __init__(self) -> None:
        self.anchors: dict[str, Any] = {}
        self.open: set[str] = set()
        self.cache: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}  # anchor -> nodes of its value

    def build(self, events: Any) -> Any:
        """The first document's value (None for an empty stream)."""
        # Open collections: [container, pending key, key line, anchor, line, nodes below]. The
        # node counts include what aliases repeat, so a "billion laughs" file is refused here
        # rather than expanded by validation.
        stack: list[Any] = []
        sizes = self.sizes
        root: Any = None
        done = False
        cache, miss = self.cache, _NO_KEY
        for ev in events:  # the hot loop: scalars first, names bound locally
            kind = type(ev)
            line = ev.start_mark.line + 1
            if kind is _Scalar:
                tag = ev.tag
                if tag is None and ev.implicit[0]:
                    value = cache.get(ev.value, miss)
                    if value is miss:
                        value = cache[ev.value] = plain(ev.value)
                elif tag is None or tag == "!":
                    value = ev.value
                else:
                    value = tagged(tag, ev.value, line)
                anchor = ev.anchor
                size = 1
            elif kind is _MapStart or kind is _SeqStart:
                if ev.tag not in (None, "!", _T + ("map" if kind is _MapStart else "seq")):
                    raise YamlError(f"the tag {tag_name(ev.tag)} is not allowed (plain YAML only: "
                                    "mappings, lists, strings, numbers, booleans)", line)
                c: Any = LineDict() if kind is _MapStart else LineList()
                c.line = line
                if kind is _MapStart:
                    c.key_lines = {}
                else:
                    c.item_lines = []
                if ev.anchor:
                    self.open.add(ev.anchor)
                stack.append([c, _NO_KEY, 0, ev.anchor, line, 1])
                continue
            elif kind is _MapEnd or kind is _SeqEnd:
                value, _, _, anchor, line, size = stack.pop()
                if size > MAX_NODES:
                    raise YamlError(f"not valid YAML: more than {MAX_NODES:,} values (counting "
                                    "what aliases repeat)", line)
                if anchor:
                    self.open.discard(anchor)
                    sizes[anchor] = size
                if kind is _MapEnd:
                    value = _merged(value)
            elif kind is _Alias:
                if ev.anchor in self.open:
                    raise YamlError("not valid YAML: an alias that contains itself", line)
                if ev.anchor not in self.anchors:
                    raise YamlError(f"not valid YAML: unknown alias *{ev.anchor}", line)
                value, anchor = self.anchors[ev.anchor], None
                size = sizes.get(ev.anchor, 1)
            elif kind is _DocStart:
                if done:
                    raise YamlError("not valid YAML: expected one document, found another", line)
                continue
            else:  # stream start and end, document end
                continue
            if anchor:
                self.anchors[anchor] = value
            if not stack:
                root, done = value, True
                continue
            top = stack[-1]
            top[5] += size
            c = top[0]
            if type(c) is LineList:
                c.append(value)
                c.item_lines.append(line)
            elif top[1] is _NO_KEY:
                try:
                    hash(value)
                except TypeError:
                    raise YamlError("not valid YAML: a key must be a string or a number, not a "
                                    "mapping or list", line) from None
                if value in c.key_lines and value != "<<":
                    raise YamlError(f"not valid YAML: duplicate key {value!r} (first on line "
                                    f"{c.key_lines[value]})", line)
                top[1], top[2] = value, line
            else:
                key = top[1]
                if key == "<<" and kind is not _Scalar:
                    c.setdefault(_MERGE, []).append((value, line))
                else:
                    c[key] = value
                    c.key_lines[key] = top[2]
                top[1] = _NO_KEY
        return root


MAX_NODES = 20_000_000  # values in a file, aliases expanded: 30 times a 10,000-task file
_NO_KEY = object()
_MERGE = object()  # a LineDict's pending `<<: *base` merges, applied when the mapping closes
_Scalar, _Alias, _DocStart = yaml.ScalarEvent, yaml.AliasEvent, yaml.DocumentStartEvent
_MapStart, _MapEnd = yaml.MappingStartEvent, yaml.MappingEndEvent
_SeqStart, _SeqEnd = yaml.SequenceStartEvent, yaml.SequenceEndEvent


def _merged(d: LineDict) -> LineDict:
    """Apply `<<` merges (YAML's merge key): keys of the mapping itself win."""
    merges = d.pop(_MERGE, None)  # type: ignore[call-overload]
    if merges is None:
        return d
    for src, line in merges:
        for m in src if isinstance(src, list) else [src]:
            if not isinstance(m, LineDict):
                raise YamlError("not valid YAML: `<<` merges a mapping or a list of mappings", line)
            for k, v in m.items():
                if k not in d:
                    d[k] = v
                    d.key_lines[k] = m.key_lines[k]
    return d


class _NotPlainJson(Exception):
    """One-line JSON that YAML reads otherwise, or refuses: the YAML path decides."""


def _line_list(v: list[Any]) -> LineList:
    """A JSON array on line 1 as a LineList (nested arrays too)."""
    out = LineList(_line_list(x) if type(x) is list else x for x in v)
    out.line = 1
    out.item_lines = [1] * len(out)
    return out


def _line_dict(pairs: list[tuple[str, Any]]) -> LineDict:
    """A JSON object on line 1 as a LineDict; a repeated key or a merge key (`<<`) goes to
    the YAML path, which refuses the one and merges the other."""
    d = LineDict(pairs)
    if len(d) != len(pairs) or "<<" in d:
        raise _NotPlainJson
    for k, v in pairs:
        if type(v) is list:
            d[k] = _line_list(v)
    d.line = 1
    d.key_lines = dict.fromkeys(d, 1)
    return d


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (YAML reads them as strings): the YAML path decides."""
    raise _NotPlainJson


def load_json_line(text: str) -> Any:
    """A scenario written as one line of JSON (as programs write it: JSON is YAML), read by
    the json module: the same values as the YAML path (YAML 1.2 reads JSON as JSON), every
    key and item on line 1. Raises _NotPlainJson where the YAML path must decide."""
    try:
        v = json.loads(text, object_pairs_hook=_line_dict, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise _NotPlainJson from None
    return _line_list(v) if type(v) is list else v


def load_yaml(text: str) -> Any:
    """The one document of `text` as LineDict/LineList/scalars; YamlError on bad YAML."""
    head = text.lstrip()[:1]
    if head in ("{", "[") and "\n" not in text.strip():
        try:
            return load_json_line(text)
        except _NotPlainJson:
            pass
    try:
        return _Builder().build(yaml.parse(text, Loader=_Parser))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise YamlError(f"not valid YAML: {e.problem or e}",
                        None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as e:  # the reader's errors (control characters, bad encoding)
        raise YamlError(f"not valid YAML: {e}", None) from None
