"""Memory cgroups: the hierarchy, page counters, statistics, events and swap charges.

Models mm/memcontrol.c, mm/memcontrol-v1.c and mm/page_counter.c (v6.18):
`page_counter_try_charge`, `mem_cgroup_margin`, `memcg_memory_event`,
`mem_cgroup_get_oom_group`, and the swap side of cgroup v2: `__mem_cgroup_try_charge_swap`,
`__mem_cgroup_uncharge_swap`, `mem_cgroup_swapout` and the memcg choice of
`mem_cgroup_swapin_charge_folio`; and the byte stock slab objects are charged through
(`obj_cgroup_charge`, `refill_obj_stock`). The charge path that reaches the OOM killer
(`try_charge_memcg`, `mem_cgroup_oom`, `mem_cgroup_oom_synchronize`) is memcg_charge.py.

Simplifications:
    No per-CPU charge stock (the kernel's 64-page batches move usage ahead of use, but the page
    at which the limit is hit is the same); no reclaim yet (nothing is reclaimable without swap
    or clean page cache), so the 16 reclaim rounds are a no-op and the OOM path is reached at
    once; memory.high throttling and memory.low/min protection are held as settings for the
    reclaim issue. swap.max limits swap-out (MADV_PAGEOUT), the only swap-out modelled. Memcgs
    are never taken offline (there is no rmdir), so the memcg recorded at swap-out is always
    the one charged at swap-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .levels import MEMCG_USAGE
from .signal import wake_up_all

if TYPE_CHECKING:
    from .levels import LevelLog
    from .machine import Machine
    from .task import TaskStruct

PAGE_ALLOC_COSTLY_ORDER = 3
PAGE_COUNTER_MAX = 1 << 62

# Charge contexts: who is charging. A user fault may defer OOM handling ([2014]) or wait
# (v1 oom_kill_disable); GUP and syscalls get -ENOMEM instead.
CTX_FAULT, CTX_GUP, CTX_SYSCALL = "fault", "gup", "syscall"


@dataclass(eq=False)
class MemCgroup:
    """A memory cgroup: `struct mem_cgroup` with its page counter, stats and events."""

    path: str
    parent: MemCgroup | None = None
    children: list[MemCgroup] = field(default_factory=list)
    max: int = PAGE_COUNTER_MAX
    high: int = PAGE_COUNTER_MAX
    low: int = 0
    min: int = 0
    swap_max: int = PAGE_COUNTER_MAX
    memsw_max: int = PAGE_COUNTER_MAX  # v1 memory.memsw.limit_in_bytes: memory + swap
    swappiness: int | None = None  # v1 memory.swappiness; None: vm.swappiness
    oom_group: bool = False
    oom_kill_disable: bool = False
    online: bool = True
    usage: int = 0
    watermark: int = 0
    forced_peak: int = 0  # the highest usage a forced charge left (it alone may pass max)
    swap_usage: int = 0
    swap_watermark: int = 0
    memsw_watermark: int = 0  # the highest memory + swap usage (v1 memory.memsw.max_usage_in_bytes)
    stat: dict[str, int] = field(
        default_factory=lambda: {
            "anon": 0, "shmem": 0, "file": 0, "kernel": 0, "pagetables": 0, "file_mapped": 0,
            "swap": 0, "slab": 0,
        }
    )
    swap_events: dict[str, int] = field(default_factory=lambda: {"max": 0, "fail": 0})
    events: dict[str, int] = field(
        default_factory=lambda: {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0,
                                 "oom_group_kill": 0}
    )
    peak: dict[str, int] = field(
        default_factory=lambda: {
            "anon": 0, "shmem": 0, "file": 0, "kernel": 0, "pagetables": 0, "file_mapped": 0,
            "swap": 0, "slab": 0,
        }
    )
    obj_stock: int = 0
    slab_nodes: dict[int, int] = field(default_factory=dict)
    lruvecs: dict[int, Any] = field(default_factory=dict)  # node -> Lruvec (lru.py)
    vmscan: dict[str, int] = field(
        default_factory=lambda: {"pgscan": 0, "pgsteal": 0, "pgactivate": 0,
                                 "pgdeactivate": 0, "pgrotated": 0, "workingset_refault": 0,
                                 "workingset_activate": 0})
    rcu_pgtables: dict[int, int] = field(default_factory=dict)  # freed page tables, per node,
    # still charged until their RCU grace period ends (`tlb_remove_table`)
    tasks: dict[TaskStruct, None] = field(default_factory=dict)  # an ordered set: joins, exits
    waiters: list[Any] = field(default_factory=list)
    levels: LevelLog | None = None  # set on the root by the Machine; charges find it there

    def ancestors(self) -> tuple[MemCgroup, ...]:
        """This memcg and its parents up to the root, nearest first.

        Walked once: every charge and uncharge goes up this chain, and a memcg never moves.
        """
        chain = self.__dict__.get("_chain")
        if chain is None:
            out: list[MemCgroup] = []
            c: MemCgroup | None = self
            while c is not None:
                out.append(c)
                c = c.parent
            chain = self.__dict__["_chain"] = tuple(out)
        return chain

    def is_root(self) -> bool:
        """The root memcg has no limit and is never charged against one."""
        return self.parent is None

    def descendants_pre(self) -> list[MemCgroup]:
        """The subtree in pre-order (`css_next_descendant_pre`): parent before children."""
        out = [self]
        for c in self.children:
            out.extend(c.descendants_pre())
        return out


def mem_cgroup_css_alloc_oom_kill_disable(parent: MemCgroup, written: bool | None) -> bool:
    """Models the v1 part of `mem_cgroup_css_alloc()` in mm/memcontrol.c (v6.18): a new memcg
    starts with its parent's `oom_kill_disable` (copied at mkdir); `written` is the value
    written to its memory.oom_control afterwards, if any.

    So a child of a v1 memcg with the OOM killer disabled has it disabled too, and its tasks
    hang at the child's own limit instead of being killed.
    """
    return parent.oom_kill_disable if written is None else written


def mem_cgroup_margin(memcg: MemCgroup) -> int:
    """Models `mem_cgroup_margin()`: pages chargeable before this memcg's own max is hit."""
    return max(0, memcg.max - memcg.usage)


