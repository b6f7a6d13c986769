"""The resolved plan of a run: a loaded scenario in pages, bytes and seconds, built once.

The run builder (simulation.py), the task processes (tasks.py) and the ops (ops.py) read only
this: every size and duration of the scenario is converted here, once, so nothing parses text
while the run goes on. A size written as a percentage of a map is kept as a `Fraction`, since
the map's length is known only when the op runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel

from .engine.rng import frozen_heap
from .scenario_model import CgroupSpec, MachineSpec, Scenario, StartAfter, SwapSpec, TaskSpec, swap_size
from .scenario_ops import op_args, op_name
from .units import SizeText, parse_bytes, parse_pages, parse_seconds


@dataclass(frozen=True)
class Fraction:
    """A size written as a percentage of a whole that is known only when the op runs."""

    pct: float

    def of(self, whole: int) -> int:
        """Bytes of `whole` bytes, rounded down as `units.parse_bytes` does."""
        return int(self.pct * whole / 100)


def nbytes(v: int | Fraction, whole: int) -> int:
    """A resolved size in bytes: itself, or its share of `whole` bytes."""
    return v.of(whole) if isinstance(v, Fraction) else v


class OpArgs(SimpleNamespace):
    """An op's arguments with sizes in bytes (ranges as tuples; `Fraction` for percentages)."""


@dataclass(frozen=True)
class OpPlan:
    """One op of a task: its name and its resolved arguments (a number for `sleep` and
    `oom_score_adj`: seconds, and the value)."""

    name: str
    args: Any


@dataclass(frozen=True)
class TaskPlan:
    """A task: its spec, its start (seconds, or the task it starts after), its sizes in pages."""

    spec: TaskSpec
    start: float
    after: str | None
    ops: tuple[OpPlan, ...]
    anon_pages: int
    kernel_pages: int
    page_table_pages: int
    vm_pages: int
    committed_pages: int
    rlimit_memlock_pages: int | None  # None: unlimited


@dataclass(frozen=True)
class NodePlan:
    """A NUMA node in pages."""

    present: int
    reserved: int
    distance: list[int]


@dataclass(frozen=True)
class CgroupPlan:
    """A memcg's limits in pages (None: `max`)."""

    max: int | None
    high: int | None
    swap_max: int | None
    low: int
    min: int
    oom_group: bool
    oom_kill_disable: bool | None  # None: not written, inherited from the parent
    memsw_max: int | None = None
    swappiness: int | None = None
    mems: tuple[int, ...] | None = None  # cpuset.mems (None: not written)


@dataclass(frozen=True)
class MountPlan:
    """A mount: a tmpfs's size in pages, or a disk mount's files (name -> bytes)."""

    path: str
    pages: int
    noswap: bool
    disk: bool = False
    files: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Plan:
    """A whole run: machine, cgroups, mounts and tasks in pages, costs and times in seconds."""

    scenario: Scenario
    page_size: int
    duration: float
    nodes: tuple[NodePlan, ...]
    swap_pages: int
    swap_kind: str
    page_cache_pages: int
    costs: dict[str, float]
    cgroups: dict[str, CgroupPlan]
    mounts: tuple[MountPlan, ...]
    tasks: tuple[TaskPlan, ...]
    fd_users: dict[str, frozenset[str]]

    @property
    def ram_pages(self) -> int:
        """Pages of RAM on all nodes."""
        return sum(n.present for n in self.nodes)


def resolve_size(v: Any) -> Any:
    """A size field's value in bytes (a `Fraction` for a percentage); other values as they are."""
    if isinstance(v, SizeText):
        return v.nbytes if v.pct is None else Fraction(v.pct)
    if isinstance(v, list):
        return tuple(resolve_size(x) for x in v)
    return v


def resolve_op(op: BaseModel) -> OpPlan:
    """An op with its arguments resolved."""
    name, args = op_name(op), op_args(op)
    if name == "sleep":
        return OpPlan(name, parse_seconds(args))
    if not isinstance(args, BaseModel):
        return OpPlan(name, args)
    # A pydantic model keeps its field values in __dict__ (reading model_fields is slow).
    return OpPlan(name, OpArgs(**{k: resolve_size(v) for k, v in args.__dict__.items()}))


def fd_users(sc: Scenario) -> dict[str, frozenset[str]]:
    """For each fd name, the tasks whose ops name it (they hold it from its creation)."""
    users: dict[str, set[str]] = {}
    for t in sc.tasks:
        for o in t.ops:
            fd = getattr(op_args(o), "fd", None)
            if isinstance(fd, str):
                users.setdefault(fd, set()).add(t.name)
    return {fd: frozenset(names) for fd, names in users.items()}


