"""Syscalls that fill a shmem file's holes without a mapping: fallocate and write.

Models mm/shmem.c (v6.18) `shmem_fallocate` (mode 0 / FALLOC_FL_KEEP_SIZE, SGP_FALLOC) and
`shmem_write_begin` (SGP_WRITE) under `generic_perform_write`. Each page goes through the same
allocate -> charge (the caller's memcg) -> account (the caller's mm) sequence as a fault; pages
are taken in bulk and the one-page path runs where a limit is reached. With `Machine.reference`
set, every page goes through the one-page path, with the same time slicing (the oracle the
bulk engine is tested against, as in gup.py).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .bulk import largest_fit, range_fits, snapshot_caps, split_at
from .errno import EINTR, ENOSPC
from .extents import ExtentMap
from .gup import account_data, charge_and_take_parts, run_fast_path, slice_pages
from .memcontrol import CTX_SYSCALL, charge_margin, page_counter_try_charge, swapin_memcg
from .page_alloc import alloc_margin, take_pages
from .shmem import (
    ShmemInode,
    shmem_add_pages,
    shmem_alloc_and_add_folio,
    shmem_free_range,
    shmem_get_folio,
    shmem_swapin_folio,
    shmem_xa_insert,
    xa_charge_taken,
    xa_nodes_for,
    xa_stock_pages,
)
from .swapfile import swap_free_nr

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct

@dataclass
class FillResult:
    """How a fill ended: errno (None for success), pages done, the page it stopped at, and the
    runs of holes this call filled (for fallocate's undo)."""

    err: str | None
    done: int
    page: int | None = None
    filled: list[tuple[int, int]] = field(default_factory=list)


def bulk_fill(m: Machine, task: TaskStruct, inode: ShmemInode, a: int, limit: int,
              filled: list[tuple[int, int]]) -> tuple[int, int]:
    """Fill the holes of `[a, a + limit)` that fit every limit now: (pages covered, of which
    swapped in).

    Each hole costs its folio, then the slab page its xarray nodes may cost the memcg's byte
    stock; where the allocator moves to the next node is found as for faults (`split_at`).
    The step ends before the first page in swap; a step that starts at one swaps in the run
    of pages in swap from there (`bulk_swapin_fill`).
    """
    if inode.swap.has(a):
        n = bulk_swapin_fill(m, task, inode, a, limit)
        return n, n
    return bulk_fill_holes(m, task, inode, a, limit, filled), 0


def swapin_fill_run(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, limit: int
) -> tuple[int, int]:
    """How many pages in swap from `index` (at most `limit`) one step may swap in for a fill
    now, and the tag of the memcg recorded for them: the run recorded for one memcg, within
    the allocator's margin and the charged memcg's. (0, -1) when none."""
    if snapshot_caps(m, task, inode).guess_2014 is not None:
        return 0, -1
    runs = inode.swap.runs(index, index + limit)
    if not runs or runs[0][0] != index:
        return 0, -1
    s, e, tag = runs[0]
    memcg = swapin_memcg(m.tagged_memcgs[tag], task.memcg)
    return min(e - s, alloc_margin(m.zonelist(task.node)), charge_margin(memcg)), tag


def bulk_swapin_fill(m: Machine, task: TaskStruct, inode: ShmemInode, a: int, limit: int) -> int:
    """Models `shmem_swapin_folio` for the run of pages in swap from `a` (at most `limit`)
    that fits every limit, at once: each page allocated from the task's zonelist, charged to
    the memcg recorded for it, put in the page cache in place of its entry; no accounting
    (the pages were accounted when first instantiated). 0: the first needs the slow path."""
    n, tag = swapin_fill_run(m, task, inode, a, limit)
    if n <= 0:
        return 0
    memcg = swapin_memcg(m.tagged_memcgs[tag], task.memcg)
    if page_counter_try_charge(memcg, n) is not None:
        raise AssertionError(f"bulk swap-in charge of {n} pages refused by {memcg.path}")
    inode.swap.remove(a, a + n)
    swap_free_nr(m, m.tagged_memcgs[tag], n)
    p = a
    for nid, c in take_pages(m.zonelist(task.node), n):
        shmem_add_pages(m, inode, memcg, nid, p, p + c)
        p += c
    m.swap.pswpin += n
    return n


def bulk_fill_holes(m: Machine, task: TaskStruct, inode: ShmemInode, a: int, limit: int,
                    filled: list[tuple[int, int]]) -> int:
    """`bulk_fill` over holes: stops before the first page in swap."""
    swapped = inode.swap.first_present(a, a + limit)
    if swapped is not None:
        limit = swapped - a
        if limit == 0:
            return 0
    caps = snapshot_caps(m, task, inode)
    memcg = task.memcg

    def costs(x: int) -> tuple[int, int, int]:
        d = inode.pages.holes(a, a + x)
        return 0, d, xa_stock_pages(m, memcg, xa_nodes_for(m, inode, a, a + x)) if d else 0

    def fits(x: int) -> bool:
        _, d, sl = costs(x)
        last = None
        if caps.guess_2014 is not None and d:
            h = inode.pages.last_hole_before(a, a + x)
            assert h is not None
            last = inode.pages.holes(a, h + 1)
        return range_fits(caps, d + sl, d, last)

    n = largest_fit(limit, fits)
    _, d, sl = costs(n)
    if not d:
        return n
    parts = []
    p0 = sl0 = taken = 0
    segs = charge_and_take_parts(m, task, d + sl)
    for i, (nid, cnt) in enumerate(segs):
        taken += cnt
        p1, _, sl1 = (n, d, sl) if i == len(segs) - 1 else split_at(taken, n, costs, n // 2)
        parts.append((nid, p0, p1, sl1 - sl0))
        p0, sl0 = p1, sl1
    xa_charge_taken(m, memcg, [(nid, s) for nid, _, _, s in parts])
    shmem_xa_insert(m, memcg, inode, a, a + n)
    for nid, p0, p1, _ in parts:
        for s, e in inode.pages.hole_runs(a + p0, a + p1):
            inode.pages.fill(s, e, m.owner(memcg, nid))
            account_data(m, task, inode, nid, e - s)
            filled.append((s, e))
    return n


def reference_fill(m: Machine, task: TaskStruct, inode: ShmemInode, index: int,
                   filled: list[tuple[int, int]]) -> tuple[int, int]:
    """The reference's step: page `index` through `shmem_alloc_and_add_folio`, or
    `shmem_swapin_folio` for a page in swap, if it needs no slow path: (1, swapped in), else
    (0, 0). A page already present is skipped (1, 0)."""
    if inode.pages.has(index):
        return 1, 0
    if inode.swap.has(index):
        if not swapin_fill_run(m, task, inode, index, 1)[0]:
            return 0, 0
        err = run_fast_path(m, shmem_swapin_folio(m, task, inode, index, CTX_SYSCALL))
        assert err is None, err
        return 1, 1
    slab = xa_stock_pages(m, task.memcg, xa_nodes_for(m, inode, index, index + 1))
    if not range_fits(snapshot_caps(m, task, inode), 1 + slab, 1, 1):
        return 0, 0
    err = run_fast_path(m, shmem_alloc_and_add_folio(m, task, inode, index, CTX_SYSCALL))
    assert err is None, err
    filled.append((index, index + 1))
    return 1, 0


def shmem_fill_range(
    m: Machine, task: TaskStruct, inode: ShmemInode, a: int, b: int, cost: float
) -> Generator[Any, Any, FillResult]:
    """Instantiate every hole of file pages `[a, b)` in order, as SGP_FALLOC/SGP_WRITE do."""
    filled: list[tuple[int, int]] = []
    pos = a
    swapin = m.costs.swapin
    while pos < b:
        budget = slice_pages(m, cost)
        end = min(b, pos + budget)
        start = pos
        swapped = 0  # pages of this slice swapped in: their reads take time too
        while pos < end:
            if task.sigkill:
                yield m.env.timeout((pos - start) * cost + swapped * swapin)
                return FillResult(EINTR, pos - a, pos, filled)
            if m.reference:
                n, ns = reference_fill(m, task, inode, pos, filled)
            else:
                n, ns = bulk_fill(m, task, inode, pos, end - pos, filled)
            if n:
                pos += n
                swapped += ns
                continue
            if pos > start:
                yield m.env.timeout((pos - start) * cost + swapped * swapin)
                start, swapped = pos, 0
            was_swapped = inode.swap.has(pos)
            err = yield from shmem_get_folio(m, task, inode, pos, CTX_SYSCALL, past_eof=True)
            if err:
                yield m.env.timeout((pos - start) * cost)
                return FillResult(err, pos - a, pos, filled)
            pos += 1
            if was_swapped:  # not added by this call (no undo); its swap read takes time
                yield m.env.timeout(cost + m.costs.swapin)
                start = pos
            else:
                filled.append((pos - 1, pos))
        yield m.env.timeout((pos - start) * cost + swapped * swapin)
    if task.sigkill:
        return FillResult(EINTR, pos - a, None, filled)
    return FillResult(None, b - a, None, filled)


def faulted_in(inode: ShmemInode) -> ExtentMap:
    """The file pages some mapping has faulted in: the model's stand-in for uptodate folios.

    Simplifications:
        A fault on a fallocated folio clears it and marks it uptodate; the model keeps no
        uptodate bit, so a page counts as uptodate while a VMA maps it (one faulted and
        unmapped again, or written by write(2), during the fallocate is undone all the same).
    """
    pages = ExtentMap()
    for vma in inode.vmas:
        for s, e, _ in vma.mapped.runs(0, vma.npages):
            pages.fill(vma.pgoff + s, vma.pgoff + e, 0)
    return pages


def shmem_fallocate(
    m: Machine, task: TaskStruct, inode: ShmemInode, a: int, b: int, keep_size: bool
) -> Generator[Any, Any, FillResult]:
    """Models `shmem_fallocate()` allocate mode over file pages `[a, b)`.

    A range larger than the mount's size fails with ENOSPC at once. On any error the pages this
    call added are removed again and the error returned; but, as `shmem_undo_range(...,
    unfalloc=true)` removes only folios still !uptodate, not those a fault has meanwhile
    cleared and mapped (see `faulted_in`).
    """
    if inode.sb.max_blocks and b - a > inode.sb.max_blocks:
        return FillResult(ENOSPC, 0, a)
    res = yield from shmem_fill_range(m, task, inode, a, b, m.costs.fallocate)
    if res.err:
        faulted = faulted_in(inode)
        undone = sum(shmem_free_range(m, inode, hs, he)
                     for s, e in res.filled for hs, he in faulted.hole_runs(s, e))
        m.log.emit("shmem_fallocate_undo", task=task.name, pages=undone, detail=res.err)
        return res
    if not keep_size:
        inode.size = max(inode.size, b * m.page_size)
    return res
