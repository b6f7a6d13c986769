"""(f) The core reader on a machine with swap: 256 MiB of sealed holes cycling through a 64 MiB
memcg (kernel-outcomes S1), every page beyond the limit bought by memcg reclaim dropping a
clean hole. Against the real kernel's fault rate measured in the same run (MADV_POPULATE_READ
of memfd holes: the machine here has no swap, and swap is never enabled for a benchmark).

Today each 32-page memcg reclaim round is a one-page slow path in the bulk engine (about 0.5 ms
of Python each, 1,500 rounds), so this misses its target by about 500x; what would reach it is
a closed form for the steady cycle (k rounds at once while the inactive tail holds the pages
they would reclaim, split at the rotations of young runs, which is exact: rounds only pop the
tail and push the head)."""

from __future__ import annotations

from simulator.simulation import simulate

from .common import Figure, median_time
from .core import scaled_core
from .kernel_rate import populate_read_rate

FILE, LIMIT = "256MiB", "64MiB"


def run(reps: int = 5) -> list[Figure]:
    """Measure (f); return its figures."""
    sc = scaled_core(FILE, LIMIT, swap="2GiB")  # kernel-outcomes S1
    wall, res = median_time(lambda: simulate(sc), reps)
    # Every page of the file is faulted once (the reader survives): 65,536 faults.
    pages = (256 << 20) // 4096 if res.tasks["reader"].outcome == "ok" else 0
    steal = res.counters["memcg"]["/app"]["pgsteal"]
    figures = [Figure("(f) sim core reader with swap, 256 MiB through 64 MiB", pages / wall,
                      "pages/s", "", None,
                      f"{pages} pages in {wall * 1e3:.1f} ms, reader "
                      f"{res.tasks['reader'].outcome}, {steal} pages reclaimed")]
    kernel = populate_read_rate()
    if kernel.rate:
        ratio = pages / wall / kernel.rate
        figures.append(Figure("(f) sim with reclaim / kernel MADV_POPULATE_READ", ratio, "x",
                              ">= 100x", ratio >= 100, kernel.note))
    else:
        figures.append(Figure("(f) sim with reclaim / kernel MADV_POPULATE_READ", float("nan"),
                              "x", ">= 100x", None, f"kernel rate not measured: {kernel.note}"))
    return figures
