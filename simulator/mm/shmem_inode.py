"""shmem inodes, and the half of mm/shmem.c that only frees and writes out (v6.18).

`struct shmem_sb_info` and `struct shmem_inode_info` (ShmemSb, ShmemInode), and the paths that
free a file's folios and swap entries (`shmem_free_range`: truncation, hole punch, eviction,
reclaim's `__remove_mapping`) or write folios out (`shmem_writeout`). Kept apart from the
allocating half (shmem.py), which charges memcgs and so reaches reclaim and the OOM killer:
reclaim frees shmem folios, and needs nothing above the page counters (as zap.py for PTEs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .booking import (
    shmem_folios_removed,
    shmem_swap_added,
    shmem_swap_removed,
    slab_pages_freed,
)
from .extents import ExtentMap
from .memcontrol import mem_cgroup_swapout, obj_stock_refill, page_counter_uncharge
from .page_alloc import free_pages
from .signal import wake_up_all
from .swapfile import folio_alloc_swap, swap_free_nr
from .xarray import XA_NODE_BYTES, XaShape, xa_erase, xa_new_nodes

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA

F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = "seal", "shrink", "grow"
F_SEAL_WRITE, F_SEAL_FUTURE_WRITE, F_SEAL_EXEC = "write", "future_write", "exec"
ALL_SEALS = (F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE, F_SEAL_FUTURE_WRITE, F_SEAL_EXEC)
WRITE_SEALS = (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE)


@dataclass(eq=False)
class ShmemSb:
    """A tmpfs mount: `struct shmem_sb_info` (max_blocks 0 = unlimited, the internal mount)."""

    path: str
    max_blocks: int = 0
    used_blocks: int = 0
    noswap: bool = False
    disk: bool = False  # a disk filesystem (pagecache.py): its files' data is on disk
    disk_files: dict[str, int] = field(default_factory=dict)  # name -> size in bytes, at mount

    def free_blocks(self) -> int | None:
        """Blocks left before ENOSPC, or None for an unlimited mount."""
        if not self.max_blocks:
            return None
        return max(0, self.max_blocks - self.used_blocks)


@dataclass(eq=False)
class ShmemInode:
    """A shmem inode: size, seals and its pages as extents owned by (memcg, node) tags.

    Attributes:
        size: i_size in bytes.
        pages: the folios present (page index -> owner tag; see `Machine.owner`).
        swap: the pages in swap (page index -> the memcg recorded at swap-out, as a
            `Machine.memcg_tag` tag). A hole is a page in neither.
        dirty: the folios present that are dirty (PG_dirty, tag 0): written (write(2), a
            write through a shared mapping), fallocated, or swapped in. The others are clean
            (a read fault's zeroed folio on a hole), and reclaim frees them.
        falloc: the folios present that are not uptodate (tag 0): fallocated on a hole and
            not yet written or faulted (`shmem_fallocate` leaves them !uptodate). Fault-around
            does not map them.
        xa: the page cache xarray's nodes, and the memcg each was charged to.
        noreserve: VM_NORESERVE: pages are accounted one by one as they are allocated (memfd,
            tmpfs files); otherwise the whole size was accounted at creation.
        linked: a tmpfs file has a name and outlives its fds; a memfd is unlinked and is
            evicted when the last fd and mapping are gone.
        i_mmap_writable: shared mappings with VM_MAYWRITE (`mapping_deny_writable` refuses
            F_SEAL_WRITE while it is positive).
    """

    ino: int
    name: str
    sb: ShmemSb
    size: int = 0
    pages: ExtentMap = field(default_factory=ExtentMap)
    swap: ExtentMap = field(default_factory=ExtentMap)
    dirty: ExtentMap = field(default_factory=ExtentMap)
    falloc: ExtentMap = field(default_factory=ExtentMap)
    xa: XaShape = field(default_factory=XaShape)
    seals: set[str] = field(default_factory=lambda: {F_SEAL_SEAL})
    noreserve: bool = True
    linked: bool = False
    holders: set[int] = field(default_factory=set)
    vmas: list[VMA] = field(default_factory=list)
    lru: ExtentMap = field(default_factory=ExtentMap)  # page -> stamp of its LRU run (lru.py)
    young: ExtentMap = field(default_factory=ExtentMap)  # pages a PTE has accessed since the
    # last reclaim scan looked (the accessed bits `folio_referenced` tests and clears)
    i_mmap_writable: int = 0
    evicted: bool = False

    def size_pages(self, page_size: int) -> int:
        """Pages below i_size (a partial last page counts)."""
        return -(-self.size // page_size)

    def max_index(self) -> int:
        """The highest index holding an entry (a folio or a swap entry), -1 for none."""
        return max(self.pages.last(), self.swap.last())

    def entries(self, a: int, b: int) -> int:
        """Entries (folios and swap entries) in `[a, b)`."""
        return self.pages.count(a, b) + self.swap.count(a, b)

    def write_sealed(self) -> bool:
        """F_SEAL_WRITE or F_SEAL_FUTURE_WRITE is set."""
        return bool(self.seals & set(WRITE_SEALS))


def shmem_unacct_blocks(m: Machine, inode: ShmemInode, pages: int) -> None:
    """Models `shmem_inode_unacct_blocks()`: give back commit and mount blocks."""
    if pages:
        inode.sb.used_blocks -= pages
        if inode.noreserve:
            m.overcommit.vm_acct_memory(-pages)


def xa_nodes_for(m: Machine, inode: ShmemInode | None, a: int, b: int) -> int:
    """The xarray nodes entries at every index of `[a, b)` would add now (0 when the kernel
    profile does not charge them, and for a disk file, whose nodes are not modelled)."""
    if inode is None or not m.profile.kmem_charged or inode.sb.disk:
        return 0
    return xa_new_nodes(inode.xa, inode.max_index(), a, b)


def shmem_xa_erase(m: Machine, inode: ShmemInode, a: int, b: int, max_before: int) -> None:
    """The entries of `[a, b)` are gone: free the nodes left empty (`xas_delete_node`,
    `xas_shrink`) and give their bytes back to the memcgs charged for them."""
    if not m.profile.kmem_charged:
        return
    freed = xa_erase(inode.xa, a, b, max_before, inode.max_index(), inode.entries)
    for tag, n in freed.items():
        xa_refill_stock(m, m.tagged_memcgs[tag], n * XA_NODE_BYTES)


def xa_refill_stock(m: Machine, memcg: Any, nbytes: int = 0) -> None:
    """`refill_obj_stock()`: freed bytes go back to the stock, and whole pages beyond one
    page's worth are uncharged and their slab pages freed."""
    pages = obj_stock_refill(memcg, nbytes, m.page_size)
    for nid in sorted(memcg.slab_nodes):
        take = min(pages, memcg.slab_nodes[nid])
        if take:
            slab_pages_freed(m, memcg, nid, take)
            page_counter_uncharge(m, memcg, take)
            free_pages(m, nid, take)
            pages -= take
    assert pages == 0


def shmem_free_range(m: Machine, inode: ShmemInode, a: int, b: int) -> int:
    """Free the folios in `[a, b)`: uncharge each owner memcg, give back blocks and commit.

    Swap entries in the range are freed too (`shmem_free_swap`): their slots and the swap
    charge of the memcg recorded for them; they were accounted like folios (alloced =
    resident + swapped), so their blocks and commit go back as well.
    """
    max_before = inode.max_index()
    removed = shmem_folios_removed(m, inode, a, b)
    total = 0
    for tag, n in removed.items():
        memcg, nid = m.owners[tag]
        page_counter_uncharge(m, memcg, n)
        free_pages(m, nid, n)
        total += n
    for tag, n in shmem_swap_removed(m, inode, a, b).items():
        swap_free_nr(m, m.tagged_memcgs[tag], n)
        total += n
    shmem_xa_erase(m, inode, a, b, max_before)
    shmem_unacct_blocks(m, inode, total)
    if total:
        wake_up_all(m.oom_waiters)
    return total


def shmem_writeout(m: Machine, inode: ShmemInode, runs: list[tuple[int, int]], task: str = "") -> int:
    """Models `shmem_writeout()` (with `mem_cgroup_swapout` on completion) for the present,
    evictable, already unmapped folios of `runs` (file pages), in order: each needs a swap
    slot and the swap charge of the memcg it is charged to. Returns how many went to swap.

    Refused (redirtied, no event) on a `noswap` mount or without any swap device. A folio
    that goes out leaves memory (uncharged, its node's page freed) and leaves its swap entry,
    recording its memcg, in the file; its tmpfs blocks and commit stay (alloced = resident +
    swapped). A folio refused a slot or swap charge stays in the page cache, unmapped.
    """
    if inode.sb.noswap or not m.swap.pages:
        return 0
    done = 0
    for a, b in runs:
        for s, e, tag in inode.pages.runs(a, b):
            memcg, nid = m.owners[tag]
            k = folio_alloc_swap(m, memcg, e - s, task)
            if k:
                shmem_folios_removed(m, inode, s, s + k)
                mem_cgroup_swapout(m, memcg, k)
                free_pages(m, nid, k)
                shmem_swap_added(m, inode, memcg, s, s + k)
                m.swap.pswpout += k
                done += k
    return done
