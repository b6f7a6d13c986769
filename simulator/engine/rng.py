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
    """Keep the cyclic garbage collector off the objects built before the run.

    A scenario of 10,000 tasks is a heap of hundreds of thousands of long-lived objects (tasks,
    extents, events) that every full collection would walk again; `gc.freeze()` moves them
    out of the collector's generations for the run (a fifth of the run's time, measured on
    benchmarks/many_tasks.py), and `gc.unfreeze()` hands them back so that a sweep of many
    runs in one process still frees each run's garbage.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
