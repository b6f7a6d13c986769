"""The page cache of disk files: its inodes, and the half of mm/filemap.c, mm/workingset.c
and mm/vmscan.c that only frees, ages and writes back (v6.18).

A disk file's data is on disk; its page cache starts empty. Reading or faulting a page reads it
into a folio charged to the reader's memcg (the allocating half, filemap_io.py), which goes on
the memcg's FILE lists (`folio_is_file_lru`), not the swap-backed ones. This module holds what
reclaim needs without reaching the charge path (it must not import memcg_charge): the inode
(`DiskInode`), `__filemap_remove_folio` with its shadow entries (`workingset_eviction`), the
refault test (`workingset_test_recent`), `folio_mark_accessed`, the reclaimer of file folios
(registered in vmscan_lru.RECLAIMERS), and writeback.

Simplifications:
    No readahead: a read or fault reads exactly the pages it touches. No xarray nodes for disk
    files' page cache (shmem's are charged; the nodes that would hold a disk file's folios and
    shadow entries are not modelled). A shadow entry stays until the page is read again or
    truncated (no shadow-node shrinker). Writeback is a FIFO of write(2) calls, each one's
    dirty pages written at `costs.writeback` a page and all clean once its last is written;
    pages dirtied through a shared mapping stay dirty (the flusher's periodic writeback of
    them is not modelled). Reclaim never starts writeback itself (direct reclaim does not
    write file folios: it activates them, `shrink_folio_list`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from .booking import file_folios_cleaned, file_folios_removed
from .extents import ExtentMap
from .lru import (
    LRU_ACTIVE_FILE,
    LRU_UNEVICTABLE,
    is_active_lru,
    lru_add_range,
    lru_del,
    lru_set_referenced,
    mem_cgroup_lruvec,
)
from .memcontrol import page_counter_uncharge, swap_margin
from .page_alloc import free_pages
from .shmem_inode import ShmemInode
from .signal import wake_up_all
from .vmscan_lru import RECLAIMERS, ScanControl
from .zap import unmap_pages

if TYPE_CHECKING:
    import simpy

    from .machine import Machine
    from .memcontrol import MemCgroup


@dataclass(eq=False)
class DiskInode(ShmemInode):
    """A file on a disk filesystem: `ShmemInode`'s size, pages (the cached folios and their
    owners), dirty folios, mappings and LRU stamps, never swap (its folios are on the file LRU
    and are dropped, not swapped out), plus its shadow entries.

    Attributes:
        shadow: pages evicted by reclaim, each with a shadow entry (`workingset_eviction`):
            page -> an index into `shadow_tags`.
        shadow_tags: (memcg of the reclaim, node, base, workingset): the eviction age of page
            i of a run tagged so is base + i (a run evicted in page order ages one per page);
            workingset: its folios had PG_workingset.
    """

    file_lru = True  # `folio_is_file_lru`: back to the file lists on munlock (lru.py)
    shadow: ExtentMap = field(default_factory=ExtentMap)
    shadow_tags: list[tuple[Any, int, int, bool]] = field(default_factory=list)
    shadow_index: dict[tuple[int, int, int, bool], int] = field(default_factory=dict)


def is_disk_file(inode: Any) -> TypeGuard[DiskInode]:
    """A disk file's page cache (not shmem)."""
    return type(inode) is DiskInode


def workingset_age_nonresident(m: Machine, memcg: MemCgroup, nid: int, n: int) -> None:
    """Models `workingset_age_nonresident()` in mm/workingset.c (v6.18): the clock of
    evictions and activations ticks by n in the lruvec of `memcg` on `nid` and every
    ancestor's."""
    for c in memcg.ancestors():
        mem_cgroup_lruvec(c, nid).nonresident_age += n