def memsw_margin(memcg: MemCgroup) -> int:
    """`mem_cgroup_margin()` with v1's memsw: pages chargeable before this memcg's max or its
    memory+swap limit is hit."""
    margin = max(0, memcg.max - memcg.usage)
    if memcg.memsw_max < PAGE_COUNTER_MAX:
        margin = min(margin, max(0, memcg.memsw_max - memcg.usage - memcg.swap_usage))
    return margin


def charge_margin(memcg: MemCgroup) -> int:
    """Pages chargeable to `memcg` before any ancestor's max (or memory+swap limit) is hit:
    the hierarchy's margin."""
    return min([memsw_margin(c) for c in memcg.ancestors()])


def memsw_refused(memcg: MemCgroup, nr_pages: int) -> bool:
    """v1: the memory+swap counter of `memcg` refuses `nr_pages` (it is charged first, so
    reclaim then may not swap)."""
    return (memcg.memsw_max < PAGE_COUNTER_MAX
            and memcg.usage + memcg.swap_usage + nr_pages > memcg.memsw_max)


def page_counter_try_charge(memcg: MemCgroup, nr_pages: int, swapin: bool = False
                            ) -> MemCgroup | None:
    """Models `page_counter_try_charge()`: charge every ancestor, or none.

    Returns None on success, else the memcg whose max refused (`mem_over_limit`). `swapin`:
    the pages replace swap entries of the same memcgs, one by one (`mem_cgroup_swapin_charge_folio`
    then `mem_cgroup_swapin_uncharge_swap`): memory+swap rises by one page at a time only.
    """
    chain = memcg.ancestors()
    for c in chain:
        if not c.is_root() and (c.usage + nr_pages > c.max or memsw_refused(c, nr_pages)):
            return c
    levels = chain[-1].levels
    for c in chain:
        c.usage += nr_pages
        c.watermark = max(c.watermark, c.usage)
        c.memsw_watermark = max(c.memsw_watermark, c.usage + c.swap_usage
                                - (nr_pages - 1 if swapin and nr_pages else 0))
        if levels is not None:
            levels.record(MEMCG_USAGE, c.path, c.usage)
    return None


