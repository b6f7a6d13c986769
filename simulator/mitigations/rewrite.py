"""Rewriting a scenario as a policy does: its data as plain dicts, the tasks a policy targets.

A policy edits the scenario's data (`model_dump`, the sizes as written) and validates the
result again, models and cross-field checks, keeping the loader's warnings and draws. The
targets: the *readers* are the tasks that map a write-sealed file shared (every task with a
shared mapping when the scenario seals no file against writes); the *sealers* are the tasks
that seal a file against writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..scenario import validation_error
from ..scenario_errors import ScenarioError
from ..scenario_model import Scenario
from ..units import parse_bytes
from ..validify import validify

WRITE_SEALS = {"write", "future_write"}
Data = dict[str, Any]


def dump(sc: Scenario) -> Data:
    """The scenario as data, keys by their YAML names, only what the file set."""
    data: Data = sc.model_dump(by_alias=True, exclude_unset=True)
    data.setdefault("tasks", [])
    for t in data["tasks"]:
        t.setdefault("ops", [])
    return data


def load(data: Data, like: Scenario, policy: str) -> Scenario:
    """The rewritten data as a scenario, checked as a file is, with `like`'s warnings and draws."""
    try:
        sc = Scenario.model_validate(data)
        validify(sc)
    except (ValidationError, ScenarioError) as err:
        e = validation_error(err) if isinstance(err, ValidationError) else err
        raise ScenarioError(f"policy {policy!r} made a scenario that does not load: "
                            f"{e.message}", e.path) from None
    sc._warnings, sc._draws = like._warnings, like._draws
    return sc


def op_of(raw: Any) -> tuple[str, Any]:
    """(name, args) of an op as data (`exit` may be a bare string)."""
    if isinstance(raw, str):
        return raw, {}
    (name, args), = raw.items()
    return name, args


def sealed_fds(data: Data) -> set[str]:
    """The fds some task seals against writes (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE)."""
    out = set()
    for t in data["tasks"]:
        for raw in t["ops"]:
            name, a = op_of(raw)
            if name == "add_seals" and WRITE_SEALS & set(a.get("seals", [])):
                out.add(a["fd"])
    return out


def shared_mmaps(data: Data, task: Data) -> list[tuple[int, Data]]:
    """(op index, mmap args) of the task's shared mappings of sealed files (of any file when
    the scenario seals none against writes)."""
    sealed = sealed_fds(data)
    out = []
    for i, raw in enumerate(task["ops"]):
        name, a = op_of(raw)
        if name == "mmap" and "shared" in a["flags"] and (not sealed or a["fd"] in sealed):
            out.append((i, a))
    return out


def reader_tasks(data: Data, target: str | None, policy: str) -> list[Data]:
    """The tasks a reader-side policy rewrites: `target`, or every reader."""
    if target is not None:
        task = task_named(data, target)
        if not shared_mmaps(data, task):
            raise ScenarioError(f"policy {policy!r}: task {target!r} maps no "
                                f"{'write-sealed ' if sealed_fds(data) else ''}file shared")
        return [task]
    return [t for t in data["tasks"] if shared_mmaps(data, t)]


def sealer_tasks(data: Data, target: str | None, policy: str) -> list[Data]:
    """The tasks that seal a file against writes: `target` (which must), or all of them."""
    def seals(t: Data) -> bool:
        return any(op_of(r)[0] == "add_seals" and WRITE_SEALS & set(op_of(r)[1].get("seals", []))
                   for r in t["ops"])
    if target is not None:
        task = task_named(data, target)
        if not seals(task):
            raise ScenarioError(f"policy {policy!r}: task {target!r} seals no file against writes")
        return [task]
    return [t for t in data["tasks"] if seals(t)]


def task_named(data: Data, name: str) -> Data:
    """The task of that name (the caller checked it exists)."""
    return next(t for t in data["tasks"] if t["name"] == name)


def file_size(data: Data, fd: str) -> int | None:
    """The size in bytes a file reaches in the scenario, as far as its ops say (the largest
    ftruncate, shmget, write or fallocate end; None when only a run can tell)."""
    size: int | None = None
    for t in data["tasks"]:
        for raw in t["ops"]:
            name, a = op_of(raw)
            if not isinstance(a, dict) or a.get("fd") != fd:
                continue
            try:
                if name in ("ftruncate", "shmget"):
                    end = parse_bytes(a["size"])
                elif name in ("write", "fallocate") and "punch_hole" not in a.get("flags", []):
                    end = parse_bytes(a.get("offset", 0)) + parse_bytes(a["length"])
                else:
                    continue
            except (ValueError, KeyError):
                return None  # a percentage: known only when it runs
            size = end if size is None else max(size, end)
    return size


def map_length(data: Data, mmap: Data, policy: str) -> int:
    """The length in bytes of a mapping: its `length` (a percentage of the file's size), else
    its file's size less its offset."""
    size = file_size(data, mmap["fd"])
    try:
        if mmap.get("length") is not None:
            return parse_bytes(mmap["length"], size)
        if size is not None:
            return size - parse_bytes(mmap.get("offset", 0))
    except ValueError:
        pass
    raise ScenarioError(f"policy {policy!r}: the length of map {mmap['map']!r} is known only "
                        "when the scenario runs; give its mmap a length")


def rewrite_ops(task: Data, at: Callable[[int, Any], list[Any] | None]) -> None:
    """Replace each op `i` of the task by `at(i, op)` (None keeps it)."""
    new: list[Any] = []
    for i, raw in enumerate(task["ops"]):
        out = at(i, raw)
        new.extend([raw] if out is None else out)
    task["ops"] = new
