"""A user program's own accesses: the page-fault loop of arch/x86/mm/fault.c (v6.18)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from .gup import PageSeq, WalkResult, faultin_range
from .memcontrol import CTX_FAULT
from .mm_types import VM_FAULT_OOM
from .oom_kill import pagefault_out_of_memory

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA
    from .task import TaskStruct


def access_error(vma: VMA, write: bool) -> bool:
    """Models `access_error()` in arch/x86/mm/fault.c (v6.18): the mapping does not allow the
    access (a write without VM_WRITE, a read without VM_READ), which is SIGSEGV."""
    return (write and not vma.write) or (not write and not vma.read)


def do_user_addr_fault(
    m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, write: bool,
    walked: Callable[[WalkResult], None] | None = None,
) -> Generator[Any, Any, WalkResult]:
    """Models `do_user_addr_fault()` in arch/x86/mm/fault.c (v6.18) over the pages of `seq`.

    The program touches each page in turn (user faults, `Costs.fault` each). A fault that
    ends in VM_FAULT_OOM calls `pagefault_out_of_memory` and returns to user space, which
    executes the access again: the walk restarts at the failing page, unless a fatal signal
    is pending. Returns how the last walk ended (VM_FAULT_OK, VM_FAULT_SIGBUS, VM_FAULT_OOM
    with SIGKILL pending, or "killed"); `walked` sees each walk's result as it ends.
    """
    while True:
        res = yield from faultin_range(m, task, vma, seq, write, CTX_FAULT, m.costs.fault)
        if walked is not None:
            walked(res)
        if res.status != VM_FAULT_OOM or task.sigkill:
            return res
        yield from pagefault_out_of_memory(m, task)
        if task.sigkill:
            return res
        seq = (PageSeq(seq.start + res.done, seq.stop) if seq.arr is None
               else PageSeq(arr=seq.arr[res.done:]))
