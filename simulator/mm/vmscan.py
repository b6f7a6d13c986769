"""Reclaim of the shmem folios MADV_PAGEOUT isolates.

Models the shmem half of `shrink_folio_list()` in mm/vmscan.c (v6.18) for folios already
unmapped (`try_to_unmap`): a dirty folio goes to `pageout()` -> `shmem_writeout` (to swap, or
kept in the page cache when it refuses), a clean one (a read fault's zeroed folio on a hole,
never written) is taken out of the page cache and freed at once by `__remove_mapping`.

Simplifications:
    Only MADV_PAGEOUT reclaims (no LRU scanning, no kswapd); the folios are neither referenced
    nor under writeback (a synchronous swap device completes the write in the same pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .shmem import ShmemInode, shmem_free_range, shmem_writeout
from .xarray import XA_CHUNK_SHIFT

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .task import TaskStruct


def __remove_mapping(m: Machine, inode: ShmemInode, a: int, b: int) -> int:
    """Models `__remove_mapping()` in mm/vmscan.c (v6.18) for the clean shmem folios of file
    pages `[a, b)`: out of the page cache (their xarray nodes too), uncharged and freed; the
    next `shmem_recalc_inode` gives back their tmpfs blocks and commit, since alloced is
    more than resident + swapped ("the mm can drop undirtied hole pages"). The file has holes
    there again: the next fault instantiates a new folio, charged to whoever faults it.

    Freed by 64-page blocks of the xarray: a node is freed (and its bytes refilled into the
    stock) only at the last entry taken out of it, so this frees the same nodes in the same
    refills as folio by folio, whatever the run's length."""
    freed, pos = 0, a
    while pos < b:
        end = min(b, ((pos >> XA_CHUNK_SHIFT) + 1) << XA_CHUNK_SHIFT)
        freed += shmem_free_range(m, inode, pos, end)
        pos = end
    return freed


def shrink_folio_list(m: Machine, inode: ShmemInode, a: int, b: int, task: str = "") -> int:
    """Models `shrink_folio_list()` in mm/vmscan.c (v6.18) for the unmapped shmem folios of
    file pages `[a, b)`, in order: clean ones are freed (`__remove_mapping`), dirty ones
    written out (`shmem_writeout`: to swap, or kept). Returns how many went to swap."""
    swapped = 0
    for s, e, _ in inode.pages.runs(a, b):
        pos = s
        for ds, de, _ in inode.dirty.runs(s, e):
            if ds > pos:
                __remove_mapping(m, inode, pos, ds)
            swapped += shmem_writeout(m, inode, [(ds, de)], task)
            pos = de
        if pos < e:
            __remove_mapping(m, inode, pos, e)
    return swapped


def try_to_free_mem_cgroup_pages(m: Machine, task: TaskStruct, memcg: MemCgroup, nr_pages: int,
                                 may_swap: bool) -> int:
    """Models `try_to_free_mem_cgroup_pages()` in mm/vmscan.c (v6.18): reclaim up to
    `nr_pages` from `memcg`'s subtree on behalf of `task`; returns the pages reclaimed.

    Today it reclaims nothing: the model has no LRU lists and no page cache of regular files
    to scan, and pages leave memory only by MADV_PAGEOUT, so 0 is exactly what the kernel's
    reclaim finds here (the memory.high and memory.max paths then throttle or go to the OOM
    killer). The reclaim work fills this in; its callers (`reclaim_high`, and
    `try_charge_memcg`'s reclaim) already hold the task in a PSI memory stall around it.
    """
    return 0
