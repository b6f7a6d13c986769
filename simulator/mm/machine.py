"""The machine: the kernel's global state that every modelled function reads and writes.

One `Machine` is passed to every process, the way SimPy passes `env`: nodes (`pglist_data`),
the memcg tree, shmem inodes and mounts, tasks, the overcommit state, sysctls, the behaviour
profile, and the event log. Counters are updated only through the helpers here, so that the
invariants (`check_invariants`) hold after every step.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .memcontrol import MemCgroup, mod_memcg_state, page_counter_uncharge
from .overcommit import Overcommit, commit_margin, vm_commit_limit, vm_enough_memory
from .page_alloc import Node, free_pages, zonelist
from .profiles import KernelProfile, WhatIf
from .shmem import ShmemInode, ShmemSb, guess_free_2014, shmem_free_range
from .swapfile import SwapInfo
from .xarray import XA_NODE_BYTES

if TYPE_CHECKING:
    import simpy

    from ..engine.engines import Engine
    from .mm_types import VMA
    from .task import TaskStruct


@dataclass(frozen=True)
class Costs:
    """Simulated time per page or per call, in seconds (defaults: kernel-outcomes.md, 6.18)."""

    fault: float = 2602e-9
    populate: float = 2333e-9
    map_populate: float = 2385e-9
    mlock: float = 2333e-9
    fallocate: float = 939e-9
    read: float = 144e-9
    write: float = 600e-9
    swapin: float = 4e-6
    pageout: float = 4e-6
    syscall: float = 1e-6
    exit: float = 50e-6
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
        value: int | float = 0, detail: str = "",
    ) -> None:
        """Append one record at the current simulated time."""
        self.records.append((self.env.now, kind, task, memcg, page, pages, value, detail))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.records)


@dataclass(eq=False)
class Machine:
    """Global kernel state for one simulated run."""

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
    page_cache_pages: int = 0
    log: EventLog = None  # type: ignore[assignment]
    memcgs: dict[str, MemCgroup] = field(default_factory=dict)
    mounts: dict[str, ShmemSb] = field(default_factory=dict)
    internal_mount: ShmemSb = field(default_factory=lambda: ShmemSb(path="<shm_mnt>"))
    files: dict[str, ShmemInode] = field(default_factory=dict)
    tasks: list[TaskStruct] = field(default_factory=list)
    owners: list[tuple[MemCgroup, int]] = field(default_factory=list)
    tagged_memcgs: list[MemCgroup] = field(default_factory=list)
    oom_kills: list[dict[str, Any]] = field(default_factory=list)
    oom_waiters: list[Any] = field(default_factory=list)
    next_ino: int = 1
    engine: Engine = None  # type: ignore[assignment]  # set by the run: bulk or reference
    swap: SwapInfo = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.log is None:
            self.log = EventLog(self.env)
        if self.swap is None:
            self.swap = SwapInfo(pages=self.total_swap)
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
    def shmem_stat(self, memcg: MemCgroup, nid: int, n: int) -> None:
        """Shmem pages added (n > 0) or freed: memcg `shmem` stat and the node's NR_SHMEM."""
        mod_memcg_state(memcg, "shmem", n)
        self.nodes[nid].stat["shmem"] += n

    def slab_stat(self, memcg: MemCgroup, nid: int, n: int) -> None:
        """Slab pages charged (n > 0) or uncharged for a memcg's objects on node nid."""
        mod_memcg_state(memcg, "slab", n)
        memcg.slab_nodes[nid] = memcg.slab_nodes.get(nid, 0) + n
        self.nodes[nid].stat["slab"] += n

    def pgtable_stat(self, memcg: MemCgroup, nid: int, n: int) -> None:
        """Page-table pages added or freed (node NR_PAGETABLE; memcg `pagetables` where the
        kernel charges them)."""
        if self.profile.kmem_charged:
            mod_memcg_state(memcg, "pagetables", n)
        self.nodes[nid].stat["pagetables"] += n

    def kmem_charge(self, n: int) -> int:
        """Of n new pages of kernel memory (page tables, a kernel stack), how many the memcg is
        charged: all, or none on 3.15."""
        return n if self.profile.kmem_charged else 0

    def anon_stat(self, task: TaskStruct, nid: int, n: int) -> None:
        """Private anonymous pages of a task added or freed (rss, memcg `anon`, node)."""
        task.mm.rss["anon"] += n
        task.mm.anon_nodes[nid] += n
        mod_memcg_state(task.memcg, "anon", n)
        self.nodes[nid].stat["anon"] += n

    # -- overcommit ----------------------------------------------------------------------------
    def vm_enough_memory(self, task: TaskStruct, pages: int) -> bool:
        """`security_vm_enough_memory_mm(task->mm, pages)` with the machine's sizes."""
        return vm_enough_memory(
            self.overcommit, pages, commit_limit=self.commit_limit(), totalram=self.totalram,
            total_swap=self.total_swap, total_vm=task.mm.total_vm,
            cap_sys_admin=task.capable("sys_admin"),
            guess_free_2014=guess_free_2014(self, task),
        )

    def commit_margin(self, task: TaskStruct) -> int | None:
        """One-page `vm_enough_memory` calls that would succeed now (None: unlimited)."""
        return commit_margin(
            self.overcommit, commit_limit=self.commit_limit(), total_vm=task.mm.total_vm,
            cap_sys_admin=task.capable("sys_admin"),
        )

    # -- signals, exit, reaping ----------------------------------------------------------------
    def send_sigkill(self, task: TaskStruct) -> None:
        """SIGKILL: mark it pending, and wake the task if it is sleeping so that it exits."""
        if task.sigkill or task.exited:
            return
        task.sigkill = True
        self.log.emit("signal_deliver", task=task.name, detail="SIGKILL")
        if task.kernel_wait is not None:
            # A killable sleep inside the kernel: wake it; the caller unwinds and fails.
            if not task.kernel_wait.triggered:
                task.kernel_wait.succeed()
            return
        proc = task.process
        if proc is not None and proc.is_alive and proc is not self.env.active_process:
            proc.interrupt("SIGKILL")

    def kernel_wait(self, task: TaskStruct, queue: list[Any], why: str) -> Generator[Any, Any, None]:
        """A killable sleep in the kernel until an event on `queue` (or SIGKILL) wakes it."""
        if task.sigkill:
            return
        ev = self.env.event()
        queue.append(ev)
        task.kernel_wait, task.wait_reason = ev, why
        try:
            yield ev
        finally:
            task.kernel_wait, task.wait_reason = None, None

    def wake_oom_waiters(self) -> None:
        """Memory was freed or a victim reaped: let allocators waiting on OOM progress retry."""
        waiters, self.oom_waiters = self.oom_waiters, []
        for ev in waiters:
            if not ev.triggered:
                ev.succeed()

    def reap_private(self, task: TaskStruct) -> int:
        """The OOM reaper's work (`__oom_reap_task_mm`): free anonymous and private pages.

        Shared shmem mappings are left alone: their pages belong to the file.
        """
        from .memory import free_cow_pages

        mm = task.mm
        freed = 0
        for vma in mm.vmas.values():
            if not vma.shared:
                freed += free_cow_pages(self, task, vma, 0, vma.npages)
        for nid, n in list(mm.anon_nodes.items()):
            if n:
                self.anon_stat(task, nid, -n)
                page_counter_uncharge(self, task.memcg, n)
                free_pages(self, nid, n)
                freed += n
        return freed

    def exit_mm(self, task: TaskStruct) -> None:
        """Models `exit_mmap()` and the fd closes of `do_exit()`.

        Private pages and page tables are freed and uncharged; shared mappings are dropped;
        file references go, and a memfd with no fd and no mapping left is evicted.
        """
        from .memory import free_cow_pages, unmap_pages

        mm = task.mm
        for name in list(mm.vmas):
            vma = mm.vmas.pop(name)
            unmap_pages(self, task, vma, 0, vma.npages)
            free_cow_pages(self, task, vma, 0, vma.npages)
            self.vma_unlink_file(vma)
        self.reap_private(task)
        for nid, n in list(mm.pt_nodes.items()):
            self.pgtable_stat(task.memcg, nid, -n)
            page_counter_uncharge(self, task.memcg, self.kmem_charge(n))
            free_pages(self, nid, n)
        mm.pt_nodes.clear()
        for nid, n in list(mm.kernel_nodes.items()):
            mod_memcg_state(task.memcg, "kernel", -self.kmem_charge(n))
            page_counter_uncharge(self, task.memcg, self.kmem_charge(n))
            free_pages(self, nid, n)
        mm.kernel_nodes.clear()
        if mm.committed:
            self.overcommit.vm_acct_memory(-mm.committed)
            mm.committed = 0
        for fd in list(task.fds):
            self.fd_put(task, fd)
        task.exited = True
        mm.mmf_oom_skip = True
        task.memcg.tasks.pop(task, None)
        self.wake_oom_waiters()

    def vma_unlink_file(self, vma: VMA) -> None:
        """Drop a mapping's reference on its file (and its VM_MAYWRITE count)."""
        inode = vma.file
        if inode is None:
            return
        if vma in inode.vmas:
            inode.vmas.remove(vma)
        if vma.shared and vma.maywrite:
            inode.i_mmap_writable -= 1
        self.maybe_evict(inode)

    def fd_put(self, task: TaskStruct, fd: str) -> None:
        """A task closes its reference to a file."""
        task.fds.discard(fd)
        inode = self.files.get(fd)
        if inode is not None:
            inode.holders.discard(task.pid)
            self.maybe_evict(inode)

    def maybe_evict(self, inode: ShmemInode) -> None:
        """Models `shmem_evict_inode()`: an unlinked file with no fd and no mapping is freed."""
        if inode.linked or inode.holders or inode.vmas or inode.evicted:
            return
        freed = shmem_free_range(self, inode, 0, 1 << 62)
        inode.evicted = True
        self.log.emit("shmem_evict_inode", pages=freed, detail=inode.name)

    # -- invariants ----------------------------------------------------------------------------
    def check_xa_charges(self) -> None:
        """Every file's xarray nodes are those its entries need, and every memcg's slab pages
        hold exactly its nodes' bytes and its byte stock."""
        nodes: dict[int, int] = {}
        seen: set[int] = set()
        for inode in self.files.values():
            if id(inode) in seen:
                continue
            seen.add(id(inode))
            for tag, n in inode.xa.charged(inode.max_index()).items():
                nodes[tag] = nodes.get(tag, 0) + n
            if self.profile.kmem_charged:
                runs = [(s, e) for s, e, _ in inode.pages.runs(0, 1 << 62)]
                runs += [(s, e) for s, e, _ in inode.swap.runs(0, 1 << 62)]
                if not inode.xa.matches(runs, inode.max_index()):
                    raise AssertionError(f"{inode.name}: xarray nodes differ from its entries'")
        for c in self.memcgs.values():
            held = nodes.get(self._memcg_tag_index.get(id(c), -1), 0) * XA_NODE_BYTES
            if c.obj_stock < 0 or c.stat["slab"] * self.page_size != held + c.obj_stock:
                raise AssertionError(
                    f"memcg {c.path}: {c.stat['slab']} slab pages != {held} bytes of xarray "
                    f"nodes + {c.obj_stock} bytes of stock"
                )

    def check_invariants(self) -> None:
        """Fail loudly: pages conserved per node, counters never negative or over limits."""
        per_node_used = [0] * len(self.nodes)
        for t in self.tasks:
            for src in (t.mm.pt_nodes, t.mm.anon_nodes, t.mm.kernel_nodes):
                for nid, n in src.items():
                    per_node_used[nid] += n
        file_used: dict[int, int] = {}
        for inode in self.files.values():
            for tag, n in inode.pages.by_owner().items():
                _, nid = self.owners[tag]
                per_node_used[nid] += n
                file_used[id(self.owners[tag][0])] = file_used.get(id(self.owners[tag][0]), 0) + n
        for c in self.memcgs.values():
            for nid, n in c.slab_nodes.items():
                per_node_used[nid] += n
        for n in self.nodes:
            if n.free + per_node_used[n.nid] != n.managed:
                raise AssertionError(
                    f"node {n.nid}: free {n.free} + used {per_node_used[n.nid]} "
                    f"!= managed {n.managed}"
                )
        for c in self.memcgs.values():
            if c.usage < 0:
                raise AssertionError(f"memcg {c.path}: negative usage")
            if not c.is_root() and c.usage > c.max:
                raise AssertionError(f"memcg {c.path}: usage {c.usage} over max {c.max}")
            local = sum(c.stat[k] for k in ("anon", "shmem", "kernel", "pagetables", "slab"))
            below = sum(ch.usage for ch in c.children)
            if c.usage != local + below:
                raise AssertionError(
                    f"memcg {c.path}: usage {c.usage} != own pages {local} + children {below}"
                )
        self.check_swap_invariants()
        self.check_xa_charges()
        if self.overcommit.committed_as < 0:
            raise AssertionError("Committed_AS negative")
        for sb in [self.internal_mount, *self.mounts.values()]:
            if sb.used_blocks < 0 or (sb.max_blocks and sb.used_blocks > sb.max_blocks):
                raise AssertionError(f"mount {sb.path}: used_blocks {sb.used_blocks} out of range")

    def check_swap_invariants(self) -> None:
        """Swap slots, swap charges and MM_SWAPENTS add up; a swapped page is not also a folio."""
        used = 0
        swap_local: dict[int, int] = {}
        for inode in self.files.values():
            for tag, n in inode.swap.by_owner().items():
                swap_local[tag] = swap_local.get(tag, 0) + n
                used += n
            for s, e, _ in inode.swap.runs(0, 1 << 62):
                if inode.pages.count(s, e):
                    raise AssertionError(f"file {inode.name}: pages {s}..{e} both swapped and present")
            for vma in inode.vmas:
                for s, e, _ in inode.swap.runs(vma.pgoff, vma.pgoff + vma.npages):
                    if vma.mapped.count(s - vma.pgoff, e - vma.pgoff):
                        raise AssertionError(f"file {inode.name}: a swapped page is mapped")
        for t in self.tasks:
            ents = 0
            for vma in t.mm.vmas.values():
                for tag, n in vma.swap.by_owner().items():
                    swap_local[tag] = swap_local.get(tag, 0) + n
                    used += n
                    ents += n
                for s, e, _ in vma.swap.runs(0, vma.npages):
                    if vma.cow.count(s, e) or vma.mapped.count(s, e) or vma.zero.count(s, e):
                        raise AssertionError(f"{t.name}: a swap PTE is also present")
            if not t.exited and ents != t.mm.swapents:
                raise AssertionError(f"{t.name}: MM_SWAPENTS {t.mm.swapents} != swap PTEs {ents}")
        if used != self.swap.inuse or self.swap.inuse > self.swap.pages:
            raise AssertionError(f"swap: {self.swap.inuse} slots in use of {self.swap.pages}, "
                                 f"entries {used}")
        local = {id(c): 0 for c in self.memcgs.values()}
        for tag, n in swap_local.items():
            local[id(self.tagged_memcgs[tag])] += n
        for c in self.memcgs.values():
            if c.stat["swap"] != local[id(c)]:
                raise AssertionError(f"memcg {c.path}: swap stat {c.stat['swap']} != entries "
                                     f"{local[id(c)]}")
            below = sum(ch.swap_usage for ch in c.children)
            if c.swap_usage != local[id(c)] + below:
                raise AssertionError(f"memcg {c.path}: swap usage {c.swap_usage} != own "
                                     f"{local[id(c)]} + children {below}")
            if not c.is_root() and c.swap_usage > c.swap_max:
                raise AssertionError(f"memcg {c.path}: swap usage over swap.max")
