"""The simulator's order of task starts, kept on a real machine whose clock jitters.

A scenario that starts a reader at 1 ms means: after the sender's first ops. On a loaded machine
a real 1 ms head start can be lost (the reader maps a file the sender has not truncated yet).
So a task that starts at time `s` is released at `s` only once every other task has begun the op
it was in at `s` in the simulated run (or has ended), waiting at most `BARRIER_WAIT` seconds.
This orders starts as the scenario meant; it changes nothing about what the kernel then does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..scenario import StartAfter
from ..units import parse_seconds

if TYPE_CHECKING:
    from ..outcome import RunResult
    from ..scenario import Scenario

BARRIER_WAIT = 2.0


def start_barriers(sc: Scenario, run: RunResult) -> dict[str, dict[str, int]]:
    """For each task with a start time: the op index each other task had begun by then."""
    begun: dict[str, list[tuple[float, int]]] = {}
    for time, kind, task, _memcg, _page, _pages, value, _detail in run.events:
        if kind == "op_start":
            begun.setdefault(task, []).append((time, int(value)))
    out: dict[str, dict[str, int]] = {}
    for t in sc.tasks:
        if isinstance(t.start, StartAfter):
            continue
        s = parse_seconds(t.start)
        need = {other: max(i for when, i in ops if when < s)
                for other, ops in begun.items()
                if other != t.name and any(when < s for when, _ in ops)}
        if need:
            out[t.name] = need
    return out
