"""Faulting in ranges of a mapping: user touches and GUP-driven population, in bulk.

Models the loop of mm/gup.c (v6.18) `__get_user_pages` -> `faultin_page` ->
`handle_mm_fault`, used by `populate_vma_page_range` (mlock, MAP_POPULATE, MAP_LOCKED) and
`faultin_page_range` (MADV_POPULATE_READ/WRITE), and the same walk for a program touching
pages itself. Pages are taken in bulk (simulator/mm/bulk.py) and the one-page reference
`handle_mm_fault` runs only where a limit is reached. With `Machine.reference` set, every page
goes through the reference: the oracle the bulk engine is tested against.

A long walk yields after a slice of simulated time (at least `Costs.quantum`, and otherwise up
to the next event anyone else has scheduled), so concurrent tasks interleave as they would.
Before a page that needs a slow path (reclaim, OOM, SIGBUS, ENOSPC) the time of the pages
already done passes first, so that the slow path runs at its true time. Both engines slice
alike: the bulk engine takes the largest prefix that needs no slow path in one step, the
reference takes one page per step, and each stops at the same page.

A page whose fault swaps in (a swap PTE, or a file page in swap) is a fast page only in a
sequential walk of an anonymous or shared mapping, when the memcg recorded for it is the
faulting task's (`swapin_in_range`): the bulk engine then takes such runs at once
(`bulk_swapin_range`) and the reference one by one, each page costing `Costs.swapin` on top of
the fault. Any other swap-in is a one-page step in both engines, its swap read's time passing
as soon as the page is mapped.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .bulk import (
    INF,
    Caps,
    cumulative_fit,
    largest_fit,
    new_regions,
    range_fits,
    snapshot_caps,
    split_at,
)
from .memcontrol import (
    MemCgroup,
    mem_cgroup_margin,
    mod_memcg_state,
    obj_stock_take,
    page_counter_try_charge,
    swapin_memcg,
)
from .memory import PT_SHIFTS, VM_FAULT_OK, VMA, handle_mm_fault, map_file_pages, pt_missing
from .page_alloc import take_pages
from .shmem import (
    shmem_add_pages,
    shmem_xa_insert,
    xa_charge_taken,
    xa_nodes_for,
    xa_stock_pages,
)
from .swapfile import swap_free_nr
from .xarray import XA_NODE_BYTES, xa_insert_indices, xa_new_nodes_seq

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct

ARRAY_CHUNK = 1 << 18  # pages an array step looks at, at most
ARRAY_FIRST_CHUNK = 1 << 10  # and at first near a limit (doubling while whole chunks fit)


@dataclass(frozen=True)
class PageSeq:
    """The order pages of a VMA are visited in: a range `[start, stop)` or an explicit array."""

    start: int = 0
    stop: int = 0
    arr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arr) if self.arr is not None else self.stop - self.start

    def at(self, pos: int) -> int:
        """The VMA page index visited at position pos."""
        return int(self.arr[pos]) if self.arr is not None else self.start + pos

    def chunk(self, pos: int, n: int) -> np.ndarray:
        """Page indices for positions [pos, pos + n)."""
        if self.arr is not None:
            return self.arr[pos:pos + n]
        return np.arange(self.start + pos, self.start + pos + n, dtype=np.int64)


@dataclass
class WalkResult:
    """How a walk ended: status (`VM_FAULT_*`, or "killed"), pages done, and where it stopped."""

    status: str
    done: int
    page: int | None = None


def faultin_range(
    m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, write: bool, ctx: str, cost: float
) -> Generator[Any, Any, WalkResult]:
    """Fault in the pages of `seq` in order; stop at the first fault that fails.

    Returns a WalkResult; its page is the VMA page index where the walk stopped.
    """
    pos, total = 0, len(seq)
    # Sequential walks of a range-walkable mapping take pages in swap on the fast path too
    # (`bulk_swapin_range`, and one page at a time in the reference).
    swapin_fast = seq.arr is None and range_walkable(m, vma, write)
    swapin_cost = m.costs.swapin
    while pos < total:
        budget = slice_pages(m, cost)
        faulted = swapped = 0
        end = min(total, pos + budget)
        while pos < end:
            if task.sigkill:
                yield m.env.timeout(faulted * cost + swapped * swapin_cost)
                return WalkResult("killed", pos, seq.at(pos))
            if m.reference:
                n, nf, ns = reference_fault(m, task, vma, seq.at(pos), write, ctx, swapin_fast)
            else:
                n, nf, ns = bulk_fault(m, task, vma, seq, pos, end - pos, write, swapin_fast)
            if n:
                pos += n
                faulted += nf
                swapped += ns
                m.log.emit("fault_bulk", task=task.name, memcg=task.memcg.path,
                           page=seq.at(pos - 1), pages=n, value=task.memcg.usage)
                continue
            idx = seq.at(pos)
            if faulted or swapped:
                # Let the time of the pages already done pass before the slow path runs.
                task.cursor = idx
                yield m.env.timeout(faulted * cost + swapped * swapin_cost)
                faulted = swapped = 0
            was_present = vma.pte_present(idx, write)
            swapin = not was_present and needs_swapin(vma, idx, write)
            status = yield from handle_mm_fault(m, task, vma, idx, write, ctx)
            if status != VM_FAULT_OK:
                yield m.env.timeout(faulted * cost)
                return WalkResult(status, pos, idx)
            faulted += 0 if was_present else 1
            pos += 1
            if swapin:  # the synchronous swap read, after the page is in and mapped
                yield m.env.timeout(swapin_cost)
        task.cursor = seq.at(min(pos, total - 1))
        m.log.emit("fault_slice", task=task.name, memcg=task.memcg.path, page=seq.at(pos - 1),
                   pages=faulted, value=task.memcg.usage)
        yield m.env.timeout(faulted * cost + swapped * swapin_cost)
    if task.sigkill:
        return WalkResult("killed", pos, None)
    return WalkResult(VM_FAULT_OK, pos)


def reference_fault(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str,
    swapin_fast: bool = False,
) -> tuple[int, int, int]:
    """The reference's step: page `idx` through `handle_mm_fault` if it needs no slow path.

    Returns (1, faulted, swapped in) when the page was done, (0, 0, 0) when it needs a slow
    path (the walker then lets the time of the pages done pass and runs the fault itself, as
    after a bulk step).
    """
    if not fault_fits(m, task, vma, idx, write, swapin_fast):
        return 0, 0, 0
    was_present = vma.pte_present(idx, write)
    swapin = not was_present and needs_swapin(vma, idx, write)
    status = run_fast_path(m, handle_mm_fault(m, task, vma, idx, write, ctx))
    assert status == VM_FAULT_OK, status
    return 1, 0 if was_present else 1, int(swapin)


def fault_fits(m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool,
               swapin_fast: bool = False) -> bool:
    """Whether a fault at VMA page `idx` completes on the fast path: one page's needs, per rule.

    The page-table pages missing at its address, the anonymous copy of a private write, the
    page-cache folio of a hole and the slab page of its xarray nodes, checked against every
    limit (bulk.Caps). A page past i_size is
    a SIGBUS, which is a slow path too.
    """
    if vma.pte_present(idx, write):
        return True
    if needs_swapin(vma, idx, write):
        target = swapin_target(m, task, vma, idx) if swapin_fast else None
        if target is None:
            return False  # a slow path: one page, its swap read's time passing at once
        caps = snapshot_caps(m, task, vma.file)
        pt = len(pt_missing(task.mm, vma.start + idx))
        return caps.guess_2014 is None and swapin_fits(caps, swapin_margins(task, target), pt, 1,
                                                       m.kmem_charge(pt))
    pt = len(pt_missing(task.mm, vma.start + idx))
    inode = vma.file
    anon = data = 0
    if inode is None:
        anon = int(write)
    else:
        index = vma.pgoff + idx
        if index >= inode.size_pages(m.page_size):
            return False
        present = inode.pages.has(index)
        if write and not vma.shared:
            anon = 1
            data = int(not present and not vma.zero.has(idx))
        else:
            data = int(not present and not zero_mode(m, vma, write))
    slab = xa_stock_pages(m, task.memcg, xa_nodes_for(m, inode, index, index + 1)) if data else 0
    need = pt + anon + data
    # The folio comes after the page's page tables and its anonymous copy; its xarray nodes'
    # slab page, if the memcg's byte stock needs one, last.
    return range_fits(snapshot_caps(m, task, inode), need + slab, data, need if data else None,
                      pt - m.kmem_charge(pt))


def needs_swapin(vma: VMA, idx: int, write: bool) -> bool:
    """Whether a fault at VMA page `idx` (PTE not present for the access) swaps a page in:
    a swap PTE (`do_swap_page`), or a file page in swap that the fault instantiates
    (`shmem_fault` -> `shmem_swapin_folio`; a private write over a ZERO_PAGE PTE copies the
    zero page instead)."""
    if vma.swap.has(idx):
        return True
    inode = vma.file
    if inode is None or not len(inode.swap) or not inode.swap.has(vma.pgoff + idx):
        return False
    return not (write and not vma.shared and vma.zero.has(idx))


def swapin_target(m: Machine, task: TaskStruct, vma: VMA, idx: int) -> MemCgroup | None:
    """The memcg the swap-in a fault at VMA page `idx` charges, when that swap-in can be one of
    a sequential walk's fast pages (it changes nothing but the page itself: a swap PTE of an
    anonymous mapping, or a file page of a shared mapping with no ZERO_PAGE PTE over it);
    None otherwise."""
    inode = vma.file
    if inode is None:
        tag = vma.swap.owner_of(idx)
    elif vma.shared and not vma.zero.has(idx):
        tag = inode.swap.owner_of(vma.pgoff + idx)
    else:
        return None
    return None if tag is None else swapin_memcg(m.tagged_memcgs[tag], task.memcg)


def swapin_margins(task: TaskStruct, target: MemCgroup) -> tuple[int, int, int]:
    """What the memcgs allow a swap-in step whose page tables are charged to the task's memcg
    and whose folios to `target`: (page tables, folios, both) at most, from the margins of the
    ancestors of only the first, of only the second, and of both."""
    mine, theirs = task.memcg.ancestors(), target.ancestors()
    only_mine = [c for c in mine if c not in theirs]
    only_theirs = [c for c in theirs if c not in mine]
    both = [c for c in mine if c in theirs]
    return (min((mem_cgroup_margin(c) for c in only_mine), default=INF),
            min((mem_cgroup_margin(c) for c in only_theirs), default=INF),
            min((mem_cgroup_margin(c) for c in both), default=INF))


def swapin_fits(caps: Caps, margins: tuple[int, int, int], pt: int, folios: int,
                pt_charged: int) -> bool:
    """Whether a swap-in step's page tables (of which `pt_charged` are charged) and folios
    pass the allocator and every memcg."""
    only_pt, only_folios, both = margins
    return (pt + folios <= caps.alloc and pt_charged <= only_pt and folios <= only_folios
            and pt_charged + folios <= both)


def swapin_run(m: Machine, task: TaskStruct, vma: VMA, a: int, n: int) -> int:
    """How many pages from VMA page `a` (at most n) `swapin_target` admits, with one recorded
    memcg, found over extents."""
    inode = vma.file
    if inode is None:
        runs = vma.swap.runs(a, a + n)
        off = 0
    elif not vma.shared:
        return 0
    else:
        off = vma.pgoff
        runs = inode.swap.runs(off + a, off + a + n)
        z = vma.zero.first_present(a, a + n)
        if z is not None:
            n = z - a
    if not runs or runs[0][0] != off + a:
        return 0
    return min(n, runs[0][1] - off - a)  # one run: one recorded memcg


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


def run_fast_path(m: Machine, gen: Generator[Any, Any, Any]) -> Any:
    """Run a one-page path the caller has found needs no slow path; return its result.

    Fails loudly if it yields (it slept in a slow path) or logs anything (only slow paths log):
    that would mean the caller's check and the one-page path disagree.
    """
    before = len(m.log.records)
    try:
        ev = next(gen)
    except StopIteration as stop:
        if len(m.log.records) != before:
            raise AssertionError(f"fast path logged {m.log.records[before:]}") from None
        return stop.value
    raise AssertionError(f"fast path yielded {ev!r}")


def slice_pages(m: Machine, cost: float) -> int:
    """Pages one slice may take: a quantum's worth, or more when nobody else acts sooner."""
    if cost <= 0:
        return 1 << 62
    quantum = max(1, int(m.costs.quantum / cost))
    gap = m.env.peek() - m.env.now
    if gap == float("inf"):
        return 1 << 62
    return max(quantum, int(gap / cost))


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
        if not vma.pte_present(a, write) and needs_swapin(vma, a, write):
            n = bulk_swapin_range(m, task, vma, a, limit, caps)
            return n, n, n
    if seq.arr is None and range_walkable(m, vma, write):
        n, nf = bulk_fault_range(m, task, vma, seq.start + pos, limit, write, caps)
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


