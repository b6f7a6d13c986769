"""memfd_create and file seals.

Models mm/memfd.c (v6.18) `memfd_create`, `memfd_add_seals`, `memfd_get_seals`, and the seal
checks of mm/shmem.c (`shmem_setattr`, `shmem_write_begin`, `shmem_fallocate`) and
`memfd_check_seals_mmap`.

Simplifications:
    No GUP pins are modelled, so `memfd_wait_for_pins` never waits; vm.memfd_noexec is 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errno import EBUSY, EPERM
from .shmem_inode import (
    F_SEAL_EXEC,
    F_SEAL_FUTURE_WRITE,
    F_SEAL_GROW,
    F_SEAL_SEAL,
    F_SEAL_SHRINK,
    F_SEAL_WRITE,
    ShmemInode,
)

if TYPE_CHECKING:
    from .machine import Machine

MFD_ALLOW_SEALING, MFD_NOEXEC_SEAL = "allow_sealing", "noexec_seal"


def memfd_create(m: Machine, name: str, flags: set[str]) -> ShmemInode:
    """Models `memfd_create()`: an unlinked VM_NORESERVE file on the internal, unlimited mount.

    Every shmem inode starts with F_SEAL_SEAL; MFD_ALLOW_SEALING clears it, MFD_NOEXEC_SEAL
    clears it and sets F_SEAL_EXEC.
    """
    inode = ShmemInode(ino=m.next_ino, name=f"memfd:{name}", sb=m.internal_mount)
    m.next_ino += 1
    if MFD_ALLOW_SEALING in flags or MFD_NOEXEC_SEAL in flags:
        inode.seals.discard(F_SEAL_SEAL)
    if MFD_NOEXEC_SEAL in flags:
        inode.seals.add(F_SEAL_EXEC)
    return inode


def memfd_add_seals(inode: ShmemInode, seals: set[str], fd_writable: bool = True) -> str | None:
    """Models `memfd_add_seals()`: errno name, or None when the seals were added.

    F_ADD_SEALS needs a writable fd (EPERM); a file with F_SEAL_SEAL refuses (EPERM); adding
    F_SEAL_WRITE while a shared mapping may still write fails with EBUSY. F_SEAL_EXEC on an
    executable file implies the write seals (memfd_create files are 0777 unless NOEXEC).
    """
    err, add = memfd_seals_to_add(inode, seals, fd_writable)
    if err:
        return err
    inode.seals |= add
    return None


def memfd_seals_to_add(inode: ShmemInode, seals: set[str], fd_writable: bool = True
                       ) -> tuple[str | None, set[str]]:
    """The checks of `memfd_add_seals()` before it sets the seals: (errno, the seals to add)."""
    if not fd_writable:
        return EPERM, set()
    if F_SEAL_SEAL in inode.seals:
        return EPERM, set()
    if F_SEAL_WRITE in seals and F_SEAL_WRITE not in inode.seals and inode.i_mmap_writable > 0:
        return EBUSY, set()
    if F_SEAL_EXEC in seals and F_SEAL_EXEC not in inode.seals:
        seals = seals | {F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE, F_SEAL_FUTURE_WRITE}
        if inode.i_mmap_writable > 0:
            seals = seals - {F_SEAL_WRITE}
    return None, set(seals)


def check_write(inode: ShmemInode, offset_end: int) -> str | None:
    """`shmem_write_begin`/`shmem_file_write_iter` seal checks for a write ending at offset_end."""
    if inode.seals & {F_SEAL_WRITE, F_SEAL_FUTURE_WRITE}:
        return EPERM
    if F_SEAL_GROW in inode.seals and offset_end > inode.size:
        return EPERM
    return None


def check_truncate(inode: ShmemInode, new_size: int) -> str | None:
    """`shmem_setattr` seal checks: SHRINK forbids shrinking, GROW forbids growing."""
    if new_size < inode.size and F_SEAL_SHRINK in inode.seals:
        return EPERM
    if new_size > inode.size and F_SEAL_GROW in inode.seals:
        return EPERM
    return None


def check_fallocate(inode: ShmemInode, end: int, punch: bool) -> str | None:
    """`shmem_fallocate` seal checks: punching needs no write seal; growing needs no GROW."""
    if punch:
        if inode.seals & {F_SEAL_WRITE, F_SEAL_FUTURE_WRITE}:
            return EPERM
        return None
    if F_SEAL_GROW in inode.seals and end > inode.size:
        return EPERM
    return None


def memfd_check_seals_mmap(inode: ShmemInode, shared: bool, prot_write: bool) -> str | None:
    """Models `memfd_check_seals_mmap()`: no new shared writable mapping of a write-sealed file."""
    if shared and prot_write and inode.seals & {F_SEAL_WRITE, F_SEAL_FUTURE_WRITE}:
        return EPERM
    return None


__all__ = ["memfd_add_seals", "memfd_create", "memfd_seals_to_add"]
