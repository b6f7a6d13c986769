"""Charging a memcg, and the memcg OOM path: the half of mm/memcontrol.c that reaches the OOM
killer (v6.18): `try_charge_memcg`, `mem_cgroup_oom`, and v1's `mem_cgroup_oom_synchronize`
(mm/memcontrol-v1.c).

The kernel's memcontrol.c and oom_kill.c call each other (`mem_cgroup_out_of_memory`, and
`pagefault_out_of_memory` -> `mem_cgroup_oom_synchronize`); this module and oom_kill.py are that
one cycle. The rest of memcontrol.c (the hierarchy, page counters, statistics, swap charges,
the slab byte stock) is in memcontrol.py, below the OOM killer, so that the paths that only
uncharge and free (zap, the OOM reaper, exit) need nothing above it.

Reclaim (`try_to_free_mem_cgroup_pages`, vmscan_lru.py) runs before the OOM killer: the
margin recheck, one stock drain, retries while reclaim progresses for a small charge, and up
to MAX_RECLAIM_RETRIES (16) rounds without progress. With cgroup v1's memory+swap limit
(`memsw_max`) the memsw counter is tried first; when it is the one refusing, reclaim may not
swap (MEMCG_RECLAIM_MAY_SWAP cleared): only clean pages can go.

Simplifications:
    No per-CPU charge stock: the stock drain is a retry that finds nothing more.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .errno import ENOMEM
from .memcontrol import (
    CTX_FAULT,
    PAGE_ALLOC_COSTLY_ORDER,
    drain_all_stock,
    memcg_charge_done,
    memcg_memory_event,
    memsw_margin,
    memsw_refused,
    page_counter_charge,
    page_counter_try_charge,
)
from .oom_kill import mem_cgroup_out_of_memory, wait_for_oom_progress
from .signal import wait_event_killable
from .vmscan_lru import try_to_free_mem_cgroup_pages

MAX_RECLAIM_RETRIES = 16

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .task import TaskStruct


def try_charge_memcg(
    m: Machine, task: TaskStruct, memcg: MemCgroup, nr_pages: int, ctx: str
) -> Generator[Any, Any, str | None]:
    """Models `try_charge_memcg()`: charge, or reclaim, then memcg OOM, then retry or fail.

    A generator (it may wait for an OOM victim to exit). Returns None when charged, else the
    errno name ("ENOMEM"). Records `memcg.oom_pending` on the task for a deferred user-fault
    OOM ([2014]) or a v1 oom_kill_disable wait, which the fault handler acts on.
    """
    passed_oom = drained = False
    nr_retries = MAX_RECLAIM_RETRIES
    while True:
        over = page_counter_try_charge(memcg, nr_pages)
        if over is None:
            # done_restock: a batch that finds memory.high exceeded is paid for later
            # (`mem_cgroup_handle_over_high`, memcg_high.py).
            memcg_charge_done(task, memcg, nr_pages)
            return None
        if task.pf_memalloc:
            page_counter_charge(memcg, nr_pages)
            return None
        memcg_memory_event(m, over, "max", task.name)
        may_swap = not memsw_refused(over, nr_pages)
        reclaimed = yield from try_to_free_mem_cgroup_pages(m, task, over, nr_pages, may_swap)
        if memsw_margin(over) >= nr_pages:
            continue
        if not drained:
            drained = True
            drain_all_stock(m, over)
            continue
        if reclaimed and nr_pages <= (1 << PAGE_ALLOC_COSTLY_ORDER):
            continue
        if nr_retries:
            nr_retries -= 1
            continue
        if passed_oom and task.dying:
            return ENOMEM
        victim = mem_cgroup_oom(m, task, over, nr_pages, ctx)
        if victim is None:
            return ENOMEM
        passed_oom = True
        nr_retries = MAX_RECLAIM_RETRIES
        if victim is not task:
            yield from wait_for_oom_progress(m, task, victim)


def mem_cgroup_oom(
    m: Machine, task: TaskStruct, memcg: MemCgroup, nr_pages: int, ctx: str
) -> TaskStruct | None:
    """Models `mem_cgroup_oom()`: no kill for costly orders, v1 oom_kill_disable, or [2014]
    outside a user fault; else `mem_cgroup_out_of_memory`.

    Returns the victim whose exit to wait for (possibly the charging task itself), or None
    when the charge must fail with -ENOMEM.
    """
    if nr_pages > (1 << PAGE_ALLOC_COSTLY_ORDER):
        return None
    memcg_memory_event(m, memcg, "oom", task.name)
    if memcg.oom_kill_disable:
        # memcg1_oom_prepare(): a user fault records the memcg and waits after unwinding.
        if ctx == CTX_FAULT:
            task.memcg_in_oom = memcg
        return None
    if m.profile.memcg_oom_user_fault_only:
        # [2014] mem_cgroup_oom() only recorded the memcg for a user fault; the kill came from
        # pagefault_out_of_memory -> mem_cgroup_oom_synchronize after the fault unwound.
        if ctx == CTX_FAULT:
            task.memcg_in_oom = memcg
        return None
    return mem_cgroup_out_of_memory(m, task, memcg)


def mem_cgroup_oom_synchronize(m: Machine, task: TaskStruct) -> Generator[Any, Any, bool]:
    """Models `mem_cgroup_oom_synchronize()` (v1 oom_kill_disable, and the [2014] deferred
    memcg OOM): called after a user fault unwound with VM_FAULT_OOM. Returns False when no
    memcg OOM was pending.

    With oom_kill_disable the task sleeps (killably) until an uncharge in the memcg; under the
    [2014] rules the kill happens here, and the task then waits for the victim.
    """
    memcg = task.memcg_in_oom
    if memcg is None:
        return False
    task.memcg_in_oom = None
    if memcg.oom_kill_disable:
        m.log.emit("memcg_oom_wait", task=task.name, memcg=memcg.path)
        yield from wait_event_killable(m, task, memcg.waiters,
                                       f"v1 oom_kill_disable wait in {memcg.path}")
        return True
    victim = mem_cgroup_out_of_memory(m, task, memcg)
    if victim is None:
        yield from wait_event_killable(m, task, memcg.waiters,
                                       f"refault loop: no OOM victim in {memcg.path}")
    elif victim is not task:
        yield from wait_for_oom_progress(m, task, victim)
    return True
