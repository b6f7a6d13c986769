"""Time slicing: how far one step of a walk may go before other tasks get their turn.

A long walk yields after a slice of simulated time (at least `Costs.quantum`, and otherwise up
to the next event anyone else has scheduled), so concurrent tasks interleave as they would.
The result must not depend on the quantum except through that interleaving: both engines slice
alike, from page counts.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .interact import anon_walk_stop

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.shmem_inode import ShmemInode
    from ..mm.task import TaskStruct


def slice_pages(m: Machine, cost: float, anon_task: TaskStruct | None = None,
                want: int = 0, inode: ShmemInode | None = None) -> int:
    """Pages one slice may take: a quantum's worth, or more when nobody else acts sooner.

    Any walk stops at the next event anyone has scheduled (`env.peek()`); a walk of `want`
    more pages by `anon_task` of an anonymous map (or of a map of shmem file `inode`) only at
    the next one that can interact with it (interact.py): the others' tasks act on memcgs,
    nodes and files the walk cannot meet.
    """
    if cost <= 0:
        return 1 << 62
    quantum = max(1, int(m.costs.quantum / cost))
    now = m.env.now
    if anon_task is not None and want > 0:
        until = now + want * cost
        stop = anon_walk_stop(m, anon_task, until, inode)
        if stop >= until:
            return 1 << 62
    else:
        stop = m.env.peek()
    gap = stop - now
    if gap == float("inf"):
        return 1 << 62
    return max(quantum, int(gap / cost))


def elapse(m: Machine, dt: float) -> Any:
    """The event for the time of the pages a walk has done: `dt` seconds from now.

    The steps made their counters' changes at once, at the start of that time; the level
    records spread them over it (`LevelLog.ramp`), so that a plot shows memcg usage or a node's
    free pages moving through the walk as the kernel's would, page by page. The walker marks
    the start of the next steps (`LevelLog.mark`) once the time has passed.
    """
    m.levels.ramp(m.env.now + dt)
    return m.env.timeout(dt)


def run_fast_path(m: Machine, gen: Generator[Any, Any, Any]) -> Any:
    """Run a one-page path the caller has found needs no slow path; return its result.

    Fails loudly if it yields (it slept in a slow path) or logs anything (only slow paths log):
    that would mean the caller's check and the one-page path disagree.
    """
    before = len(m.log.records)
    try:
        ev = next(gen)
    except StopIteration as stop:
        if len(m.log.records) != before:
            raise AssertionError(f"fast path logged {m.log.records[before:]}") from None
        return stop.value
    raise AssertionError(f"fast path yielded {ev!r}")
