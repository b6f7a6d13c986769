"""The machine: the kernel's global state that every modelled function reads and writes.

One `Machine` is passed to every process, the way SimPy passes `env`: nodes (`pglist_data`),
the memcg tree, shmem inodes and mounts, tasks, the overcommit state, sysctls, the behaviour
profile, and the event log. Counters are updated only through the helpers here, so that the
invariants (`debug.check_invariants`) hold after every step. The kernel paths that change this
state are plain functions in their kernel modules, taking the machine as first argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .levels import COMMITTED_AS, MEMCG_USAGE, NODE_FREE, SWAP_USED, LevelLog
from .lru import LruState
from .memcontrol import MemCgroup
from .overcommit import Overcommit, vm_commit_limit
from .page_alloc import Node, zonelist
from .profiles import KernelProfile, WhatIf
from .shmem_inode import ShmemInode, ShmemSb
from .swapfile import SwapInfo

if TYPE_CHECKING:
    import simpy

    from ..engine.engines import Engine
    from .task import TaskStruct


@dataclass(frozen=True)
class Costs:
    """Simulated time per page or per call, in seconds (defaults: docs/kernel-outcomes.md, 6.18)."""

    fault: float = 2602e-9
    populate: float = 2333e-9
    map_populate: float = 2385e-9
    mlock: float = 2333e-9
    fallocate: float = 939e-9
    read: float = 144e-9
    write: float = 600e-9
    swapin: float = 4e-6
    pageout: float = 4e-6
    disk_read: float = 1e-6  # a page read from disk into the page cache (an estimate: ~4 GB/s)
    writeback: float = 2e-6  # a dirty page written back to disk (an estimate: ~2 GB/s)
    reclaim_scan: float = 100e-9  # a page looked at by reclaim (an estimate: not measured)
    syscall: float = 1e-6
    exit: float = 50e-6
    pgtable_rcu: float = 14e-3  # page tables freed by munmap, MADV_DONTNEED or exit: uncharged
    # after this RCU grace period (lazy call_rcu; measured 10-22 ms, validate.md)
    quantum: float = 1e-3


class EventLog:
    """Append-only records `(time, kind, task, memcg, page, pages, value, detail)`.

    Kinds read like tracepoints (`shmem_fault`, `memcg_max`, `oom_kill`, `mark_victim`, ...).
    Appending a tuple is all the hot path does; frames are built once, at the end.
    """

    __slots__ = ("records", "env")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.records: list[tuple[Any, ...]] = []

    def emit(
        self, kind: str, *, task: str = "", memcg: str = "", page: int = -1, pages: int = 0,
        value: int | float | None = 0, detail: str = "",
    ) -> None:
        """Append one record at the current simulated time."""
        self.records.append((self.env.now, kind, task, memcg, page, pages, value, detail))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.records)


@dataclass(eq=False)
class Machine:
    """Global kernel state for one simulated run.

    Attributes (beyond the obvious):
        debug_vm: CONFIG_DEBUG_VM: `debug.vm_debug_check` checks the invariants where it is
            called (after an exit, a reaping; the stepping engine's steps and the task runner's
            ops), not only at the end of the run.
        panic: the panic message once the kernel has panicked (the run stops there).
        levels: the level records of memcg usage, node free pages, Committed_AS and swap use
            (simulator/mm/levels.py).
    """

    env: simpy.Environment
    page_size: int
    nodes: list[Node]
    root: MemCgroup
    profile: KernelProfile
    what_if: WhatIf
    overcommit: Overcommit
    sysctl: dict[str, int]
    costs: Costs
    total_swap: int = 0
    swap_kind: str = "zram"
    page_cache_pages: int = 0
    log: EventLog = None  # type: ignore[assignment]
    memcgs: dict[str, MemCgroup] = field(default_factory=dict)
    mounts: dict[str, ShmemSb] = field(default_factory=dict)
    internal_mount: ShmemSb = field(default_factory=lambda: ShmemSb(path="<shm_mnt>"))
    files: dict[str, ShmemInode] = field(default_factory=dict)
    # The dentries of files opened by path (tmpfs and disk mounts): path -> inode. A file
    # stays here after its fd name is reused or closed: linked, with its pages.
    dcache: dict[str, ShmemInode] = field(default_factory=dict)
    fd_numbers: dict[str, int] = field(default_factory=dict)  # fd name -> number, in install order
    tasks: list[TaskStruct] = field(default_factory=list)
    owners: list[tuple[MemCgroup, int]] = field(default_factory=list)
    tagged_memcgs: list[MemCgroup] = field(default_factory=list)
    oom_kills: list[dict[str, Any]] = field(default_factory=list)
    oom_waiters: list[Any] = field(default_factory=list)
    next_ino: int = 1
    engine: Engine = None  # type: ignore[assignment]  # set by the run: bulk or reference
    swap: SwapInfo = None  # type: ignore[assignment]
    debug_vm: bool = False
    cpusets_enabled: bool = False  # `cpusets_enabled()`: some cgroup sets cpuset.mems
    panic: str | None = None
    levels: LevelLog = None  # type: ignore[assignment]
    lru: LruState = field(default_factory=LruState)
    writeback: Any = None  # the disk writeback queue (pagecache.Writeback), made on first write

    def __post_init__(self) -> None:
        if self.log is None:
            self.log = EventLog(self.env)
        if self.swap is None:
            self.swap = SwapInfo(pages=self.total_swap, kind=self.swap_kind)
        self.lru.anon = self.swap.pages > 0  # no swap: nothing ever scans the anon lists
        if self.levels is None:
            self.levels = LevelLog(self.env)
        # The counters record their changes here (simulator/mm/levels.py); the initial levels
        # are recorded now, so that every series starts at time 0.
        kept = self.levels if self.levels.keeps else None  # `NoLevels`: the hot paths skip it
        self.root.levels = self.overcommit.levels = kept
        for n in self.nodes:
            n.levels = kept
            self.levels.record(NODE_FREE, n.nid, n.free)
        self.levels.record(MEMCG_USAGE, self.root.path, self.root.usage)
        self.levels.record(COMMITTED_AS, "", self.overcommit.committed_as)
        self.levels.record(SWAP_USED, "", self.swap.inuse)
        self._owner_index: dict[tuple[int, int], int] = {}
        self._memcg_tag_index: dict[int, int] = {}
        self.memcgs.setdefault(self.root.path, self.root)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def page_kb(self) -> int:
        """KiB per page."""
        return self.page_size // 1024

    @property
    def totalram(self) -> int:
        """`totalram_pages()`: managed pages over all nodes (fixed once the nodes are built)."""
        total = self.__dict__.get("_totalram")
        if total is None:
            total = self.__dict__["_totalram"] = sum(n.managed for n in self.nodes)
        return total

    def totalreserve_pages(self) -> int:
        """`totalreserve_pages`: the high watermarks (no lowmem_reserve with one zone a node)."""
        return sum(n.high_wmark() for n in self.nodes)

    def commit_limit(self) -> int:
        """CommitLimit in pages (`vm_commit_limit`)."""
        return vm_commit_limit(self.overcommit, self.totalram, self.total_swap, self.page_kb)

    def zonelist(self, nid: int) -> list[Node]:
        """Node `nid`'s zonelist (`build_zonelists()`), built once: distances never change."""
        lists = self.__dict__.setdefault("_zonelists", {})
        zl = lists.get(nid)
        if zl is None:
            zl = lists[nid] = zonelist(self.nodes, nid)
        return zl

    # -- owner tags for file pages -------------------------------------------------------------
    def owner(self, memcg: MemCgroup, nid: int) -> int:
        """The small integer tagging pages charged to `memcg` and held on node `nid`."""
        key = (id(memcg), nid)
        tag = self._owner_index.get(key)
        if tag is None:
            tag = len(self.owners)
            self.owners.append((memcg, nid))
            self._owner_index[key] = tag
        return tag

    def memcg_tag(self, memcg: MemCgroup) -> int:
        """The small integer tagging kernel objects charged to `memcg` (its objcg)."""
        tag = self._memcg_tag_index.get(id(memcg))
        if tag is None:
            tag = len(self.tagged_memcgs)
            self.tagged_memcgs.append(memcg)
            self._memcg_tag_index[id(memcg)] = tag
        return tag

    # -- counters ------------------------------------------------------------------------------
    def kmem_charge(self, n: int) -> int:
        """Of n new pages of kernel memory (page tables, a kernel stack), how many the memcg is
        charged: all, or none on 3.15."""
        return n if self.profile.kmem_charged else 0
