"""The per-page reference engine's steps: one page at a time through the kernel's own path.

Each step first asks whether the page needs a slow path (`fault_fits`, and the limits for a
fill or a swap-in); if not it runs the one-page kernel function (`handle_mm_fault`,
`shmem_alloc_and_add_folio`, `shmem_swapin_folio`) with `run_fast_path`, which fails loudly if
that function sleeps or logs. The bulk engine is tested against this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.madvise import unmap_file_range
from ..mm.memcontrol import CTX_SYSCALL
from ..mm.memory import (
    PRESENT,
    SIGBUS,
    VM_FAULT_OK,
    FaultPlan,
    fault_plan,
    handle_mm_fault,
)
from ..mm.mm_types import VMA, pt_missing
from ..mm.pagecache import is_disk_file
from ..mm.shmem import shmem_alloc_and_add_folio, shmem_swapin_folio, xa_stock_pages
from ..mm.shmem_inode import ShmemInode, xa_nodes_for
from ..mm.vmscan import anon_pageout, shrink_folio_list
from .limits import MemcgMax, snapshot_caps
from .slicing import run_fast_path
from .solve import range_fits
from .swapin import file_swapin_run, swapin_fits, swapin_high_margin, swapin_target

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.task import TaskStruct


def reference_fault(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str,
    swapin_fast: bool = False,
) -> tuple[int, int, int]:
    """The reference's step: page `idx` through `handle_mm_fault` if it needs no slow path.

    Returns (1, faulted, swapped in) when the page was done, (0, 0, 0) when it needs a slow
    path (the walker then lets the time of the pages done pass and runs the fault itself, as
    after a bulk step).
    """
    plan = fault_plan(m, vma, idx, write)
    if not fault_fits(m, task, vma, idx, plan, swapin_fast):
        return 0, 0, 0
    status = run_fast_path(m, handle_mm_fault(m, task, vma, idx, write, ctx))
    assert status == VM_FAULT_OK, status
    return 1, int(plan is not PRESENT), plan.swapin


def fault_fits(m: Machine, task: TaskStruct, vma: VMA, idx: int, plan: FaultPlan,
               swapin_fast: bool = False) -> bool:
    """Whether the fault `plan` describes at VMA page `idx` completes on the fast path.

    Its needs, in the kernel's order: the page-table pages missing at its address, the
    anonymous copy of a private write, the page-cache folio of a hole, then the slab page of
    its xarray nodes, checked against every limit (limits.py). A SIGBUS is a slow path; so is a
    swap-in, except a sequential walk's (`swapin_fast`) whose memcg `swapin_target` admits.
    """
    if plan is PRESENT:
        return True
    if plan is SIGBUS:
        return False
    pt = len(pt_missing(task.mm, vma.start + idx))
    if plan.swapin:
        target = swapin_target(m, task, vma, idx) if swapin_fast else None
        if target is None:
            return False  # a slow path: one page, its swap read's time passing at once
        caps = snapshot_caps(m, task, vma.file)
        margins = MemcgMax.split_margins(task.memcg, target)
        return caps.guess_2014 is None and swapin_fits(caps, margins, pt, 1, m.kmem_charge(pt),
                                                       swapin_high_margin(task, target))
    inode = vma.file
    data = plan.data
    if data and is_disk_file(inode):
        # A disk read (`filemap_fault`): a fast page of a sequential walk (the walker's
        # `swapin_fast` is `disk_walkable` here) but for a private copy or a refault; else the
        # one-page path, in both engines.
        if not swapin_fast or plan.anon or inode.shadow.has(vma.pgoff + idx):
            return False
    slab = 0
    if data:
        index = vma.pgoff + idx
        slab = xa_stock_pages(m, task.memcg, xa_nodes_for(m, inode, index, index + 1))
    need = pt + plan.anon + data
    # The folio comes after the page's page tables and its anonymous copy; its xarray nodes'
    # slab page, if the memcg's byte stock needs one, last.
    return range_fits(snapshot_caps(m, task, inode), need + slab, data, need if data else None,
                      pt - m.kmem_charge(pt))


def reference_fill(m: Machine, task: TaskStruct, inode: ShmemInode, index: int,
                   filled: list[tuple[int, int]]) -> tuple[int, int]:
    """The reference's step: page `index` through `shmem_alloc_and_add_folio`, or
    `shmem_swapin_folio` for a page in swap, if it needs no slow path: (1, swapped in), else
    (0, 0). A page already present is skipped (1, 0)."""
    if inode.pages.has(index):
        return 1, 0
    if inode.swap.has(index):
        n = reference_swapin_file(m, task, inode, index)
        return n, n
    slab = xa_stock_pages(m, task.memcg, xa_nodes_for(m, inode, index, index + 1))
    if not range_fits(snapshot_caps(m, task, inode), 1 + slab, 1, 1):
        return 0, 0
    err = run_fast_path(m, shmem_alloc_and_add_folio(m, task, inode, index, CTX_SYSCALL))
    assert err is None, err
    filled.append((index, index + 1))
    return 1, 0


def pageout_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """The reference: the same walk page by page, each rule checked for the one page."""
    inode = vma.file
    done = 0
    for idx in range(a, b):
        if vma.cow.has(idx):
            done += anon_pageout(m, task, vma, idx, idx + 1)
            continue
        if inode is None or not vma.mapped.has(idx) or getattr(inode, "file_lru", False):
            continue  # no PTE, ZERO_PAGE, or a swap PTE: nothing to reclaim
        index = vma.pgoff + idx
        mapcount = sum(1 for o in inode.vmas
                       if 0 <= index - o.pgoff < o.npages and o.mapped.has(index - o.pgoff))
        if mapcount != 1:
            continue  # mapped elsewhere too (another process, or another mapping of this one)
        unmap_file_range(m, task, vma, index, index + 1)
        done += shrink_folio_list(m, inode, index, index + 1, task.name)
    return done


def reference_swapin_file(m: Machine, task: TaskStruct, inode: ShmemInode, index: int) -> int:
    """The reference's step over a file page in swap (read(2), write(2), fallocate):
    `shmem_swapin_folio` for that one page if it needs no slow path (1), else 0."""
    if not file_swapin_run(m, task, inode, index, 1)[0]:
        return 0
    err = run_fast_path(m, shmem_swapin_folio(m, task, inode, index, CTX_SYSCALL))
    assert err is None, err
    return 1
