"""fallocate(2) from the VFS down to tmpfs: `vfs_fallocate` in fs/open.c (v6.18)."""

from __future__ import annotations

from collections.abc import Collection, Generator
from typing import TYPE_CHECKING, Any

from .errno import EBADF, EOPNOTSUPP
from .memfd import check_fallocate
from .shmem_inode import ShmemInode, shmem_free_range
from .shmem_io import FillResult, shmem_fallocate
from .truncate import unmap_mapping_range, zap_zero_ptes

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct



def vfs_fallocate(
    m: Machine, task: TaskStruct, inode: ShmemInode, fmode_write: bool, off: int, length: int,
    flags: Collection[str],
) -> Generator[Any, Any, tuple[str | None, FillResult | None]]:
    """Models `vfs_fallocate()` in fs/open.c (v6.18) calling `shmem_fallocate()`.

    EBADF without FMODE_WRITE; FALLOC_FL_PUNCH_HOLE without FALLOC_FL_KEEP_SIZE is EOPNOTSUPP;
    then the seals (a punch needs no write seal, growing needs no F_SEAL_GROW). A punch unmaps
    the whole pages of the range (`unmap_mapping_range`, COW copies kept) and frees them
    (`shmem_truncate_range`); allocation works on write-sealed files too. Returns the errno of
    a refusal before any work, or (None, the allocation's result; None for a punch).
    """
    if not fmode_write:
        return EBADF, None
    punch = "punch_hole" in flags
    if punch and "keep_size" not in flags:
        return EOPNOTSUPP, None
    err = check_fallocate(inode, off + length, punch)
    if err:
        return err, None
    ps = m.page_size
    if punch:
        first, last = -(-off // ps), (off + length) // ps
        unmap_mapping_range(m, inode, first, last, even_cows=False)
        shmem_free_range(m, inode, first, last)
        return None, None
    a, b = off // ps, -(-(off + length) // ps)
    res = yield from shmem_fallocate(m, task, inode, a, b, keep_size="keep_size" in flags)
    zap_zero_ptes(inode, a, b)
    return None, res
