"""The memory side of a task's exit.

Models kernel/exit.c (v6.18) `do_exit()` as far as memory goes: `exit_mm()` (-> `mmput()` ->
`exit_mmap()`), `exit_files()`, and `cgroup_exit()`. The task runner (simulator/tasks.py) calls
`do_exit` once the task has spent its exit time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .debug import vm_debug_check
from .file import exit_files
from .mmap import exit_mmap
from .signal import wake_up_all

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def exit_mm(m: Machine, task: TaskStruct) -> None:
    """Models `exit_mm()` -> `mmput()`: the last user of the mm tears it down (`exit_mmap`)."""
    exit_mmap(m, task)


def do_exit(m: Machine, task: TaskStruct) -> None:
    """Models the teardown of `do_exit()`: the mm, then the fds, then the memcg membership.

    Freed memory (and a task gone from the OOM candidates) lets allocators waiting on OOM
    progress retry.
    """
    exit_mm(m, task)
    exit_files(m, task)
    task.exited = True
    task.memcg.tasks.pop(task, None)  # cgroup_exit()
    wake_up_all(m.oom_waiters)
    vm_debug_check(m)
