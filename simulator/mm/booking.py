"""Page booking: the one place, per kind of page, where pages come into or leave existence.

Every page the model instantiates or frees is booked here, through one pair of functions per
kind: shmem folios (the page cache of a shmem file), anonymous pages (a private mapping's
pages and COW copies, pages swapped back in, a task's footprint), page-table pages and slab
pages (the page cache's xarray nodes), and the page cache of disk files. A booking updates,
in one go, the structure that holds the pages (a file's or a VMA's extents, an mm's per-node
counts), the memcg's memory.stat item and the node's vmstat counter. Allocating, charging and
freeing the page itself stay with the caller (page_alloc.py, memcontrol.py), which knows
whether they have happened; the pressure work adds the LRU lists here, again once per kind.

Models the counter updates that follow the kernel's `shmem_add_to_page_cache` /
`filemap_unaccount_folio` (NR_SHMEM, `__lruvec_stat_mod_folio`), `folio_add_new_anon_rmap` /
`zap_present_ptes` (MM_ANONPAGES, NR_ANON_MAPPED), `pagetable_alloc` / `pagetable_free`
(NR_PAGETABLE) and `account_slab` / `unaccount_slab` (NR_SLAB_UNRECLAIMABLE_B).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .lru import (
    LRU_INACTIVE_ANON,
    Lruvec,
    lru_add_range,
    lru_add_runs,
    lru_del,
    mem_cgroup_lruvec,
)
from .memcontrol import mod_memcg_state

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .mm_types import VMA
    from .shmem_inode import ShmemInode
    from .task import TaskStruct


# -- shmem folios -----------------------------------------------------------------------------
def shmem_folios_added(m: Machine, inode: ShmemInode, memcg: MemCgroup, nid: int, a: int,
                       b: int, dirty: bool = False, young: bool = False,
                       referenced: bool = False) -> int:
    """Folios at every hole of file pages `[a, b)`, charged to `memcg`, on node `nid`: how many.

    A folio instantiated on a hole is clean (uptodate, zeroed); one swapped in is `dirty` (its
    swap copy is freed, so memory holds the only copy: `shmem_swapin_folio` dirties it). Each
    goes to the head of its memcg's inactive anon list (shmem is swap-backed), `young` when a
    fault maps it at once (its PTE's accessed bit), `referenced` when write(2) or fallocate
    made it (`shmem_get_folio_gfp` sets PG_referenced for SGP_WRITE).
    """
    holes = inode.pages.hole_runs(a, b) if m.lru.anon else []
    added = inode.pages.fill(a, b, m.owner(memcg, nid))
    lru_add_runs(m.lru, mem_cgroup_lruvec(memcg, nid), LRU_INACTIVE_ANON, inode, holes, young,
                 referenced)
    if dirty:
        inode.dirty.fill(a, b, 0)
    _shmem_stat(m, memcg, nid, added)
    return added


def shmem_folios_added_at(m: Machine, inode: ShmemInode, memcg: MemCgroup, nid: int,
                          index: np.ndarray, lru: bool = True) -> int:
    """Folios at the file pages `index` (holes, distinct, in fault order), charged to `memcg`,
    on node `nid`, mapped by the faults that add them. With `lru` False the caller puts them
    on the LRU (`lru_add_faulted`), interleaved with the other pages of the same faults."""
    added = inode.pages.add_pages(index, m.owner(memcg, nid))
    if lru and m.lru.anon:
        _lru_add_at(m, mem_cgroup_lruvec(memcg, nid), inode, index)
    _shmem_stat(m, memcg, nid, added)
    return added


def shmem_folios_removed(m: Machine, inode: ShmemInode, a: int, b: int) -> dict[int, int]:
    """The folios of file pages `[a, b)` leave the page cache: {owner tag: pages} (see
    `Machine.owners`), for the caller to uncharge and free, or to swap out."""
    inode.falloc.remove(a, b)
    return _folios_removed(m, inode, a, b, _shmem_stat)


def _folios_removed(m: Machine, inode: ShmemInode, a: int, b: int,
                    stat: Callable[[Machine, MemCgroup, int, int], None]) -> dict[int, int]:
    """Folios of `[a, b)` out of a file's page cache, its dirty map, LRU lists and accessed
    bits; `stat` books each owner's share off: {owner tag: pages}."""
    removed = inode.pages.remove(a, b)
    inode.dirty.remove(a, b)
    lru_del(m.lru, inode, a, b)
    inode.young.remove(a, b)
    for tag, n in removed.items():
        memcg, nid = m.owners[tag]
        stat(m, memcg, nid, -n)
    return removed


def shmem_folios_dirtied(m: Machine, inode: ShmemInode, a: int, b: int) -> None:
    """The folios present in file pages `[a, b)` are dirty (`folio_mark_dirty`): written by
    write(2), fallocate, or through a shared mapping. Reclaim must write a dirty folio to swap
    (or keep it); a clean one it just frees."""
    for s, e, _ in inode.pages.runs(a, b):
        inode.dirty.fill(s, e, 0)


def shmem_folios_dirtied_at(m: Machine, inode: ShmemInode, index: np.ndarray) -> None:
    """The folios present at the file pages `index` (any order, repeats allowed) are dirty."""
    index = np.asarray(index, dtype=np.int64)
    inode.dirty.add_pages(index[inode.pages.contains(index)], 0)


def _lru_add_at(m: Machine, vec: Lruvec, obj: object, index: np.ndarray) -> None:
    """New pages at `index` (distinct, in the order they were added) onto the inactive anon
    list, young: consecutive indices as one run."""
    idx = np.asarray(index, dtype=np.int64)
    if not len(idx):
        return
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(idx)]))
    for i, j in zip(starts.tolist(), ends.tolist(), strict=True):
        lru_add_range(m.lru, vec, LRU_INACTIVE_ANON, obj, int(idx[i]), int(idx[j - 1]) + 1, True)


