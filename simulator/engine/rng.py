"""The engine's plumbing: seeded random streams and a garbage collector kept out of the run.

One numpy Generator per task, independent of the others.

`Simulation(seed=...)` derives each task's Generator from the run's seed and the task's name
(not its position), so adding a task does not shift the draws of the others, and the same seed
gives the same result everywhere.
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


def task_rng(seed: int, name: str) -> np.random.Generator:
    """The Generator of task `name` in a run seeded with `seed`."""
    key = zlib.crc32(name.encode())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(key,))))


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the cyclic garbage collector out of building and running a scenario.

    A scenario of 10,000 tasks is a heap of hundreds of thousands of long-lived objects (tasks,
    extents, events) that every full collection would walk again; `gc.freeze()` moves them
    out of the collector's generations for the run (a fifth of the run's time, measured on
    benchmarks/many_tasks.py), and `gc.unfreeze()` hands them back so that a sweep of many
    runs in one process still frees each run's garbage.

    The collector is also off meanwhile: the objects a run makes are kept (records, extents,
    the tasks' state) or freed by reference counting (SimPy's events, the steps' tuples). A
    run makes no cyclic garbage to speak of: the peak RSS of the 20,000-task busy host of
    benchmarks/many_tasks.py grows by the same 212 MiB with the collector on or off, while the
    collections' walks over the new objects cost 20% of building and running it (0.28 s of
    0.78 s and 0.83 s of 4.1 s at 10,000 tasks). Cycles made meanwhile are freed by the first
    collection after the run. On the way out the run's objects go straight to the oldest
    generation (`gc.freeze()` again before `gc.unfreeze()`): the first young collection would
    otherwise walk all of them (0.2 s after a 10,000-task run).
    """
    was = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was:
            gc.enable()
