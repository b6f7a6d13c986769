"""LRU reclaim: memcg reclaim on a charge over max and direct reclaim in the allocator.

Models the classic-LRU half of mm/vmscan.c (v6.18, no MGLRU): `try_to_free_mem_cgroup_pages`
and `try_to_free_pages` -> `do_try_to_free_pages` (priority from DEF_PRIORITY down to 0, until
`nr_to_reclaim` pages are reclaimed) -> `shrink_zones` (each node of the zonelist once) ->
`shrink_node_memcgs` (the target's subtree in pre-order, from where the last walk of the same
root and node stopped: `mem_cgroup_iter`'s shared cursor) -> `shrink_lruvec`
(`get_scan_count`'s targets, taken SWAP_CLUSTER_MAX at a time from each evictable list) ->
`shrink_inactive_list` (isolate from the tail, `folio_check_references`, `shrink_folio_list`)
and `shrink_active_list` (deactivate when `inactive_is_low`).

`shrink_folio_list`'s outcomes, per kind of page:
    * mapped by a VM_LOCKED mapping: unevictable (off the scanned lists until munlock);
    * a young PTE (mapped by a fault since the last scan): kept for another trip round the
      inactive list with PG_referenced set, or activated if PG_referenced was already set;
    * clean shmem (a read fault's zeroed folio on a hole): unmapped and dropped
      (`__remove_mapping`): the file has a hole there again, uncharged;
    * dirty shmem: unmapped and written to swap (`shmem_writeout`), or kept (activated) when
      there is no slot or no swap charge;
    * anonymous: a swap slot and charge first (`folio_alloc_swap`), then unmapped into a swap
      PTE; kept (activated) without.
Anon lists (shmem and anonymous pages) are scanned only when `sc.may_swap` and swap can take
pages (`can_reclaim_anon_pages`); swappiness 0 in memcg reclaim scans file pages only.

Simplifications:
    No reclaim cost tracking (`lru_note_cost`): SCAN_FRACT weighs anon and file by swappiness
    alone. The proportional stop after `nr_to_reclaim` (shrink_lruvec's rebalancing of the
    smaller list) is a plain stop. A PTE's accessed bit is set by the fault that maps the page,
    not by later loads through it. No shrink_slab (slab pages are not reclaimed), no
    compaction.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errno import EAGAIN, EINTR
from .extents import ExtentMap
from .lru import (
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    LRU_UNEVICTABLE,
    LruRun,
    Lruvec,
    is_active_lru,
    is_file_lru,
    isolate_lru_folios,
    lru_add_range,
)
from .memcg_protection import (
    mem_cgroup_below_low,
    mem_cgroup_below_min,
    mem_cgroup_calculate_protection,
    mem_cgroup_protection,
)
from .memcontrol import memcg_memory_event, swap_margin
from .mm_types import VMA
from .psi import psi_memstall_wait
from .shmem_inode import ShmemInode
from .signal import wake_up_all
from .vmscan import anon_pageout, shrink_folio_list
from .zap import unmap_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .page_alloc import Node
    from .task import TaskStruct

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_SWAPPINESS = 200
EVICTABLE = (0, 1, 2, 3)


@dataclass
class ScanControl:
    """`struct scan_control`: what one reclaim wants and what it did."""

    nr_to_reclaim: int
    target: MemCgroup
    may_swap: bool = True
    cgroup_reclaim: bool = True
    proactive: bool = False
    proactive_swappiness: int | None = None
    memcg_low_reclaim: bool = False
    memcg_low_skipped: bool = False
    # `shrink_zones()`: the nodes to shrink, once each, in zonelist order (the reclaiming
    # task's, filtered by the allocation's nodemask and cpuset for global reclaim; kswapd's
    # own node); empty: every node.
    zonelist: tuple[int, ...] = ()
    # kswapd, or the `memcg_full_walk` retry: every memcg from the start, no shared cursor.
    memcg_full_walk: bool = False
    priority: int = DEF_PRIORITY
    nr_scanned: int = 0
    nr_reclaimed: int = 0
    nr_swapped: int = 0
    task: str = ""


def sc_swappiness(m: Machine, memcg: MemCgroup, sc: ScanControl | None = None) -> int:
    """`sc_swappiness()`: a proactive reclaim's own swappiness, else `mem_cgroup_swappiness()`:
    v1's memory.swappiness of the memcg, else vm.swappiness."""
    if sc is not None and sc.proactive_swappiness is not None:
        return sc.proactive_swappiness
    if memcg.swappiness is not None and not memcg.is_root():
        return memcg.swappiness
    return m.sysctl.get("swappiness", 60)