def page_counter_charge(memcg: MemCgroup, nr_pages: int) -> None:
    """Models `page_counter_charge()`: a forced charge that may exceed max (`__GFP_NOFAIL`)."""
    chain = memcg.ancestors()
    levels = chain[-1].levels
    for c in chain:
        c.usage += nr_pages
        c.watermark = max(c.watermark, c.usage)
        c.memsw_watermark = max(c.memsw_watermark, c.usage + c.swap_usage)
        c.forced_peak = max(c.forced_peak, c.usage)
        if levels is not None:
            levels.record(MEMCG_USAGE, c.path, c.usage)


def page_counter_uncharge(m: Machine, memcg: MemCgroup, nr_pages: int) -> None:
    """Models `page_counter_uncharge()`, and wakes tasks waiting in a v1 memcg OOM."""
    if nr_pages == 0:
        return
    chain = memcg.ancestors()
    levels = chain[-1].levels
    for c in chain:
        c.usage -= nr_pages
        if c.usage < 0:
            raise AssertionError(f"memcg {c.path} usage went negative ({c.usage})")
        if levels is not None:
            levels.record(MEMCG_USAGE, c.path, c.usage)
        memcg_oom_recover(m, c)


def swap_margin(memcg: MemCgroup) -> int:
    """Pages of swap chargeable to `memcg` before any ancestor's memory.swap.max is hit."""
    margins = [max(0, c.swap_max - c.swap_usage) for c in memcg.ancestors() if not c.is_root()]
    return min(margins, default=PAGE_COUNTER_MAX)


def memcg_swap_event(m: Machine, memcg: MemCgroup, event: str, n: int, task: str = "") -> None:
    """memory.swap.events `max`/`fail`, n times, in this memcg and its ancestors (as
    `memcg_memory_event` counts MEMCG_SWAP_MAX and MEMCG_SWAP_FAIL).

    No log record per event: a pageout logs one summary record (`madvise_pageout`), so that
    taking its pages one by one or run by run logs the same.
    """
    if n <= 0:
        return
    for c in memcg.ancestors():
        if not c.is_root():
            c.swap_events[event] += n


def mem_cgroup_try_charge_swap(m: Machine, memcg: MemCgroup, nr_pages: int, task: str = "") -> bool:
    """Models `__mem_cgroup_try_charge_swap()` (v2) for pages that got a swap slot.

    The swap counter of the folio's memcg and every ancestor is charged, or none: a non-root
    memcg whose memory.swap.max would be exceeded refuses (`max` and `fail` events).
    """
    for c in memcg.ancestors():
        if not c.is_root() and c.swap_usage + nr_pages > c.swap_max:
            memcg_swap_event(m, memcg, "max", nr_pages, task)
            memcg_swap_event(m, memcg, "fail", nr_pages, task)
            return False
    for c in memcg.ancestors():
        c.swap_usage += nr_pages
        c.swap_watermark = max(c.swap_watermark, c.swap_usage)
    return True


