"""shmem/tmpfs files: sparse pages as extents, seals, the hole-fill pipeline, read, fallocate.

Models mm/shmem.c (v6.18): `shmem_get_folio_gfp` (SGP_READ/SGP_CACHE/SGP_WRITE/SGP_FALLOC),
`shmem_alloc_and_add_folio`, `shmem_inode_acct_blocks`/`shmem_acct_blocks`,
`shmem_file_read_iter`, `shmem_fallocate`, `shmem_setattr` (truncate), `shmem_undo_range`
(punch), `shmem_evict_inode`, swap-out (`shmem_writeout`) and swap-in (`shmem_swapin_folio`,
`shmem_swap_alloc_folio`); and the [2014] order of v3.15 `shmem_getpage_gfp`.

The page cache's xarray nodes (simulator/mm/xarray.py) are charged to the memcg of the task
that inserts a page (`shmem_add_to_page_cache`), through the memcg's byte stock for slab
objects (`obj_cgroup_charge`), and uncharged when truncation frees them.

Simplifications:
    Order-0 folios only (shmem THP defaults to never); one slab byte stock per memcg (the
    kernel keeps one per CPU, drained when another memcg uses that CPU), and a slab page taken
    from the allocator for each page the stock is charged (slabs are shared, not per memcg); no inode
    (nr_inodes) limit or quota; page contents are not modelled, so a fallocated page and a
    written page differ only in being uptodate, which nothing here reads (both are dirty:
    `ShmemInode.dirty`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .booking import (
    shmem_folios_added,
    shmem_swap_removed,
    slab_pages_added,
)
from .errno import EEXIST, EINVAL, ENOMEM, ENOSPC
from .memcg_charge import try_charge_memcg
from .memcontrol import (
    CTX_SYSCALL,
    obj_stock_pages,
    obj_stock_take,
    page_counter_uncharge,
    swapin_memcg,
)
from .mempolicy import shmem_ilx
from .mm_types import VM_FAULT_OK, VM_FAULT_OOM, VM_FAULT_SIGBUS
from .overcommit import security_vm_enough_memory_mm
from .page_alloc import free_pages
from .page_alloc_slowpath import alloc_charged_page, alloc_pages
from .shmem_inode import (
    ShmemInode,
    shmem_unacct_blocks,
    shmem_xa_erase,
    xa_nodes_for,
    xa_refill_stock,
)
from .swapfile import swap_free_nr
from .xarray import XA_NODE_BYTES, xa_insert

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct



def shmem_acct_size(m: Machine, task: TaskStruct, inode: ShmemInode, pages: int) -> str | None:
    """Models `shmem_acct_size()`: an object without VM_NORESERVE (SysV shm without
    SHM_NORESERVE, or with it in mode 2) charges its whole size to Committed_AS at creation."""
    if inode.noreserve:
        return None
    if not security_vm_enough_memory_mm(m, task, pages):
        return ENOMEM
    return None


def shmem_acct_blocks(m: Machine, task: TaskStruct, inode: ShmemInode, pages: int) -> str | None:
    """Models `shmem_inode_acct_blocks()`: commit (VM_NORESERVE) then the mount's max_blocks.

    The commit check uses the reserves of the task doing the fault/write/fallocate. Any
    failure is -ENOSPC (so that sparse mappings get SIGBUS, not OOM).
    """
    if inode.noreserve:
        if not security_vm_enough_memory_mm(m, task, pages):
            m.log.emit("vm_enough_memory_fail", task=task.name, pages=pages,
                       value=m.overcommit.committed_as)
            return ENOSPC
    free = inode.sb.free_blocks()
    if free is not None and free < pages:
        if inode.noreserve:
            m.overcommit.vm_acct_memory(-pages)
        m.log.emit("shmem_max_blocks", task=task.name, pages=pages, detail=inode.sb.path)
        return ENOSPC
    inode.sb.used_blocks += pages
    return None


def shmem_alloc_and_add_folio(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, ctx: str
) -> Generator[Any, Any, str | None]:
    """Models `shmem_alloc_and_add_folio()` for one order-0 page at a hole.

    v6.18 order: allocate (may global-OOM) -> charge the task's memcg (may memcg-OOM) -> add
    to the page cache (`shmem_add_to_page_cache`: xarray nodes, charged to the same memcg, may
    OOM too) -> account (commit, max_blocks: -ENOSPC). [2014] v3.15 `shmem_getpage_gfp`
    accounted first. Returns None when the page was added, else the errno name.
    """
    acct_first = m.profile.shmem_acct_before_alloc
    if acct_first:
        err = shmem_acct_blocks(m, task, inode, 1)
        if err:
            return err
    nid = yield from alloc_pages(m, task, shmem_ilx(inode, index))  # shmem_alloc_folio
    if nid is None:
        if acct_first:
            shmem_unacct_blocks(m, inode, 1)
        return ENOMEM
    err = yield from try_charge_memcg(m, task, task.memcg, 1, ctx)
    if not err and not (yield from xa_charge_stock(m, task, inode, index, ctx)):
        page_counter_uncharge(m, task.memcg, 1)
        err = ENOMEM
    if err:
        free_pages(m, nid, 1)
        if acct_first:
            shmem_unacct_blocks(m, inode, 1)
        return err
    if inode.evicted or inode.pages.has(index):
        # We slept in reclaim/OOM, and meanwhile the file was evicted (drop the page: EINVAL)
        # or another task added this folio (`shmem_add_to_page_cache` fails with -EEXIST: drop
        # ours; the caller's retry in `shmem_get_folio_gfp` finds theirs).
        if acct_first:
            shmem_unacct_blocks(m, inode, 1)
        page_counter_uncharge(m, task.memcg, 1)
        free_pages(m, nid, 1)
        xa_refill_stock(m, task.memcg)
        return EINVAL if inode.evicted else None
    shmem_xa_insert(m, task.memcg, inode, index, index + 1)
    if not acct_first:
        err = shmem_acct_blocks(m, task, inode, 1)
        if err:
            # `filemap_remove_folio`: the entry goes, and the nodes it needed with it.
            shmem_xa_erase(m, inode, index, index + 1, max(index, inode.max_index()))
            page_counter_uncharge(m, task.memcg, 1)
            free_pages(m, nid, 1)
            return err
    shmem_folios_added(m, inode, task.memcg, nid, index, index + 1, young=ctx != CTX_SYSCALL,
                       referenced=ctx == CTX_SYSCALL)
    return None


def xa_charge_stock(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, ctx: str
) -> Generator[Any, Any, bool]:
    """Models the `obj_cgroup_charge()` of the xarray nodes `xas_nomem` allocates for an entry
    at `index`: while the task's memcg's byte stock does not cover them, allocate a slab page
    and charge it (either may OOM). False when that failed (-ENOMEM)."""
    memcg = task.memcg
    while True:
        nbytes = xa_nodes_for(m, inode, index, index + 1) * XA_NODE_BYTES
        if obj_stock_pages(memcg, nbytes, m.page_size) == 0:
            return True
        nid = yield from alloc_charged_page(m, task, ctx, memcg)
        if nid is None:
            return False
        xa_charge_taken(m, memcg, [(nid, 1)])


def xa_stock_pages(m: Machine, memcg: Any, nodes: int) -> int:
    """Slab pages the memcg is charged for `nodes` new nodes, given its byte stock now."""
    return obj_stock_pages(memcg, nodes * XA_NODE_BYTES, m.page_size) if nodes else 0


def xa_charge_taken(m: Machine, memcg: Any, parts: list[tuple[int, int]]) -> None:
    """Book slab pages taken and charged (`(nid, pages)` each) into the memcg's byte stock."""
    for nid, n in parts:
        if n:
            memcg.obj_stock += n * m.page_size
            slab_pages_added(m, memcg, nid, n)


