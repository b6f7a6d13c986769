"""memory.high: reclaim, then throttle, on the way back to user space.

Models the memory.high half of mm/memcontrol.c (v6.18): `mem_cgroup_handle_over_high()` (run
from `resume_user_mode_work()` when a charge set TIF_NOTIFY_RESUME, and from
`try_charge_memcg()` itself once more than one batch is pending), `reclaim_high()`,
`calculate_overage()`, `mem_find_max_overage()` and `calculate_high_delay()`. The charge side
(which batches find the hierarchy over high, `current->memcg_nr_pages_over_high`) is
`memcg_charge_done` in memcontrol.py.

memory.high never fails a charge and never OOM-kills: a task over it reclaims (nothing is
reclaimable in this model yet, so it reclaims nothing) and then sleeps a penalty that grows
with the square of the overage, as a PSI memory stall.

Simplifications:
    No swap.high (`swap_find_max_overage` adds nothing). The synchronous call the kernel makes
    inside `try_charge_memcg` once more than 64 pages are pending runs here when the page's
    allocation is complete (the walkers call it after the one-page path), so the usage it
    reads may include that page's later charges (its page-table or slab pages): a page or
    two. The charging task's memcg is the task's (`get_mem_cgroup_from_mm`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .memcontrol import CTX_FAULT, MEMCG_CHARGE_BATCH, memcg_memory_event
from .psi import HZ, psi_memstall_enter, psi_memstall_leave
from .signal import schedule_timeout_killable
from .vmscan_lru import try_to_free_mem_cgroup_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .task import TaskStruct

MAX_RECLAIM_RETRIES = 16
SWAP_CLUSTER_MAX = 32
MEMCG_MAX_HIGH_DELAY_JIFFIES = 2 * HZ
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14


def calculate_overage(usage: int, high: int) -> int:
    """Models `calculate_overage()`: (usage - high) / high in 20-bit fixed point; 0 when not
    over (a high of 0 counts as 1 page)."""
    if usage <= high:
        return 0
    high = max(high, 1)
    return ((usage - high) << MEMCG_DELAY_PRECISION_SHIFT) // high


def mem_find_max_overage(memcg: MemCgroup) -> int:
    """Models `mem_find_max_overage()`: the largest overage of the memcg and its ancestors
    below the root."""
    return max((calculate_overage(c.usage, c.high) for c in memcg.ancestors() if not c.is_root()),
               default=0)


def calculate_high_delay(nr_pages: int, max_overage: int) -> int:
    """Models `calculate_high_delay()`: the penalty in jiffies, overage^2 x HZ scaled down by
    34 bits, for the task's share of the overage (`nr_pages` against a 64-page batch)."""
    if not max_overage:
        return 0
    penalty_jiffies = max_overage * max_overage * HZ
    penalty_jiffies >>= MEMCG_DELAY_PRECISION_SHIFT
    penalty_jiffies >>= MEMCG_DELAY_SCALING_SHIFT
    return penalty_jiffies * nr_pages // MEMCG_CHARGE_BATCH


def penalty_jiffies_for(memcg: MemCgroup, nr_pages: int) -> int:
    """The sleep `__mem_cgroup_handle_over_high()` computes now: the delay for the memory
    overage (the swap overage adds nothing: no swap.high), capped at 2 s."""
    return min(calculate_high_delay(nr_pages, mem_find_max_overage(memcg)),
               MEMCG_MAX_HIGH_DELAY_JIFFIES)


def reclaim_high(m: Machine, task: TaskStruct, memcg: MemCgroup, nr_pages: int
                 ) -> Generator[Any, Any, int]:
    """Models `reclaim_high()`: for the memcg and each ancestor below the root that is over
    its memory.high, count a `high` event (memory.events, hierarchical) and reclaim from it
    in a PSI memory stall. Returns the pages reclaimed."""
    reclaimed = 0
    for c in memcg.ancestors():
        if c.is_root():
            break
        if c.usage <= c.high:
            continue
        memcg_memory_event(m, c, "high", task.name)
        # The reclaim's time is a memory stall (`try_to_free_mem_cgroup_pages` marks it).
        reclaimed += yield from try_to_free_mem_cgroup_pages(m, task, c, nr_pages, True)
    return reclaimed


def mem_cgroup_handle_over_high(m: Machine, task: TaskStruct) -> Generator[Any, Any, None]:
    """Models `__mem_cgroup_handle_over_high()`: pay for the batches charged over memory.high.

    Reclaim first (`reclaim_high`, the pending pages, then SWAP_CLUSTER_MAX per retry). The
    penalty for the pending pages at the usage now is skipped when it is at most HZ/100
    jiffies (10 ms); otherwise reclaim is retried while it makes progress and for up to
    MAX_RECLAIM_RETRIES rounds without, and then the task sleeps the penalty (at most 2 s),
    killably, in a PSI memory stall. A dying task skips all of it.
    """
    nr_pages = task.memcg_nr_pages_over_high
    if not nr_pages:
        return
    task.memcg_nr_pages_over_high = 0
    memcg = task.memcg
    nr_retries = MAX_RECLAIM_RETRIES
    in_retry = False
    while True:
        if task.dying:
            return
        nr_reclaimed = yield from reclaim_high(m, task, memcg,
                                               SWAP_CLUSTER_MAX if in_retry else nr_pages)
        penalty_jiffies = penalty_jiffies_for(memcg, nr_pages)
        if penalty_jiffies <= HZ // 100:
            return
        if nr_reclaimed or nr_retries:
            if not nr_reclaimed:
                nr_retries -= 1
            in_retry = True
            continue
        break
    m.log.emit("memcg_high_throttle", task=task.name, memcg=memcg.path, pages=nr_pages,
               value=penalty_jiffies)
    psi_memstall_enter(m, task)
    try:
        yield from schedule_timeout_killable(m, task, penalty_jiffies / HZ)
    finally:
        psi_memstall_leave(m, task)


def over_high_pending(task: TaskStruct, ctx: str) -> bool:
    """Whether `mem_cgroup_handle_over_high` runs after a page's allocation: after each user
    fault (it returns to user space), and within a system call or GUP once more than one batch
    is pending (`try_charge_memcg`'s synchronous call; the rest waits for the return to
    user)."""
    if ctx == CTX_FAULT:
        return task.memcg_nr_pages_over_high > 0
    return task.memcg_nr_pages_over_high > MEMCG_CHARGE_BATCH and not task.pf_memalloc
