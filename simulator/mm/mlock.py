"""mlock, mlock2 and munlock.

Models mm/mlock.c (v6.18) `do_mlock`, `can_do_mlock`, `apply_vma_lock_flags`, and
`__mm_populate` with `__mlock_posix_error_return`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errno import EAGAIN, ENOMEM, EPERM
from .extents import ExtentMap
from .lru import lru_putback_range
from .mm_types import VM_FAULT_OOM, VM_FAULT_SIGBUS, VMA
from .task import CAP_IPC_LOCK

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def can_do_mlock(task: TaskStruct) -> bool:
    """Models `can_do_mlock()`: a non-zero RLIMIT_MEMLOCK or CAP_IPC_LOCK."""
    return task.rlimit_memlock != 0 or task.capable(CAP_IPC_LOCK)


def mlock_check(task: TaskStruct, vma: VMA, a: int, b: int) -> str | None:
    """`do_mlock()` before populating VMA pages `[a, b)`: EPERM without any right to lock;
    ENOMEM when locked_vm plus the pages not yet locked would pass RLIMIT_MEMLOCK
    (`count_mm_mlocked_page_nr` leaves out what is already locked)."""
    if not can_do_mlock(task):
        return EPERM
    already = vma.mlocked.count(a, b)
    if not task.capable(CAP_IPC_LOCK) and task.mm.locked_vm - already + (b - a) > task.rlimit_memlock:
        return ENOMEM
    return None


def apply_vma_lock_flags(task: TaskStruct, vma: VMA, lock: bool, onfault: bool = False,
                         a: int = 0, b: int | None = None) -> None:
    """Models `apply_vma_lock_flags()`/`mlock_fixup()`: set or clear VM_LOCKED (and
    VM_LOCKONFAULT) on VMA pages `[a, b)` (default: all); locked_vm follows.

    Simplifications:
        VM_LOCKONFAULT is one flag for the whole VMA, the last mlock's.
    """
    b = vma.npages if b is None else b
    if lock:
        task.mm.locked_vm += vma.mlocked.fill(a, b, 0)
    else:
        task.mm.locked_vm -= sum(vma.mlocked.remove(a, b).values())
    vma.locked = len(vma.mlocked) > 0
    vma.lockonfault = vma.locked and (onfault if lock else vma.lockonfault)


def munlock_putback(m: Machine, vma: VMA, a: int, b: int) -> None:
    """`munlock_folio` -> `folio_putback_lru` for VMA pages `[a, b)` just unlocked: those reclaim
    had moved to the unevictable list go back to their inactive list, unless another VM_LOCKED
    mapping still maps them (its pages stay unevictable until reclaim finds them mapped)."""
    lru_putback_range(m.lru, vma, a, b)
    inode = vma.file
    if inode is None or not hasattr(inode, "lru"):
        return
    still = ExtentMap()
    for v in inode.vmas:
        if v is not vma and v.locked:
            for ls, le, _ in v.mlocked.runs(0, v.npages):
                for s, e, _ in v.mapped.runs(ls, le):
                    still.fill(v.pgoff + s, v.pgoff + e, 0)
    for s, e in still.hole_runs(vma.pgoff + a, vma.pgoff + b):
        lru_putback_range(m.lru, inode, s, e)


def mlock_posix_error_return(status: str) -> str:
    """Models `__mlock_posix_error_return()`: EFAULT (SIGBUS class) -> ENOMEM, ENOMEM -> EAGAIN."""
    if status == VM_FAULT_SIGBUS:
        return ENOMEM
    if status == VM_FAULT_OOM:
        return EAGAIN
    return status