def shmem_xa_insert(m: Machine, memcg: Any, inode: ShmemInode, a: int, b: int) -> None:
    """Entries are going in at every index of `[a, b)` (`shmem_add_to_page_cache` ->
    `xas_create`): create the nodes they need, their bytes taken from `memcg`'s stock
    (charged beforehand)."""
    if not m.profile.kmem_charged:
        return
    k = xa_insert(inode.xa, inode.max_index(), a, b, m.memcg_tag(memcg))
    obj_stock_take(memcg, k * XA_NODE_BYTES, 0, m.page_size)


def shmem_swapin_folio(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, ctx: str
) -> Generator[Any, Any, str | None]:
    """Models `shmem_swapin_folio()` -> `shmem_swap_alloc_folio()` for one page in swap, on a
    SWP_SYNCHRONOUS_IO device: allocate (may global-OOM), charge (`mem_cgroup_swapin_charge_folio`:
    the memcg recorded at swap-out if online, else the task's; may memcg-OOM there), read,
    then put the folio in the page cache in place of the swap entry and free the entry (slot
    and swap charge).

    No commit or tmpfs-size accounting: the page was accounted when first instantiated. The
    read's time (`costs.swapin`) is the caller's to let pass, after the state, as the walkers
    do for every page. Returns None when the page is in, an errno name (ENOMEM) on failure, or
    EEXIST when, while this task slept in reclaim or OOM, the entry went away (swapped in by
    another task, or the range truncated): the caller looks again, as `shmem_get_folio_gfp`
    repeats.
    """
    tag = inode.swap.owner_of(index)
    assert tag is not None
    memcg = swapin_memcg(m.tagged_memcgs[tag], task.memcg)
    nid = yield from alloc_charged_page(m, task, ctx, memcg, shmem_ilx(inode, index))
    if nid is None:
        return ENOMEM
    if inode.evicted or inode.swap.owner_of(index) != tag:
        page_counter_uncharge(m, memcg, 1)
        free_pages(m, nid, 1)
        return EINVAL if inode.evicted else EEXIST
    shmem_swap_removed(m, inode, index, index + 1)
    swap_free_nr(m, m.tagged_memcgs[tag], 1)
    shmem_folios_added(m, inode, memcg, nid, index, index + 1, dirty=True,
                       young=ctx != CTX_SYSCALL)
    m.swap.pswpin += 1
    return None


