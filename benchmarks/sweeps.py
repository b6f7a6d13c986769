"""(e) Sweeps: runs per second of a sweep of the core scenario, on one core and on all cores.

The core scenario (scenarios/sealed-holes-memcg.yaml) with its memfd's size drawn from a
distribution, swept over four memcg limits and two policies through `run_sweep`, the code of
`oomsim sweep`: parsing in the workers, one Parquet file written per chunk of runs, the
progress of a real sweep. Once with `--jobs 1`, once with every core.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from simulator.experiment.sweep import run_sweep

from .common import Figure

ROOT = Path(__file__).resolve().parent.parent
RUNS = 400  # per cell: 4 limits x 2 policies x 400 = 3,200 runs


def sweep_text() -> str:
    """The core scenario with a drawn file size and a sweep block."""
    text = (ROOT / "scenarios" / "sealed-holes-memcg.yaml").read_text()
    text = text.replace("ftruncate: {fd: buf, size: 256MiB}",
                        "ftruncate: {fd: buf, size: {uniform: [32MiB, 128MiB]}}")
    text = text.split("\nexpect:")[0]
    return text + f"""
sweep:
  runs: {RUNS}
  grid: {{cgroups./app.memory.max: [48MiB, 64MiB, 96MiB, 128MiB]}}
  policies: [none, zero_page]
"""


def timed(file: Path, jobs: int) -> tuple[float, int]:
    """Wall seconds and runs of one whole sweep into a fresh directory."""
    out = Path(tempfile.mkdtemp(prefix="oomsim-bench-sweep-"))
    try:
        t = time.perf_counter()
        plan = run_sweep(file, out, jobs=jobs)
        return time.perf_counter() - t, plan.total_runs
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run(reps: int = 3) -> list[Figure]:
    """The figures of (e)."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "sweep.yaml"
        f.write_text(sweep_text())
        one = min(timed(f, 1)[0] for _ in range(reps))
        many, n = min((timed(f, cores) for _ in range(reps)), key=lambda x: x[0])
    speedup = one / many
    return [
        Figure("(e) sweep of the core scenario, 1 core", n / one, "runs/s", "", None,
               f"{n} runs in {one:.2f} s"),
        Figure(f"(e) sweep of the core scenario, {cores} cores", n / many, "runs/s", "", None,
               f"{n} runs in {many:.2f} s"),
        Figure(f"(e) parallel speed-up, {cores} cores", speedup, "x", ">= 1.8x",
               speedup >= 1.8),
    ]
