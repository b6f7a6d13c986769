"""Overcommit accounting: CommitLimit, Committed_AS and the admission check.

Models mm/util.c (v6.18) `__vm_enough_memory()` and `vm_commit_limit()`, and the [2014] mode-0
heuristic of v3.15. The request is added to Committed_AS first and removed again on refusal.

Simplifications:
    Committed_AS is exact here (the kernel's is a per-CPU approximate counter); hugetlb pages are
    not modelled, so totalram - hugetlb is totalram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .levels import COMMITTED_AS
from .task import CAP_SYS_ADMIN

if TYPE_CHECKING:
    from .levels import LevelLog
    from .machine import Machine
    from .task import TaskStruct

OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2


@dataclass
class Overcommit:
    """The global commit state: the sysctls and `vm_committed_as`."""

    mode: int = OVERCOMMIT_GUESS
    ratio: int = 50
    kbytes: int = 0
    admin_reserve_pages: int = 0
    user_reserve_pages: int = 0
    committed_as: int = 0
    levels: LevelLog | None = field(default=None, repr=False, compare=False)  # set by the Machine

    def vm_acct_memory(self, pages: int) -> None:
        """Models `vm_acct_memory()`/`vm_unacct_memory()` (negative pages unaccount)."""
        self.committed_as += pages
        if self.committed_as < 0:
            raise AssertionError(f"Committed_AS went negative ({self.committed_as})")
        if self.levels is not None and pages:
            self.levels.record(COMMITTED_AS, "", self.committed_as)


def vm_commit_limit(oc: Overcommit, totalram: int, total_swap: int, page_kb: int) -> int:
    """Models `vm_commit_limit()`: (overcommit_kbytes or RAM x ratio / 100) + swap, in pages."""
    if oc.kbytes:
        allowed = oc.kbytes // page_kb
    else:
        allowed = totalram * oc.ratio // 100
    return allowed + total_swap


def commit_allowed(
    oc: Overcommit, commit_limit: int, total_vm: int | None, cap_sys_admin: bool
) -> int:
    """The `allowed` of mode 2: CommitLimit less the admin reserve and the user reserve."""
    allowed = commit_limit
    if not cap_sys_admin:
        allowed -= oc.admin_reserve_pages
    if total_vm is not None:
        allowed -= min(total_vm // 32, oc.user_reserve_pages)
    return allowed


def guess_free_pages_2014(
    free: int, file_pages: int, shmem: int, free_swap: int, slab_reclaimable: int,
    totalreserve: int, admin_reserve: int, cap_sys_admin: bool,
) -> int:
    """[2014] The v3.15 mode-0 estimate of free memory (`__vm_enough_memory`, OVERCOMMIT_GUESS).

    free + file pages - shmem + free swap + reclaimable slab - totalreserve_pages, less the admin
    reserve for a task without CAP_SYS_ADMIN. Returns -1 when it is already at or below
    totalreserve_pages (the kernel fails the request outright there).
    """
    est = free + file_pages - shmem + free_swap + slab_reclaimable
    if est <= totalreserve:
        return -1
    est -= totalreserve
    if not cap_sys_admin:
        est -= admin_reserve
    return est


def vm_enough_memory(
    oc: Overcommit, pages: int, *, commit_limit: int, totalram: int, total_swap: int,
    total_vm: int | None, cap_sys_admin: bool, guess_free_2014: int | None = None,
) -> bool:
    """Models `__vm_enough_memory()`: account `pages`, keep them if allowed, else unaccount.

    Mode 1 never refuses. Mode 0 refuses only a request above RAM + swap (v6.18), or, with the
    [2014] heuristic (`guess_free_2014` given), one not below the estimated free memory. Mode 2
    admits iff Committed_AS, request included, stays below `commit_allowed`.
    """
    oc.vm_acct_memory(pages)
    if oc.mode == OVERCOMMIT_ALWAYS:
        return True
    if oc.mode == OVERCOMMIT_GUESS:
        if guess_free_2014 is not None:
            ok = guess_free_2014 > pages
        else:
            ok = pages <= totalram + total_swap
    else:
        ok = oc.committed_as < commit_allowed(oc, commit_limit, total_vm, cap_sys_admin)
    if not ok:
        oc.vm_acct_memory(-pages)
    return ok


def commit_margin(
    oc: Overcommit, *, commit_limit: int, total_vm: int | None, cap_sys_admin: bool
) -> int | None:
    """How many successive one-page `vm_enough_memory` calls succeed (None: no limit here).

    Used by the bulk fault engine to find in closed form the page at which mode 2 refuses.
    The v6.18 mode-0 check never refuses a one-page request, so it has no margin.
    """
    if oc.mode != OVERCOMMIT_NEVER:
        return None
    allowed = commit_allowed(oc, commit_limit, total_vm, cap_sys_admin)
    return max(0, allowed - oc.committed_as - 1)


def guess_free_2014(m: Machine, task: TaskStruct) -> int | None:
    """[2014] The v3.15 mode-0 free estimate for `task`, or None when that rule is off."""
    if not m.profile.overcommit_guess_heuristic or m.overcommit.mode != 0:
        return None
    free = sum(n.free for n in m.nodes)
    shmem = sum(n.stat["shmem"] for n in m.nodes)
    file_pages = sum(n.stat["file"] for n in m.nodes)  # NR_FILE_PAGES: shmem, disk files' cache
    return guess_free_pages_2014(
        free=free, file_pages=file_pages + m.page_cache_pages, shmem=shmem, free_swap=m.swap.nr_free(),
        slab_reclaimable=0, totalreserve=m.totalreserve_pages(),
        admin_reserve=m.overcommit.admin_reserve_pages,
        cap_sys_admin=task.capable(CAP_SYS_ADMIN),
    )


def security_vm_enough_memory_mm(m: Machine, task: TaskStruct, pages: int) -> bool:
    """Models `security_vm_enough_memory_mm(task->mm, pages)`: `vm_enough_memory` with the
    machine's sizes and the task's reserves."""
    return vm_enough_memory(
        m.overcommit, pages, commit_limit=m.commit_limit(), totalram=m.totalram,
        total_swap=m.total_swap, total_vm=task.mm.total_vm,
        cap_sys_admin=task.capable(CAP_SYS_ADMIN), guess_free_2014=guess_free_2014(m, task),
    )


def vm_commit_margin(m: Machine, task: TaskStruct) -> int | None:
    """`commit_margin` for `task` on this machine: one-page `security_vm_enough_memory_mm`
    calls that would succeed now (None: unlimited)."""
    return commit_margin(
        m.overcommit, commit_limit=m.commit_limit(), total_vm=task.mm.total_vm,
        cap_sys_admin=task.capable(CAP_SYS_ADMIN),
    )
