"""(f) The core reader on a machine with swap: 256 MiB of sealed holes cycling through a 64 MiB
memcg (kernel-outcomes S1), every page beyond the limit bought by memcg reclaim dropping a
clean hole. Against the real kernel's fault rate measured in the same run (MADV_POPULATE_READ
of memfd holes: the machine here has no swap, and swap is never enabled for a benchmark).

Each 32-page memcg reclaim round is a one-page slow path in the bulk engine (about 0.5 ms of
Python each, 1,500 rounds), so this misses its target by about 500x. The figure "floor per
round" shows that no model taking the rounds one at a time can reach it here: one SimPy
timeout (the round's scan takes simulated time), one event-log record, the file's extent map
losing and gaining the round's pages and the three-level page counter uncharged and charged
already cost more than the whole round may (33 pages at 100x the kernel's rate). What would
reach it is a closed form for the steady cycle: k rounds at once while the inactive tail holds
the pages they reclaim, cut where an xarray node empties (every 64 pages), a page table is
taken (every 512), a PSI averaging period ends and young runs rotate."""

from __future__ import annotations

import time

from simulator.mm.extents import ExtentMap
from simulator.mm.memcontrol import page_counter_try_charge, page_counter_uncharge
from simulator.simulation import Run, simulate

from .common import Figure, median_time
from .core import scaled_core
from .kernel_rate import populate_read_rate

FILE, LIMIT = "256MiB", "64MiB"
ROUND = 33  # pages each memcg reclaim round frees in the steady cycle (pgsteal / rounds)


def round_floor(rounds: int = 1500) -> float:
    """Seconds per reclaim round that a model taking rounds one at a time cannot go below on
    this machine: the least each round must do, with the project's own primitives on a real
    machine of the scenario (one SimPy timeout, one log record, the file's extents losing
    and gaining ROUND pages, /app's page counter uncharged and charged)."""
    run = Run(scaled_core(FILE, LIMIT, swap="2GiB"))
    m, memcg, env = run.m, run.m.memcgs["/app"], run.env
    pages = ExtentMap()
    pages.fill(0, 16 * 1024, 0)

    def rounds_of_bookkeeping():  # type: ignore[no-untyped-def]
        head = 16 * 1024
        for i in range(rounds):
            yield env.timeout(1e-6)
            pages.remove(i * ROUND, (i + 1) * ROUND)
            page_counter_uncharge(m, memcg, ROUND)
            page_counter_try_charge(memcg, ROUND)
            pages.fill(head, head + ROUND, 0)
            head += ROUND
            m.log.emit("vmscan", task="reader", memcg=memcg.path, pages=ROUND, value=ROUND)

    env.process(rounds_of_bookkeeping())
    t0 = time.perf_counter()
    env.run()
    return (time.perf_counter() - t0) / rounds


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
    floor = min(round_floor() for _ in range(reps))
    figures.append(Figure("(f) floor per reclaim round, rounds one at a time", floor * 1e6, "us",
                          "", None, f"{ROUND} pages a round: at most {ROUND / floor:,.0f} "
                          "pages/s for any model that takes each round as a step"))
    kernel = populate_read_rate()
    if kernel.rate:
        ratio = pages / wall / kernel.rate
        figures.append(Figure("(f) sim with reclaim / kernel MADV_POPULATE_READ", ratio, "x",
                              ">= 100x", ratio >= 100, kernel.note))
        best = ROUND / floor / kernel.rate
        figures.append(Figure("(f) round-at-a-time floor / kernel MADV_POPULATE_READ", best, "x",
                              "", None, "the most a round-at-a-time model could reach: below "
                              "100x means the target needs rounds in closed form"))
    else:
        figures.append(Figure("(f) sim with reclaim / kernel MADV_POPULATE_READ", float("nan"),
                              "x", ">= 100x", None, f"kernel rate not measured: {kernel.note}"))
    return figures
