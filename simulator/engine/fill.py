"""Bulk fill steps: the holes of a file range filled at once (fallocate, write(2)).

Each hole costs its folio, then the slab page its xarray nodes may cost the memcg's byte
stock, as `shmem_alloc_and_add_folio` takes them one by one under SGP_FALLOC/SGP_WRITE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.booking import shmem_folios_added
from ..mm.shmem import shmem_acct_taken, shmem_xa_insert, xa_charge_taken, xa_stock_pages
from ..mm.shmem_inode import ShmemInode, xa_nodes_for
from .book import charge_and_take_parts
from .limits import snapshot_caps
from .solve import largest_fit, range_fits, split_at
from .swapin import bulk_swapin_file

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.task import TaskStruct


def bulk_fill(m: Machine, task: TaskStruct, inode: ShmemInode, a: int, limit: int,
              filled: list[tuple[int, int]]) -> tuple[int, int]:
    """Fill the holes of `[a, a + limit)` that fit every limit now: (pages covered, of which
    swapped in).

    Each hole costs its folio, then the slab page its xarray nodes may cost the memcg's byte
    stock; where the allocator moves to the next node is found as for faults (`split_at`).
    The step ends before the first page in swap; a step that starts at one swaps in the run
    of pages in swap from there (`bulk_swapin_file`).
    """
    if inode.swap.has(a):
        n = bulk_swapin_file(m, task, inode, a, limit)
        return n, n
    return bulk_fill_holes(m, task, inode, a, limit, filled), 0


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
            shmem_folios_added(m, inode, memcg, nid, s, e, referenced=True)
            shmem_acct_taken(m, inode, e - s)
            filled.append((s, e))
    return n