def can_reclaim_anon_pages(m: Machine, memcg: MemCgroup) -> bool:
    """`can_reclaim_anon_pages()`: swap has a free slot the memcg may charge (memory.swap.max
    of it and its ancestors)."""
    return m.swap.nr_free() > 0 and swap_margin(memcg) > 0


def get_scan_count(m: Machine, vec: Lruvec, sc: ScanControl) -> list[int]:
    """`get_scan_count()`: how many pages of each evictable list this priority scans."""
    memcg = vec.memcg
    swappiness = sc_swappiness(m, memcg, sc)
    balance = "fract"
    if not sc.may_swap or not can_reclaim_anon_pages(m, memcg):
        balance = "file"
    elif sc.cgroup_reclaim and swappiness == 0:
        balance = "file"
    elif sc.priority == 0 and swappiness:
        balance = "equal"
    ap = swappiness
    fp = MAX_SWAPPINESS - swappiness
    nr = [0, 0, 0, 0]
    for lru in EVICTABLE:
        file = is_file_lru(lru)
        scan = apply_proportional_protection(memcg, sc, vec.nr[lru]) >> sc.priority
        if balance == "fract":
            scan = scan * (fp if file else ap) // (ap + fp)
        elif balance == "file" and not file:
            scan = 0
        nr[lru] = scan
    return nr


def apply_proportional_protection(memcg: MemCgroup, sc: ScanControl, scan: int) -> int:
    """`apply_proportional_protection()`: a protected memcg's lists are scanned in proportion
    to its usage above its protection (memory.low only until a pass reclaims nothing), at
    least SWAP_CLUSTER_MAX."""
    emin, elow = mem_cgroup_protection(sc.target, memcg)
    if not (emin or elow):
        return scan
    if not sc.memcg_low_reclaim and elow > emin:
        protection = elow
        sc.memcg_low_skipped = True
    else:
        protection = emin
    size = max(memcg.usage, protection)
    scan -= scan * protection // (size + 1)
    return max(scan, SWAP_CLUSTER_MAX)


def inactive_is_low(vec: Lruvec, inactive_lru: int) -> bool:
    """`inactive_is_low()`: the inactive list is short against the active one (ratio
    int_sqrt(10 x GiB) from 1 GiB of the two lists, else 1)."""
    inactive, active = vec.nr[inactive_lru], vec.nr[inactive_lru + 1]
    gb = (inactive + active) >> 18  # 4 KiB pages
    ratio = int((10 * gb) ** 0.5) if gb else 1
    return inactive * ratio < active


def shrink_lruvec(m: Machine, vec: Lruvec, sc: ScanControl) -> None:
    """`shrink_lruvec()`: scan each list SWAP_CLUSTER_MAX at a time until its target is met
    or enough is reclaimed."""
    nr = get_scan_count(m, vec, sc)
    start = sc.nr_reclaimed
    while nr[LRU_INACTIVE_ANON] or nr[LRU_INACTIVE_FILE] or nr[LRU_INACTIVE_FILE + 1]:
        for lru in EVICTABLE:
            if nr[lru]:
                k = min(nr[lru], SWAP_CLUSTER_MAX)
                nr[lru] -= k
                if is_active_lru(lru):
                    if inactive_is_low(vec, lru - 1):
                        shrink_active_list(m, vec, lru, k, sc)
                else:
                    shrink_inactive_list(m, vec, lru, k, sc)
        if sc.nr_reclaimed - start >= sc.nr_to_reclaim:
            break
    if sc.nr_reclaimed > start:  # `shrink_node`: the node is reclaimable, kswapd may retry
        m.nodes[vec.nid].kswapd_failures = 0


