"""madvise(2): `madvise_vma_behavior` per advice, MADV_POPULATE_*, DONTNEED and PAGEOUT.

MADV_PAGEOUT reclaims the pages a range of a mapping maps, to swap.

Models mm/madvise.c (v6.18) `madvise_pageout` (`can_madv_lru_vma`, `can_do_file_pageout`) and
`madvise_cold_or_pageout_pte_range`, and what `reclaim_pages` -> `shrink_folio_list`
(mm/vmscan.c, here vmscan.py) does with the folios it isolates: anonymous folios get a swap
slot first (`folio_alloc_swap`) and are then unmapped; shmem folios are unmapped first
(`try_to_unmap`); a clean one (read-faulted on a hole, never written) is then freed
(`__remove_mapping`: the file has a hole again), a dirty one written out (`shmem_writeout`),
so a dirty shmem folio that finds no slot or no swap charge stays in the page cache, but
unmapped.

Rules (6.18):
    * a VM_LOCKED mapping (mlock, mlock2 onfault, MAP_LOCKED): EINVAL (`can_madv_lru_vma`);
    * only pages this mapping maps are looked at: holes, ZERO_PAGE PTEs and swap PTEs are not;
    * a folio mapped more than once is left alone (order 0: `folio_mapcount(folio) !=
      folio_nr_pages(folio)`; `folio_maybe_mapped_shared` is the large-folio test): mapped
      by another process, or by another mapping of this one (which covers a page mlocked
      through another mapping; `folio_test_unevictable` would put it back anyway);
    * a clean shmem folio is freed, swap or not; a dirty one on a `noswap` mount, or with no
      swap device at all, is unmapped but kept;
    * every other folio needs a free slot and the swap charge of its memcg (memory.swap.max,
      hierarchically); without, it stays (`fail`, and `max` when the limit refused);
    * `can_do_file_pageout` always holds: every task runs as the same uid (the kill line's
      UID:0), the owner of every file.
    The folios are taken in address order (the PTE walk's order, which `reclaim_pages` keeps).

The engine walks the range (`Machine.engine.pageout`): the bulk engine by runs of pages
(simulator/engine/pageout.py), the reference page by page. Both must leave the same state and
counters.

Simplifications:
    No SHM_LOCK (there is no shmctl op). A pageout has no effect on other tasks' references or
    the LRU order; the page's "young" bit (ignored by MADV_PAGEOUT anyway) is not modelled.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .errno import EFAULT, EINVAL, ENOMEM
from .extents import ExtentMap
from .gup import PageSeq, WalkResult, faultin_range
from .memcontrol import CTX_GUP
from .mm_types import VM_FAULT_OOM, VM_FAULT_SIGBUS
from .shmem_inode import ShmemInode
from .signal import wake_up_all
from .zap import free_cow_pages, try_to_free_pte, unmap_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA
    from .task import TaskStruct


def madvise_pageout(
    m: Machine, task: TaskStruct, vma: VMA, a: int, b: int
) -> tuple[str | None, int]:
    """Models `madvise_pageout()` over VMA pages `[a, b)`: (errno or None, pages swapped out)."""
    if vma.mlocked.count(a, b):  # a VM_LOCKED part of the range (`can_madv_lru_vma`)
        return EINVAL, 0
    done = m.engine.pageout(m, task, vma, a, b)
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


POPULATE = ("populate_read", "populate_write")


def madvise_populate(
    m: Machine, task: TaskStruct, vma: VMA, a: int, b: int, write: bool
) -> Generator[Any, Any, tuple[str | None, WalkResult | None]]:
    """Models `madvise_populate()` in mm/madvise.c (v6.18) over VMA pages `[a, b)`.

    EINVAL before 5.14 (no such advice) and for POPULATE_WRITE of a mapping without
    VM_WRITE. The pages are faulted in as GUP does (`faultin_page_range`); a fault's
    VM_FAULT_OOM is ENOMEM and its VM_FAULT_SIGBUS EFAULT. Returns (errno, None) for a refusal
    before any fault, else (the errno or None, the walk's result).
    """
    if not m.profile.madv_populate:
        return EINVAL, None
    if write and not vma.write:
        return EINVAL, None
    res = yield from faultin_range(m, task, vma, PageSeq(a, b), write, CTX_GUP, m.costs.populate)
    return {VM_FAULT_OOM: ENOMEM, VM_FAULT_SIGBUS: EFAULT}.get(res.status), res


def madvise_dontneed_free(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> str | None:
    """Models `madvise_dontneed_free()` in mm/madvise.c (v6.18) for MADV_DONTNEED.

    A VM_LOCKED mapping refuses (EINVAL, `madvise_dontneed_free_valid_vma`); otherwise the
    PTEs of `[a, b)` are zapped and private COW copies freed: the next access faults again.
    The PTE tables of whole 2 MiB regions zapped are freed too (PT_RECLAIM, `try_to_free_pte`).
    """
    if vma.mlocked.count(a, b):  # `madvise_dontneed_free_valid_vma`
        return EINVAL
    unmap_pages(m, task, vma, a, b)
    free_cow_pages(m, task, vma, a, b)
    try_to_free_pte(m, task, vma, a, b)
    return None


def madvise_vma_behavior(
    m: Machine, task: TaskStruct, vma: VMA, a: int, b: int, advice: str
) -> Generator[Any, Any, tuple[str | None, WalkResult | None]]:
    """Models `madvise_vma_behavior()` in mm/madvise.c (v6.18): one advice on VMA pages `[a, b)`.

    POPULATE_READ/WRITE (`madvise_populate`; the walk's result is returned with its errno),
    DONTNEED (`madvise_dontneed_free`), PAGEOUT (`madvise_pageout`: EINVAL before 5.4; the
    pages written out cost `Costs.pageout` each). WILLNEED does nothing: shmem has no
    readahead of holes, and of pages in swap `shmem_willneed` -> `shmem_swapin_range` (and
    `madvise_willneed` of anonymous memory) would only start reading them into the swap cache,
    which is not modelled. Returns (errno or None, the populate walk's result or None).
    """
    if advice in POPULATE:
        return (yield from madvise_populate(m, task, vma, a, b, write=advice == "populate_write"))
    if advice == "dontneed":
        return madvise_dontneed_free(m, task, vma, a, b), None
    if advice == "pageout":
        if not m.profile.madv_pageout:
            return EINVAL, None
        err, done = madvise_pageout(m, task, vma, a, b)
        m.log.emit("madvise_pageout", task=task.name, memcg=task.memcg.path, page=a,
                   pages=done, value=m.swap.inuse, detail=err or "")
        yield m.env.timeout(done * m.costs.pageout)
        return err, None
    return None, None
