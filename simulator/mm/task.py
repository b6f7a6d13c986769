"""A task as the memory paths see it: `struct task_struct` fields that charge, kill and limit.

The SimPy process that runs a task's ops lives in simulator/tasks.py; this is only the state
the kernel functions read and write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .mempolicy import Mempolicy

if TYPE_CHECKING:
    from .memcontrol import MemCgroup
    from .mm_types import MM

OOM_SCORE_ADJ_MIN = -1000

CAP_IPC_LOCK, CAP_SYS_RESOURCE, CAP_SYS_ADMIN = "ipc_lock", "sys_resource", "sys_admin"


@dataclass(eq=False)
class TaskStruct:
    """The fields of `task_struct`/`signal_struct` the modelled paths use.

    Attributes:
        pid: creation order, which is also `for_each_process` order (OOM tie-breaks).
        comm: the name shown in kernel log lines (`TASK_COMM_LEN` 16: 15 characters).
        sigkill: a fatal signal is pending (`fatal_signal_pending`).
        oom_victim: `tsk_is_oom_victim` (TIF_MEMDIE set by `mark_oom_victim`).
        memcg_in_oom: the memcg a user fault recorded for `mem_cgroup_oom_synchronize`.
        exit_event: triggered once the task has exited and its mm is torn down.
        memcg_nr_pages_over_high: pages charged in batches that found memory.high exceeded,
            not yet paid for (`current->memcg_nr_pages_over_high`).
        memcg_stock: pages left of the last charge batch, per memcg (the per-CPU
            `memcg_stock`, kept here only as a count: see `consume_stock`).
        psi_running: the task is non-idle for PSI (running its ops, not asleep).
        psi_memstall: nesting depth of its memory stall sections (PF_MEMSTALL while > 0).
        node: the node it runs on (`numa_node_id()`).
        mempolicy: `task->mempolicy` (default: local allocation).
        mems_allowed: `task->mems_allowed`, its cpuset's effective mems (None: every node).
        il_prev: `task->il_prev`, the last node `interleave_nodes` gave (-1: none yet).
    """

    pid: int
    name: str
    memcg: MemCgroup
    mm: MM
    oom_score_adj: int = 0
    oom_score_adj_min: int = 0
    caps: frozenset[str] = frozenset()
    rlimit_memlock: int = 0
    node: int = 0
    mempolicy: Mempolicy = field(default_factory=Mempolicy)
    mems_allowed: tuple[int, ...] | None = None
    il_prev: int = -1
    sigkill: bool = False
    oom_victim: bool = False
    exiting: bool = False
    exited: bool = False
    pf_memalloc: bool = False
    memcg_in_oom: MemCgroup | None = None
    process: Any = None
    exit_event: Any = None
    kernel_wait: Any = None
    wait_reason: str | None = None
    cursor: int | None = None
    fds: set[str] = field(default_factory=set)
    memcg_nr_pages_over_high: int = 0
    ioac_read_pages: int = 0  # pages read from disk for it (`task_io_account_read`)
    ioac_thrash_pages: int = 0  # of them, refaults of PG_workingset folios (a memory stall)
    memcg_stock: dict[MemCgroup, int] = field(default_factory=dict)
    psi_running: bool = False
    psi_memstall: int = 0
    sigterm_handled: bool = False  # SIGTERM's sighand action is a handler, not SIG_DFL

    @property
    def comm(self) -> str:
        """`task->comm`: at most 15 characters."""
        return self.name[:15]

    @property
    def dying(self) -> bool:
        """`task_is_dying()`: an OOM victim, a fatal signal pending, or exiting."""
        return self.oom_victim or self.sigkill or self.exiting

    def capable(self, cap: str) -> bool:
        """`capable()`: whether the task holds a capability."""
        return cap in self.caps