def shrink_active_list(m: Machine, vec: Lruvec, lru: int, nr_to_scan: int,
                       sc: ScanControl) -> None:
    """`shrink_active_list()`: move pages from the active tail to the inactive head, their
    PG_referenced cleared (a young executable file page would stay active: not modelled)."""
    taken = isolate_lru_folios(m.lru, vec, lru, nr_to_scan)
    n = 0
    for run, s, e in taken:
        # `folio_clear_active` and `folio_set_workingset`: it was in the working set
        lru_add_range(m.lru, vec, lru - 1, run.obj, s, e, young=False, referenced=False,
                      workingset=True)
        n += e - s
    sc.nr_scanned += n
    _count(vec.memcg, "pgdeactivate", n)


def shrink_inactive_list(m: Machine, vec: Lruvec, lru: int, nr_to_scan: int,
                         sc: ScanControl) -> None:
    """`shrink_inactive_list()`: isolate up to `nr_to_scan` pages from the tail and decide
    each (`shrink_folio_list`); what is kept goes back to the head, what is activated to the
    active list."""
    taken = isolate_lru_folios(m.lru, vec, lru, nr_to_scan)
    scanned = sum(e - s for _, s, e in taken)
    sc.nr_scanned += scanned
    _count(vec.memcg, "pgscan", scanned)
    for run, s, e in taken:
        shrink_folio_range(m, vec, lru, run, s, e, sc)


def shrink_folio_range(m: Machine, vec: Lruvec, lru: int, run: LruRun, s: int, e: int,
                       sc: ScanControl) -> None:
    """`shrink_folio_list()` for isolated pages `[s, e)` of one run (same flags, same kind)."""
    obj = run.obj
    for ls, le, locked in _locked_split(obj, s, e):
        if locked:
            lru_add_range(m.lru, vec, LRU_UNEVICTABLE, obj, ls, le, False, run.referenced,
                          run.workingset)
            continue
        for ys, ye, young in _young_split(obj, ls, le):
            if young:  # folio_check_references: referenced_ptes (the bits are cleared)
                obj.young.remove(ys, ye)
                if run.referenced:
                    lru_add_range(m.lru, vec, lru + 1, obj, ys, ye, False, True, run.workingset)
                    _count(vec.memcg, "pgactivate", ye - ys)
                else:
                    lru_add_range(m.lru, vec, lru, obj, ys, ye, False, True, run.workingset)
                    _count(vec.memcg, "pgrotated", ye - ys)
            else:
                _reclaim_range(m, vec, lru, obj, ys, ye, sc, run.workingset)


def _young_split(obj: Any, s: int, e: int) -> list[tuple[int, int, bool]]:
    """`[s, e)` cut where the pages' accessed bits are set."""
    return _split_by(obj.young, s, e)


def _split_by(marks: ExtentMap, s: int, e: int) -> list[tuple[int, int, bool]]:
    """`[s, e)` as consecutive ranges, each wholly in `marks` (True) or wholly out."""
    out: list[tuple[int, int, bool]] = []
    pos = s
    for ms, me, _ in marks.runs(s, e):
        if ms > pos:
            out.append((pos, ms, False))
        out.append((ms, me, True))
        pos = me
    if pos < e:
        out.append((pos, e, False))
    return out