def workingset_eviction(m: Machine, inode: DiskInode, a: int, b: int, target: MemCgroup,
                        nid: int, workingset: bool = False) -> None:
    """Models `workingset_eviction()` in mm/workingset.c (v6.18) for folios `[a, b)` evicted in
    page order by reclaim aimed at `target` (the root for global reclaim): each leaves a shadow
    entry with the age of `target`'s lruvec on its node, which then ticks once per page, and
    their PG_workingset (`pack_shadow`'s workingset bit)."""
    vec = mem_cgroup_lruvec(target, nid)
    base = vec.nonresident_age - a
    key = (id(target), nid, base, workingset)
    tag = inode.shadow_index.get(key)
    if tag is None:
        tag = inode.shadow_index[key] = len(inode.shadow_tags)
        inode.shadow_tags.append((target, nid, base, workingset))
    inode.shadow.fill(a, b, tag)
    workingset_age_nonresident(m, target, nid, b - a)


def workingset_test_recent(m: Machine, inode: DiskInode, index: int) -> bool:
    """Models `workingset_test_recent()` in mm/workingset.c (v6.18) for page `index`'s shadow
    entry: the refault distance (evictions and activations in the evicting lruvec since) is
    within the workingset the lists could have made room for: its active file pages, and with
    swap space the memcg may use its anon pages too (subtree sums, as memory.stat's)."""
    tag = inode.shadow.owner_of(index)
    assert tag is not None
    memcg, nid, base, _ = inode.shadow_tags[tag]
    vec = mem_cgroup_lruvec(memcg, nid)
    distance = vec.nonresident_age - (base + index)
    vecs = [c.lruvecs[nid] for c in memcg.descendants_pre() if nid in c.lruvecs]
    size = sum(v.nr[LRU_ACTIVE_FILE] for v in vecs)
    if m.swap.nr_free() > 0 and swap_margin(memcg) > 0:
        size += sum(v.nr[0] + v.nr[1] for v in vecs)
    return distance <= size


def folio_mark_accessed(m: Machine, inode: DiskInode, a: int, b: int) -> None:
    """Models `folio_mark_accessed()` in mm/swap.c (v6.18) for the cached folios of `[a, b)`, in
    page order, as `filemap_read` calls it for each folio it copies: an unreferenced folio gets
    PG_referenced; a referenced one on an inactive list is activated (`folio_activate`: to the
    head of the active list, PG_referenced cleared, `workingset_activation` ticks its lruvec's
    clock); an active or unevictable referenced folio stays as it is."""
    st = m.lru
    lru_set_referenced(st, inode, a, b)
    move = []
    for s, e, stamp in inode.lru.runs(a, b):
        run = st.runs[stamp]
        if run.lru != LRU_UNEVICTABLE and not is_active_lru(run.lru) and run.referenced:
            move.append((run, s, e))
    for run, s, e in move:
        lru_del(st, inode, s, e)
        lru_add_range(st, run.lruvec, run.lru + 1, inode, s, e, False, False,  # PTE bits stay
                      run.workingset)
        workingset_age_nonresident(m, run.lruvec.memcg, run.lruvec.nid, e - s)
        count_memcg_event(run.lruvec.memcg, "pgactivate", e - s)


def count_memcg_event(memcg: MemCgroup, item: str, n: int) -> None:
    """`count_memcg_events()`: memory.stat's event counters, in the memcg and its ancestors."""
    if n:
        for c in memcg.ancestors():
            c.vmscan[item] += n


def __filemap_remove_folio(m: Machine, inode: DiskInode, a: int, b: int,
                           target: MemCgroup | None = None, workingset: bool = False) -> int:
    """Models `__filemap_remove_folio()` in mm/filemap.c (v6.18) (with `filemap_free_folio`)
    for the cached folios of `[a, b)`: out of the page cache, uncharged, freed. Reclaim
    (`__remove_mapping`) passes its `target` memcg: each folio leaves a shadow entry
    (`workingset_eviction`); truncation passes none, and the shadow entries go too. How many."""
    freed = 0
    if target is not None:
        for s, e, tag in inode.pages.runs(a, b):
            workingset_eviction(m, inode, s, e, target, m.owners[tag][1], workingset)
    elif len(inode.shadow):
        inode.shadow.remove(a, b)
    for tag, n in file_folios_removed(m, inode, a, b).items():
        memcg, nid = m.owners[tag]
        page_counter_uncharge(m, memcg, n)
        free_pages(m, nid, n)
        freed += n
    if freed:
        wake_up_all(m.oom_waiters)
    return freed