def bulk_swapin_range(
    m: Machine, task: TaskStruct, vma: VMA, a: int, limit: int, caps: Caps
) -> int:
    """Swap in, at once, the run of pages from VMA page `a` that `swapin_target` admits, all
    recorded for one memcg, and that fits every limit: each page's missing page tables
    (charged to the task's memcg), then its folio (charged to the memcg the swap-in charges,
    which may be another), as `do_swap_page` / `shmem_swapin_folio` do one by one. No commit
    or tmpfs accounting. Returns how many pages (0: the first needs a slow path). The node
    of each allocation is placed as in `bulk_fault_range`."""
    if caps.guess_2014 is not None:
        return 0
    run = swapin_run(m, task, vma, a, limit)
    if run == 0:
        return 0
    target = swapin_target(m, task, vma, a)
    assert target is not None
    margins = swapin_margins(task, target)
    mm = task.mm
    va0 = vma.start + a

    def costs(x: int) -> tuple[int, int, int]:  # page tables, folios, no slab: entries exist
        return new_regions(mm.pt, va0, x), x, 0

    def alloc(x: int) -> int:
        return sum(costs(x))

    def fits(x: int) -> bool:
        pt = new_regions(mm.pt, va0, x)
        return swapin_fits(caps, margins, pt, x, m.kmem_charge(pt))

    n = largest_fit(run, fits, proportional(run, alloc(run), caps.alloc, *margins[1:]))
    if n == 0:
        return 0
    inode = vma.file
    total = alloc(n)
    for memcg, nr in ((task.memcg, m.kmem_charge(total - n)), (target, n)):
        if nr and page_counter_try_charge(memcg, nr) is not None:
            raise AssertionError(f"bulk swap-in charge of {nr} pages refused by {memcg.path}")
    segs = take_pages(m.zonelist(task.node), total)
    parts = []
    p0 = taken = 0
    for i, (nid, c) in enumerate(segs):
        taken += c
        p1 = n if i == len(segs) - 1 else split_at(taken, n, costs, n // 2)[0]
        parts.append((nid, p0, p1, c - (p1 - p0)))
        p0 = p1
    tag = (vma.swap if inode is None else inode.swap).owner_of(a if inode is None else
                                                               vma.pgoff + a)
    assert tag is not None
    for nid, p0, p1, pt in parts:
        add_pgtables(m, task, nid, pt)
        k = p1 - p0
        if not k:
            continue
        if inode is None:
            vma.swap.remove(a + p0, a + p1)
            mm.swapents -= k
            vma.cow.fill(a + p0, a + p1, nid)
            m.anon_stat(task, nid, k)
        else:
            f = vma.pgoff + a
            inode.swap.remove(f + p0, f + p1)
            shmem_add_pages(m, inode, target, nid, f + p0, f + p1)
    swap_free_nr(m, m.tagged_memcgs[tag], n)
    m.swap.pswpin += n
    if any(pt for *_, pt in parts):
        for sh in PT_SHIFTS:
            mm.pt[sh].fill(va0 >> sh, ((va0 + n - 1) >> sh) + 1, 0)
    if inode is not None:
        map_file_pages(m, task, vma, a, a + n)
    return n


def zero_mode(m: Machine, vma: VMA, write: bool) -> bool:
    """The what-if: read faults on holes of a write-sealed file map ZERO_PAGE."""
    return (not write and vma.file is not None and m.what_if.zero_page_sealed_holes
            and vma.file.write_sealed())


def range_walkable(m: Machine, vma: VMA, write: bool) -> bool:
    """Whether a sequential walk of `vma` has a closed form: each faulting page allocates its
    missing page tables, then at most one page (a folio, or an anonymous page).

    Anonymous mappings, read or written; shmem mappings shared, or private and read, with no
    private copies. A read with ZERO_PAGE PTEs in the VMA qualifies only in zero mode (where
    it adds no folio), so that every hole a read meets is a folio to add.
    """
    if vma.file is None:
        return True
    return (len(vma.cow) == 0 and (vma.shared or not write)
            and (write or len(vma.zero) == 0 or zero_mode(m, vma, write)))


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
        if inode is None:
            return x - vma.cow.count(a, a + x) if write else 0
        # Every hole is a new folio (a read over ZERO_PAGE PTEs is zero mode: no folio at all).
        return inode.pages.holes(f0, f0 + x) if files else 0

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
        shmem_xa_insert(m, memcg, inode, f0, f0 + n)
    for nid, p0, p1, pay, pt, _ in parts:
        add_pgtables(m, task, nid, pt)
        if not pay:
            continue
        if inode is None:
            added = vma.cow.fill(a + p0, a + p1, nid)
            m.anon_stat(task, nid, added)
        else:
            added = inode.pages.fill(f0 + p0, f0 + p1, m.owner(memcg, nid))
            account_data(m, task, inode, nid, added)
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
    return n, n - already


def proportional(limit: int, cost: int, *caps: int | None) -> int:
    """Where a cost of `cost` over `limit` pages, if linear, would reach the smallest cap."""
    cap = min((c for c in caps if c is not None), default=limit)
    return max(0, min(limit, limit * cap // max(cost, 1)))


def bulk_fault_array(
    m: Machine, task: TaskStruct, vma: VMA, idx: np.ndarray, write: bool, caps: Caps
) -> tuple[int, int]:
    """Vectorised walk of an explicit page sequence (any order, any mapping kind)."""
    mm = task.mm
    inode = vma.file
    L = len(idx)
    in_map, in_cow, in_zero = vma.mapped.contains(idx), vma.cow.contains(idx), vma.zero.contains(idx)
    if write:
        skip = in_cow if not vma.shared else in_map
    else:
        skip = in_map | in_cow | in_zero
    if inode is not None:
        fidx = vma.pgoff + idx
        # The step ends at the first page past i_size that faults (SIGBUS); a page there with
        # its PTE still present (a private copy) needs no fault.
        beyond = np.flatnonzero((fidx >= inode.size_pages(m.page_size)) & ~skip)
        if len(beyond):
            L = int(beyond[0])
            idx, fidx, skip = idx[:L], fidx[:L], skip[:L]
            in_map, in_cow, in_zero = in_map[:L], in_cow[:L], in_zero[:L]
        file_present = inode.pages.contains(fidx)
    else:
        fidx = idx
        file_present = np.zeros(L, dtype=bool)
    act = ~skip
    private_write = write and not vma.shared
    # The step ends before the first page whose fault swaps in (the one-page path does it).
    need = vma.swap.contains(idx) if len(vma.swap) else np.zeros(L, dtype=bool)
    if inode is not None and len(inode.swap):
        file_swapped = inode.swap.contains(fidx)
        need = need | (file_swapped & ~in_zero if private_write else file_swapped)
    need_at = np.flatnonzero(need & act)
    if len(need_at):
        L = int(need_at[0])
        if L == 0:
            return 0, 0
        idx, fidx, skip, act = idx[:L], fidx[:L], skip[:L], act[:L]
        in_map, in_cow, in_zero = in_map[:L], in_cow[:L], in_zero[:L]
        file_present = file_present[:L]
    zmode = zero_mode(m, vma, write)
    if inode is None:
        anon = act & write
        data = np.zeros(L, dtype=bool)
        zero_new = act & (not write)
        mapf = np.zeros(L, dtype=bool)
    elif private_write:
        anon = act
        data = act & ~file_present & ~in_zero
        zero_new = np.zeros(L, dtype=bool)
        mapf = np.zeros(L, dtype=bool)
    else:
        anon = np.zeros(L, dtype=bool)
        data = act & ~file_present & (not zmode)
        zero_new = act & ~file_present & zmode
        mapf = act & (file_present | (not zmode))
    va = vma.start + idx
    pt_need = np.zeros(L, dtype=np.int64)
    pt_masks = {}
    cand = np.flatnonzero(act)
    for s in PT_SHIFTS:
        r = va >> s
        first = np.zeros(L, dtype=bool)
        first[cand[first_occurrences(r[cand])]] = True
        new = first & ~mm.pt[s].contains(r)
        pt_masks[s] = new
        pt_need += new
    # The slab pages the xarray nodes of each new folio cost the memcg's byte stock (last).
    slab = np.zeros(L, dtype=np.int64)
    dpos = np.flatnonzero(data)
    if len(dpos) and m.profile.kmem_charged:
        nodes = np.cumsum(xa_new_nodes_seq(inode.xa, inode.max_index(), fidx[dpos]))
        short = nodes * XA_NODE_BYTES - task.memcg.obj_stock
        slab_cum = np.maximum(0, -(-short // m.page_size))
        slab[dpos] = np.diff(slab_cum, prepend=0)
    per_page = pt_need + anon + data + slab
    alloc_cum = np.cumsum(per_page)
    data_cum = np.cumsum(data) if (inode is not None and not zmode) else np.zeros(L, np.int64)
    charge_cum = None if m.profile.kmem_charged else alloc_cum - np.cumsum(pt_need)
    n = cumulative_fit(caps, alloc_cum, data_cum, data, charge_cum)
    if n == 0:
        return 0, 0
    total = int(alloc_cum[n - 1])
    uncharged = 0 if charge_cum is None else total - int(charge_cum[n - 1])
    segs = charge_and_take_parts(m, task, total, uncharged)
    seg_nodes = np.array([nid for nid, _ in segs], dtype=np.int64)
    seg_ends = np.cumsum([c for _, c in segs]) if segs else np.zeros(0, np.int64)

    def node_of(alloc_index: np.ndarray) -> np.ndarray:
        return seg_nodes[np.searchsorted(seg_ends, alloc_index, side="left")]

    ac = alloc_cum[:n]
    d, an, sl = data[:n], anon[:n], slab[:n]
    data_nodes = node_of((ac - sl)[d]) if total else np.zeros(0, np.int64)
    anon_nodes = node_of((ac - sl - d)[an]) if total else np.zeros(0, np.int64)
    per_node = {nid: 0 for nid, _ in segs}
    for nid, c in segs:
        per_node[nid] += c
    for s in PT_SHIFTS:
        mm.pt[s].add_pages((va[:n] >> s)[pt_masks[s][:n]], 0)
    if sl.any():
        slab_nodes = node_of(ac[sl > 0])
        parts = [(nid, int((slab_nodes == nid).sum())) for nid in np.unique(slab_nodes).tolist()]
        xa_charge_taken(m, task.memcg, parts)
        for nid, c in parts:
            per_node[nid] -= c
    if inode is not None and d.any():
        fd = fidx[:n][d]
        if m.profile.kmem_charged:
            k = xa_insert_indices(inode.xa, inode.max_index(), fd, m.memcg_tag(task.memcg))
            obj_stock_take(task.memcg, k * XA_NODE_BYTES, 0, m.page_size)
        for nid in np.unique(data_nodes).tolist():
            sel = fd[data_nodes == nid]
            inode.pages.add_pages(sel, m.owner(task.memcg, nid))
            account_data(m, task, inode, nid, len(sel))
            per_node[nid] -= len(sel)
    if an.any():
        ai = idx[:n][an]
        if private_write:
            for p in ai[in_map[:n][an]].tolist():
                from .memory import unmap_pages
                unmap_pages(m, task, vma, p, p + 1)
            for p in ai[in_zero[:n][an]].tolist():
                vma.zero.remove(p, p + 1)
        elif inode is None:
            for p in ai[in_zero[:n][an]].tolist():
                vma.zero.remove(p, p + 1)
        for nid in np.unique(anon_nodes).tolist():
            sel = ai[anon_nodes == nid]
            vma.cow.add_pages(sel, nid)
            m.anon_stat(task, nid, len(sel))
            per_node[nid] -= len(sel)
    for nid, c in per_node.items():
        add_pgtables(m, task, nid, c)
    if zero_new[:n].any():
        vma.zero.add_pages(idx[:n][zero_new[:n]], 0)
    if mapf[:n].any():
        if write:
            for p in idx[:n][mapf[:n] & in_zero[:n]].tolist():
                vma.zero.remove(p, p + 1)
        added = vma.mapped.add_pages(idx[:n][mapf[:n]], 0)
        task.mm.rss["shmem"] += added
        mod_memcg_state(task.memcg, "file_mapped", added)
    return n, int(act[:n].sum())


def first_occurrences(v: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct value of v, in order of value."""
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    if np.all(v[1:] >= v[:-1]):
        order = np.arange(len(v))
        sv = v
    else:
        order = np.argsort(v, kind="stable")
        sv = v[order]
    head = np.empty(len(v), dtype=bool)
    head[0] = True
    np.not_equal(sv[1:], sv[:-1], out=head[1:])
    return order[head]


def charge_and_take_parts(
    m: Machine, task: TaskStruct, total: int, uncharged: int = 0
) -> list[tuple[int, int]]:
    """Take `total` pages from the task's zonelist, in order, and charge all but `uncharged` of
    them to its memcg."""
    if total == 0:
        return []
    over = page_counter_try_charge(task.memcg, total - uncharged)
    if over is not None:
        raise AssertionError(f"bulk charge of {total} pages refused by {over.path}")
    return take_pages(m.zonelist(task.node), total)


def add_pgtables(m: Machine, task: TaskStruct, nid: int, n: int) -> None:
    """Book n new page-table pages of the task on node nid."""
    if n:
        task.mm.pt_nodes[nid] += n
        m.pgtable_stat(task.memcg, nid, n)


def account_data(m: Machine, task: TaskStruct, inode: Any, nid: int, n: int) -> None:
    """Book n new shmem pages: memcg/node stats, commit (VM_NORESERVE) and mount blocks."""
    if n:
        m.shmem_stat(task.memcg, nid, n)
        inode.sb.used_blocks += n
        if inode.noreserve:
            m.overcommit.vm_acct_memory(n)