def _reclaim_range(m: Machine, vec: Lruvec, lru: int, obj: Any, ls: int, le: int,
                   sc: ScanControl, workingset: bool = False) -> None:
    """FOLIOREF_RECLAIM for pages `[ls, le)` (`workingset`: their PG_workingset): the kind's
    reclaimer frees what it can, the rest is activated (`activate_locked`)."""
    reclaimer = RECLAIMERS.get(type(obj))
    if reclaimer is not None:
        kept = reclaimer(m, obj, ls, le, sc, workingset)
    elif isinstance(obj, ShmemInode):
        kept = reclaim_shmem(m, obj, ls, le, sc)
    else:
        kept = reclaim_anon(m, obj, ls, le, sc)
    freed = (le - ls) - sum(b - a for a, b in kept)
    sc.nr_reclaimed += freed
    _count(vec.memcg, "pgsteal", freed)
    for a, b in kept:  # `activate_locked`
        lru_add_range(m.lru, vec, lru + 1, obj, a, b, False, True, workingset)
        _count(vec.memcg, "pgactivate", b - a)


# Reclaimers of other kinds of pages (the page cache of disk files): type -> function
# (m, obj, start, end, sc, workingset) -> the ranges kept, on the model of reclaim_shmem.
RECLAIMERS: dict[type, Any] = {}


def _locked_split(obj: Any, s: int, e: int) -> list[tuple[int, int, bool]]:
    """`[s, e)` cut where a VM_LOCKED mapping maps the pages (`folio_referenced` finds
    VM_LOCKED: the folio becomes unevictable)."""
    if isinstance(obj, VMA):
        return _split_by(obj.mlocked, s, e) if obj.locked else [(s, e, False)]
    vmas = getattr(obj, "vmas", ())
    locked = [v for v in vmas if v.locked]
    if not locked:
        return [(s, e, False)]
    lk = ExtentMap()
    for v in locked:
        for ls, le, _ in v.mlocked.runs(max(0, s - v.pgoff), max(0, e - v.pgoff)):
            for ms, me, _ in v.mapped.runs(ls, le):
                lk.fill(ms + v.pgoff, me + v.pgoff, 0)
    return _split_by(lk, s, e)


def reclaim_shmem(m: Machine, inode: ShmemInode, s: int, e: int, sc: ScanControl
                  ) -> list[tuple[int, int]]:
    """shmem folios `[s, e)`: unmapped from every mapping (`try_to_unmap`), then dropped when
    clean or written to swap when dirty (vmscan.shrink_folio_list). Returns the ranges still in
    memory (refused a slot or a swap charge)."""
    for v in list(inode.vmas):
        lo, hi = max(0, s - v.pgoff), min(v.npages, e - v.pgoff)
        if lo < hi and v.owner is not None and v.mapped.count(lo, hi):
            unmap_pages(m, v.owner, v, lo, hi)
    sc.nr_swapped += shrink_folio_list(m, inode, s, e, sc.task)
    return [(a, b) for a, b, _ in inode.pages.runs(s, e)]


def reclaim_anon(m: Machine, vma: VMA, s: int, e: int, sc: ScanControl) -> list[tuple[int, int]]:
    """Private anonymous pages `[s, e)`: to swap (`folio_alloc_swap`, then a swap PTE), in
    order, as far as slots and the swap charge go. Returns the ranges kept."""
    task = vma.owner
    k = anon_pageout(m, task, vma, s, e) if task is not None else 0
    sc.nr_swapped += k
    return [(s + k, e)] if s + k < e else []


def mem_cgroup_iter_walk(root: MemCgroup, nid: int, partial: bool) -> Generator[MemCgroup, None, None]:
    """`mem_cgroup_iter()` as one walk of `shrink_node_memcgs` sees it. A full walk (kswapd,
    `memcg_full_walk`) is the subtree in pre-order. A partial walk (direct and memcg reclaim)
    shares its position with every other reclaimer of the same root and node (the reclaim
    cookie): it starts after the memcg the last walk stopped at and ends at the end of the
    subtree, which resets the position; one that would start past the end starts over, so it
    sees at least one memcg. A walk broken off (`mem_cgroup_iter_break`) leaves the position
    at the memcg it stopped at."""
    order = root.descendants_pre()
    if not partial:
        yield from order
        return
    pos = root.reclaim_iter.get(nid)
    i = order.index(pos) + 1 if pos is not None and pos in order else 0
    if i >= len(order):
        i = 0
    for memcg in order[i:]:
        root.reclaim_iter[nid] = memcg
        yield memcg
    root.reclaim_iter[nid] = None


