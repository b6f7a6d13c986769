"""MADV_POPULATE_READ/WRITE: `madvise_populate` in mm/madvise.c (v6.18).

Kept apart from madvise.py (MADV_PAGEOUT) only while that file is being reworked elsewhere.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .gup import PageSeq, WalkResult, faultin_range
from .memcontrol import CTX_GUP
from .memory import VM_FAULT_OOM, VM_FAULT_SIGBUS
from .shmem import EINVAL, ENOMEM

if TYPE_CHECKING:
    from .machine import Machine
    from .memory import VMA
    from .task import TaskStruct

EFAULT = "EFAULT"


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
