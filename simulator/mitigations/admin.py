"""Administrator policies: cgroup control files, oom_score_adj and swap, set before the run.

By default each applies to the readers (rewrite.reader_tasks) or their cgroups; `@task` names
the task (or the task whose cgroup) instead. The root cgroup has no memory.max, memory.min or
memory.oom.group: a reader there is skipped (named with `@task`, it is an error).
"""

from __future__ import annotations

from typing import Any

from ..scenario_errors import ScenarioError
from ..scenario_model import Scenario
from ..units import parse_bytes
from ..validify import machine_bytes
from .registry import Param, policy
from .rewrite import Data, dump, load, reader_tasks, task_named

READER_CGROUPS = "the readers' cgroups"


def _cgroups(data: Data, target: str | None, name: str) -> list[str]:
    """The cgroups a cgroup policy changes, in task order, each once."""
    tasks = [task_named(data, target)] if target is not None else reader_tasks(data, None, name)
    out: list[str] = []
    for t in tasks:
        cg = t.get("cgroup", "/")
        if cg == "/":
            if target is not None:
                raise ScenarioError(f"policy {name!r}: task {target!r} is in the root cgroup, "
                                    "which has no such control file")
            continue
        if cg not in out:
            out.append(cg)
    return out


def _set_cgroups(sc: Scenario, target: str | None, name: str, change: Any) -> Scenario:
    data = dump(sc)
    cgroups = data.setdefault("cgroups", {})
    for cg in _cgroups(data, target, name):
        cgroups[cg] = change(dict(cgroups.get(cg, {})))
    return load(data, sc, name)


@policy("memcg_headroom", Param("size", help="added to memory.max"), target=READER_CGROUPS,
        example="memcg_headroom:size=256MiB")
def memcg_headroom(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """Raise memory.max of the readers' cgroups by `size` (an unlimited one stays so)."""
    ram = machine_bytes(sc)

    def change(cg: Data) -> Data:
        mx = cg.get("memory.max", "max")
        if mx != "max":
            cg["memory.max"] = parse_bytes(mx, ram) + params["size"]
        return cg

    return _set_cgroups(sc, target, "memcg_headroom", change)


@policy("oom_group", target=READER_CGROUPS)
def oom_group(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """Set memory.oom.group on the readers' cgroups: an OOM kill takes the whole cgroup."""
    return _set_cgroups(sc, target, "oom_group", lambda cg: {**cg, "memory.oom.group": True})


@policy("memory_min", Param("size", help="memory.min"), target=READER_CGROUPS,
        example="memory_min:size=64MiB")
def memory_min(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """Set memory.min of the readers' cgroups to `size`: reclaim leaves that much alone."""
    return _set_cgroups(sc, target, "memory_min", lambda cg: {**cg, "memory.min": params["size"]})


@policy("protect_reader",
        target="readers (tasks that map a write-sealed file shared)")
def protect_reader(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """oom_score_adj -1000 for the readers: the OOM killer never picks them."""
    data = dump(sc)
    tasks = [task_named(data, target)] if target is not None else \
        reader_tasks(data, None, "protect_reader")
    for t in tasks:
        t["oom_score_adj"] = -1000
    return load(data, sc, "protect_reader")


@policy("swap", Param("size", help="the swap device's size"), target=None,
        example="swap:size=1GiB")
def swap(sc: Scenario, params: dict[str, Any], target: str | None) -> Scenario:
    """Give the machine a swap device of `size` (zram-like): clean holes a fault instantiated
    are dropped by reclaim and refaulted instead of killing."""
    data = dump(sc)
    machine = data.setdefault("machine", {})
    machine["swap"] = parse_bytes(machine.get("swap", 0)) + params["size"]
    return load(data, sc, "swap")
