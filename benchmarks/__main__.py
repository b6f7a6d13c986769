"""Run every benchmark, print each figure with its target, and write BENCHMARKS.md.

Usage: python -m benchmarks [--output PATH]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from simulator.results import atomic_write_text

from . import hole_faults, many_tasks, reclaim, scale, sweeps
from .common import Figure, fmt, host

OUTPUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"

SECTIONS = [
    ("(a)+(b) hole-fault throughput: kernel and reference model", hole_faults.run),
    ("(c) scale: 1 GiB against 1 TiB", scale.run),
    ("(d) 1,000-20,000 tasks on 8 nodes over a simulated hour", many_tasks.run),
    ("(e) sweeps: runs per second on one core and on all cores", sweeps.run),
    ("(f) the core reader with swap: 256 MiB cycling through 64 MiB", reclaim.run),
]


def markdown(figures: list[Figure], machine: dict[str, str], seconds: float) -> str:
    """BENCHMARKS.md: the figures as a table, and the machine they were measured on."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (benchmarks/); do not edit by hand. Each figure is the median "
        f"of several repetitions. Measured {when} in {seconds:.0f} s.",
        "",
        "| Figure | Value | Unit | Target | Result | Notes |",
        "|---|---:|---|---|---|---|",
    ]
    for f in figures:
        note = f.note.replace("|", "/")
        lines.append(f"| {f.name} | {fmt(f.value)} | {f.unit} | {f.target} | {f.verdict} "
                     f"| {note} |")
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += [
        "",
        "## What is measured",
        "",
        "- (a) Simulated pages per wall second for scenarios/sealed-holes-memcg.yaml with the "
        "memfd scaled to 1 GiB, once with a memcg limit it fits in and once with one that gets "
        "the reader OOM-killed half way; and the real kernel's MADV_POPULATE_READ rate over "
        "1 GiB of sealed memfd holes, in a v1/v2 memory cgroup the benchmark creates and "
        "removes (benchmarks/populate.c).",
        "- (b) Wall time of the per-page reference model (`reference=True`) over the bulk "
        "engine's, on the same scenario.",
        "- (c) The same sequential scan of a 1 GiB and a 1 TiB file (machines of 4 GiB and 4 "
        "TiB); the 1 TiB scan's peak Python memory (tracemalloc); and the page at which the "
        "1 TiB scan is killed under a 512 GiB memcg limit, against the page computed from the "
        "per-page rules (footprint, one folio per page, page tables per 2 MiB / 1 GiB / "
        "512 GiB region the scan enters from where the map starts, and the slab pages of one "
        "576-byte xarray node per 64 pages, per 4,096, ... of the file).",
        "- (d) The whole pipeline of `oomsim run FILE --json` (load and validate the text, "
        "build the run, simulate, write the JSON) for a busy host of 1,000, 2,000, 10,000 and "
        "20,000 tasks starting over one simulated hour on an 8-node machine "
        "(benchmarks/many_tasks.py, generated from a seed); the 10,000-task pipeline against "
        "SimPy alone running as many empty processes with as many timeouts through three nested "
        "generators (the most any model built on SimPy can reach on this machine); how the time "
        "grows with ten times the tasks; SimPy events (env.step calls) per task; and events and "
        "simulated pages (those of the bulk fault steps) per wall second of the run.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmarks."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--output", type=Path, default=OUTPUT, help="where to write the table")
    args = ap.parse_args()
    t0 = time.perf_counter()
    machine = host()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    figures: list[Figure] = []
    for title, fn in SECTIONS:
        print(f"\n== {title}")
        for f in fn():
            print(f.line(), flush=True)
            figures.append(f)
    seconds = time.perf_counter() - t0
    atomic_write_text(markdown(figures, machine, seconds), args.output)
    print(f"\nwrote {args.output} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
