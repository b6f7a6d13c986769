"""write(2) to a shmem file: `shmem_file_write_iter` (mm/shmem.c) and `generic_perform_write`
(mm/filemap.c), v6.18."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .errno import EPERM
from .memfd import check_write
from .shmem_inode import ShmemInode
from .shmem_io import FillResult
from .truncate import zap_zero_ptes

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def shmem_file_write_iter(
    m: Machine, task: TaskStruct, inode: ShmemInode, off: int, length: int
) -> Generator[Any, Any, tuple[str | None, FillResult | None]]:
    """Models `shmem_file_write_iter()` in mm/shmem.c (v6.18): the seals, then the write.

    A write-sealed file refuses at once (EPERM), as does growing a F_SEAL_GROW file from at or
    past i_size. A F_SEAL_GROW write that starts inside i_size is short: `shmem_write_begin`
    refuses the first page past i_size, so `generic_perform_write` writes up to i_size and the
    call then fails EPERM. The call's fixed cost is paid once it is past the checks. Returns
    (errno, None) for a refusal before any byte, else (the errno the write ends with, or None;
    the fill's result).
    """
    end = off + length
    err = check_write(inode, end)
    if err and not (err == EPERM and not inode.write_sealed() and off < inode.size):
        return err, None
    if err:
        end = inode.size  # F_SEAL_GROW: a short write up to i_size, then EPERM
    yield m.env.timeout(m.costs.syscall)
    res = yield from generic_perform_write(m, task, inode, off, end)
    return err, res


def generic_perform_write(
    m: Machine, task: TaskStruct, inode: ShmemInode, off: int, end: int
) -> Generator[Any, Any, FillResult]:
    """Models `generic_perform_write()` in mm/filemap.c (v6.18) on shmem: bytes `[off, end)`.

    Each page is instantiated (`shmem_write_begin`: allocate, charge, account); i_size grows
    to where the write got, which after a failure is the page it stopped at.
    """
    ps = m.page_size
    a, b = off // ps, -(-end // ps)
    res = yield from m.engine.fill_range(m, task, inode, a, b, m.costs.write)
    zap_zero_ptes(inode, a, b)
    written_end = end if res.err is None else max(off, (res.page or 0) * ps)
    inode.size = max(inode.size, written_end)
    return res