def reclaim_file(m: Machine, inode: DiskInode, s: int, e: int, sc: ScanControl,
                 workingset: bool = False) -> list[tuple[int, int]]:
    """`shrink_folio_list()` for the isolated, unreferenced file folios `[s, e)`: unmapped
    (`try_to_unmap`), then a clean one is dropped (`__remove_mapping`, leaving a shadow entry)
    and a dirty one kept: direct reclaim does not write file folios back, it activates them
    (`activate_locked`) for the flusher to write. Returns the ranges kept (the dirty ones)."""
    for v in list(inode.vmas):
        lo, hi = max(0, s - v.pgoff), min(v.npages, e - v.pgoff)
        if lo < hi and v.owner is not None and v.mapped.count(lo, hi):
            unmap_pages(m, v.owner, v, lo, hi)
    kept = [(a, b) for a, b, _ in inode.dirty.runs(s, e)]
    pos = s
    for a, b in kept + [(e, e)]:
        if a > pos:
            __remove_mapping_file(m, inode, pos, a, sc.target, workingset)
        pos = b
    return kept


def __remove_mapping_file(m: Machine, inode: DiskInode, a: int, b: int, target: MemCgroup,
                          workingset: bool = False) -> int:
    """Models `__remove_mapping()` in mm/vmscan.c (v6.18) for clean file folios: a shadow
    entry in place of each (`workingset_eviction`, `__filemap_remove_folio`)."""
    return __filemap_remove_folio(m, inode, a, b, target, workingset)


RECLAIMERS[DiskInode] = reclaim_file


def filemap_free_range(m: Machine, inode: DiskInode, a: int, b: int) -> int:
    """Models `truncate_inode_pages_range()` in mm/truncate.c (v6.18) over `[a, b)`: the cached
    folios (dirty ones too: truncation discards their data) and the shadow entries go."""
    return __filemap_remove_folio(m, inode, a, b)


# -- writeback ---------------------------------------------------------------------------------
@dataclass(eq=False)
class Writeback:
    """The flusher: write(2) calls' dirty ranges in order, written at `costs.writeback` a page
    (`wb_workfn` -> `writeback_sb_inodes` -> `do_writepages`; `folio_end_writeback`)."""

    queue: deque[tuple[DiskInode, int, int]] = field(default_factory=deque)
    wake: simpy.Event | None = None
    written: int = 0


def wb_queue_range(m: Machine, inode: DiskInode, a: int, b: int) -> None:
    """A write(2) dirtied file pages `[a, b)`: queue them for the flusher (started on first
    use), which writes them after the writes queued before."""
    wb = m.writeback
    if wb is None:
        wb = m.writeback = Writeback()
        m.env.process(wb_workfn(m, wb))
    wb.queue.append((inode, a, b))
    if wb.wake is not None and not wb.wake.triggered:
        wb.wake.succeed()


def wb_workfn(m: Machine, wb: Writeback) -> Any:
    """Models the flusher's `wb_workfn()` (fs/fs-writeback.c, v6.18) as one SimPy process:
    each queued range's pages still dirty are written, then clean (`folio_end_writeback`)."""
    while True:
        if not wb.queue:
            wb.wake = m.env.event()
            yield wb.wake
            wb.wake = None
            continue
        inode, a, b = wb.queue[0]
        n = inode.dirty.count(a, b)
        if n:
            yield m.env.timeout(n * m.costs.writeback)
            n = file_folios_cleaned(m, inode, a, b)
            wb.written += n
            m.log.emit("writeback", page=a, pages=n, detail=inode.name)
        wb.queue.popleft()
