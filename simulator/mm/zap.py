"""Zapping PTEs: the half of mm/memory.c that only unmaps and frees (v6.18).

Models `zap_page_range_single()` / `unmap_page_range()` -> `zap_pte_range()` over a VMA range:
file and ZERO_PAGE PTEs are dropped, private anonymous pages uncharged and freed, swap PTEs'
entries freed (`free_swap_and_cache`). munmap, exit, truncation, MADV_DONTNEED, a private
write's copy over a file PTE and the OOM reaper all zap. Kept apart from the fault half
(memory.py), which allocates and so reaches the OOM killer: the reaper zaps, and needs nothing
above the page counters. Also the page tables' teardown: `free_pgtables` (munmap) and
PT_RECLAIM's freeing of the PTE tables MADV_DONTNEED empties (`reclaim_pt`), both through
`tlb_remove_table` (mmu_gather.py: uncharged after an RCU grace period).

Simplifications:
    Page tables are counted per node, not placed: the ones freed are taken from the task's
    nodes in node order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .booking import anon_pages_removed, swap_ptes_removed
from .memcontrol import mod_memcg_state, page_counter_uncharge
from .mm_types import PT_SHIFTS, file_rss_item
from .mmu_gather import tlb_remove_table
from .page_alloc import free_pages
from .swapfile import swap_free_nr

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import MM, VMA
    from .task import TaskStruct


def unmap_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> None:
    """Models `zap_page_range_single()` over `[a, b)` for file and zero PTEs (not COW pages)."""
    n = sum(vma.mapped.remove(a, b).values())
    task.mm.rss[file_rss_item(vma.file)] -= n
    mod_memcg_state(task.memcg, "file_mapped", -n)
    vma.zero.remove(a, b)


def free_cow_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """Free the private anonymous pages of `[a, b)`: uncharge and give back to their nodes.

    Their swap entries go too (`zap_pte_range` -> `free_swap_and_cache`): the slots, the swap
    charge of the memcg recorded for them, and MM_SWAPENTS.
    """
    for tag, n in swap_ptes_removed(m, task, vma, a, b).items():
        swap_free_nr(m, m.tagged_memcgs[tag], n)
    removed = anon_pages_removed(m, task, vma, a, b)
    total = 0
    for nid, n in removed.items():
        page_counter_uncharge(m, task.memcg, n)
        free_pages(m, nid, n)
        total += n
    return total


def _region_free(mm: MM, vma: VMA, shift: int, r: int) -> bool:
    """Whether page-table region `r` of level `shift` holds no page of any VMA but `vma`
    (nor of the libraries above mmap_base)."""
    lo, hi = r << shift, (r + 1) << shift
    if hi > mm.lib_start:
        return False
    return not any(o is not vma and o.start < hi and lo < o.start + o.npages
                   for o in mm.vmas.values())


def free_pgtables(m: Machine, task: TaskStruct, vma: VMA) -> int:
    """Models `free_pgtables()` in mm/memory.c (v6.18) for a VMA being unmapped: every page
    table (PTE, PMD, PUD) covering only addresses of this VMA (the kernel's floor and ceiling
    are the neighbours' ends) goes, through `tlb_remove_table`. Returns how many."""
    mm = task.mm
    n = 0
    for sh in PT_SHIFTS:
        first, last = vma.start >> sh, (vma.start + vma.npages - 1) >> sh
        if last > first + 1:  # regions inside the VMA hold no other VMA's pages
            n += sum(mm.pt[sh].remove(first + 1, last).values())
        for r in {first, last}:
            if mm.pt[sh].has(r) and _region_free(mm, vma, sh, r):
                n += sum(mm.pt[sh].remove(r, r + 1).values())
    tlb_remove_table(m, task, n)
    return n


def try_to_free_pte(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """Models CONFIG_PT_RECLAIM (6.14+) in `zap_pte_range()` (mm/memory.c) and
    `try_to_free_pte()` (mm/pt_reclaim.c, v6.18): MADV_DONTNEED zapping VMA pages `[a, b)`
    frees the PTE tables of the 2 MiB regions it covers whole (`reclaim_pt_is_enabled`: the
    zap spans the PMD), as every entry in them is now none; through `tlb_remove_table`.
    PMD and PUD tables stay. Returns how many."""
    if not m.profile.pt_reclaim:
        return 0
    sh = PT_SHIFTS[-1]
    lo, hi = vma.start + a, vma.start + b
    first, end = -(-lo >> sh), hi >> sh  # the regions [first, end) lie inside [lo, hi)
    n = sum(task.mm.pt[sh].remove(first, end).values()) if end > first else 0
    tlb_remove_table(m, task, n)
    return n
