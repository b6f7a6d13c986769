"""A sweep's plan: every cell of the grid x policy x kernel x run, cut into chunks of runs.

The plan is a pure function of the scenario text and the command line, so a sweep started again
with the same command finds the same chunks, and runs only those whose results are missing.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..policies import parse_policy
from ..scenario_errors import ScenarioError, describe
from ..scenario_model import SweepSpec
from .grid import check_path, set_path

CHUNK_RUNS = 50  # runs per chunk: small enough to lose little to an interruption, big enough
                 # to keep the per-task overhead of a process pool or a Dask cluster low


@dataclass(frozen=True)
class Chunk:
    """Runs `[first, last)` of one cell, policy and kernel: one unit of work, one result file."""

    cell: int
    policy: str
    kernel: str
    first: int
    last: int

    @property
    def key(self) -> str:
        """The chunk's name, which is also its result file's (`part-<key>.parquet`)."""
        return f"c{self.cell:04d}-{policy_key(self.policy)}-{self.kernel}-r{self.first:07d}-{self.last:07d}"


def policy_key(spec: str) -> str:
    """A policy spec as a file name's part: a plain name as it is; a spec with parameters or a
    target (`swap:size=1GiB@reader`) with its other characters made `_` and a short hash, so
    that two specs never share a file."""
    if re.fullmatch(r"[A-Za-z0-9_]+", spec):
        return spec
    digest = hashlib.sha1(spec.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_=.]', '_', spec)}_{digest}"


@dataclass
class SweepPlan:
    """What a sweep runs."""

    spec: SweepSpec
    cells: list[dict[str, Any]]
    kernels: list[str]
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def total_runs(self) -> int:
        """Runs in the whole sweep."""
        return sum(c.last - c.first for c in self.chunks)

    def describe(self) -> dict[str, Any]:
        """The expanded plan as JSON-able data (sweep.json)."""
        return {"runs": self.spec.runs, "grid": self.spec.grid, "policies": self.spec.policies,
                "kernels": self.kernels, "cells": self.cells, "chunks": len(self.chunks),
                "total_runs": self.total_runs}


def sweep_spec(raw: dict[str, Any]) -> SweepSpec:
    """The scenario's `sweep:` block (or the default: one run, no grid, policy `none`)."""
    try:
        return SweepSpec.model_validate(raw.get("sweep") or {})
    except ValidationError as e:
        err = e.errors()[0]
        raise ScenarioError(describe(err), ("sweep", *err["loc"])) from None


def plan_sweep(raw: dict[str, Any], runs: int | None = None,
               chunk_runs: int = CHUNK_RUNS) -> SweepPlan:
    """Expand grid x policies x kernels x runs (`runs` overrides the file's)."""
    spec = sweep_spec(raw)
    if runs is not None:
        spec = spec.model_copy(update={"runs": runs})
    for path, values in spec.grid.items():
        check_path(raw, path)
        if not values:
            raise ScenarioError(f"grid path {path!r}: no values to try", ("sweep", "grid", path))
    # The targets are checked here when the tasks' names are plain (no `count` copies).
    tasks = [t for t in raw.get("tasks") or [] if isinstance(t, dict)]
    names = [] if any("count" in t for t in tasks) else [str(t.get("name")) for t in tasks]
    for i, p in enumerate(spec.policies):
        try:
            ps = parse_policy(p)
        except ScenarioError as e:
            raise ScenarioError(e.message, ("sweep", "policies", i)) from None
        if ps.target is not None and names and ps.target not in names:
            raise ScenarioError(f"policy {p!r}: no task named {ps.target!r}; tasks: "
                                f"{', '.join(names)}", ("sweep", "policies", i))
    kernels: list[str] = [*spec.kernels] if spec.kernels else [str(raw.get("kernel", "6.18"))]
    paths = list(spec.grid)
    cells = [dict(zip(paths, combo, strict=True))
             for combo in itertools.product(*(spec.grid[p] for p in paths))]
    plan = SweepPlan(spec, cells, kernels)
    for ci in range(len(cells)):
        for policy in spec.policies:
            for kernel in kernels:
                for first in range(0, spec.runs, chunk_runs):
                    plan.chunks.append(Chunk(ci, policy, kernel, first,
                                             min(spec.runs, first + chunk_runs)))
    return plan


def cell_scenario(raw: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    """The scenario of one grid cell: each path set to the cell's value (the `sweep` block
    left in, ignored by the loader's models)."""
    out = raw
    for path, value in cell.items():
        out = set_path(out, path, value)
    return out
