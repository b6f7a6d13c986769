"""Address spaces: VMAs, rss counters, page tables, and the one-page fault handler.

Models mm/memory.c (v6.18): `handle_mm_fault` -> `__handle_mm_fault` (`pud_alloc`,
`pmd_alloc`, `pte_alloc`) -> `do_read_fault` / `do_cow_fault` / `do_shared_fault` /
`do_anonymous_page` / `do_swap_page` -> `shmem_fault`, and `vmf_error`; plus the teardown of
`exit_mmap` and `unmap_vmas` (`zap_pte_range`, which frees swap entries too).
`handle_mm_fault` here is the per-page reference path; simulator/mm/gup.py runs whole ranges in
bulk with the same rules and falls back to this at the page where a limit is hit (or a page is
in swap).

Simplifications:
    x86-64 4-level paging with 4 KiB pages: one PTE page per 2 MiB, one PMD page per 1 GiB, one
    PUD page per 512 GiB of address space (the PGD is part of the task's footprint). No
    fault-around (it never fills holes anyway), no THP, no userfaultfd.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errno import ENOMEM
from .extents import ExtentMap
from .memcontrol import mod_memcg_state, page_counter_uncharge, swapin_memcg
from .page_alloc import free_pages
from .page_alloc_slowpath import alloc_charged_page, alloc_pages
from .shmem import ShmemInode, shmem_get_folio
from .swapfile import swap_free_nr

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct

PT_SHIFTS = (27, 18, 9)  # PUD, PMD, PTE page: pages of address space each covers (log2)
VM_FAULT_OK, VM_FAULT_OOM, VM_FAULT_SIGBUS = "ok", "oom", "sigbus"


def vmf_error(err: str) -> str:
    """Models `vmf_error()`: -ENOMEM -> VM_FAULT_OOM; everything else -> VM_FAULT_SIGBUS."""
    return VM_FAULT_OOM if err == ENOMEM else VM_FAULT_SIGBUS


@dataclass(eq=False)
class VMA:
    """A mapping: `struct vm_area_struct` plus which of its pages have PTEs.

    Page indices are relative to the VMA. A page is in at most one of `mapped` (a PTE to the
    file's page-cache folio), `cow` (a PTE to a private anonymous page), `zero` (a PTE to
    ZERO_PAGE) and `swap` (a swap PTE: a private anonymous page in swap, tagged with the
    memcg recorded at swap-out as a `Machine.memcg_tag` tag).
    """

    name: str
    start: int
    npages: int
    file: ShmemInode | None
    pgoff: int = 0
    read: bool = True
    write: bool = False
    shared: bool = True
    locked: bool = False
    lockonfault: bool = False
    maywrite: bool = False
    accounted: int = 0
    owner: Any = None
    mapped: ExtentMap = field(default_factory=ExtentMap)
    cow: ExtentMap = field(default_factory=ExtentMap)
    zero: ExtentMap = field(default_factory=ExtentMap)
    swap: ExtentMap = field(default_factory=ExtentMap)

    def pte_present(self, idx: int, write: bool) -> bool:
        """Whether an access needs no fault: the PTE is there and allows it."""
        if write:
            return self.cow.has(idx) if not self.shared else self.mapped.has(idx)
        return self.mapped.has(idx) or self.cow.has(idx) or self.zero.has(idx)


@dataclass(eq=False)
class MM:
    """An address space: `struct mm_struct` counters and VMAs.

    Attributes:
        rss: MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES.
        swapents: MM_SWAPENTS, the swap PTEs of private anonymous pages (shmem pages in swap
            are the file's, and count for nobody).
        pt: page-table pages present, per level shift, as extents of region numbers.
        pt_nodes: page-table pages per node (`mm_pgtables_bytes` / PAGE_SIZE in total).
        anon_nodes: private anonymous pages per node (footprint, COW copies, anonymous maps).
        kernel_pages: the task's charged kernel memory (stack, task_struct, ...).
    """

    rss: dict[str, int] = field(default_factory=lambda: {"anon": 0, "file": 0, "shmem": 0})
    swapents: int = 0
    pt: dict[int, ExtentMap] = field(default_factory=lambda: {s: ExtentMap() for s in PT_SHIFTS})
    pt_nodes: Counter[int] = field(default_factory=Counter)
    anon_nodes: Counter[int] = field(default_factory=Counter)
    kernel_nodes: Counter[int] = field(default_factory=Counter)
    total_vm: int = 0
    locked_vm: int = 0
    committed: int = 0
    vmas: dict[str, VMA] = field(default_factory=dict)
    mmap_base: int = 0
    mmf_oom_skip: bool = False

    def get_mm_rss(self) -> int:
        """Models `get_mm_rss()`: anon + file + shmem pages mapped."""
        return self.rss["anon"] + self.rss["file"] + self.rss["shmem"]

    def pgtables_pages(self) -> int:
        """`mm_pgtables_bytes(mm) / PAGE_SIZE`."""
        return sum(self.pt_nodes.values())

    def get_unmapped_area(self, npages: int) -> int:
        """Top-down placement below the previous mapping (`arch_get_unmapped_area_topdown`)."""
        self.mmap_base -= npages
        return self.mmap_base


def pt_missing(mm: MM, va: int) -> list[int]:
    """The page-table levels (shifts) a fault at `va` must allocate, top level first."""
    return [s for s in PT_SHIFTS if not mm.pt[s].has(va >> s)]


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
        mm.pt_nodes[nid] += 1
        m.pgtable_stat(task.memcg, nid, 1)
    return True


def handle_mm_fault(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str
) -> Generator[Any, Any, str]:
    """Models `handle_mm_fault()` for one page of `vma`: VM_FAULT_OK, _OOM or _SIGBUS.

    Read fault on a shmem hole (shared or private): `shmem_fault` instantiates a zeroed
    page-cache folio, charged to the faulting task's memcg and accounted to its overcommit,
    and maps it. Private write: `do_cow_fault` allocates and charges the anonymous copy
    first, then the page-cache folio: two pages per hole. With the what-if
    `zero_page_sealed_holes`, a read fault on a hole of a write-sealed file maps ZERO_PAGE.
    A swap PTE goes to `do_swap_page`; a file page in swap is swapped in by `shmem_fault`
    (`shmem_swapin_folio`): never the zero page, it is not a hole.
    """
    if vma.pte_present(idx, write):
        return VM_FAULT_OK
    va = vma.start + idx
    if not (yield from pte_alloc(m, task, va, ctx)):
        return VM_FAULT_OOM
    if vma.swap.has(idx):
        return (yield from do_swap_page(m, task, vma, idx, write, ctx))
    inode = vma.file
    if inode is None:
        return (yield from do_anonymous_page(m, task, vma, idx, write, ctx))
    index = vma.pgoff + idx
    if index >= inode.size_pages(m.page_size):
        return VM_FAULT_SIGBUS
    present = inode.pages.has(index)
    swapped = not present and inode.swap.has(index)
    if write and not vma.shared:
        # do_cow_fault()/wp_page_copy(): the anonymous copy is allocated and charged first.
        nid = yield from alloc_charged_page(m, task, ctx)
        if nid is None:
            return VM_FAULT_OOM
        if not present and not vma.zero.has(idx):
            err = yield from shmem_get_folio(m, task, inode, index, ctx)
            if err:
                page_counter_uncharge(m, task.memcg, 1)
                free_pages(m, nid, 1)
                return vmf_error(err)
        unmap_pages(m, task, vma, idx, idx + 1)
        vma.cow.fill(idx, idx + 1, nid)
        m.anon_stat(task, nid, 1)
        return VM_FAULT_OK
    if not present:
        if (not write and not swapped and m.what_if.zero_page_sealed_holes
                and inode.write_sealed()):
            vma.zero.fill(idx, idx + 1, 0)
            return VM_FAULT_OK
        err = yield from shmem_get_folio(m, task, inode, index, ctx)
        if err:
            return vmf_error(err)
    if vma.zero.has(idx):
        vma.zero.remove(idx, idx + 1)
    map_file_pages(m, task, vma, idx, idx + 1)
    return VM_FAULT_OK


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
    nid = yield from alloc_charged_page(m, task, ctx, memcg)
    if nid is None:
        return VM_FAULT_OOM
    if vma.swap.owner_of(idx) != tag:
        # The entry went while we slept (MADV_DONTNEED, truncate): pte_same() fails; refault.
        page_counter_uncharge(m, memcg, 1)
        free_pages(m, nid, 1)
        return (yield from handle_mm_fault(m, task, vma, idx, write, ctx))
    vma.swap.remove(idx, idx + 1)
    task.mm.swapents -= 1
    swap_free_nr(m, m.tagged_memcgs[tag], 1)
    vma.cow.fill(idx, idx + 1, nid)
    m.anon_stat(task, nid, 1)
    m.swap.pswpin += 1
    return VM_FAULT_OK  # the read's time (`costs.swapin`) passes in the caller, after


def do_anonymous_page(
    m: Machine, task: TaskStruct, vma: VMA, idx: int, write: bool, ctx: str
) -> Generator[Any, Any, str]:
    """Models `do_anonymous_page()`: a read maps ZERO_PAGE, a write allocates and charges."""
    if not write:
        vma.zero.fill(idx, idx + 1, 0)
        return VM_FAULT_OK
    nid = yield from alloc_charged_page(m, task, ctx)
    if nid is None:
        return VM_FAULT_OOM
    vma.zero.remove(idx, idx + 1)
    vma.cow.fill(idx, idx + 1, nid)
    m.anon_stat(task, nid, 1)
    return VM_FAULT_OK


def map_file_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """Map the page-cache folios of `[a, b)` (all present): MM_SHMEMPAGES and file_mapped."""
    added = vma.mapped.fill(a, b, 0)
    task.mm.rss["shmem"] += added
    mod_memcg_state(task.memcg, "file_mapped", added)
    return added


def unmap_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> None:
    """Models `zap_page_range_single()` over `[a, b)` for file and zero PTEs (not COW pages)."""
    n = sum(vma.mapped.remove(a, b).values())
    task.mm.rss["shmem"] -= n
    mod_memcg_state(task.memcg, "file_mapped", -n)
    vma.zero.remove(a, b)


def free_cow_pages(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """Free the private anonymous pages of `[a, b)`: uncharge and give back to their nodes.

    Their swap entries go too (`zap_pte_range` -> `free_swap_and_cache`): the slots, the swap
    charge of the memcg recorded for them, and MM_SWAPENTS.
    """
    for tag, n in vma.swap.remove(a, b).items():
        swap_free_nr(m, m.tagged_memcgs[tag], n)
        task.mm.swapents -= n
    removed = vma.cow.remove(a, b)
    total = 0
    for nid, n in removed.items():
        m.anon_stat(task, nid, -n)
        page_counter_uncharge(m, task.memcg, n)
        free_pages(m, nid, n)
        total += n
    return total
