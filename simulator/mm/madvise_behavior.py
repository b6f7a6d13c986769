"""madvise(2) per advice: `madvise_vma_behavior` and `madvise_populate` in mm/madvise.c (v6.18).

Kept apart from madvise.py (MADV_PAGEOUT's reclaim) only while that file is being reworked
elsewhere; both model mm/madvise.c.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .gup import PageSeq, WalkResult, faultin_range
from .madvise import madvise_pageout
from .memcontrol import CTX_GUP
from .memory import free_cow_pages, unmap_pages
from .mm_types import VM_FAULT_OOM, VM_FAULT_SIGBUS
from .shmem import EINVAL, ENOMEM

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA
    from .task import TaskStruct

EFAULT = "EFAULT"
POPULATE = ("populate_read", "populate_write")


def madvise_populate(
    m: Machine, task: TaskStruct, vma: VMA, a: int, b: int, write: bool
) -> Generator[Any, Any, tuple[str | None, WalkResult | None]]:
    """Models `madvise_populate()` in mm/madvise.c (v6.18) over VMA pages `[a, b)`.

    EINVAL before 5.14 (no such advice) and for POPULATE_WRITE of a mapping without
    VM_WRITE. The pages are faulted in as GUP does (`faultin_page_range`); a fault's
    VM_FAULT_OOM is ENOMEM and its VM_FAULT_SIGBUS EFAULT. Returns (errno, None) for a refusal
    before any fault, else (the errno or None, the walk's result).
    """
    if not m.profile.madv_populate:
        return EINVAL, None
    if write and not vma.write:
        return EINVAL, None
    res = yield from faultin_range(m, task, vma, PageSeq(a, b), write, CTX_GUP, m.costs.populate)
    return {VM_FAULT_OOM: ENOMEM, VM_FAULT_SIGBUS: EFAULT}.get(res.status), res


def madvise_dontneed_free(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> str | None:
    """Models `madvise_dontneed_free()` in mm/madvise.c (v6.18) for MADV_DONTNEED.

    A VM_LOCKED mapping refuses (EINVAL, `madvise_dontneed_free_valid_vma`); otherwise the
    PTEs of `[a, b)` are zapped and private COW copies freed: the next access faults again.
    """
    if vma.locked:
        return EINVAL
    unmap_pages(m, task, vma, a, b)
    free_cow_pages(m, task, vma, a, b)
    return None


def madvise_vma_behavior(
    m: Machine, task: TaskStruct, vma: VMA, a: int, b: int, advice: str
) -> Generator[Any, Any, tuple[str | None, WalkResult | None]]:
    """Models `madvise_vma_behavior()` in mm/madvise.c (v6.18): one advice on VMA pages `[a, b)`.

    POPULATE_READ/WRITE (`madvise_populate`; the walk's result is returned with its errno),
    DONTNEED (`madvise_dontneed_free`), PAGEOUT (`madvise_pageout`: EINVAL before 5.4; the
    pages written out cost `Costs.pageout` each). WILLNEED does nothing: shmem has no
    readahead of holes, and of pages in swap `shmem_willneed` -> `shmem_swapin_range` (and
    `madvise_willneed` of anonymous memory) would only start reading them into the swap cache,
    which is not modelled. Returns (errno or None, the populate walk's result or None).
    """
    if advice in POPULATE:
        return (yield from madvise_populate(m, task, vma, a, b, write=advice == "populate_write"))
    if advice == "dontneed":
        return madvise_dontneed_free(m, task, vma, a, b), None
    if advice == "pageout":
        if not m.profile.madv_pageout:
            return EINVAL, None
        err, done = madvise_pageout(m, task, vma, a, b)
        m.log.emit("madvise_pageout", task=task.name, memcg=task.memcg.path, page=a,
                   pages=done, value=m.swap.inuse, detail=err or "")
        yield m.env.timeout(done * m.costs.pageout)
        return err, None
    return None, None