def lru_add_faulted(m: Machine, memcg: MemCgroup, objs: tuple[object, object],
                    which: np.ndarray, index: np.ndarray, nids: np.ndarray) -> None:
    """Pages added by a sequence of faults onto the LRU in the order the faults added them:
    page i is page `index[i]` of `objs[which[i]]` (a file's folio, then the COW copy of the
    same fault), on node `nids[i]`, all charged to `memcg`. Consecutive pages of one object
    and node make one run."""
    if not m.lru.anon:
        return
    if not len(index):
        return
    brk = np.flatnonzero((np.diff(index) != 1) | (np.diff(which) != 0) | (np.diff(nids) != 0)) + 1
    starts = np.concatenate(([0], brk)).tolist()
    ends = np.concatenate((brk, [len(index)])).tolist()
    for i, j in zip(starts, ends, strict=True):
        vec = mem_cgroup_lruvec(memcg, int(nids[i]))
        lru_add_range(m.lru, vec, LRU_INACTIVE_ANON, objs[int(which[i])], int(index[i]),
                      int(index[j - 1]) + 1, True)
def shmem_folios_fallocated(m: Machine, inode: ShmemInode, runs: list[tuple[int, int]]) -> None:
    """The folios fallocate instantiated on the holes `runs` are not uptodate (`shmem_fallocate`
    leaves them so, for its undo to recognise them)."""
    for a, b in runs:
        inode.falloc.fill(a, b, 0)


def shmem_folios_uptodate(m: Machine, inode: ShmemInode, a: int, b: int) -> None:
    """The folios of file pages `[a, b)` are uptodate: written, or cleared by a fault."""
    if len(inode.falloc):
        inode.falloc.remove(a, b)


def shmem_folios_uptodate_at(m: Machine, inode: ShmemInode, index: np.ndarray) -> None:
    """The folios at the file pages `index` (any order, repeats allowed) are uptodate."""
    if len(inode.falloc):
        for i in np.unique(np.asarray(index, dtype=np.int64)[inode.falloc.contains(index)]):
            inode.falloc.remove(int(i), int(i) + 1)


