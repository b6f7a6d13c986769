"""A task as a SimPy process: wait for its start, run its ops, record its outcome, exit."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from .engine.rng import task_rng
from .mm import exit as mm_exit
from .mm.debug import vm_debug_check
from .mm.memcg_high import mem_cgroup_handle_over_high
from .mm.psi import psi_task_running
from .ops import OPS, Killed, OpError, Sigbus, Sigsegv
from .outcome import NOT_STARTED, TaskOutcome

if TYPE_CHECKING:
    from .mm.machine import Machine
    from .mm.task import TaskStruct
    from .plan import TaskPlan
    from .scenario_model import TaskSpec
    from .simulation import Run


@dataclass(eq=False)
class Proc:
    """A running task: its kernel state, its scenario spec, its random stream, its progress."""

    sim: Run
    m: Machine
    task: TaskStruct
    spec: TaskSpec
    plan: TaskPlan
    op_index: int | None = None
    op_name: str | None = None
    page: int | None = None
    exit_now: bool = False
    outcome: TaskOutcome | None = None
    ops_done: Any = None
    wait_reason: str | None = None

    @cached_property
    def rng(self) -> np.random.Generator:
        """The task's stream for its ops' draws (random touch orders), made on first use."""
        return task_rng(self.sim.seed, self.spec.name + "/ops")

    def finish(self, outcome: str, errno: str | None = None, page: int | None = None,
               reason: str | None = None) -> None:
        """Record the outcome once (the first one wins)."""
        if self.outcome is None:
            self.outcome = TaskOutcome(outcome, errno, self.op_index, self.op_name, page,
                                       self.m.env.now, reason)
            self.m.log.emit("task_outcome", task=self.task.name, memcg=self.task.memcg.path,
                            page=-1 if page is None else page, detail=outcome)


def wait_start(p: Proc) -> Generator[Any, Any, None]:
    """Sleep until the task's start time, or until the task it starts after has run its ops."""
    after = p.plan.after
    if after is not None:
        other = p.sim.procs[after]
        p.wait_reason = f"waiting for {after} to run all its ops"
        yield other.ops_done
    else:
        p.wait_reason = NOT_STARTED
        yield p.m.env.timeout(p.plan.start)
    p.wait_reason = None


def run_task(p: Proc) -> Generator[Any, Any, None]:
    """The task's SimPy process."""
    m, t = p.m, p.task
    try:
        yield from wait_start(p)
        m.log.emit("task_start", task=t.name, memcg=t.memcg.path)
        psi_task_running(m, t, True)
        for i, o in enumerate(p.plan.ops):
            p.op_index, p.op_name, p.page = i, o.name, None
            m.log.emit("op_start", task=t.name, value=i, detail=o.name)
            yield from OPS[o.name](p, o.args)
            vm_debug_check(m)
            if t.memcg_nr_pages_over_high and not t.sigkill:
                # resume_user_mode_work(): the op returns to user space.
                yield from mem_cgroup_handle_over_high(m, t)
            if t.sigkill:
                raise Killed(p.page)
            if p.exit_now:
                break
        p.op_index = p.op_name = None
        p.finish("ok")
        p.ops_done.succeed()
    except OpError as e:
        m.log.emit("op_error", task=t.name, value=p.op_index or 0, detail=e.errno)
        p.finish("error", e.errno, e.page)
    except Sigsegv as e:
        p.finish("sigsegv", page=e.page)
    except Sigbus as e:
        p.finish("sigbus", page=e.page)
    except Killed as e:
        p.finish(killed_outcome(t), page=e.page if e.page is not None else p.page)
    except simpy.Interrupt:
        p.finish(killed_outcome(t), page=t.cursor if p.op_name in ("touch", "mlock", "mlock2",
                                                                     "madvise", "mmap") else p.page)
    yield from do_exit(p)


def killed_outcome(t: TaskStruct) -> str:
    """An OOM victim is `oom_killed`; nothing else sends SIGKILL in this model."""
    return "oom_killed" if t.oom_victim else "killed"


def do_exit(p: Proc) -> Generator[Any, Any, None]:
    """Models `do_exit()`: the task is exiting for `Costs.exit`, then its mm and fds go."""
    m, t = p.m, p.task
    t.exiting = True
    psi_task_running(m, t, False)
    while True:
        try:
            yield m.env.timeout(m.costs.exit)
            break
        except simpy.Interrupt:
            continue
    mm_exit.do_exit(m, t)
    m.log.emit("task_exit", task=t.name, memcg=t.memcg.path)
    t.exit_event.succeed()
