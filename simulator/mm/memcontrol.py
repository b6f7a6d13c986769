"""Memory cgroups: the hierarchy, page counters, statistics, events and swap charges.

Models mm/memcontrol.c, mm/memcontrol-v1.c and mm/page_counter.c (v6.18):
`page_counter_try_charge`, `mem_cgroup_margin`, `memcg_memory_event`,
`mem_cgroup_get_oom_group`, the memory.high check of `try_charge_memcg` (`consume_stock`,
`refill_stock`, `drain_all_stock`), and the swap side of cgroup v2:
`__mem_cgroup_try_charge_swap`, `__mem_cgroup_uncharge_swap`, `mem_cgroup_swapout` and the memcg choice of
`mem_cgroup_swapin_charge_folio`; and the byte stock slab objects are charged through
(`obj_cgroup_charge`, `refill_obj_stock`). The charge path that reaches the OOM killer
(`try_charge_memcg`, `mem_cgroup_oom`, `mem_cgroup_oom_synchronize`) is memcg_charge.py.

Simplifications:
    No per-CPU charge stock (the kernel's 64-page batches move usage ahead of use, but the page
    at which the limit is hit is the same); no reclaim yet (nothing is reclaimable without swap
    or clean page cache), so the 16 reclaim rounds are a no-op and the OOM path is reached at
    once; memory.low/min protection are held as settings for the reclaim issue. memory.high:
    this module finds the charges whose batch sees it exceeded (`memcg_charge_done`, with the
    per-CPU charge stock kept only as a per-task count); memcg_high.py throttles. swap.max
    limits swap-out (MADV_PAGEOUT), the only swap-out modelled. Memcgs are never taken offline
    (there is no rmdir), so the memcg recorded at swap-out is always the one charged at
    swap-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .levels import MEMCG_SWAP, MEMCG_USAGE
from .psi import PsiGroup
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
    emin: int = 0  # effective memory.min and memory.low of the last reclaim that looked
    elow: int = 0  # (memcg_protection.py)
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
                                 "workingset_activate": 0, "workingset_restore": 0})
    rcu_pgtables: dict[int, int] = field(default_factory=dict)  # freed page tables, per node,
    # still charged until their RCU grace period ends (`tlb_remove_table`)
    tasks: dict[TaskStruct, None] = field(default_factory=dict)  # an ordered set: joins, exits
    # the tasks whose charge stock holds pages of this memcg (an ordered set): what
    # `drain_all_stock` visits, instead of every task of the machine
    stock_holders: dict[TaskStruct, None] = field(default_factory=dict)
    waiters: list[Any] = field(default_factory=list)
    levels: LevelLog | None = None  # set on the root by the Machine; charges find it there
    psi: PsiGroup = field(default_factory=PsiGroup)  # memory.pressure (the root's: the system's)
    # `nodeinfo[nid]->iter.position`: where the shared reclaim walk of this subtree stopped,
    # per node (vmscan_lru.mem_cgroup_iter_walk); None: at the start.
    reclaim_iter: dict[int, MemCgroup | None] = field(default_factory=dict)

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
    margin = None
    for c in memcg.ancestors():  # `mem_cgroup_margin` of each, inline (every bulk step asks)
        left = c.max - c.usage
        if c.memsw_max < PAGE_COUNTER_MAX:
            left = min(left, c.memsw_max - c.usage - c.swap_usage)
        if margin is None or left < margin:
            margin = left
    assert margin is not None
    return max(0, margin)


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
    chain = memcg.ancestors()
    levels = chain[-1].levels
    for c in chain:
        c.swap_usage += nr_pages
        c.swap_watermark = max(c.swap_watermark, c.swap_usage)
        if levels is not None:
            levels.record(MEMCG_SWAP, c.path, c.swap_usage)
    return True


def mem_cgroup_uncharge_swap(memcg: MemCgroup, nr_pages: int) -> None:
    """Models `__mem_cgroup_uncharge_swap()`: swap entries freed; the swap stat goes too."""
    if nr_pages == 0:
        return
    chain = memcg.ancestors()
    levels = chain[-1].levels
    for c in chain:
        c.swap_usage -= nr_pages
        if c.swap_usage < 0:
            raise AssertionError(f"memcg {c.path} swap usage went negative")
        if levels is not None:
            levels.record(MEMCG_SWAP, c.path, c.swap_usage)
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
    """Models `obj_cgroup_uncharge()` -> `refill_obj_stock()` for `nbytes` of objects smaller
    than a page, freed one by one: each object's bytes go back to the stock, and once the
    stock holds more than a page its whole pages are uncharged (`nr_bytes &= PAGE_SIZE - 1`).
    Returns the pages uncharged.

    Object by object, the stock can end at exactly one page: the last object lands on
    PAGE_SIZE, which is not more than a page, and stays. So the result of many frees at once
    is the total's remainder, or a whole page when that remainder is 0 (the last object
    filled it); the same as freeing them one at a time, whatever the batch."""
    total = memcg.obj_stock + nbytes
    if total <= page_size:
        memcg.obj_stock = total
        return 0
    memcg.obj_stock = total % page_size or page_size
    return (total - memcg.obj_stock) // page_size


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


# -- memory.high: where the charge path notices it (`try_charge_memcg`'s done_restock) ---------
MEMCG_CHARGE_BATCH = 64


def consume_stock(task: TaskStruct, memcg: MemCgroup, nr_pages: int) -> bool:
    """Models `consume_stock()`: the charge is taken from the pages pre-charged by the last
    batch (`task.memcg_stock`), so `try_charge_memcg` returns before its memory.high check.

    The model keeps the stock only as this count: the page counter is charged exactly, page
    by page (memory.max is met at the same page either way). Per task, for every memcg it
    charges; the kernel keeps it per CPU for up to 7 memcgs (NR_MEMCG_STOCK).
    """
    left = task.memcg_stock.get(memcg, 0)
    if nr_pages > MEMCG_CHARGE_BATCH or left < nr_pages:
        return False
    task.memcg_stock[memcg] = left - nr_pages
    return True


def set_stock(task: TaskStruct, memcg: MemCgroup, nr_pages: int) -> None:
    """The task's stock for `memcg` is `nr_pages`; the memcg remembers who holds one."""
    task.memcg_stock[memcg] = nr_pages
    memcg.stock_holders[task] = None


