"""Syscalls that fill a shmem file's holes without a mapping: fallocate (and write's result).

Models mm/shmem.c (v6.18) `shmem_fallocate` (mode 0 / FALLOC_FL_KEEP_SIZE, SGP_FALLOC) and the
result of `shmem_write_begin` (SGP_WRITE) under `generic_perform_write`. Each page goes through
the same allocate -> charge (the caller's memcg) -> account (the caller's mm) sequence as a
fault; the walk over the range is the engine's (`Machine.engine.fill_range`,
simulator/engine/walk.py), which runs the one-page path where a limit is reached.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errno import ENOSPC
from .extents import ExtentMap
from .shmem_inode import ShmemInode, shmem_free_range

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct

@dataclass
class FillResult:
    """How a fill ended: errno (None for success), pages done, the page it stopped at, and the
    runs of holes this call filled (for fallocate's undo)."""

    err: str | None
    done: int
    page: int | None = None
    filled: list[tuple[int, int]] = field(default_factory=list)


def faulted_in(inode: ShmemInode) -> ExtentMap:
    """The file pages some mapping has faulted in: the model's stand-in for uptodate folios.

    Simplifications:
        A fault on a fallocated folio clears it and marks it uptodate; the model keeps no
        uptodate bit, so a page counts as uptodate while a VMA maps it (one faulted and
        unmapped again, or written by write(2), during the fallocate is undone all the same).
    """
    pages = ExtentMap()
    for vma in inode.vmas:
        for s, e, _ in vma.mapped.runs(0, vma.npages):
            pages.fill(vma.pgoff + s, vma.pgoff + e, 0)
    return pages


def shmem_fallocate(
    m: Machine, task: TaskStruct, inode: ShmemInode, a: int, b: int, keep_size: bool
) -> Generator[Any, Any, FillResult]:
    """Models `shmem_fallocate()` allocate mode over file pages `[a, b)`.

    A range larger than the mount's size fails with ENOSPC at once. On any error the pages this
    call added are removed again and the error returned; but, as `shmem_undo_range(...,
    unfalloc=true)` removes only folios still !uptodate, not those a fault has meanwhile
    cleared and mapped (see `faulted_in`).
    """
    if inode.sb.max_blocks and b - a > inode.sb.max_blocks:
        return FillResult(ENOSPC, 0, a)
    res = yield from m.engine.fill_range(m, task, inode, a, b, m.costs.fallocate,
                                         falloc=True)
    if res.err:
        faulted = faulted_in(inode)
        undone = sum(shmem_free_range(m, inode, hs, he)
                     for s, e in res.filled for hs, he in faulted.hole_runs(s, e))
        m.log.emit("shmem_fallocate_undo", task=task.name, pages=undone, detail=res.err)
        return res
    if not keep_size:
        inode.size = max(inode.size, b * m.page_size)
    return res
