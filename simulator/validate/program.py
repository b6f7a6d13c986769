"""A scenario's tasks as worker programs: the line protocol worker.c reads on stdin.

Everything the worker needs is resolved here, once: sizes to bytes, fd and map names to slot
numbers, flags to the kernel's bits, tmpfs paths to the real mount points, capabilities to a
mask. The worker only does what the lines say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..scenario import Scenario, StartAfter, TaskSpec, op_args, op_name
from ..units import parse_bytes, parse_seconds

MFD = {"allow_sealing": 0x2, "noexec_seal": 0x8}
SEALS = {"seal": 0x1, "shrink": 0x2, "grow": 0x4, "write": 0x8, "future_write": 0x10, "exec": 0x20}
FALLOC = {"keep_size": 0x1, "punch_hole": 0x2}
PROT = {"read": 0x1, "write": 0x2}
MAP = {"shared": 0x01, "private": 0x02, "locked": 0x2000, "noreserve": 0x4000, "populate": 0x8000}
MADV = {"willneed": 3, "dontneed": 4, "pageout": 21, "populate_read": 22, "populate_write": 23}
PATTERN = {"sequential": 0, "random": 1, "stride": 2}
CAPS = {"ipc_lock": 14, "sys_admin": 21, "sys_resource": 24}  # capability numbers

# Ops whose pages the kernel walks itself: where it stopped is read from the file afterwards.
POPULATING = ("mmap", "mlock", "mlock2", "madvise")


@dataclass(frozen=True)
class MapInfo:
    """Where a map of a file starts in it (to find how far the kernel populated it)."""

    fd: str
    pgoff: int


@dataclass
class TaskProgram:
    """One task, ready for a worker: its settings and its op lines."""

    name: str
    cgroup: str
    start: float | str  # seconds, or the name of the task it starts after
    memlock: int  # bytes; -1 is unlimited
    oom_score_adj: int
    caps: int
    lines: list[str]
    op_names: list[str]
    populating: dict[int, MapInfo] = field(default_factory=dict)  # op index -> its file map

    @property
    def stdin(self) -> bytes:
        """The program as the worker reads it."""
        return "".join(line + "\n" for line in self.lines).encode()


@dataclass
class Slots:
    """Small integers for fd and map names, shared by all tasks of a scenario."""

    fds: dict[str, int] = field(default_factory=dict)
    maps: dict[str, int] = field(default_factory=dict)

    def fd(self, name: str) -> int:
        """The slot of an fd name."""
        return self.fds.setdefault(name, len(self.fds))

    def map(self, name: str) -> int:
        """The slot of a map name."""
        return self.maps.setdefault(name, len(self.maps))


def bits(table: dict[str, int], names: list[str]) -> int:
    """The OR of the named flags."""
    out = 0
    for n in names:
        out |= table[n]
    return out


def cap_mask(caps: Iterable[str]) -> int:
    """The capability bit mask a worker keeps (every other capability is dropped)."""
    out = 0
    for c in caps:
        out |= 1 << CAPS[c]
    return out


def range_end(v: Any) -> str:
    """A range end for the worker: bytes, or `p<percent>` of the map."""
    if isinstance(v, str) and v.strip().endswith("%"):
        return "p" + v.strip()[:-1].strip()
    return str(parse_bytes(v))


def range_ends(rng: list[Any] | None) -> str:
    """`LO HI` of an optional range (`- -`: the whole map)."""
    return "- -" if rng is None else f"{range_end(rng[0])} {range_end(rng[1])}"


def op_line(name: str, a: Any, slots: Slots, task: str, index: int, root: Path,
            cgroups: Mapping[str, Path] | None = None) -> str:
    """One op as a worker line (`cgroups`: each scenario cgroup's real directory)."""
    if name == "memfd_create":
        return f"memfd_create {slots.fd(a.fd)} {bits(MFD, a.flags)}"
    if name == "open":
        return f"open {slots.fd(a.fd)} {int(a.mode == 'rdonly')} {root}/{a.path.lstrip('/')}"
    if name == "shmget":
        return f"shmget {slots.fd(a.fd)} {parse_bytes(a.size)} {int('noreserve' in a.flags)}"
    if name == "ftruncate":
        return f"ftruncate {slots.fd(a.fd)} {parse_bytes(a.size)}"
    if name == "write":
        return f"write {slots.fd(a.fd)} {parse_bytes(a.offset)} {parse_bytes(a.length)}"
    if name == "read":
        length = -1 if a.length is None else parse_bytes(a.length)
        return f"read {slots.fd(a.fd)} {parse_bytes(a.offset)} {length}"
    if name == "fallocate":
        return (f"fallocate {slots.fd(a.fd)} {bits(FALLOC, a.flags)} {parse_bytes(a.offset)} "
                f"{parse_bytes(a.length)}")
    if name == "add_seals":
        return f"add_seals {slots.fd(a.fd)} {bits(SEALS, a.seals)}"
    if name == "close":
        return f"close {slots.fd(a.fd)}"
    if name == "mmap":
        length = -1 if a.length is None else parse_bytes(a.length)
        return (f"mmap {slots.fd(a.fd)} {slots.map(a.map)} {bits(PROT, a.prot)} "
                f"{bits(MAP, a.flags)} {parse_bytes(a.offset)} {length}")
    if name == "munmap":
        return f"munmap {slots.map(a.map)}"
    if name == "touch":
        stride = parse_bytes(a.stride) if a.stride is not None else 0
        return (f"touch {slots.map(a.map)} {int(a.access == 'write')} {PATTERN[a.pattern]} "
                f"{stride} {index} {range_ends(a.range)}")
    if name in ("mlock", "munlock"):
        return f"{name} {slots.map(a.map)} {range_ends(a.range)}"
    if name == "mlock2":
        return f"mlock2 {slots.map(a.map)} {range_ends(a.range)} {int('onfault' in a.flags)}"
    if name == "madvise":
        return f"madvise {slots.map(a.map)} {MADV[a.advice]} {range_ends(a.range)}"
    if name == "mprotect":
        return f"mprotect {slots.map(a.map)} {bits(PROT, a.prot)}"
    if name == "alloc_anon":
        mname = a.map or f"{task}.anon{index}"
        return f"alloc_anon {slots.map(mname)} {parse_bytes(a.size)} {int(a.touched)}"
    if name == "oom_score_adj":
        return f"oom_score_adj {int(a)}"
    if name == "sleep":
        return f"sleep {round(parse_seconds(a) * 1e9)}"
    if name == "exit":
        return "exit"
    if name == "memory_reclaim":
        where = (cgroups or {}).get(a.cgroup, Path("/nonexistent-cgroup"))
        swappiness = -1 if a.swappiness is None else a.swappiness
        return f"memory_reclaim {parse_bytes(a.size)} {swappiness} {where}/memory.reclaim"
    raise ValueError(f"op {name!r} has no worker line")  # pragma: no cover - OP_ARGS is closed


def populating_map(name: str, a: Any, maps: dict[str, MapInfo]) -> MapInfo | None:
    """The file map an op makes the kernel populate, if it does."""
    if name == "mmap":
        info = MapInfo(a.fd, parse_bytes(a.offset))
        maps[a.map] = info
        return info if {"populate", "locked"} & set(a.flags) else None
    if name in ("mlock", "mlock2") and not (name == "mlock2" and "onfault" in a.flags):
        return maps.get(a.map)
    if name == "madvise" and a.advice.startswith("populate"):
        return maps.get(a.map)
    return None


def task_program(t: TaskSpec, slots: Slots, root: Path,
                 cgroups: Mapping[str, Path] | None = None) -> TaskProgram:
    """A task's worker program; tmpfs paths are taken below `root`, cgroup paths from
    `cgroups` (scenario path -> the real directory)."""
    lines: list[str] = []
    names: list[str] = []
    populating: dict[int, MapInfo] = {}
    maps: dict[str, MapInfo] = {}
    for i, o in enumerate(t.ops):
        name, a = op_name(o), op_args(o)
        lines.append(op_line(name, a, slots, t.name, i, root, cgroups))
        names.append(name)
        info = populating_map(name, a, maps)
        if info is not None:
            populating[i] = info
    memlock = -1 if t.rlimits.memlock == "max" else parse_bytes(t.rlimits.memlock)
    start = t.start.after if isinstance(t.start, StartAfter) else parse_seconds(t.start)
    return TaskProgram(
        name=t.name, cgroup=t.cgroup, start=start, memlock=memlock,
        oom_score_adj=t.oom_score_adj, caps=cap_mask(t.capabilities), lines=lines,
        op_names=names, populating=populating,
    )


def scenario_programs(sc: Scenario, root: Path, cgroups: Mapping[str, Path] | None = None,
                      ) -> tuple[list[TaskProgram], Slots]:
    """Every task's program, and the slots their fd and map names got."""
    slots = Slots()
    return [task_program(t, slots, root, cgroups) for t in sc.tasks], slots


def fd_creators(sc: Scenario, slots: Slots) -> dict[int, list[tuple[str, int]]]:
    """For each fd slot, the (task, op index) pairs that create it."""
    out: dict[int, list[tuple[str, int]]] = {}
    for t in sc.tasks:
        for i, o in enumerate(t.ops):
            if op_name(o) in ("memfd_create", "open", "shmget"):
                out.setdefault(slots.fd(op_args(o).fd), []).append((t.name, i))
    return out


def fd_users(sc: Scenario, slots: Slots) -> dict[int, set[str]]:
    """For each fd slot, the tasks whose ops name it (the simulator's holders)."""
    out: dict[int, set[str]] = {}
    for t in sc.tasks:
        for o in t.ops:
            fd = getattr(op_args(o), "fd", None)
            if isinstance(fd, str):
                out.setdefault(slots.fd(fd), set()).add(t.name)
    return out
