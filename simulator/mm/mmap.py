"""Creating and removing mappings: mmap, munmap, mprotect.

Models mm/mmap.c and mm/vma.c (v6.18) `do_mmap`/`mmap_region` (commit accounting of private
writable mappings, `mlock_future_ok`, VM_MAYWRITE and `mapping_map_writable`), `shmem_mmap` /
`memfd_check_seals_mmap`, `do_munmap`, `mprotect_fixup`'s VM_MAYWRITE check, `exit_mmap`, and
`unlink_file_vma` with the `fput` of `remove_vma`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .booking import kernel_pages_freed
from .errno import EACCES, EAGAIN, ENOMEM
from .inode import iput
from .memcontrol import page_counter_uncharge
from .memfd import memfd_check_seals_mmap
from .mm_types import PT_SHIFTS, VMA
from .mmu_gather import tlb_remove_table
from .oom_kill import __oom_reap_task_mm
from .overcommit import OVERCOMMIT_NEVER, security_vm_enough_memory_mm
from .page_alloc import free_pages
from .shmem_inode import ShmemInode
from .task import CAP_IPC_LOCK
from .zap import free_cow_pages, free_pgtables, unmap_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def mlock_future_ok(task: TaskStruct, npages: int) -> bool:
    """Models `mlock_future_ok()`: locked_vm + npages within RLIMIT_MEMLOCK, or CAP_IPC_LOCK."""
    if task.capable(CAP_IPC_LOCK):
        return True
    return task.mm.locked_vm + npages <= task.rlimit_memlock


def do_mmap(
    m: Machine, task: TaskStruct, name: str, inode: ShmemInode | None, npages: int, pgoff: int,
    *, read: bool, write: bool, shared: bool, locked: bool, fd_writable: bool = True,
    noreserve: bool = False,
) -> tuple[VMA | None, str | None]:
    """Models `do_mmap()` for a shmem file or private anonymous memory: (vma, errno).

    A shared writable map of a write-sealed file is EPERM; of a read-only fd, EACCES. A private
    writable mapping charges its whole length to Committed_AS now (ENOMEM when refused); a
    shared mapping from a writable fd gets VM_MAYWRITE unless the file is write-sealed.
    MAP_LOCKED over RLIMIT_MEMLOCK is EAGAIN.
    """
    if inode is not None:
        err = memfd_check_seals_mmap(inode, shared, write)
        if err:
            return None, err
        if shared and write and not fd_writable:
            return None, EACCES
    if locked and not mlock_future_ok(task, npages):
        return None, EAGAIN
    accounted = 0
    if write and not shared and not (noreserve and m.overcommit.mode != OVERCOMMIT_NEVER):
        if not security_vm_enough_memory_mm(m, task, npages):
            return None, ENOMEM
        accounted = npages
    mm = task.mm
    vma = VMA(
        name=name, start=mm.get_unmapped_area(npages), npages=npages, file=inode, pgoff=pgoff,
        read=read, write=write, shared=shared, locked=locked, accounted=accounted, owner=task,
    )
    if inode is not None and shared and fd_writable and not inode.write_sealed():
        vma.maywrite = True
        inode.i_mmap_writable += 1
    if inode is not None:
        inode.vmas.append(vma)
    mm.committed += accounted
    mm.total_vm += npages
    if locked:
        mm.locked_vm += npages
        vma.mlocked.fill(0, npages, 0)
    mm.vmas[name] = vma
    return vma, None


def do_munmap(m: Machine, task: TaskStruct, vma: VMA) -> None:
    """Models `do_munmap()` of a whole VMA: zap PTEs, free COW pages, free the page tables
    only it used (`free_pgtables`: uncharged after an RCU grace period), unaccount, drop the
    file."""
    mm = task.mm
    unmap_pages(m, task, vma, 0, vma.npages)
    free_cow_pages(m, task, vma, 0, vma.npages)
    free_pgtables(m, task, vma)
    if vma.accounted:
        m.overcommit.vm_acct_memory(-vma.accounted)
        mm.committed -= vma.accounted
    mm.total_vm -= vma.npages
    mm.locked_vm -= len(vma.mlocked)
    del mm.vmas[vma.name]
    unlink_file_vma(m, vma)


def mprotect(m: Machine, task: TaskStruct, vma: VMA, read: bool, write: bool) -> str | None:
    """Models `mprotect_fixup()`: making a shared mapping writable needs VM_MAYWRITE (EACCES).

    Making a private mapping writable charges its length to Committed_AS (ENOMEM if refused).
    """
    if write and not vma.write:
        if vma.shared and vma.file is not None and not vma.maywrite:
            return EACCES
        if not vma.shared and not vma.accounted:
            if not security_vm_enough_memory_mm(m, task, vma.npages):
                return ENOMEM
            vma.accounted = vma.npages
            task.mm.committed += vma.npages
    vma.read, vma.write = read, write
    return None


def unlink_file_vma(m: Machine, vma: VMA) -> None:
    """Models `unlink_file_vma()` and `remove_vma()`'s `fput()`: the mapping leaves the file's
    i_mmap (dropping its VM_MAYWRITE count, `mapping_unmap_writable`) and its file reference
    goes, which may evict an unlinked file (`iput`)."""
    inode = vma.file
    if inode is None:
        return
    if vma in inode.vmas:
        inode.vmas.remove(vma)
    if vma.shared and vma.maywrite:
        inode.i_mmap_writable -= 1
    iput(m, inode)


def exit_mmap(m: Machine, task: TaskStruct) -> None:
    """Models `exit_mmap()`: the whole address space goes when its last user exits.

    Every VMA is unmapped and unlinked from its file; private pages (`__oom_reap_task_mm`'s
    work) and the task's kernel pages are freed and uncharged; the private writable commit is
    unaccounted; MMF_OOM_SKIP is set, as the OOM killer has nothing left to take. The page
    tables leave the mm now but are uncharged and freed only after an RCU grace period
    (`free_pgtables` -> `tlb_remove_table`, after MMF_OOM_SKIP): a charger waiting on this
    victim can meet its limit again before then, and kill a second task.
    """
    mm = task.mm
    for name in list(mm.vmas):
        vma = mm.vmas.pop(name)
        unmap_pages(m, task, vma, 0, vma.npages)
        free_cow_pages(m, task, vma, 0, vma.npages)
        unlink_file_vma(m, vma)
    __oom_reap_task_mm(m, task)
    for sh in PT_SHIFTS:
        mm.pt[sh].clear()
    tlb_remove_table(m, task, mm.pgtables_pages())
    mm.pt_nodes.clear()
    for nid, n in list(mm.kernel_nodes.items()):
        kernel_pages_freed(m, task, nid, n)
        page_counter_uncharge(m, task.memcg, m.kmem_charge(n))
        free_pages(m, nid, n)
    mm.kernel_nodes.clear()
    if mm.committed:
        m.overcommit.vm_acct_memory(-mm.committed)
        mm.committed = 0
    mm.mmf_oom_skip = True