def shrink_node_memcgs(m: Machine, nid: int, sc: ScanControl) -> None:
    """`shrink_node_memcgs()` on node `nid`: the memcgs of the target's subtree as
    `mem_cgroup_iter` gives them, each one's lruvec on this node, protection first; a partial
    walk stops once enough is reclaimed."""
    partial = not sc.memcg_full_walk
    walk = mem_cgroup_iter_walk(sc.target, nid, partial)
    for memcg in walk:
        mem_cgroup_calculate_protection(sc.target, memcg)
        if mem_cgroup_below_min(sc.target, memcg):
            continue  # hard protection
        if mem_cgroup_below_low(sc.target, memcg):
            if not sc.memcg_low_reclaim:
                sc.memcg_low_skipped = True
                continue
            memcg_memory_event(m, memcg, "low", sc.task)
        vec = memcg.lruvecs.get(nid)
        if vec is not None:
            shrink_lruvec(m, vec, sc)
        if partial and sc.nr_reclaimed >= sc.nr_to_reclaim:
            walk.close()  # mem_cgroup_iter_break: the position stays here
            return


def shrink_zones(m: Machine, sc: ScanControl) -> None:
    """`shrink_zones()`: shrink each node of the reclaim's zonelist once, in order, whatever
    the earlier ones reclaimed (each node's walk stops on its own once the goal is met)."""
    for nid in sc.zonelist or range(len(m.nodes)):
        shrink_node_memcgs(m, nid, sc)


