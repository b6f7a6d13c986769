"""Seeded random streams: one numpy Generator per task, independent of the others.

`Simulation(seed=...)` derives each task's Generator from the run's seed and the task's name
(not its position), so adding a task does not shift the draws of the others, and the same seed
gives the same result everywhere.
"""

from __future__ import annotations

import zlib

import numpy as np


def task_rng(seed: int, name: str) -> np.random.Generator:
    """The Generator of task `name` in a run seeded with `seed`."""
    key = zlib.crc32(name.encode())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(key,))))
