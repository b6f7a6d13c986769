"""Running a sweep: its chunks in a local process pool or on a Dask cluster, results kept.

`run_sweep` writes `DIR/sweep.json` (the scenario text, the expanded plan, the versions) and one
Parquet file per chunk under `DIR/runs/` (`pandas.read_parquet("DIR/runs")` reads them all):
written by the worker that ran the chunk in a local pool, by this process for a Dask cluster
(whose workers need not share its file system).
Each chunk file is written atomically and only once its runs are done, so a sweep interrupted
any way (Ctrl-C, kill -9, a crashed worker) and started again with the same command finds the
chunks already done and runs only what is missing: no row lost, none twice. A run that raises
is an error row with its traceback; the sweep goes on. The same chunk gives the same rows
alone, with any number of jobs, and on Dask.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..atomic_io import atomic_write, atomic_write_text
from ..scenario import load_data
from ..scenario_errors import ScenarioError
from .plan import Chunk, SweepPlan, plan_sweep
from .work import run_chunk

FIXED_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("policy", pa.string()), ("kernel", pa.string()), ("run", pa.int64()), ("seed", pa.int64()),
    ("task", pa.string()), ("outcome", pa.string()), ("errno", pa.string()), ("op", pa.int64()),
    ("op_name", pa.string()), ("page", pa.int64()), ("time", pa.float64()),
    ("reason", pa.string()), ("memcg", pa.string()), ("memcg_peak_pages", pa.int64()),
    ("draws", pa.string()), ("error", pa.string()),
    # where it struck and what the run cost (work.task_rows; docs/output.md)
    ("struck", pa.string()), ("pages_instantiated", pa.int64()), ("parse_start", pa.float64()),
    ("others_killed", pa.int64()),
]


def grid_type(values: list[Any]) -> pa.DataType:
    """The column type of a grid path: its values' common type, else text."""
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def schema(plan: SweepPlan) -> pa.Schema:
    """Every chunk file's schema: the same columns and types, so the directory reads as one."""
    fields = FIXED_COLUMNS[:3] + [(p, grid_type(v)) for p, v in plan.spec.grid.items()]
    return pa.schema(fields + FIXED_COLUMNS[3:])


def write_chunk(rows: list[dict[str, Any]], path: Path, sch: pa.Schema) -> None:
    """One chunk's rows, as one Parquet file, atomically."""
    import pyarrow.parquet as pq

    cols = {name: [_cell_value(r.get(name), sch.field(name).type) for r in rows]
            for name in sch.names}
    table = pa.Table.from_pydict(cols, schema=sch)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _cell_value(v: Any, t: pa.DataType) -> Any:
    if v is None:
        return None
    if pa.types.is_string(t):
        return v if isinstance(v, str) else json.dumps(v, default=str)
    return v


def run_chunk_to_file(text: str, file: str, cell: dict[str, Any], policy: str, kernel: str,
                      first: int, last: int, path: str, sch: pa.Schema) -> int:
    """`run_chunk`, its rows written by the worker itself (a local pool: the parent then
    only counts, and does not compete with the workers for a core). Returns the runs done."""
    write_chunk(run_chunk(text, file, cell, policy, kernel, first, last), Path(path), sch)
    return last - first


def versions() -> dict[str, str]:
    """The versions a sweep ran with (sweep.json)."""
    out = {"python": platform.python_version()}
    for pkg in ("oomsim", "numpy", "simpy", "pandas", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "?"
    return out


def done_chunks(runs_dir: Path) -> set[str]:
    """The chunks whose results are already written; stray temporary files are removed."""
    if not runs_dir.is_dir():
        return set()
    for tmp in runs_dir.glob(".part-*"):
        tmp.unlink(missing_ok=True)  # a write interrupted before its rename
    return {p.name[len("part-"):-len(".parquet")] for p in runs_dir.glob("part-*.parquet")}


class LocalPool:
    """Chunks in a process pool of `jobs` workers (1: in this process)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        """(index, result) of each call, as they complete."""
        if self.jobs <= 1:
            for i, args in enumerate(calls):
                yield i, fn(*args)
            return
        with ProcessPoolExecutor(max_workers=self.jobs) as ex:
            pending: dict[Future[Any], int] = {}
            it = iter(enumerate(calls))
            for i, args in it:  # keep twice as many chunks in flight as workers
                pending[ex.submit(fn, *args)] = i
                if len(pending) >= 2 * self.jobs:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    yield pending.pop(f), f.result()
                for i, args in it:
                    pending[ex.submit(fn, *args)] = i
                    if len(pending) >= 2 * self.jobs:
                        break


class DaskPool:
    """Chunks on an existing Dask distributed cluster (`tcp://HOST:PORT`)."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ScenarioError("--scheduler needs Dask: pip install 'oomsim[dask]'") from None
        self.client = Client(address, timeout=30)

    def map(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        """(index, result) of each call, as they complete."""
        from distributed import as_completed

        futures = {self.client.submit(fn, *args, pure=False): i for i, args in enumerate(calls)}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:
            self.client.close()


def run_sweep(file: Path, out: Path, jobs: int | None = None, scheduler: str | None = None,
              runs: int | None = None, progress: Callable[[int, int], None] | None = None
              ) -> SweepPlan:
    """Run every missing chunk of the sweep of `file` into `out` (see the module docstring).

    `progress(done_runs, total_runs)` is called as chunks finish.
    """
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read: {e}", file=str(file)) from None
    raw = load_data(text, str(file))
    try:
        plan = plan_sweep(raw, runs)
    except ScenarioError as e:
        e.file = str(file)
        raise
    sch = schema(plan)
    runs_dir = out / "runs"
    meta = {"scenario": str(file), "text": text, "plan": plan.describe(), "versions": versions(),
            "argv": sys.argv[1:]}
    atomic_write_text(json.dumps(meta, indent=1, default=str), out / "sweep.json")
    done = done_chunks(runs_dir)
    todo: list[Chunk] = [c for c in plan.chunks if c.key not in done]
    finished = plan.total_runs - sum(c.last - c.first for c in todo)
    if progress:
        progress(finished, plan.total_runs)
    calls = [(text, str(file), plan.cells[c.cell], c.policy, c.kernel, c.first, c.last)
             for c in todo]
    paths = [runs_dir / f"part-{c.key}.parquet" for c in todo]
    if scheduler:  # Dask workers may not share this file system: rows come back here
        for i, rows in DaskPool(scheduler).map(run_chunk, calls):
            write_chunk(rows, paths[i], sch)
            finished += todo[i].last - todo[i].first
            if progress:
                progress(finished, plan.total_runs)
        return plan
    runs_dir.mkdir(parents=True, exist_ok=True)
    local = LocalPool(jobs or os.cpu_count() or 1)
    for _, n in local.map(run_chunk_to_file,
                          [(*args, str(path), sch) for args, path in zip(calls, paths, strict=True)]):
        finished += n
        if progress:
            progress(finished, plan.total_runs)
    return plan