def shmem_get_folio(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, ctx: str,
    past_eof: bool = False,
) -> Generator[Any, Any, str | None]:
    """Models `shmem_get_folio_gfp()` for a page that is not present: swap it in if it is in
    swap, else instantiate the hole (`shmem_alloc_and_add_folio`). None when the page is there.

    After a lost race (EEXIST) the page is looked up again; a fault or read (not `past_eof`,
    which fallocate and write are) then finds it past a new i_size: -EINVAL.
    """
    retried = False
    while True:
        if inode.pages.has(index):
            return None
        if retried and not past_eof and index >= inode.size_pages(m.page_size):
            return EINVAL
        if inode.swap.has(index):
            err = yield from shmem_swapin_folio(m, task, inode, index, ctx)
            if err == EEXIST:
                retried = True
                continue
            return err
        return (yield from shmem_alloc_and_add_folio(m, task, inode, index, ctx))


def shmem_fault(
    m: Machine, task: TaskStruct, inode: ShmemInode, index: int, ctx: str
) -> Generator[Any, Any, str]:
    """Models `shmem_fault()` for file page `index`, not present: `shmem_get_folio_gfp`
    (SGP_CACHE) instantiates the hole or swaps the page in, and an error becomes the fault's
    result through `vmf_error`: -ENOMEM is VM_FAULT_OOM, anything else (-ENOSPC from the
    overcommit or the mount's size, -EINVAL past a new i_size) VM_FAULT_SIGBUS."""
    err = yield from shmem_get_folio(m, task, inode, index, ctx)
    return VM_FAULT_OK if err is None else vmf_error(err)


def vmf_error(err: str) -> str:
    """Models `vmf_error()`: -ENOMEM -> VM_FAULT_OOM; everything else -> VM_FAULT_SIGBUS."""
    return VM_FAULT_OOM if err == ENOMEM else VM_FAULT_SIGBUS


def shmem_file_read_iter(
    m: Machine, task: TaskStruct, inode: ShmemInode, a: int, b: int
) -> Generator[Any, Any, tuple[int, int, int, str | None, float]]:
    """Models `shmem_file_read_iter()` over pages `[a, b)`: (pages copied, of which holes, of
    which swapped in, errno or None, time still to pass).

    SGP_READ never allocates for a hole: it is copied from ZERO_PAGE. A page in swap is
    swapped in (`shmem_swapin_folio`, charged as there; ENOMEM possible). The error is
    returned only when nothing was copied yet, else the count so far (a short read). Reading
    stops at i_size (EOF). A page costs `costs.read`, plus `costs.swapin` if swapped in. With
    no page in swap nothing sleeps and the time is returned for the caller to let pass; else
    the engine's walker (`read_range`) takes the range by slices, as for faults.
    """
    end = min(b, inode.size_pages(m.page_size))
    if end <= a:
        return 0, 0, 0, None, 0.0
    if inode.swap.first_present(a, end) is None:
        return end - a, inode.pages.holes(a, end), 0, None, (end - a) * m.costs.read
    return (yield from m.engine.read_range(m, task, inode, a, end))


def shmem_acct_taken(m: Machine, inode: ShmemInode, n: int) -> None:
    """`shmem_inode_acct_blocks` for n pages a bulk step found room for: commit (VM_NORESERVE)
    and mount blocks, which cannot refuse them."""
    if n:
        inode.sb.used_blocks += n
        if inode.noreserve:
            m.overcommit.vm_acct_memory(n)
