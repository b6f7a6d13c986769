"""Zapping PTEs: the half of mm/memory.c that only unmaps and frees (v6.18).

Models `zap_page_range_single()` / `unmap_page_range()` -> `zap_pte_range()` over a VMA range:
file and ZERO_PAGE PTEs are dropped, private anonymous pages uncharged and freed, swap PTEs'
entries freed (`free_swap_and_cache`). munmap, exit, truncation, MADV_DONTNEED, a private
write's copy over a file PTE and the OOM reaper all zap. Kept apart from the fault half
(memory.py), which allocates and so reaches the OOM killer: the reaper zaps, and needs nothing
above the page counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .booking import anon_pages_removed, swap_ptes_removed
from .memcontrol import mod_memcg_state, page_counter_uncharge
from .page_alloc import free_pages
from .swapfile import swap_free_nr

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA
    from .task import TaskStruct


def unmap_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> None:
    """Models `zap_page_range_single()` over `[a, b)` for file and zero PTEs (not COW pages)."""
    n = sum(vma.mapped.remove(a, b).values())
    task.mm.rss["shmem"] -= n
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
