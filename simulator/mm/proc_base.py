"""/proc/PID/oom_score_adj: `__set_oom_adj` in fs/proc/base.c (v6.18)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errno import EACCES
from .task import CAP_SYS_RESOURCE

if TYPE_CHECKING:
    from .task import TaskStruct



def __set_oom_adj(task: TaskStruct, value: int) -> str | None:
    """Models `__set_oom_adj()` in fs/proc/base.c (v6.18): a write of oom_score_adj.

    Lowering the value below the minimum a privileged writer set (initially 0) needs
    CAP_SYS_RESOURCE (EACCES); a privileged write also sets that minimum. Returns the errno
    or None.
    """
    if value < task.oom_score_adj_min and not task.capable(CAP_SYS_RESOURCE):
        return EACCES
    task.oom_score_adj = value
    if task.capable(CAP_SYS_RESOURCE):
        task.oom_score_adj_min = value
    return None
