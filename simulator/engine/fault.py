"""Bulk fault steps: as many pages of a walk as fit before any limit, at once.

The sequential walk of a mapping whose faults each allocate their missing page tables and
then at most one page has a closed form (`bulk_fault_range`); any other walk (random or
stride order, private copies) is vectorised over explicit page arrays (fault_array.py); runs of
pages in swap are swapped in by swapin.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.booking import anon_pages_added, file_folios_added, pgtables_added, shmem_folios_added
from ..mm.lru import LRU_INACTIVE_FILE
from ..mm.memory import (
    disk_walkable,
    fault_around_pages,
    map_file_pages,
    needs_swapin,
    range_payload,
    range_walkable,
    should_fault_around,
    zero_mode,
)
from ..mm.mm_types import PT_SHIFTS, VMA
from ..mm.pagecache import is_disk_file
from ..mm.shmem import shmem_acct_taken, shmem_xa_insert, xa_charge_taken, xa_stock_pages
from ..mm.shmem_inode import xa_nodes_for
from .book import charge_and_take_parts
from .fault_around import AroundStep, do_fault_around_range, edge_windows, filemap_map_windows
from .fault_array import bulk_fault_array
from .limits import Caps, snapshot_caps
from .solve import largest_fit, new_regions, proportional, range_fits, split_at
from .swapin import bulk_swapin_range

if TYPE_CHECKING:
    from ..mm.gup import PageSeq
    from ..mm.machine import Machine
    from ..mm.task import TaskStruct


ARRAY_CHUNK = 1 << 18  # pages an array step looks at, at most
ARRAY_FIRST_CHUNK = 1 << 10  # and at first near a limit (doubling while whole chunks fit)


def bulk_fault(
    m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, pos: int, limit: int, write: bool,
    swapin_fast: bool = False,
) -> tuple[int, int, int]:
    """Instantiate as many pages from `pos` as fit without any slow path: (pages, faulted,
    swapped in)."""
    inode = vma.file
    caps = snapshot_caps(m, task, inode)
    if swapin_fast:
        a = seq.start + pos
        if not vma.pte_present(a, write) and needs_swapin(m, vma, a, write):
            n = bulk_swapin_range(m, task, vma, a, limit, caps)
            if n and not write and should_fault_around(vma):
                # Every page of the run faulted (do_read_fault) and none was cached: the
                # first and last windows map the cached pages beyond it.
                edges = [r for w in edge_windows(vma, a, a + n)
                         for r in fault_around_pages(m, vma, *w)]
                filemap_map_windows(m, task, vma, AroundStep(runs=edges))
            return n, n, n
    if seq.arr is None and range_walkable(m, vma, write):
        n, nf = bulk_fault_range(m, task, vma, seq.start + pos, limit, write, caps)
        return n, nf, 0
    if seq.arr is None and disk_walkable(vma, write):
        n, nf = bulk_fault_disk_range(m, task, vma, seq.start + pos, limit, write, caps)
        if n:
            return n, nf, 0
    n_done = n_fault = 0
    # As many pages as the memory limits could take (each faulting page allocates at least
    # one page, unless it maps a present folio); small first when a limit is near.
    chunk_len = max(ARRAY_FIRST_CHUNK, min(ARRAY_CHUNK, caps.mem))
    while n_done < limit:
        chunk = seq.chunk(pos + n_done, min(chunk_len, limit - n_done))
        n, nf = bulk_fault_array(m, task, vma, chunk, write, caps)
        n_done += n
        n_fault += nf
        if n < len(chunk):
            break
        caps = snapshot_caps(m, task, inode)
        chunk_len = min(2 * chunk_len, ARRAY_CHUNK)
    return n_done, n_fault, 0


def first_swapin(vma: VMA, a: int, n: int, write: bool) -> int:
    """How many pages from VMA page `a` (at most n) fault without any swap-in: the position
    of the first page whose fault would swap in (see `needs_swapin`), found over extents."""
    best = n
    p = vma.swap.first_present(a, a + n)
    if p is not None:
        best = p - a
    inode = vma.file
    if inode is None or not len(inode.swap) or best == 0:
        return best
    off = vma.pgoff
    for s, e, _ in inode.swap.runs(off + a, off + a + best):
        s, e = s - off, e - off
        if write and vma.shared:
            return s - a  # a shared write faults on every page in swap (none is mapped)
        # A read (or private write) does not fault, or copies ZERO_PAGE, under a present PTE.
        for hs, he in vma.zero.hole_runs(s, e):
            for cs, _ in vma.cow.hole_runs(hs, he):
                return cs - a
    return best


def bulk_fault_range(
    m: Machine, task: TaskStruct, vma: VMA, a: int, limit: int, write: bool, caps: Caps
) -> tuple[int, int]:
    """Closed form for a sequential walk of VMA pages `[a, a + limit)` (see `range_walkable`).

    For the first x pages, `payload(x)` counts the folios (or anonymous pages) they add and
    `alloc(x)` every allocation, page tables included; both are monotone, so the largest x
    within every limit is a binary search. The pages are taken from the zonelist in one go;
    where the allocator moves to the next node, the page whose payload is the allocation at
    that boundary is again a binary search on `alloc`, so each node gets exactly the pages
    the one-page path would have put there.
    """
    inode = vma.file
    mm = task.mm
    va0 = vma.start + a
    f0 = vma.pgoff + a
    if inode is not None:
        limit = min(limit, max(0, inode.size_pages(m.page_size) - f0))  # then SIGBUS
    limit = first_swapin(vma, a, limit, write)  # then the one-page path swaps in
    if limit == 0:
        return 0, 0
    zmode = zero_mode(m, vma, write)
    memcg = task.memcg
    # Each page's allocations, in the kernel's order: its page tables, its folio (or anonymous
    # page), then the slab pages the xarray nodes for its entry cost the memcg's byte stock.
    files = inode is not None and not zmode

    def payload(x: int) -> int:
        return range_payload(m, vma, a, x, write, zmode)

    def slab(x: int) -> int:
        return xa_stock_pages(m, memcg, xa_nodes_for(m, inode, f0, f0 + x)) if files else 0

    def costs(x: int) -> tuple[int, int, int]:
        return new_regions(mm.pt, va0, x), payload(x), slab(x)

    def alloc(x: int) -> int:
        return sum(costs(x))

    def fits(x: int, c: tuple[int, int, int] | None = None) -> bool:
        pt, d, sl = costs(x) if c is None else c
        if inode is None:
            return range_fits(caps, pt + d, 0, None, pt - m.kmem_charge(pt))
        last = None
        if caps.guess_2014 is not None and d:
            h = inode.pages.last_hole_before(f0, f0 + x)
            assert h is not None
            last = alloc(h - f0 + 1) - (slab(h - f0 + 1) - slab(h - f0))  # its folio
        return range_fits(caps, pt + d + sl, d, last, pt - m.kmem_charge(pt))

    c_all = costs(limit)
    whole = max(1, sum(c_all))
    if fits(limit, c_all):
        n = limit
    else:
        # The costs grow about linearly: a proportional guess is a good start for the search.
        n = largest_fit(limit, fits, proportional(limit, whole, caps.mem, caps.guess_2014))
    if n == 0:
        return 0, 0
    around = do_fault_around_range(m, vma, a, n, write)  # before the step changes any PTE
    if write:
        already = (vma.mapped if vma.shared else vma.cow).count(a, a + n)
    else:
        already = vma.mapped.count(a, a + n) + vma.cow.count(a, a + n) + vma.zero.count(a, a + n)
    # Where each node's allocations start and end, worked out before anything changes:
    # (nid, first page, end page, payload pages, page-table pages, slab pages).
    c_n = c_all if n == limit else costs(n)
    segs = charge_and_take_parts(m, task, sum(c_n), c_n[0] - m.kmem_charge(c_n[0]))
    parts = []
    p0 = pay0 = sl0 = taken = 0
    for i, (nid, cnt) in enumerate(segs):
        taken += cnt
        if i == len(segs) - 1:
            p1, pay1, sl1 = n, c_n[1], c_n[2]
        else:
            p1, pay1, sl1 = split_at(taken, n, costs, proportional(limit, whole, taken))
        parts.append((nid, p0, p1, pay1 - pay0, cnt - (pay1 - pay0) - (sl1 - sl0), sl1 - sl0))
        p0, pay0, sl0 = p1, pay1, sl1
    if files and c_n[2]:
        xa_charge_taken(m, memcg, [(nid, sl) for nid, *_, sl in parts])
    if files and c_n[1]:
        assert inode is not None
        shmem_xa_insert(m, memcg, inode, f0, f0 + n)
    for nid, p0, p1, pay, pt, _ in parts:
        pgtables_added(m, task, nid, pt)
        if not pay:
            continue
        if inode is None:
            added = anon_pages_added(m, task, vma, a + p0, a + p1, nid)
        else:
            added = shmem_folios_added(m, inode, memcg, nid, f0 + p0, f0 + p1, young=True)
            shmem_acct_taken(m, inode, added)
        assert added == pay, (added, pay)
    if any(pt for *_, pt, _ in parts):
        for sh in PT_SHIFTS:
            mm.pt[sh].fill(va0 >> sh, ((va0 + n - 1) >> sh) + 1, 0)
    if inode is None:
        if write:
            vma.zero.remove(a, a + n)
        else:
            for hs, he in vma.cow.hole_runs(a, a + n):
                vma.zero.fill(hs, he, 0)
        return n, n - already
    if zmode:
        for hs, he in inode.pages.hole_runs(f0, f0 + n):
            vma.zero.fill(hs - vma.pgoff, he - vma.pgoff, 0)
    elif write:
        vma.zero.remove(a, a + n)
    for s, e, _ in inode.pages.runs(f0, f0 + n):
        if write or len(vma.zero) == 0:
            map_file_pages(m, task, vma, s - vma.pgoff, e - vma.pgoff)
            continue
        # A read does not fault where a ZERO_PAGE PTE is, even over a folio added since.
        for hs, he in vma.zero.hole_runs(s - vma.pgoff, e - vma.pgoff):
            map_file_pages(m, task, vma, hs, he)
    if around is None:
        return n, n - already
    filemap_map_windows(m, task, vma, around)
    return n, n - already - around.covered


def bulk_fault_disk_range(
    m: Machine, task: TaskStruct, vma: VMA, a: int, limit: int, write: bool, caps: Caps
) -> tuple[int, int]:
    """Closed form for a sequential walk of VMA pages `[a, a + limit)` of a disk file's mapping
    (`disk_walkable`): each faulting page takes its missing page tables, then, if the page is
    not cached, a folio read from disk (`filemap_fault` -> `filemap_add_folio`: charged to the
    task's memcg, young on the inactive file list, one page of the task's read accounting).
    The step ends before i_size (SIGBUS) and before a page with a shadow entry (a refault is
    a one-page step). The largest prefix within every limit, split across nodes as
    `bulk_fault_range` does, with its fault-around (a read fault first maps the cached pages
    of its window: `do_fault_around_range`). (pages, faulted)."""
    inode = vma.file
    assert is_disk_file(inode)
    mm = task.mm
    va0, f0 = vma.start + a, vma.pgoff + a
    limit = min(limit, max(0, inode.size_pages(m.page_size) - f0))
    sh = inode.shadow.first_present(f0, f0 + limit) if len(inode.shadow) else None
    if sh is not None:
        limit = sh - f0
    if limit <= 0:
        return 0, 0

    def costs(x: int) -> tuple[int, int, int]:
        return new_regions(mm.pt, va0, x), inode.pages.holes(f0, f0 + x), 0

    def fits(x: int) -> bool:
        pt, d, _ = costs(x)
        return range_fits(caps, pt + d, d, None, pt - m.kmem_charge(pt))

    c_all = costs(limit)
    whole = max(1, sum(c_all))
    n = limit if fits(limit) else largest_fit(limit, fits, proportional(limit, whole, caps.mem))
    if n == 0:
        return 0, 0
    around = do_fault_around_range(m, vma, a, n, write)  # before the step changes any PTE
    already = vma.mapped.count(a, a + n)
    c_n = c_all if n == limit else costs(n)
    segs = charge_and_take_parts(m, task, c_n[0] + c_n[1], c_n[0] - m.kmem_charge(c_n[0]))
    # Where each node's allocations start and end, worked out before anything changes.
    parts = []
    p0 = pay0 = taken = 0
    for i, (nid, cnt) in enumerate(segs):
        taken += cnt
        if i == len(segs) - 1:
            p1, pay1 = n, c_n[1]
        else:
            p1, pay1, _ = split_at(taken, n, costs, proportional(limit, whole, taken))
        parts.append((nid, p0, p1, pay1 - pay0, cnt - (pay1 - pay0)))
        p0, pay0 = p1, pay1
    for nid, p0, p1, pay, pt in parts:
        pgtables_added(m, task, nid, pt)
        if pay:
            added = file_folios_added(m, inode, task.memcg, nid, f0 + p0, f0 + p1,
                                      LRU_INACTIVE_FILE, young=True)
            assert added == pay, (added, pay)
            task.ioac_read_pages += added
    if c_n[0]:
        for sh_ in PT_SHIFTS:
            mm.pt[sh_].fill(va0 >> sh_, ((va0 + n - 1) >> sh_) + 1, 0)
    for hs, he in vma.mapped.hole_runs(a, a + n):  # a mapped page takes no fault (stays old)
        map_file_pages(m, task, vma, hs, he)
    if around is None:
        return n, n - already
    filemap_map_windows(m, task, vma, around)
    return n, n - already - around.covered