def refill_stock(task: TaskStruct, memcg: MemCgroup, nr_pages: int) -> None:
    """Models `refill_stock()`: the rest of a batch is kept for the next charges; a stock
    over one batch is drained (`drain_stock`)."""
    left = task.memcg_stock.get(memcg, 0) + nr_pages
    set_stock(task, memcg, 0 if left > MEMCG_CHARGE_BATCH else left)


def drain_all_stock(m: Machine, root_memcg: MemCgroup) -> None:
    """Models `drain_all_stock()`: the stocks of `root_memcg` and its descendants go (only
    the tasks that hold one are visited: the drain costs what was stocked, not the machine's
    task count)."""
    for c in root_memcg.descendants_pre():
        for t in c.stock_holders:
            t.memcg_stock.pop(c, None)
        c.stock_holders.clear()


def memcg_over_high(memcg: MemCgroup) -> bool:
    """Whether `memcg` or an ancestor is over its memory.high (`try_charge_memcg`'s walk)."""
    return any(c.usage > c.high for c in memcg.ancestors())


def memcg_charge_done(task: TaskStruct, memcg: MemCgroup, nr_pages: int) -> bool:
    """Models `try_charge_memcg()` after the page counter took `nr_pages` (its consume_stock
    and done_restock parts): unless the stock covered them, a batch was charged, its rest goes
    to the stock, and if the memcg or an ancestor is over memory.high the batch is added to
    `current->memcg_nr_pages_over_high` (reclaim and throttling follow on the return to user,
    or at once past one batch). Returns whether it was.

    Simplification: the kernel reads the usage with the batch charged (up to 63 pages ahead
    of use); the model's usage is exact, so the check sees up to 63 pages less.
    """
    if memcg.is_root() or consume_stock(task, memcg, nr_pages):
        return False
    batch = max(MEMCG_CHARGE_BATCH, nr_pages)
    if batch > nr_pages:
        refill_stock(task, memcg, batch - nr_pages)
    if memcg_over_high(memcg):
        task.memcg_nr_pages_over_high += batch
        return True
    return False


def memcg_charge_done_bulk(task: TaskStruct, memcg: MemCgroup, n: int) -> None:
    """`memcg_charge_done` for n one-page charges of a bulk step at once: the stock after
    them. The step was cut where a batch would see memory.high exceeded (`high_margin`), so
    none does; checked."""
    if memcg.is_root() or n <= 0:
        return
    left = task.memcg_stock.get(memcg, 0)
    if n <= left:
        task.memcg_stock[memcg] = left - n
        return
    if memcg_over_high(memcg):
        # The usage only grows in a step: the last batch is the one that could have seen it.
        last_refill = left + 1 + (n - left - 1) // MEMCG_CHARGE_BATCH * MEMCG_CHARGE_BATCH
        over = min(c.high - (c.usage - n) + 1 for c in memcg.ancestors())
        assert last_refill < over, f"bulk step crossed memory.high of {memcg.path} at a batch"
    set_stock(task, memcg, MEMCG_CHARGE_BATCH - 1 - (n - left - 1) % MEMCG_CHARGE_BATCH)


def high_margin(task: TaskStruct, memcg: MemCgroup) -> int | None:
    """One-page charges to `memcg` before the one whose batch finds the memcg or an ancestor
    over memory.high (that charge takes the one-page path, `memcg_charge_done`); None when no
    memory.high is set in the hierarchy.

    The k-th charge from now takes a batch when k = stock + 1 + 64 j; the memcg or an
    ancestor c is over high from the k-th on when k > c.high - c.usage.
    """
    if memcg.is_root():
        return None
    chain = [c for c in memcg.ancestors() if c.high < PAGE_COUNTER_MAX]
    if not chain:
        return None
    over = min(max(1, c.high - c.usage + 1) for c in chain)
    first = task.memcg_stock.get(memcg, 0) + 1
    if over <= first:
        return first - 1
    return first - 1 + -(-(over - first) // MEMCG_CHARGE_BATCH) * MEMCG_CHARGE_BATCH
