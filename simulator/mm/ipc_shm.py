"""SysV shared memory: `newseg` in ipc/shm.c (v6.18)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .overcommit import OVERCOMMIT_NEVER
from .shmem import shmem_acct_size
from .shmem_inode import ShmemInode

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


SHM_PREFIX = "SYSV:"  # a segment's file name: "SYSV%08x" in the kernel, here its key


def shm_file(inode: ShmemInode) -> bool:
    """Whether `inode` is a SysV segment's file: a VMA attaching it has `shm_vm_ops`
    (ipc/shm.c, v6.18), whose `map_pages` is NULL, so its read faults do no fault-around."""
    return inode.name.startswith(SHM_PREFIX)


def newseg(m: Machine, task: TaskStruct, key: str, size: int,
           noreserve: bool) -> tuple[ShmemInode | None, str | None]:
    """Models `newseg()` in ipc/shm.c (v6.18): shmget(2) creating a segment of `size` bytes.

    VM_NORESERVE only with SHM_NORESERVE outside overcommit mode 2; otherwise the whole size
    is accounted now (`shmem_acct_size`: ENOMEM in mode 2 when it does not fit). The segment
    is a file on the internal mount and outlives its creator (there is no IPC_RMID here).
    Returns the segment's inode, or the errno.
    """
    npages = -(-size // m.page_size)
    inode = ShmemInode(ino=m.next_ino, name=f"{SHM_PREFIX}{key}", sb=m.internal_mount, size=size,
                       linked=True)
    inode.noreserve = noreserve and m.overcommit.mode != OVERCOMMIT_NEVER
    m.next_ino += 1
    err = shmem_acct_size(m, task, inode, npages)
    if err:
        return None, err
    return inode, None
