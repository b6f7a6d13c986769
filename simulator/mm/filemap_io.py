"""Reading, faulting and writing a disk file's page cache: the allocating half of mm/filemap.c
(v6.18).

`filemap_read` (read(2)), `filemap_fault` (a fault on a mapping of the file) and
`generic_perform_write` (write(2)) find each page in the page cache or read it in: a new folio
is allocated, charged to the memcg of the task that reads it (`filemap_add_folio` ->
`mem_cgroup_charge`, which reclaims and may OOM as any charge), read from disk
(`costs.disk_read` a page) and put on the inactive file list. A page that was evicted recently
is a refault (`workingset_refault`), counted in the memcg and activated when its refault
distance says it belonged to the workingset. The walk over a range is the engine's
(`Machine.engine.file_range`, and `faultin_range` for faults): the bulk engine takes runs of
pages in closed form, and the page where a limit binds (or a refault) goes through
`filemap_get_folio` (`filemap_fault`) here. Each page read from disk counts in the task's read
accounting (`task_io_account_read`), from which the walkers take the reads' time.

Simplifications:
    No readahead, no partial pages: a write(2) never reads the page it overwrites, and the
    page cache past the old i_size needs no disk read either way. A written folio is not marked
    accessed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .booking import file_folios_added
from .errno import EINVAL, ENOMEM
from .lru import LRU_ACTIVE_FILE, LRU_INACTIVE_FILE
from .memcontrol import CTX_SYSCALL, page_counter_uncharge
from .mm_types import VM_FAULT_OK, VM_FAULT_OOM, VM_FAULT_SIGBUS
from .page_alloc import free_pages
from .page_alloc_slowpath import alloc_charged_page
from .pagecache import (
    DiskInode,
    count_memcg_event,
    folio_mark_accessed,
    wb_queue_range,
    workingset_age_nonresident,
    workingset_test_recent,
)

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def filemap_add_folio(
    m: Machine, task: TaskStruct, inode: DiskInode, index: int, ctx: str, write: bool = False
) -> Generator[Any, Any, str | None]:
    """Models `filemap_add_folio()` in mm/filemap.c (v6.18) for one new folio at `index`:
    allocate and charge it to the task's memcg (either may reclaim or OOM: ENOMEM), then put it
    in the page cache. A read's folio with a shadow entry is a refault (`workingset_refault`);
    a write's (`__GFP_WRITE`) is not. Then `folio_add_lru`: to the inactive file list, or the
    active one for a refault found recent. A read(2) folio gets PG_referenced (`filemap_read`'s
    `folio_mark_accessed`), a fault's a young PTE (the fault maps it). None when the page is
    in the cache (added here or, while this task slept in reclaim, by another), else the errno.
    """
    nid = yield from alloc_charged_page(m, task, ctx)
    if nid is None:
        return ENOMEM
    if inode.pages.has(index) or index >= inode.size_pages(m.page_size) and not write:
        # Another task added this folio meanwhile (-EEXIST: ours is dropped and theirs found),
        # or the file was truncated below it.
        page_counter_uncharge(m, task.memcg, 1)
        free_pages(m, nid, 1)
        return None if inode.pages.has(index) else EINVAL
    lru, workingset = LRU_INACTIVE_FILE, False
    if not write and inode.shadow.has(index):
        active, workingset = workingset_refault(m, task, inode, index, nid)
        if active:
            lru = LRU_ACTIVE_FILE
    file_folios_added(m, inode, task.memcg, nid, index, index + 1, lru,
                      young=ctx != CTX_SYSCALL, referenced=ctx == CTX_SYSCALL and not write,
                      workingset=workingset)
    if not write:
        task.ioac_read_pages += 1  # `task_io_account_read`: the page is read from disk
        # `filemap_read_folio`: the read of a PG_workingset folio is a memory stall
        # (thrashing); the walker lets its time pass inside psi_memstall_enter/leave.
        task.ioac_thrash_pages += workingset
    return None


def workingset_refault(m: Machine, task: TaskStruct, inode: DiskInode, index: int,
                       nid: int) -> tuple[bool, bool]:
    """Models `workingset_refault()` in mm/workingset.c (v6.18): count the refault in the memcg
    that will own the folio (memory.stat workingset_refault_file); if the shadow entry is recent
    (`workingset_test_recent`), the folio is activated: counted (workingset_activate_file) and
    its lruvec's clock ticks; if it also had PG_workingset when it was evicted (it had been on
    the active list: the shadow's workingset bit), it gets PG_workingset again and counts in
    workingset_restore_file. Returns (activated, PG_workingset)."""
    count_memcg_event(task.memcg, "workingset_refault", 1)
    if not workingset_test_recent(m, inode, index):
        return False, False
    workingset_age_nonresident(m, task.memcg, nid, 1)
    count_memcg_event(task.memcg, "workingset_activate", 1)
    tag = inode.shadow.owner_of(index)
    assert tag is not None
    workingset = inode.shadow_tags[tag][3]
    if workingset:
        count_memcg_event(task.memcg, "workingset_restore", 1)
    return True, workingset


def filemap_get_folio(
    m: Machine, task: TaskStruct, inode: DiskInode, index: int, write: bool
) -> Generator[Any, Any, str | None]:
    """The one-page path of `filemap_read` (`filemap_get_pages`) and of
    `generic_perform_write` (`write_begin`): a cached folio is marked accessed by a read;
    else a new one is added (`filemap_add_folio`). None when the page is in the cache."""
    if inode.pages.has(index):
        if not write:
            folio_mark_accessed(m, inode, index, index + 1)
        return None
    return (yield from filemap_add_folio(m, task, inode, index, CTX_SYSCALL, write))


def filemap_read(
    m: Machine, task: TaskStruct, inode: DiskInode, a: int, b: int
) -> Generator[Any, Any, tuple[int, int, str | None]]:
    """Models `filemap_read()` in mm/filemap.c (v6.18) over pages `[a, b)`, up to i_size:
    (pages copied, of which read from disk, errno or None). Each cached folio is marked
    accessed (`folio_mark_accessed`: referenced, then active on the second read); each missing
    one is read in (`filemap_add_folio`). The error (ENOMEM: the charge failed) is returned only
    when nothing was copied, else the read is short. A page costs `costs.read`, plus
    `costs.disk_read` when read from disk; the time passes in the engine's walk."""
    end = min(b, inode.size_pages(m.page_size))
    if end <= a:
        return 0, 0, None
    return (yield from m.engine.file_range(m, task, inode, a, end, False))


