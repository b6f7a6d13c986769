"""Bulk swap-in steps: runs of pages in swap, recorded for one memcg, swapped in at once.

What `do_swap_page` and `shmem_swapin_folio` do page by page: allocate from the task's
zonelist, charge the memcg recorded at swap-out (`mem_cgroup_swapin_charge_folio`; the task's
page tables to the task's), replace the entries, free the slots and swap charges. No commit
or tmpfs accounting: the pages were accounted when first instantiated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.booking import (
    anon_pages_added,
    pgtables_added,
    shmem_folios_added,
    shmem_swap_removed,
    swap_ptes_removed,
)
from ..mm.memcontrol import (
    MemCgroup,
    high_margin,
    memcg_charge_done_bulk,
    page_counter_try_charge,
    swapin_memcg,
)
from ..mm.memory import map_file_pages
from ..mm.mempolicy import step_zonelist
from ..mm.mm_types import PT_SHIFTS, VMA
from ..mm.page_alloc import take_pages
from ..mm.shmem_inode import ShmemInode
from ..mm.swapfile import swap_free_nr
from .limits import Caps, MemcgMax, snapshot_caps
from .solve import INF, largest_fit, new_regions, proportional, split_at

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.task import TaskStruct


def swapin_target(m: Machine, task: TaskStruct, vma: VMA, idx: int) -> MemCgroup | None:
    """The memcg the swap-in a fault at VMA page `idx` charges, when that swap-in can be one of
    a sequential walk's fast pages (it changes nothing but the page itself: a swap PTE of an
    anonymous mapping, or a file page of a shared mapping with no ZERO_PAGE PTE over it, and
    not, under a memory.high, a page of another memcg than the task's); None otherwise."""
    inode = vma.file
    if inode is None:
        tag = vma.swap.owner_of(idx)
    elif vma.shared and not vma.zero.has(idx):
        tag = inode.swap.owner_of(vma.pgoff + idx)
    else:
        return None
    if tag is None:
        return None
    target = swapin_memcg(m.tagged_memcgs[tag], task.memcg)
    if target is not task.memcg and (high_margin(task, task.memcg) is not None
                                     or high_margin(task, target) is not None):
        return None  # charges to two memcgs under a memory.high: one page at a time
    return target


def swapin_high_margin(task: TaskStruct, target: MemCgroup) -> int:
    """Charges a fast swap-in step may make before memory.high needs the one-page path: its
    page tables and folios all go to the task's memcg there (`swapin_target` sends the pages
    of another memcg under a memory.high one by one)."""
    if target is not task.memcg:
        return INF
    h = high_margin(task, target)
    return INF if h is None else h


def swapin_fits(caps: Caps, margins: tuple[int, int, int], pt: int, folios: int,
                pt_charged: int, high: int = INF) -> bool:
    """Whether a swap-in step's page tables (of which `pt_charged` are charged) and folios
    pass the allocator, every memcg's max and (`high`, see `swapin_high_margin`) memory.high."""
    only_pt, only_folios, both = margins
    return (pt + folios <= caps.alloc and pt_charged <= only_pt and folios <= only_folios
            and pt_charged + folios <= both and pt_charged + folios <= high)


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
    if target is None:
        return 0  # another memcg's pages under a memory.high: one page at a time
    margins = MemcgMax.split_margins(task.memcg, target)
    high = swapin_high_margin(task, target)
    mm = task.mm
    va0 = vma.start + a

    def costs(x: int) -> tuple[int, int, int]:  # page tables, folios, no slab: entries exist
        return new_regions(mm.pt, va0, x), x, 0

    def alloc(x: int) -> int:
        return sum(costs(x))

    def fits(x: int) -> bool:
        pt = new_regions(mm.pt, va0, x)
        return swapin_fits(caps, margins, pt, x, m.kmem_charge(pt), high)

    n = largest_fit(run, fits, proportional(run, alloc(run), caps.alloc, *margins[1:]))
    if n == 0:
        return 0
    inode = vma.file
    total = alloc(n)
    charges = ((task.memcg, m.kmem_charge(total - n)), (target, n))
    for (memcg, nr), sw in zip(charges, (False, True), strict=True):
        if nr and page_counter_try_charge(memcg, nr, swapin=sw) is not None:
            raise AssertionError(f"bulk swap-in charge of {nr} pages refused by {memcg.path}")
    if target is task.memcg:
        memcg_charge_done_bulk(task, target, charges[0][1] + n)
    else:
        for memcg, nr in charges:
            memcg_charge_done_bulk(task, memcg, nr)
    segs = take_pages(step_zonelist(m, task), total)
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
        pgtables_added(m, task, nid, pt)
        k = p1 - p0
        if not k:
            continue
        if inode is None:
            swap_ptes_removed(m, task, vma, a + p0, a + p1)
            anon_pages_added(m, task, vma, a + p0, a + p1, nid)
        else:
            f = vma.pgoff + a
            shmem_swap_removed(m, inode, f + p0, f + p1)
            shmem_folios_added(m, inode, target, nid, f + p0, f + p1, dirty=True, young=True)
    swap_free_nr(m, m.tagged_memcgs[tag], n)
    m.swap.pswpin += n
    if any(pt for *_, pt in parts):
        for sh in PT_SHIFTS:
            mm.pt[sh].fill(va0 >> sh, ((va0 + n - 1) >> sh) + 1, 0)
    if inode is not None:
        map_file_pages(m, task, vma, a, a + n)
    return n


def file_swapin_run(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, limit: int
) -> tuple[int, int]:
    """How many of the file's pages in swap from `index` (at most `limit`) one step may swap
    in now, and the tag of the memcg recorded for them: the run recorded for one memcg, within
    the allocator's margin and the charged memcg's. (0, -1) when none, and always under the
    [2014] mode-0 estimate (every swap-in is then a one-page step, as for faults)."""
    runs = inode.swap.runs(index, index + limit)
    if not runs or runs[0][0] != index:
        return 0, -1
    s, e, tag = runs[0]
    caps = snapshot_caps(m, task, inode, swapin_memcg(m.tagged_memcgs[tag], task.memcg))
    if caps.guess_2014 is not None:
        return 0, -1
    return min(e - s, caps.mem), tag


def bulk_swapin_file(m: Machine, task: TaskStruct, inode: ShmemInode, a: int, limit: int) -> int:
    """Models `shmem_swapin_folio` for the run of a file's pages in swap from `a` (at most
    `limit`) that fits every limit, at once, for read(2), write(2) and fallocate: each page
    allocated from the task's zonelist, charged to the memcg recorded for it, put in the page
    cache in place of its entry; no accounting (the pages were accounted when first
    instantiated). 0: the first needs the slow path."""
    n, tag = file_swapin_run(m, task, inode, a, limit)
    if n <= 0:
        return 0
    memcg = swapin_memcg(m.tagged_memcgs[tag], task.memcg)
    if page_counter_try_charge(memcg, n, swapin=True) is not None:
        raise AssertionError(f"bulk swap-in charge of {n} pages refused by {memcg.path}")
    memcg_charge_done_bulk(task, memcg, n)
    shmem_swap_removed(m, inode, a, a + n)
    swap_free_nr(m, m.tagged_memcgs[tag], n)
    p = a
    for nid, c in take_pages(step_zonelist(m, task), n):
        shmem_folios_added(m, inode, memcg, nid, p, p + c, dirty=True)
        p += c
    m.swap.pswpin += n
    return n
