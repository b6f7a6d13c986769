"""Address spaces as the memory paths see them: `struct vm_area_struct` and `struct mm_struct`.

Models include/linux/mm_types.h (v6.18): a VMA with which of its pages have PTEs, and an mm
with its rss counters, page tables and VMAs. The paths that change them are in memory.py
(faults, zapping), mmap.py (mmap, munmap, exit) and mlock.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .extents import ExtentMap

if TYPE_CHECKING:
    from .shmem_inode import ShmemInode

PT_SHIFTS = (27, 18, 9)  # PUD, PMD, PTE page: pages of address space each covers (log2)
VM_FAULT_OK, VM_FAULT_OOM, VM_FAULT_SIGBUS = "ok", "oom", "sigbus"  # a fault's vm_fault_t


@dataclass(eq=False)
class VMA:
    """A mapping: `struct vm_area_struct` plus which of its pages have PTEs.

    Page indices are relative to the VMA. A page is in at most one of `mapped` (a PTE to the
    file's page-cache folio), `cow` (a PTE to a private anonymous page), `zero` (a PTE to
    ZERO_PAGE) and `swap` (a swap PTE: a private anonymous page in swap, tagged with the
    memcg recorded at swap-out as a `Machine.memcg_tag` tag).

    `mlocked` holds the pages with VM_LOCKED: mlock(2) of a range splits the kernel's VMA
    (`mlock_fixup`), which the model keeps whole with the locked pages marked; `locked` says
    whether any page is.
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
    lru: ExtentMap = field(default_factory=ExtentMap)  # page -> stamp of its LRU run (lru.py)
    young: ExtentMap = field(default_factory=ExtentMap)  # accessed bits of its anonymous pages
    mlocked: ExtentMap = field(default_factory=ExtentMap)  # pages with VM_LOCKED (see above)

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
    lib_start: int = 1 << 62  # the lowest page of the libraries, stack and the like above
    # mmap_base: VMAs the scenario does not name, whose page tables are never freed
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


def file_rss_item(inode: Any) -> str:
    """The rss counter a mapped page of `inode` counts in: MM_FILEPAGES for a disk file's page
    cache, MM_SHMEMPAGES for shmem (`mm_counter_file`)."""
    return "file" if getattr(inode, "file_lru", False) else "shmem"
