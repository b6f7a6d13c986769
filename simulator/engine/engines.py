"""The two engines: bulk (closed-form steps) and the per-page reference, one interface.

A run picks its engine once (`Machine.engine`); the kernel model never asks which one it has.
Kernel functions that walk a range (`shmem_fallocate`, `shmem_file_read_iter`,
`madvise_pageout`) and the system-call layer (touch, populate, mlock, write) call the engine's
walkers; the walkers (walk.py) are shared, and only the steps differ: `BulkEngine` takes the
largest prefix that needs no slow path at once, `ReferenceEngine` one page at a time through
the kernel's own one-page path. The differential tests run every scenario through both.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from ..mm.mempolicy import interleaved
from . import walk
from .fault import bulk_fault
from .filemap import bulk_file_step, file_range, reference_file_step
from .fill import bulk_fill
from .pageout import pageout_runs
from .reference import (
    pageout_pages,
    reference_fault,
    reference_fill,
    reference_swapin_file,
)
from .swapin import bulk_swapin_file

if TYPE_CHECKING:
    from ..mm.gup import PageSeq, WalkResult
    from ..mm.machine import Machine
    from ..mm.mm_types import VMA
    from ..mm.pagecache import DiskInode
    from ..mm.shmem_inode import ShmemInode
    from ..mm.shmem_io import FillResult
    from ..mm.task import TaskStruct


class Engine:
    """The walkers, shared by both engines; subclasses supply the steps."""

    name = ""

    # -- walkers -------------------------------------------------------------------------------
    def faultin_range(self, m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, write: bool,
                      ctx: str, cost: float) -> Generator[Any, Any, WalkResult]:
        """Fault in the pages of `seq` in order (walk.py `faultin_range`)."""
        return walk.faultin_range(m, task, vma, seq, write, ctx, cost)

    def fill_range(self, m: Machine, task: TaskStruct, inode: ShmemInode, a: int, b: int,
                   cost: float, falloc: bool = False) -> Generator[Any, Any, FillResult]:
        """Instantiate every hole of file pages `[a, b)` (walk.py `shmem_fill_range`)."""
        return walk.shmem_fill_range(m, task, inode, a, b, cost, falloc)

    def read_range(self, m: Machine, task: TaskStruct, inode: ShmemInode, a: int,
                   end: int) -> Generator[Any, Any, tuple[int, int, int, str | None, float]]:
        """read(2) over pages with some in swap (walk.py `read_range`)."""
        return walk.read_range(m, task, inode, a, end)

    def file_range(self, m: Machine, task: TaskStruct, inode: DiskInode, a: int, end: int,
                   write: bool) -> Generator[Any, Any, tuple[int, int, str | None]]:
        """read(2) (or write(2)) of a disk file's pages `[a, end)` (filemap.py `file_range`)."""
        return file_range(m, task, inode, a, end, write)

    # -- steps ---------------------------------------------------------------------------------
    def file_step(self, m: Machine, task: TaskStruct, inode: DiskInode, pos: int, stop: int,
                  write: bool) -> tuple[int, int]:
        """Disk file pages from `pos` (before `stop`) read or written with no slow path:
        (pages, of which read from disk)."""
        raise NotImplementedError

    def fault_step(self, m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, pos: int,
                   limit: int, write: bool, ctx: str, swapin_fast: bool) -> tuple[int, int, int]:
        """Pages from position `pos` (at most `limit`) faulted with no slow path: (pages,
        faulted, swapped in); 0 pages when the next one needs a slow path."""
        raise NotImplementedError

    def fill_step(self, m: Machine, task: TaskStruct, inode: ShmemInode, pos: int, limit: int,
                  filled: list[tuple[int, int]]) -> tuple[int, int]:
        """File pages from `pos` (at most `limit`) filled with no slow path: (pages, swapped
        in); the holes filled are appended to `filled`."""
        raise NotImplementedError

    def read_swapin_step(self, m: Machine, task: TaskStruct, inode: ShmemInode, pos: int,
                         stop: int) -> int:
        """Pages in swap from `pos` (before `stop`) a read swaps in with no slow path."""
        raise NotImplementedError

    def pageout(self, m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
        """MADV_PAGEOUT's walk over VMA pages `[a, b)`: pages swapped out."""
        raise NotImplementedError


class BulkEngine(Engine):
    """Closed-form steps: the largest prefix that needs no slow path, at once.

    A task with an interleave policy is stepped page by page (the reference's steps): each of
    its pages has its own node, which the page cache records page by page.
    """

    name = "bulk"

    @override
    def fault_step(self, m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, pos: int,
                   limit: int, write: bool, ctx: str, swapin_fast: bool) -> tuple[int, int, int]:
        if interleaved(task):
            return reference_fault(m, task, vma, seq.at(pos), write, ctx, swapin_fast)
        return bulk_fault(m, task, vma, seq, pos, limit, write, swapin_fast)

    @override
    def fill_step(self, m: Machine, task: TaskStruct, inode: ShmemInode, pos: int, limit: int,
                  filled: list[tuple[int, int]]) -> tuple[int, int]:
        if interleaved(task):
            return reference_fill(m, task, inode, pos, filled)
        return bulk_fill(m, task, inode, pos, limit, filled)

    @override
    def read_swapin_step(self, m: Machine, task: TaskStruct, inode: ShmemInode, pos: int,
                         stop: int) -> int:
        if interleaved(task):
            return reference_swapin_file(m, task, inode, pos)
        return bulk_swapin_file(m, task, inode, pos, stop - pos)

    @override
    def pageout(self, m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
        return pageout_runs(m, task, vma, a, b)

    @override
    def file_step(self, m: Machine, task: TaskStruct, inode: DiskInode, pos: int, stop: int,
                  write: bool) -> tuple[int, int]:
        if interleaved(task):
            return reference_file_step(m, task, inode, pos, stop, write)
        return bulk_file_step(m, task, inode, pos, stop, write)


class ReferenceEngine(Engine):
    """One page per step, through the kernel's one-page path: the oracle."""

    name = "reference"

    @override
    def fault_step(self, m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, pos: int,
                   limit: int, write: bool, ctx: str, swapin_fast: bool) -> tuple[int, int, int]:
        return reference_fault(m, task, vma, seq.at(pos), write, ctx, swapin_fast)

    @override
    def fill_step(self, m: Machine, task: TaskStruct, inode: ShmemInode, pos: int, limit: int,
                  filled: list[tuple[int, int]]) -> tuple[int, int]:
        return reference_fill(m, task, inode, pos, filled)

    @override
    def read_swapin_step(self, m: Machine, task: TaskStruct, inode: ShmemInode, pos: int,
                         stop: int) -> int:
        return reference_swapin_file(m, task, inode, pos)

    @override
    def pageout(self, m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
        return pageout_pages(m, task, vma, a, b)

    @override
    def file_step(self, m: Machine, task: TaskStruct, inode: DiskInode, pos: int, stop: int,
                  write: bool) -> tuple[int, int]:
        return reference_file_step(m, task, inode, pos, stop, write)


BULK: Engine = BulkEngine()
REFERENCE: Engine = ReferenceEngine()