def resolve_task(spec: TaskSpec, ps: int) -> TaskPlan:
    """A task's start, footprint, memlock limit and ops, resolved."""
    fp = spec.footprint
    after = spec.start.after if isinstance(spec.start, StartAfter) else None
    memlock = spec.rlimits.memlock
    return TaskPlan(
        spec=spec, start=0.0 if after is not None else parse_seconds(spec.start), after=after,
        ops=tuple(resolve_op(o) for o in spec.ops),
        anon_pages=parse_pages(fp.anon, ps), kernel_pages=parse_pages(fp.kernel, ps),
        page_table_pages=parse_pages(fp.page_tables, ps), vm_pages=parse_pages(fp.vm, ps),
        committed_pages=parse_pages(fp.committed, ps),
        rlimit_memlock_pages=None if memlock == "max" else parse_bytes(memlock) // ps,
    )


def limit_pages(v: Any, ps: int, ram_pages: int) -> int | None:
    """A memcg limit in pages (None for `max`; a percentage is of RAM)."""
    return None if v == "max" else parse_bytes(v, ram_pages * ps) // ps


def resolve_cgroup(spec: CgroupSpec, ps: int, ram_pages: int) -> CgroupPlan:
    """A memcg's control files in pages."""
    return CgroupPlan(
        max=limit_pages(spec.memory_max, ps, ram_pages),
        high=limit_pages(spec.memory_high, ps, ram_pages),
        swap_max=limit_pages(spec.memory_swap_max, ps, ram_pages),
        low=parse_pages(spec.memory_low, ps, ram_pages),
        min=parse_pages(spec.memory_min, ps, ram_pages),
        oom_group=spec.memory_oom_group, oom_kill_disable=(spec.memory_oom_kill_disable
                          if "memory_oom_kill_disable" in spec.model_fields_set else None),
        memsw_max=limit_pages(spec.memory_memsw_limit_in_bytes, ps, ram_pages),
        swappiness=spec.memory_swappiness,
        mems=None if spec.cpuset_mems is None else tuple(sorted(set(spec.cpuset_mems))),
    )


def resolve(sc: Scenario) -> Plan:
    """The plan of a loaded (validated) scenario (built with the collector kept off the
    scenario's objects, which are all alive: 10,000 tasks are a large heap to walk)."""
    with frozen_heap():
        return _resolve(sc)


# A disk swap device's page times when the scenario gives none (estimates, not measured here:
# a random 4 KiB read of a SATA SSD; a write in the swap-out's sequential clusters).
DISK_SWAP_READ, DISK_SWAP_WRITE = 100e-6, 10e-6


def resolve_costs(machine: MachineSpec) -> dict[str, float]:
    """The costs a scenario sets, with its swap device's: `swap.read`/`swap.write` win over
    `costs.swapin`/`costs.pageout`, which win over a disk device's defaults."""
    costs: dict[str, float] = {}
    sw = machine.swap
    if isinstance(sw, SwapSpec) and sw.kind == "disk":
        costs.update(swapin=DISK_SWAP_READ, pageout=DISK_SWAP_WRITE)
    costs.update({k: parse_seconds(v) for k in type(machine.costs).model_fields
                  if (v := getattr(machine.costs, k)) is not None})
    if isinstance(sw, SwapSpec):
        if sw.read is not None:
            costs["swapin"] = parse_seconds(sw.read)
        if sw.write is not None:
            costs["pageout"] = parse_seconds(sw.write)
    return costs


def _resolve(sc: Scenario) -> Plan:
    ps = parse_bytes(sc.machine.page_size)
    nodes = []
    for i, ns in enumerate(sc.machine.nodes):
        present = parse_pages(ns.memory, ps)
        reserved = present // 64 if ns.reserved is None else parse_pages(ns.reserved, ps)
        dist = ns.distance or [10 if j == i else 20 for j in range(len(sc.machine.nodes))]
        nodes.append(NodePlan(present, reserved, dist))
    ram_pages = sum(n.present for n in nodes)
    return Plan(
        scenario=sc, page_size=ps, duration=parse_seconds(sc.duration), nodes=tuple(nodes),
        swap_pages=parse_pages(swap_size(sc.machine.swap), ps),
        swap_kind=sc.machine.swap.kind if isinstance(sc.machine.swap, SwapSpec) else "zram",
        page_cache_pages=parse_pages(sc.machine.page_cache, ps),
        costs=resolve_costs(sc.machine),
        cgroups={path: resolve_cgroup(spec, ps, ram_pages) for path, spec in sc.cgroups.items()},
        mounts=tuple(MountPlan(m.path, ram_pages // 2 if m.size is None
                               else parse_pages(m.size, ps, ram_pages), m.noswap,
                               m.type == "disk",
                               tuple((n, parse_bytes(v)) for n, v in m.files.items()))
                     for m in sc.mounts),
        tasks=tuple(resolve_task(t, ps) for t in sc.tasks),
        fd_users=fd_users(sc),
    )
