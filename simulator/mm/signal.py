"""Signals and killable sleeps: how a SIGKILL reaches a task and wakes it.

Models kernel/signal.c (v6.18) `do_send_sig_info()` for SIGKILL and the killable waits of
include/linux/wait.h (`wait_event_killable`, `wake_up_all`), as the memory paths use them: an
OOM victim is sent SIGKILL, and allocators sleep until memory is freed, a victim is reaped, or
they are killed themselves.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .psi import psi_task_running

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def do_send_sig_info(m: Machine, task: TaskStruct, sig: str = "SIGKILL") -> None:
    """Models `do_send_sig_info(sig, ...)` for SIGKILL and SIGTERM: mark a fatal signal
    pending and wake the task.

    A task sleeping killably in the kernel is woken (the caller unwinds and fails); a task
    running its ops is interrupted, so that it exits. SIGTERM is as fatal as SIGKILL when its
    disposition is the default (`complete_signal`: `sig_fatal` starts the group exit); a task
    with a handler for it (`sigterm_handled`) gets it delivered and runs on.
    """
    if task.sigkill or task.exited:
        return
    if sig != "SIGKILL" and task.sigterm_handled:
        m.log.emit("signal_deliver", task=task.name, detail=f"{sig} (handled)")
        return
    task.sigkill = True
    m.log.emit("signal_deliver", task=task.name, detail=sig)
    if task.kernel_wait is not None:
        if not task.kernel_wait.triggered:
            task.kernel_wait.succeed()
        return
    proc = task.process
    if proc is not None and proc.is_alive and proc is not m.env.active_process:
        proc.interrupt("SIGKILL")


def wait_event_killable(
    m: Machine, task: TaskStruct, queue: list[Any], why: str
) -> Generator[Any, Any, None]:
    """Models `wait_event_killable()`: sleep until an event on `queue` (or SIGKILL) wakes us.

    `why` is kept on the task, so that a task still asleep at the end says what it waited for.
    The task is idle for PSI while it sleeps (a caller that stalls on memory meanwhile holds
    a memory stall section around it).
    """
    if task.sigkill:
        return
    ev = m.env.event()
    queue.append(ev)
    task.kernel_wait, task.wait_reason = ev, why
    psi_task_running(m, task, False)
    try:
        yield ev
    finally:
        task.kernel_wait, task.wait_reason = None, None
        psi_task_running(m, task, True)


def schedule_timeout_killable(m: Machine, task: TaskStruct,
                              seconds: float) -> Generator[Any, Any, None]:
    """Models `schedule_timeout_killable()`: sleep for `seconds`, or until SIGKILL wakes us.

    A sleep that ends by itself: a task still in it when the scenario's duration ends is
    running, not hung (no `wait_reason`).
    """
    if task.sigkill:
        return
    ev = m.env.event()
    task.kernel_wait = ev
    try:
        yield ev | m.env.timeout(seconds)
    finally:
        task.kernel_wait = None


def wake_up_all(queue: list[Any]) -> None:
    """Models `wake_up_all()`: wake every sleeper on `queue`, which is left empty."""
    waiters = queue[:]
    queue.clear()
    for ev in waiters:
        if not ev.triggered:
            ev.succeed()
