"""MADV_PAGEOUT: reclaiming the pages a range of a mapping maps, to swap.

Models mm/madvise.c (v6.18) `madvise_pageout` (`can_madv_lru_vma`, `can_do_file_pageout`) and
`madvise_cold_or_pageout_pte_range`, and what `reclaim_pages` -> `shrink_folio_list`
(mm/vmscan.c) does with the folios it isolates: anonymous folios get a swap slot first
(`folio_alloc_swap`) and are then unmapped; shmem folios are unmapped first (`try_to_unmap`)
and then written out (`shmem_writeout`), so a shmem folio that finds no slot or no swap charge
stays in the page cache, but unmapped.

Rules (6.18):
    * a VM_LOCKED mapping (mlock, mlock2 onfault, MAP_LOCKED): EINVAL (`can_madv_lru_vma`);
    * only pages this mapping maps are looked at: holes, ZERO_PAGE PTEs and swap PTEs are not;
    * a folio mapped more than once is left alone (order 0: `folio_mapcount(folio) !=
      folio_nr_pages(folio)`; `folio_maybe_mapped_shared` is the large-folio test): mapped
      by another process, or by another mapping of this one (which covers a page mlocked
      through another mapping; `folio_test_unevictable` would put it back anyway);
    * a shmem folio on a `noswap` mount, or with no swap device at all, is unmapped but kept;
    * every other folio needs a free slot and the swap charge of its memcg (memory.swap.max,
      hierarchically); without, it stays (`fail`, and `max` when the limit refused);
    * `can_do_file_pageout` always holds: every task runs as the same uid (the kill line's
      UID:0), the owner of every file.
    The folios are taken in address order (the PTE walk's order, which `reclaim_pages` keeps).

With `Machine.reference` set, each page is taken on its own (`pageout_pages`); otherwise runs of
pages are taken at once (`pageout_runs`). Both must leave the same state and counters.

Simplifications:
    No SHM_LOCK (there is no shmctl op). A pageout has no effect on other tasks' references or
    the LRU order; the page's "young" bit (ignored by MADV_PAGEOUT anyway) is not modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errno import EINVAL
from .extents import ExtentMap
from .memcontrol import mem_cgroup_swapout
from .memory import unmap_pages
from .page_alloc import free_pages
from .shmem import ShmemInode, shmem_writeout
from .signal import wake_up_all
from .swapfile import folio_alloc_swap

if TYPE_CHECKING:
    from .machine import Machine
    from .memory import VMA
    from .task import TaskStruct


def madvise_pageout(
    m: Machine, task: TaskStruct, vma: VMA, a: int, b: int
) -> tuple[str | None, int]:
    """Models `madvise_pageout()` over VMA pages `[a, b)`: (errno or None, pages swapped out)."""
    if vma.locked:
        return EINVAL, 0
    if m.reference:
        done = pageout_pages(m, task, vma, a, b)
    else:
        done = pageout_runs(m, task, vma, a, b)
    if done:
        wake_up_all(m.oom_waiters)
    return None, done


def kept_file_pages(vma: VMA, inode: ShmemInode) -> ExtentMap:
    """File pages whose folios a pageout through `vma` leaves alone: those some other mapping
    (of any process) maps too, so that the folio's mapcount is above 1."""
    kept = ExtentMap()
    for other in inode.vmas:
        if other is not vma:
            for s, e, _ in other.mapped.runs(0, other.npages):
                kept.fill(other.pgoff + s, other.pgoff + e, 0)
    return kept


def unmap_file_range(m: Machine, task: TaskStruct, vma: VMA, fa: int, fb: int) -> None:
    """`try_to_unmap()` of file pages `[fa, fb)`: their one mapping is `vma`'s."""
    unmap_pages(m, task, vma, fa - vma.pgoff, fb - vma.pgoff)


def anon_pageout(m: Machine, task: TaskStruct, vma: VMA, s: int, e: int) -> int:
    """Swap out the private anonymous pages `[s, e)` of `vma` (all present), in order: a slot
    and the swap charge of the task's memcg each (`folio_alloc_swap`), then the PTE becomes a
    swap PTE (MM_SWAPENTS) and the page leaves memory (`mem_cgroup_swapout`). Returns how many."""
    k = folio_alloc_swap(m, task.memcg, e - s, task.name)
    if not k:
        return 0
    for nid, n in vma.cow.remove(s, s + k).items():
        m.anon_stat(task, nid, -n)
        mem_cgroup_swapout(m, task.memcg, n)
        free_pages(m, nid, n)
    vma.swap.fill(s, s + k, m.memcg_tag(task.memcg))
    task.mm.swapents += k
    m.swap.pswpout += k
    return k


def pageout_runs(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """`madvise_cold_or_pageout_pte_range` over `[a, b)` by runs of pages, in address order."""
    segs: list[tuple[int, int, bool]] = [(s, e, True) for s, e, _ in vma.cow.runs(a, b)]
    inode = vma.file
    if inode is not None and len(vma.mapped):
        kept = kept_file_pages(vma, inode)
        off = vma.pgoff
        for s, e, _ in vma.mapped.runs(a, b):
            for hs, he in kept.hole_runs(off + s, off + e):
                segs.append((hs - off, he - off, False))
    segs.sort()
    done = 0
    for s, e, anon in segs:
        if anon:
            done += anon_pageout(m, task, vma, s, e)
        else:
            assert inode is not None
            unmap_file_range(m, task, vma, vma.pgoff + s, vma.pgoff + e)
            done += shmem_writeout(m, inode, [(vma.pgoff + s, vma.pgoff + e)], task.name)
    return done


def pageout_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """The reference: the same walk page by page, each rule checked for the one page."""
    inode = vma.file
    done = 0
    for idx in range(a, b):
        if vma.cow.has(idx):
            done += anon_pageout(m, task, vma, idx, idx + 1)
            continue
        if inode is None or not vma.mapped.has(idx):
            continue  # no PTE, ZERO_PAGE, or a swap PTE: nothing to reclaim
        index = vma.pgoff + idx
        mapcount = sum(1 for o in inode.vmas
                       if 0 <= index - o.pgoff < o.npages and o.mapped.has(index - o.pgoff))
        if mapcount != 1:
            continue  # mapped elsewhere too (another process, or another mapping of this one)
        unmap_file_range(m, task, vma, index, index + 1)
        done += shmem_writeout(m, inode, [(index, index + 1)], task.name)
    return done
