"""mlock, mlock2 and munlock.

Models mm/mlock.c (v6.18) `do_mlock`, `can_do_mlock`, `apply_vma_lock_flags`, and
`__mm_populate` with `__mlock_posix_error_return`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errno import EAGAIN, ENOMEM, EPERM
from .mm_types import VM_FAULT_OOM, VM_FAULT_SIGBUS, VMA
from .task import CAP_IPC_LOCK

if TYPE_CHECKING:
    from .task import TaskStruct


def can_do_mlock(task: TaskStruct) -> bool:
    """Models `can_do_mlock()`: a non-zero RLIMIT_MEMLOCK or CAP_IPC_LOCK."""
    return task.rlimit_memlock != 0 or task.capable(CAP_IPC_LOCK)


def mlock_check(task: TaskStruct, vma: VMA, npages: int) -> str | None:
    """`do_mlock()` before populating: EPERM without any right to lock; ENOMEM over the limit."""
    if not can_do_mlock(task):
        return EPERM
    already = vma.npages if vma.locked else 0
    if not task.capable(CAP_IPC_LOCK) and task.mm.locked_vm - already + npages > task.rlimit_memlock:
        return ENOMEM
    return None


def apply_vma_lock_flags(task: TaskStruct, vma: VMA, lock: bool, onfault: bool = False) -> None:
    """Set or clear VM_LOCKED (and VM_LOCKONFAULT); locked_vm follows."""
    if lock and not vma.locked:
        task.mm.locked_vm += vma.npages
    if not lock and vma.locked:
        task.mm.locked_vm -= vma.npages
    vma.locked, vma.lockonfault = lock, (lock and onfault)


def mlock_posix_error_return(status: str) -> str:
    """Models `__mlock_posix_error_return()`: EFAULT (SIGBUS class) -> ENOMEM, ENOMEM -> EAGAIN."""
    if status == VM_FAULT_SIGBUS:
        return ENOMEM
    if status == VM_FAULT_OOM:
        return EAGAIN
    return status