def mem_cgroup_uncharge_swap(memcg: MemCgroup, nr_pages: int) -> None:
    """Models `__mem_cgroup_uncharge_swap()`: swap entries freed; the swap stat goes too."""
    if nr_pages == 0:
        return
    for c in memcg.ancestors():
        c.swap_usage -= nr_pages
        if c.swap_usage < 0:
            raise AssertionError(f"memcg {c.path} swap usage went negative")
    mod_memcg_state(memcg, "swap", -nr_pages)


def mem_cgroup_swapout(m: Machine, memcg: MemCgroup, nr_pages: int) -> None:
    """Models `mem_cgroup_swapout()`: the folio leaves memory; its charge moves to swap (the
    swap counter was charged by `mem_cgroup_try_charge_swap`), and the swap stat grows."""
    page_counter_uncharge(m, memcg, nr_pages)
    mod_memcg_state(memcg, "swap", nr_pages)


def swapin_memcg(recorded: MemCgroup, current: MemCgroup) -> MemCgroup:
    """The memcg `mem_cgroup_swapin_charge_folio()` charges: the one recorded at swap-out
    (`lookup_swap_cgroup_id`) if it is still online, else the faulting (or reading) task's."""
    return recorded if recorded.online else current


def mod_memcg_state(memcg: MemCgroup, item: str, nr: int) -> None:
    """Models `mod_memcg_state()`: a local stat (memory.stat sums the subtree)."""
    memcg.stat[item] += nr
    if nr > 0 and memcg.stat[item] > memcg.peak[item]:
        memcg.peak[item] = memcg.stat[item]
    if memcg.stat[item] < 0:
        raise AssertionError(f"memcg {memcg.path} stat {item} went negative")


def obj_stock_pages(memcg: MemCgroup, nbytes: int, page_size: int) -> int:
    """Pages `obj_cgroup_charge()` charges for `nbytes` of slab objects: none while the memcg's
    byte stock covers them, else enough whole pages (whose rest goes to the stock)."""
    short = nbytes - memcg.obj_stock
    return 0 if short <= 0 else -(-short // page_size)


def obj_stock_take(memcg: MemCgroup, nbytes: int, pages: int, page_size: int) -> None:
    """Models `consume_obj_stock()`: after `obj_stock_pages` pages were charged, the objects'
    bytes come out of the stock."""
    memcg.obj_stock += pages * page_size - nbytes
    assert memcg.obj_stock >= 0, memcg.obj_stock


def obj_stock_refill(memcg: MemCgroup, nbytes: int, page_size: int) -> int:
    """Models `obj_cgroup_uncharge()` -> `refill_obj_stock()`: freed objects' bytes go back to
    the stock, and whole pages beyond one page's worth are uncharged; returns how many."""
    memcg.obj_stock += nbytes
    if memcg.obj_stock <= page_size:
        return 0
    pages = memcg.obj_stock // page_size
    memcg.obj_stock -= pages * page_size
    return pages


def memcg_memory_event(m: Machine, memcg: MemCgroup, event: str, task: str = "") -> None:
    """Models `memcg_memory_event()`: memory.events counts in this memcg and its ancestors."""
    for c in memcg.ancestors():
        if not c.is_root():
            c.events[event] += 1
    m.log.emit(f"memcg_{event}", task=task, memcg=memcg.path, value=memcg.usage)


def memcg_oom_recover(m: Machine, memcg: MemCgroup) -> None:
    """Models `memcg1_oom_recover()`: wake the tasks sleeping in `mem_cgroup_oom_synchronize`."""
    if memcg.waiters:
        wake_up_all(memcg.waiters)


def mem_cgroup_get_oom_group(victim: TaskStruct, oom_domain: MemCgroup | None) -> MemCgroup | None:
    """Models `mem_cgroup_get_oom_group()`: the highest ancestor with memory.oom.group set.

    The walk goes from the victim's memcg up to the OOMing memcg (or the root for a global OOM).
    """
    found = None
    for c in victim.memcg.ancestors():
        if c.oom_group:
            found = c
        if c is oom_domain:
            break
    return found