def _shmem_stat(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    if n:
        mod_memcg_state(memcg, "shmem", n)
        m.nodes[nid].stat["shmem"] += n
        _file_stat(m, memcg, nid, n)  # NR_FILE_PAGES counts shmem too


def _file_stat(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    if n:
        mod_memcg_state(memcg, "file", n)
        m.nodes[nid].stat["file"] += n


# -- the page cache of disk files ---------------------------------------------------------------
def file_folios_added(m: Machine, inode: ShmemInode, memcg: MemCgroup, nid: int, a: int,
                      b: int, lru: int, young: bool = False, referenced: bool = False,
                      workingset: bool = False) -> int:
    """Folios at every uncached page of `[a, b)` of a disk file, read from disk, charged to
    `memcg`, on node `nid`: how many (`filemap_add_folio` -> `__filemap_add_folio`'s
    NR_FILE_PAGES, then `folio_add_lru` on list `lru`: the inactive file list, or the active
    one for a refault `workingset_refault` activates). Clean; their shadow entries go."""
    holes = inode.pages.hole_runs(a, b)
    added = inode.pages.fill(a, b, m.owner(memcg, nid))
    shadow = getattr(inode, "shadow", None)
    if shadow is not None and len(shadow):
        shadow.remove(a, b)
    lru_add_runs(m.lru, mem_cgroup_lruvec(memcg, nid), lru, inode, holes, young, referenced,
                 workingset)
    _file_stat(m, memcg, nid, added)
    return added


def file_folios_removed(m: Machine, inode: ShmemInode, a: int, b: int) -> dict[int, int]:
    """The folios of disk file pages `[a, b)` leave the page cache (`__filemap_remove_folio`):
    {owner tag: pages}, for the caller to uncharge and free."""
    return _folios_removed(m, inode, a, b, _file_stat)


def file_folios_cleaned(m: Machine, inode: ShmemInode, a: int, b: int) -> int:
    """Writeback of the dirty folios of `[a, b)` completed (`folio_end_writeback`): they are
    clean, and reclaim may drop them. How many."""
    n = inode.dirty.count(a, b)
    inode.dirty.remove(a, b)
    return n


# -- anonymous pages --------------------------------------------------------------------------
def anon_pages_added(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int, nid: int) -> int:
    """Private anonymous pages at every page of `[a, b)` of `vma` not yet one: how many. Each
    goes young to the head of the task's memcg's inactive anon list (a fault maps it)."""
    holes = vma.cow.hole_runs(a, b) if m.lru.anon else []
    added = vma.cow.fill(a, b, nid)
    lru_add_runs(m.lru, mem_cgroup_lruvec(task.memcg, nid), LRU_INACTIVE_ANON, vma, holes, True)
    anon_footprint(m, task, nid, added)
    return added


def anon_pages_added_at(m: Machine, task: TaskStruct, vma: VMA, idx: np.ndarray, nid: int,
                        lru: bool = True) -> int:
    """Private anonymous pages at the VMA pages `idx` (distinct, none one yet, in fault order);
    `lru` as for `shmem_folios_added_at`."""
    added = vma.cow.add_pages(idx, nid)
    if lru and m.lru.anon:
        _lru_add_at(m, mem_cgroup_lruvec(task.memcg, nid), vma, idx)
    anon_footprint(m, task, nid, added)
    return added


def anon_pages_removed(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> dict[int, int]:
    """The private anonymous pages of `[a, b)` of `vma` go: {nid: pages}, for the caller to
    uncharge and free, or to swap out."""
    removed = vma.cow.remove(a, b)
    lru_del(m.lru, vma, a, b)
    vma.young.remove(a, b)
    for nid, n in removed.items():
        anon_footprint(m, task, nid, -n)
    return removed


def anon_footprint(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """n anonymous pages of the task added (n > 0) or freed on node `nid`: MM_ANONPAGES, the
    memcg's `anon`, the node's NR_ANON_MAPPED. Alone for the pages of no VMA (a task's
    footprint); the VMA functions above call it for theirs."""
    if n:
        task.mm.rss["anon"] += n
        task.mm.anon_nodes[nid] += n
        mod_memcg_state(task.memcg, "anon", n)
        m.nodes[nid].stat["anon"] += n


# -- page tables ------------------------------------------------------------------------------
def pgtables_added(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """n page-table pages of the task on node `nid` (NR_PAGETABLE; the memcg's `pagetables`
    where the kernel charges them). Which regions they map is the caller's (`MM.pt`)."""
    if n:
        task.mm.pt_nodes[nid] += n
        _pgtable_stat(m, task.memcg, nid, n)


def pgtables_freed(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """n page-table pages of the task on node `nid` freed."""
    if n:
        task.mm.pt_nodes[nid] -= n
        _pgtable_stat(m, task.memcg, nid, -n)


def pgtables_to_rcu(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """n page-table pages of the task on node `nid` leave the mm and NR_PAGETABLE now
    (`pagetable_dtor`, `mm_dec_nr_ptes`) and wait for an RCU grace period, still charged to
    the task's memcg and not yet free (`MemCgroup.rcu_pgtables`)."""
    if n:
        pgtables_freed(m, task, nid, n)
        held = task.memcg.rcu_pgtables
        held[nid] = held.get(nid, 0) + n


def pgtables_rcu_freed(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    """n page-table pages of `memcg` on node `nid` past their grace period, for the caller to
    uncharge and free (`tlb_remove_table_rcu`)."""
    if n:
        memcg.rcu_pgtables[nid] -= n


def _pgtable_stat(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    if m.profile.kmem_charged:
        mod_memcg_state(memcg, "pagetables", n)
    m.nodes[nid].stat["pagetables"] += n


# -- a task's kernel pages (its stack, task_struct and the like) -------------------------------
def kernel_pages_added(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """n kernel pages of the task on node `nid` (the memcg's `kernel` where the kernel charges
    them: not 3.15)."""
    if n:
        task.mm.kernel_nodes[nid] += n
        if m.profile.kmem_charged:
            mod_memcg_state(task.memcg, "kernel", n)
        m.nodes[nid].stat["kernel"] += n


def kernel_pages_freed(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """n kernel pages of the task on node `nid` freed."""
    kernel_pages_added(m, task, nid, -n)


# -- slab pages -------------------------------------------------------------------------------
def slab_pages_added(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    """n slab pages charged to `memcg` for its objects, on node `nid` (memcg `slab`)."""
    if n:
        mod_memcg_state(memcg, "slab", n)
        memcg.slab_nodes[nid] = memcg.slab_nodes.get(nid, 0) + n
        m.nodes[nid].stat["slab"] += n


def slab_pages_freed(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    """n slab pages of `memcg` on node `nid` freed."""
    slab_pages_added(m, memcg, nid, -n)


# -- swap entries -----------------------------------------------------------------------------
# The slots and their memcg swap charge are swapfile.py's (`folio_alloc_swap`, `swap_free_nr`);
# these hold where the entries are: a shmem file's pages in swap (the file's, counted for
# nobody's rss), and the swap PTEs of private anonymous pages (MM_SWAPENTS).
def shmem_swap_added(m: Machine, inode: ShmemInode, memcg: MemCgroup, a: int, b: int) -> None:
    """File pages `[a, b)` are now in swap, recorded for `memcg` (`shmem_writeout`)."""
    inode.swap.fill(a, b, m.memcg_tag(memcg))


def shmem_swap_removed(m: Machine, inode: ShmemInode, a: int, b: int) -> dict[int, int]:
    """The swap entries of file pages `[a, b)` go: {memcg tag: entries}, for the caller to free
    the slots (`swap_free_nr`)."""
    return inode.swap.remove(a, b)


def swap_ptes_added(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> None:
    """Pages `[a, b)` of `vma` are now swap PTEs, recorded for the task's memcg."""
    vma.swap.fill(a, b, m.memcg_tag(task.memcg))
    task.mm.swapents += b - a


def swap_ptes_removed(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> dict[int, int]:
    """The swap PTEs of `[a, b)` of `vma` go: {memcg tag: entries}, for the caller to free the
    slots."""
    removed = vma.swap.remove(a, b)
    task.mm.swapents -= sum(removed.values())
    return removed
