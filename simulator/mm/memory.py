"""Faults: which handler a fault goes to and what it allocates, and the one-page handler.

Models mm/memory.c (v6.18): `handle_mm_fault` -> `__handle_mm_fault` (`pud_alloc`,
`pmd_alloc`, `pte_alloc`) -> `do_read_fault` / `do_cow_fault` / `do_shared_fault` /
`do_anonymous_page` / `do_swap_page` -> `shmem_fault`, and `vmf_error`; plus the teardown of
`exit_mmap` and `unmap_vmas` (`zap_pte_range`, which frees swap entries too).
`handle_mm_fault` here is the one-page path; the stepping engine (simulator/engine/) runs whole
ranges with the same rules and falls back to this at the page where a limit is hit (or a page
is in swap).

Simplifications:
    x86-64 4-level paging with 4 KiB pages: one PTE page per 2 MiB, one PMD page per 1 GiB, one
    PUD page per 512 GiB of address space (the PGD is part of the task's footprint).
    Fault-around (`do_fault_around`) maps cached, uptodate pages only and never fills holes;
    here it runs page by page (the reference, and the one-page path), and the bulk engine
    has its closed form over a step (engine/fault_around.py). fault_around_bytes is fixed at
    64 KiB; no THP, no userfaultfd.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .booking import (
    anon_pages_added,
    pgtables_added,
    shmem_folios_dirtied,
    shmem_folios_dirtied_at,
    shmem_folios_uptodate,
    shmem_folios_uptodate_at,
    swap_ptes_removed,
)
from .filemap_io import filemap_fault
from .ipc_shm import shm_file
from .memcontrol import mod_memcg_state, page_counter_uncharge, swapin_memcg
from .mempolicy import get_vma_policy_ilx
from .mm_types import VM_FAULT_OK, VM_FAULT_OOM, VM_FAULT_SIGBUS, VMA, file_rss_item, pt_missing
from .page_alloc import free_pages
from .page_alloc_slowpath import alloc_charged_page, alloc_pages
from .shmem import shmem_fault
from .swapfile import swap_free_nr
from .zap import unmap_pages

if TYPE_CHECKING:
    from .gup import PageSeq

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct



def pte_alloc(m: Machine, task: TaskStruct, va: int, ctx: str) -> Generator[Any, Any, bool]:
    """Models `pud_alloc`/`pmd_alloc`/`pte_alloc`: the page-table pages a fault at va needs.

    Each is an accounted kernel page (GFP_PGTABLE_USER): allocation and memcg charge can run
    reclaim and the OOM killer; failure is VM_FAULT_OOM. [2014] 3.15 did not charge them.
    """
    mm = task.mm
    for s in pt_missing(mm, va):
        if m.profile.kmem_charged:
            nid = yield from alloc_charged_page(m, task, ctx)
        else:
            nid = yield from alloc_pages(m, task)
        if nid is None:
            return False
        mm.pt[s].fill(va >> s, (va >> s) + 1, 0)
        pgtables_added(m, task, nid, 1)
    return True


# What a fault at one page does: the handler `handle_pte_fault()` sends it to, and what that
# handler allocates. This is the one statement of the fault rule: `handle_mm_fault` dispatches
# on it, the reference engine checks a page's needs with it, the bulk engine's array path uses
# `fault_plans` (the same rule over an array of pages) and its closed form `range_payload`
# (the same rule counted over a range); tests/test_fault_rule.py holds the three to agree.
@dataclass(frozen=True, slots=True)
class FaultPlan:
    """One page's fault: its handler and the pages it takes besides page tables.

    Attributes:
        handler: `present` (no fault), `do_swap_page`, `do_anonymous_page`, `sigbus` (past
            i_size), `do_cow_fault` (a private write to a file page), `zero_page` (the what-if
            for write-sealed holes), `do_fault` (a read or shared write of a file page).
        anon: an anonymous page (a private write's copy, or an anonymous write).
        data: a page-cache folio instantiated for a hole (`shmem_alloc_and_add_folio`).
        swapin: a page read back from swap (`do_swap_page`, or `shmem_swapin_folio`).
    """

    handler: str
    anon: int = 0
    data: int = 0
    swapin: int = 0


PRESENT = FaultPlan("present")
SWAP_PTE = FaultPlan("do_swap_page", swapin=1)
ANON_READ, ANON_WRITE = FaultPlan("do_anonymous_page"), FaultPlan("do_anonymous_page", anon=1)
SIGBUS = FaultPlan("sigbus")
COW_PRESENT = FaultPlan("do_cow_fault", anon=1)
COW_HOLE = FaultPlan("do_cow_fault", anon=1, data=1)
COW_SWAPIN = FaultPlan("do_cow_fault", anon=1, swapin=1)
ZERO_PAGE = FaultPlan("zero_page")
FILE_MAP = FaultPlan("do_fault")
FILE_HOLE = FaultPlan("do_fault", data=1)
FILE_SWAPIN = FaultPlan("do_fault", swapin=1)


def fault_plan(m: Machine, vma: VMA, idx: int, write: bool) -> FaultPlan:
    """Models the dispatch of `handle_pte_fault()` for VMA page `idx`: which handler, and what
    it allocates (page tables aside: `pt_missing`).

    A present PTE that allows the access needs no fault. A swap PTE goes to `do_swap_page`.
    Anonymous memory: a read maps ZERO_PAGE, a write allocates. A file page past i_size is
    SIGBUS. A private write (`do_cow_fault`) copies the file page into an anonymous page, after
    instantiating it if it is a hole (not under a ZERO_PAGE PTE) or swapping it in. Otherwise
    (`do_read_fault`, `do_shared_fault` -> `shmem_fault`) the folio is mapped, swapped in or,
    for a hole, instantiated; with the what-if `zero_page_sealed_holes` a read of a hole of a
    write-sealed file maps ZERO_PAGE instead. A read fault on a file mapping first maps the
    cached pages around it (`do_fault_around`); that allocates nothing, so it is not in the
    plan: the bulk engine counts its effect over a whole step in closed form
    (engine/fault_around.py).
    """
    if vma.pte_present(idx, write):
        return PRESENT
    if vma.swap.has(idx):
        return SWAP_PTE
    inode = vma.file
    if inode is None:
        return ANON_WRITE if write else ANON_READ
    index = vma.pgoff + idx
    if index >= inode.size_pages(m.page_size):
        return SIGBUS
    present = inode.pages.has(index)
    swapped = not present and inode.swap.has(index)
    if write and not vma.shared:
        if present or vma.zero.has(idx):
            return COW_PRESENT
        return COW_SWAPIN if swapped else COW_HOLE
    if present:
        return FILE_MAP
    if swapped:
        return FILE_SWAPIN
    if not write and m.what_if.zero_page_sealed_holes and inode.write_sealed():
        return ZERO_PAGE
    return FILE_HOLE


@dataclass
class FaultPlans:
    """`fault_plan` over an array of VMA pages, as masks (one entry a page), with the PTE and
    file states the booking of a step needs."""

    present: np.ndarray
    sigbus: np.ndarray
    swapin: np.ndarray
    anon: np.ndarray
    data: np.ndarray
    zero: np.ndarray
    map_file: np.ndarray
    in_map: np.ndarray
    in_zero: np.ndarray
    fidx: np.ndarray

    def cut(self, n: int) -> FaultPlans:
        """The plans of the first n pages."""
        return FaultPlans(*(getattr(self, f)[:n] for f in self.__dataclass_fields__))


def fault_plans(m: Machine, vma: VMA, idx: np.ndarray, write: bool) -> FaultPlans:
    """`fault_plan` for every page of `idx` at once (the bulk engine's array path)."""
    n = len(idx)
    none = np.zeros(n, dtype=bool)
    in_map, in_cow, in_zero = vma.mapped.contains(idx), vma.cow.contains(idx), vma.zero.contains(idx)
    if write:
        present = in_cow if not vma.shared else in_map
    else:
        present = in_map | in_cow | in_zero
    act = ~present
    swap_pte = (vma.swap.contains(idx) & act) if len(vma.swap) else none
    live = act & ~swap_pte
    inode = vma.file
    if inode is None:
        return FaultPlans(present, none, swap_pte, live & write, none, live & (not write), none,
                          in_map, in_zero, idx)
    fidx = vma.pgoff + idx
    sigbus = live & (fidx >= inode.size_pages(m.page_size))
    live &= ~sigbus
    fp = inode.pages.contains(fidx)
    fs = (inode.swap.contains(fidx) & ~fp) if len(inode.swap) else none
    if write and not vma.shared:
        hole = live & ~fp & ~in_zero
        return FaultPlans(present, sigbus, swap_pte | (hole & fs), live, hole & ~fs, none, none,
                          in_map, in_zero, fidx)
    zmode = zero_mode(m, vma, write)
    new = live & ~fp & ~fs
    zero = new if zmode else none
    data = none if zmode else new
    return FaultPlans(present, sigbus, swap_pte | (live & fs), none, data, zero, live & ~zero,
                      in_map, in_zero, fidx)


def range_walkable(m: Machine, vma: VMA, write: bool) -> bool:
    """Whether a sequential walk of `vma` has a closed form: each faulting page allocates its
    missing page tables, then at most one page (a folio, or an anonymous page).

    Anonymous mappings, read or written; shmem mappings shared, or private and read, with no
    private copies. A read with ZERO_PAGE PTEs in the VMA qualifies only in zero mode (where
    it adds no folio), so that every hole a read meets is a folio to add.
    """
    if vma.file is None:
        return True
    return (range_walkable_file(vma) and len(vma.cow) == 0 and (vma.shared or not write)
            and (write or len(vma.zero) == 0 or zero_mode(m, vma, write)))


def range_payload(m: Machine, vma: VMA, a: int, x: int, write: bool, zmode: bool) -> int:
    """`fault_plan`'s anon + data summed over VMA pages `[a, a + x)` of a `range_walkable`
    walk that meets no page in swap and none past i_size (`zmode`: `zero_mode` for it)."""
    inode = vma.file
    if inode is None:
        return x - vma.cow.count(a, a + x) if write else 0
    if zmode:
        return 0
    f0 = vma.pgoff + a
    return inode.pages.holes(f0, f0 + x)


FAULT_AROUND_PAGES = 16  # fault_around_bytes (64 KiB) / PAGE_SIZE
AROUND_HANDLERS = ("do_fault", "zero_page", "sigbus")  # read faults that reach do_read_fault


def fault_around_window(vma: VMA, idx: int) -> tuple[int, int]:
    """`do_fault_around()`'s window for a fault at VMA page `idx`: the 16-page block of the
    virtual address (`ALIGN_DOWN(pte_index, 16)`), clamped to the VMA (and so to the PTE
    table, whose 512 entries are whole blocks). As VMA pages `[ws, we)`."""
    block = ((vma.start + idx) // FAULT_AROUND_PAGES) * FAULT_AROUND_PAGES
    return (max(block, vma.start) - vma.start,
            min(block + FAULT_AROUND_PAGES, vma.start + vma.npages) - vma.start)


def fault_around_pages(m: Machine, vma: VMA, lo: int, hi: int) -> list[tuple[int, int]]:
    """The runs of VMA pages in `[lo, hi)` that `filemap_map_pages()` (mm/filemap.c, v6.18)
    would map: a folio in the page cache, uptodate (not a fallocated one still to be
    cleared), below i_size, under an empty PTE. Holes and swap entries are skipped."""
    inode = vma.file
    assert inode is not None
    off = vma.pgoff
    hi = min(hi, inode.size_pages(m.page_size) - off)
    out: list[tuple[int, int]] = []
    if hi <= lo:
        return out
    for s, e, _ in inode.pages.runs(off + lo, off + hi):  # owners apart: runs joined
        if out and out[-1][1] == s - off:
            out[-1] = (out[-1][0], e - off)
        else:
            out.append((s - off, e - off))
    if len(inode.falloc):
        out = [(a - off, b - off) for s, e in out
               for a, b in inode.falloc.hole_runs(s + off, e + off)]
    for em in (vma.mapped, vma.cow, vma.zero, vma.swap):
        if len(em) and out:
            out = [r for a, b in out for r in em.hole_runs(a, b)]
    return out


def should_fault_around(vma: VMA) -> bool:
    """Models `should_fault_around()` in mm/memory.c (v6.18): whether a read fault on `vma`
    runs `do_fault_around()` first. It needs `vm_ops->map_pages`, which a shmem file's VMA
    has (`shmem_vm_ops`: `filemap_map_pages`) and a SysV segment's does not (`shm_vm_ops`,
    ipc/shm.c); userfaultfd (`uffd_disable_fault_around`) is not modelled, and
    fault_around_bytes stays at its 64 KiB (more than one page)."""
    inode = vma.file
    return inode is not None and not shm_file(inode) and FAULT_AROUND_PAGES > 1


def do_fault_around(m: Machine, task: TaskStruct, vma: VMA, idx: int) -> int:
    """Models `do_fault_around()` -> `filemap_map_pages()` in mm/memory.c and mm/filemap.c
    (v6.18): a read fault on a file mapping first maps every cached, uptodate page of its
    16-page window under an empty PTE (fault_around_bytes, 64 KiB), allocating and charging
    nothing; they count in MM_SHMEMPAGES (so in `oom_badness`) and `file_mapped` without
    being touched. Returns how many."""
    ws, we = fault_around_window(vma, idx)
    return sum(map_file_pages(m, task, vma, a, b) for a, b in fault_around_pages(m, vma, ws, we))


def handle_mm_fault(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str
) -> Generator[Any, Any, str]:
    """Models `handle_mm_fault()` for one page of `vma`: VM_FAULT_OK, _OOM or _SIGBUS.

    The page-table pages come first (`__handle_mm_fault`), then the handler `fault_plan`
    names. Read fault on a shmem hole (shared or private): `shmem_fault` instantiates a
    zeroed page-cache folio, charged to the faulting task's memcg and accounted to its
    overcommit, and maps it. Private write: `do_cow_fault` allocates and charges the
    anonymous copy first, then the page-cache folio: two pages per hole. A swap PTE goes to
    `do_swap_page`; a file page in swap is swapped in by `shmem_fault` (`shmem_swapin_folio`):
    never the zero page, it is not a hole.
    """
    if vma.pte_present(idx, write):
        return VM_FAULT_OK
    if not (yield from pte_alloc(m, task, vma.start + idx, ctx)):
        return VM_FAULT_OOM
    plan = fault_plan(m, vma, idx, write)  # after pte_alloc, which may have slept
    h = plan.handler
    if h == "present":
        return VM_FAULT_OK
    if not write and h in AROUND_HANDLERS and should_fault_around(vma):
        # do_read_fault(): fault-around first; done if it mapped the page itself.
        do_fault_around(m, task, vma, idx)
        if vma.mapped.has(idx):
            return VM_FAULT_OK
    if h == "do_swap_page":
        return (yield from do_swap_page(m, task, vma, idx, write, ctx))
    if h == "do_anonymous_page":
        return (yield from do_anonymous_page(m, task, vma, idx, write, ctx))
    if h == "sigbus":
        return VM_FAULT_SIGBUS
    inode = vma.file
    assert inode is not None
    index = vma.pgoff + idx
    if h == "do_cow_fault":
        # do_cow_fault()/wp_page_copy(): the anonymous copy is allocated and charged first.
        nid = yield from alloc_charged_page(m, task, ctx, ilx=get_vma_policy_ilx(vma, idx))
        if nid is None:
            return VM_FAULT_OOM
        if plan.data or plan.swapin:
            status = yield from file_fault(m, task, inode, index, ctx)
            if status != VM_FAULT_OK:
                page_counter_uncharge(m, task.memcg, 1)
                free_pages(m, nid, 1)
                return status
        unmap_pages(m, task, vma, idx, idx + 1)
        anon_pages_added(m, task, vma, idx, idx + 1, nid)
        return VM_FAULT_OK
    if h == "zero_page":
        vma.zero.fill(idx, idx + 1, 0)
        return VM_FAULT_OK
    if plan.data or plan.swapin:
        status = yield from file_fault(m, task, inode, index, ctx)
        if status != VM_FAULT_OK:
            return status
    if vma.zero.has(idx):
        vma.zero.remove(idx, idx + 1)
    map_file_pages(m, task, vma, idx, idx + 1)
    return VM_FAULT_OK


def file_fault(
    m: Machine, task: TaskStruct, inode: Any, index: int, ctx: str
) -> Generator[Any, Any, str]:
    """`vma->vm_ops->fault`: `filemap_fault` for a disk file, `shmem_fault` for shmem."""
    if getattr(inode, "file_lru", False):
        return (yield from filemap_fault(m, task, inode, index, ctx))
    return (yield from shmem_fault(m, task, inode, index, ctx))


def range_walkable_file(vma: VMA) -> bool:
    """A disk file's walks are not shmem's closed form (`disk_walkable` has theirs)."""
    return not getattr(vma.file, "file_lru", False)


def disk_walkable(vma: VMA, write: bool) -> bool:
    """Whether a sequential walk of a mapping of a disk file has a closed form: each faulting
    page allocates its missing page tables, then at most its page-cache folio, read from disk
    (`filemap_fault`). Shared mappings, or private ones read, with no private copies or swap
    PTEs; a page with a shadow entry (a refault) is a one-page step."""
    return (getattr(vma.file, "file_lru", False) and len(vma.cow) == 0 and len(vma.swap) == 0
            and (vma.shared or not write))


def needs_disk_read(m: Machine, vma: VMA, idx: int, write: bool) -> bool:
    """Whether a fault at VMA page `idx` reads a disk file's page from disk."""
    return bool(getattr(vma.file, "file_lru", False) and fault_plan(m, vma, idx, write).data)


def do_swap_page(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str
) -> Generator[Any, Any, str]:
    """Models `do_swap_page()` for a private anonymous page in swap, on a SWP_SYNCHRONOUS_IO
    device with swap count 1 (no fork here): allocate and charge (`alloc_swap_folio`,
    `mem_cgroup_swapin_charge_folio`: the memcg recorded at swap-out if online, else the
    task's) bypassing the swap cache, read, map, and free the entry (slot and swap charge).
    The walker lets the read's time pass once the page is mapped.

    Returns VM_FAULT_OOM when the folio cannot be had (the PTE is unchanged).
    """
    tag = vma.swap.owner_of(idx)
    assert tag is not None
    memcg = swapin_memcg(m.tagged_memcgs[tag], task.memcg)
    assert memcg is task.memcg, "anonymous pages are charged to their task's memcg"
    nid = yield from alloc_charged_page(m, task, ctx, memcg, get_vma_policy_ilx(vma, idx))
    if nid is None:
        return VM_FAULT_OOM
    if vma.swap.owner_of(idx) != tag:
        # The entry went while we slept (MADV_DONTNEED, truncate): pte_same() fails; refault.
        page_counter_uncharge(m, memcg, 1)
        free_pages(m, nid, 1)
        return (yield from handle_mm_fault(m, task, vma, idx, write, ctx))
    swap_ptes_removed(m, task, vma, idx, idx + 1)
    swap_free_nr(m, m.tagged_memcgs[tag], 1)
    anon_pages_added(m, task, vma, idx, idx + 1, nid)
    m.swap.pswpin += 1
    return VM_FAULT_OK  # the read's time (`costs.swapin`) passes in the caller, after


def do_anonymous_page(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str
) -> Generator[Any, Any, str]:
    """Models `do_anonymous_page()`: a read maps ZERO_PAGE, a write allocates and charges."""
    if not write:
        vma.zero.fill(idx, idx + 1, 0)
        return VM_FAULT_OK
    nid = yield from alloc_charged_page(m, task, ctx, ilx=get_vma_policy_ilx(vma, idx))
    if nid is None:
        return VM_FAULT_OOM
    vma.zero.remove(idx, idx + 1)
    anon_pages_added(m, task, vma, idx, idx + 1, nid)
    return VM_FAULT_OK


def map_file_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """Map the page-cache folios of `[a, b)` (all present): MM_SHMEMPAGES and file_mapped; the
    faults' PTEs have their accessed bits set (`folio_referenced` will find them)."""
    if vma.file is not None:
        for hs, he in vma.mapped.hole_runs(a, b):  # only the PTEs these faults install
            vma.file.young.fill(vma.pgoff + hs, vma.pgoff + he, 0)
    added = vma.mapped.fill(a, b, 0)
    task.mm.rss[file_rss_item(vma.file)] += added
    mod_memcg_state(task.memcg, "file_mapped", added)
    return added


def map_file_pages_at(m: Machine, task: TaskStruct, vma: VMA, idx: np.ndarray) -> int:
    """`map_file_pages` for the VMA pages `idx` (any order)."""
    if vma.file is not None and len(idx):  # only the PTEs these faults install
        new = np.unique(np.asarray(idx, dtype=np.int64))
        vma.file.young.add_pages(new[~vma.mapped.contains(new)] + vma.pgoff, 0)
    added = vma.mapped.add_pages(idx, 0) if len(idx) else 0
    task.mm.rss[file_rss_item(vma.file)] += added
    mod_memcg_state(task.memcg, "file_mapped", added)
    return added


def needs_swapin(m: Machine, vma: VMA, idx: int, write: bool) -> bool:
    """Whether a fault at VMA page `idx` swaps a page in (`fault_plan`'s swapin)."""
    return bool(fault_plan(m, vma, idx, write).swapin)


def zero_mode(m: Machine, vma: VMA, write: bool) -> bool:
    """The what-if: read faults on holes of a write-sealed file map ZERO_PAGE."""
    return (not write and vma.file is not None and m.what_if.zero_page_sealed_holes
            and vma.file.write_sealed())


def fault_dirty_shared_page(m: Machine, vma: VMA, seq: PageSeq, p0: int, p1: int) -> None:
    """Models `fault_dirty_shared_page()` in mm/memory.c (v6.18), and the PTE dirty bit that
    `try_to_unmap_one` moves to the folio: the file pages a write reaches through a shared
    mapping (positions `[p0, p1)` of the walk `seq`) are dirty.

    A shared write fault dirties its folio; a write through a PTE a read fault made writable
    (shmem has no writenotify) sets the PTE's dirty bit, which reaches the folio when reclaim
    unmaps it. Either way reclaim may no longer just free the folio. Private mappings write to
    anonymous copies and leave the file's folio clean.
    """
    inode = vma.file
    if inode is None or not vma.shared or p1 <= p0:
        return
    if seq.arr is None:
        shmem_folios_dirtied(m, inode, vma.pgoff + seq.start + p0, vma.pgoff + seq.start + p1)
    else:
        shmem_folios_dirtied_at(m, inode, seq.arr[p0:p1] + vma.pgoff)


def faulted_folios_uptodate(m: Machine, vma: VMA, seq: PageSeq, p0: int, p1: int) -> None:
    """Models the `folio_mark_uptodate` of `shmem_get_folio_gfp()` (SGP_CACHE) in mm/shmem.c
    (v6.18): a fault on a fallocated folio clears it; every file page a walk got past
    (positions `[p0, p1)` of `seq`) is uptodate, as a page a VMA maps always is."""
    inode = vma.file
    if inode is None or p1 <= p0 or not len(inode.falloc):
        return
    if seq.arr is None:
        shmem_folios_uptodate(m, inode, vma.pgoff + seq.start + p0, vma.pgoff + seq.start + p1)
    else:
        shmem_folios_uptodate_at(m, inode, seq.arr[p0:p1] + vma.pgoff)