def filemap_fault(
    m: Machine, task: TaskStruct, inode: DiskInode, index: int, ctx: str
) -> Generator[Any, Any, str]:
    """Models `filemap_fault()` in mm/filemap.c (v6.18) for a page not in the page cache: the
    folio is read from disk into the cache (`filemap_add_folio`, charged to the faulting task's
    memcg; its disk read's time passes in the walker, after the page is mapped). -ENOMEM is
    VM_FAULT_OOM; a page past a new i_size is VM_FAULT_SIGBUS."""
    err = yield from filemap_add_folio(m, task, inode, index, ctx)
    if err is None:
        return VM_FAULT_OK
    return VM_FAULT_OOM if err == ENOMEM else VM_FAULT_SIGBUS


def filemap_write(
    m: Machine, task: TaskStruct, inode: DiskInode, off: int, length: int
) -> Generator[Any, Any, tuple[int, str | None]]:
    """Models `generic_perform_write()` in mm/filemap.c (v6.18) on a disk file, bytes
    `[off, off + length)`: each page found or added to the page cache (charged to the writer)
    and dirtied; i_size grows to where the write got. The dirty pages are queued for writeback
    (`balance_dirty_pages` wakes the flusher), which cleans them at `costs.writeback` a page.
    Returns (bytes written, errno or None)."""
    ps = m.page_size
    a, b = off // ps, -(-(off + length) // ps)
    yield m.env.timeout(m.costs.syscall)
    done, _, err = yield from m.engine.file_range(m, task, inode, a, b, True)
    end = off + length if done == b - a else max(off, (a + done) * ps)
    inode.size = max(inode.size, end)
    if done:
        wb_queue_range(m, inode, a, a + done)
    return end - off, err
