"""The what-if `charge_at_seal`: sealing against writes instantiates every hole at once.

No kernel does this. `memfd_add_seals()` (mm/memfd.c, v6.18) only sets bits; the holes of a
write-sealed file are instantiated later, by whoever faults them (docs/kernel-rules.md 1.11),
which is how a reader ends up paying for the sender's sparse file. Under this what-if the
seal call itself fills the file as `shmem_fallocate()` (mm/shmem.c) would: each hole
allocated, charged to the sealing task's memcg, accounted to Committed_AS (VM_NORESERVE, per
folio, `shmem_acct_blocks`) and the mount's blocks. A failure (ENOMEM from the charge or the
allocation, ENOSPC from the accounting, EINTR on SIGKILL) fails F_ADD_SEALS with that errno:
no seal is added and the pages this call instantiated are freed again (`shmem_undo_range`,
as `shmem_fallocate` undoes). So the failure comes where the file is made, not in its reader.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .memfd import memfd_seals_to_add
from .shmem_inode import F_SEAL_FUTURE_WRITE, F_SEAL_WRITE, ShmemInode
from .shmem_io import FillResult, shmem_fallocate
from .truncate import zap_zero_ptes

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def memfd_add_seals_charged(
    m: Machine, task: TaskStruct, inode: ShmemInode, seals: set[str], fd_writable: bool
) -> Generator[Any, Any, tuple[str | None, FillResult | None]]:
    """Models `memfd_add_seals()` with the what-if: (errno or None, the fill's result, None
    when nothing was filled).

    Only a call that adds F_SEAL_WRITE or F_SEAL_FUTURE_WRITE to a file without either fills
    it (`shmem_fallocate` over `[0, i_size)`, FALLOC_FL_KEEP_SIZE); without the what-if this is
    `memfd_add_seals`.
    """
    err, add = memfd_seals_to_add(inode, seals, fd_writable)
    if err:
        return err, None
    res = None
    write_seals = {F_SEAL_WRITE, F_SEAL_FUTURE_WRITE}
    if m.what_if.charge_at_seal and add & write_seals and not inode.seals & write_seals:
        n = inode.size_pages(m.page_size)
        res = yield from shmem_fallocate(m, task, inode, 0, n, keep_size=True)
        zap_zero_ptes(inode, 0, n)
        if res.err:
            return res.err, res
    inode.seals |= add
    return None, res