def do_try_to_free_pages(m: Machine, sc: ScanControl) -> int:
    """`do_try_to_free_pages()`: lower the priority until `nr_to_reclaim` pages are freed.
    A pass that freed nothing is tried again from DEF_PRIORITY with full memcg walks (the
    shared cursor may have hidden memcgs that had pages: "Avoid false OOMs"); then, when memcgs
    under memory.low were skipped, again reclaiming them ("untapped cgroup reserves? Don't
    OOM, retry")."""
    while True:
        for prio in range(DEF_PRIORITY, -1, -1):
            sc.priority = prio
            shrink_zones(m, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
        if sc.nr_reclaimed:
            return sc.nr_reclaimed
        if not sc.memcg_full_walk:
            sc.memcg_full_walk = True
            continue
        if not sc.memcg_low_skipped or sc.memcg_low_reclaim:
            return 0
        sc.memcg_low_reclaim, sc.memcg_low_skipped = True, False


def try_to_free_mem_cgroup_pages(
    m: Machine, task: TaskStruct, memcg: MemCgroup, nr_pages: int, may_swap: bool = True,
    proactive: bool = False, swappiness: int | None = None,
) -> Generator[Any, Any, int]:
    """Models `try_to_free_mem_cgroup_pages()`: reclaim at least SWAP_CLUSTER_MAX pages from
    `memcg` and its descendants. A generator: the scan and the writes take simulated time.
    Returns the pages reclaimed."""
    sc = ScanControl(max(nr_pages, SWAP_CLUSTER_MAX), memcg, may_swap=may_swap, task=task.name,
                     proactive=proactive, proactive_swappiness=swappiness,
                     zonelist=tuple(n.nid for n in m.zonelist(task.node)))
    return (yield from _reclaim(m, task, sc))


def user_proactive_reclaim(m: Machine, task: TaskStruct, memcg: MemCgroup, nr_to_reclaim: int,
                           swappiness: int | None = None) -> Generator[Any, Any, str | None]:
    """Models `user_proactive_reclaim()` (a write to memory.reclaim): reclaim in batches of a
    quarter of what is left (at least SWAP_CLUSTER_MAX) until `nr_to_reclaim` pages are freed;
    a batch that frees nothing uses up one of MAX_RECLAIM_RETRIES (16) tries, and then the write
    fails with EAGAIN. Returns the errno or None."""
    nr_retries, nr_reclaimed = 16, 0
    while nr_reclaimed < nr_to_reclaim:
        if task.sigkill:
            return EINTR
        batch = (nr_to_reclaim - nr_reclaimed) // 4
        got = yield from try_to_free_mem_cgroup_pages(m, task, memcg, batch, True, True,
                                                      swappiness)
        if not got:
            if not nr_retries:
                return EAGAIN
            nr_retries -= 1
        nr_reclaimed += got
    return None


def try_to_free_pages(m: Machine, task: TaskStruct, nodes: list[Node]
                      ) -> Generator[Any, Any, int]:
    """Models `try_to_free_pages()` (`__alloc_pages_direct_reclaim`): global reclaim of
    SWAP_CLUSTER_MAX pages from every memcg, on the nodes the allocation may use (its zonelist
    filtered by its nodemask, and by the task's cpuset: `cpuset_zone_allowed` with
    __GFP_HARDWALL). Returns the pages reclaimed."""
    mems = task.mems_allowed if m.cpusets_enabled else None
    sc = ScanControl(SWAP_CLUSTER_MAX, m.root, cgroup_reclaim=False, task=task.name,
                     zonelist=tuple(n.nid for n in nodes if mems is None or n.nid in mems))
    return (yield from _reclaim(m, task, sc))


def _reclaim(m: Machine, task: TaskStruct, sc: ScanControl) -> Generator[Any, Any, int]:
    if nothing_to_scan(m, sc):
        return 0
    got = do_try_to_free_pages(m, sc)
    m.log.emit("vmscan", task=task.name, memcg=sc.target.path, pages=got, value=sc.nr_scanned,
               detail=f"swapped={sc.nr_swapped}")
    t = reclaim_time(m, sc)
    if t:
        # Reclaim runs inside an allocation (a page may be held, not yet charged): the task
        # sleeps in the kernel, and a SIGKILL meanwhile is seen when reclaim returns.
        ev = m.env.timeout(t)
        task.kernel_wait, task.wait_reason = ev, "direct reclaim"
        try:
            yield from psi_memstall_wait(m, task, ev)
        finally:
            task.kernel_wait, task.wait_reason = None, None
    if got:
        wake_up_all(m.oom_waiters)
    return got


def reclaim_time(m: Machine, sc: ScanControl) -> float:
    """The simulated time a reclaim took: its pages scanned and its pages written to swap."""
    return sc.nr_scanned * m.costs.reclaim_scan + sc.nr_swapped * m.costs.pageout


def nothing_to_scan(m: Machine, sc: ScanControl) -> bool:
    """Whether every `get_scan_count` of this reclaim would be 0 at every priority: no file
    pages in the subtree, and its anon lists not scannable (no `may_swap`, no free slot, no
    room under memory.swap.max) or empty. Then the reclaim frees nothing, changes nothing and
    takes no time, and is skipped, log record included; not when a memcg of the subtree has
    memory.min/low, whose pass over it counts `low` events even so."""
    anon_ok = sc.may_swap and m.swap.nr_free() > 0
    for c in sc.target.descendants_pre():
        if c.low or c.min:
            return False
        for v in c.lruvecs.values():
            if v.nr[LRU_INACTIVE_FILE] or v.nr[LRU_INACTIVE_FILE + 1]:
                return False
            if anon_ok and (v.nr[LRU_INACTIVE_ANON] or v.nr[LRU_INACTIVE_ANON + 1]) \
                    and swap_margin(c) > 0:
                return False
    return True


def _count(memcg: MemCgroup, item: str, n: int) -> None:
    if n:
        for c in memcg.ancestors():
            c.vmscan[item] += n
