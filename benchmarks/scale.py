"""(c) Scale: the same sequential scan of a 1 GiB and a 1 TiB sealed memfd of holes, on
machines scaled to match; the 1 TiB scan's peak memory; and, with a 512 GiB memcg limit, the
page at which the 1 TiB scan is killed against the page the per-page rules give."""

from __future__ import annotations

import resource
import tracemalloc
from typing import Any
from unittest import mock

from simulator.mm import exit as mm_exit
from simulator.mm.mm_types import PT_SHIFTS
from simulator.simulation import Run

from .common import Figure, median_time
from .core import scaled_core

GiB_PAGES = 1 << 18
TiB_PAGES = 1 << 28


def scan(file_size: str, machine: str, limit: str) -> Any:
    """Run the core scenario's scan; return the result and the reader's VMA and mm at exit."""
    run = Run(scaled_core(file_size, limit, machine))
    seen: dict[str, Any] = {}
    exit_mm = mm_exit.exit_mm

    def observed_exit_mm(m: Any, task: Any) -> None:
        if task.name == "reader":
            vma = next(iter(task.mm.vmas.values()))
            seen["va0"], seen["npages"] = vma.start, vma.npages
        exit_mm(m, task)

    reader = run.procs["reader"].task
    seen["footprint"] = reader.memcg.usage  # charged at fork; /app holds only the reader
    seen["present"] = {s: [(a, b) for a, b, _ in reader.mm.pt[s].runs(0, 1 << 62)]
                       for s in PT_SHIFTS}
    seen["limit"] = reader.memcg.max
    with mock.patch.object(mm_exit, "exit_mm", observed_exit_mm):
        return run.run(), seen


def page_tables_for(va0: int, x: int, present: dict[int, list[tuple[int, int]]]) -> int:
    """Page-table pages a fault at each of the first x pages from va0 allocates in all: per
    level, the regions [va0, va0 + x) enters (2 MiB, 1 GiB, 512 GiB) less those present."""
    if x <= 0:
        return 0
    total = 0
    for s in PT_SHIFTS:
        r0, r1 = va0 >> s, (va0 + x - 1) >> s
        have = sum(max(0, min(b, r1 + 1) - max(a, r0)) for a, b in present[s])
        total += r1 - r0 + 1 - have
    return total


def xarray_slab_pages(x: int) -> int:
    """Slab pages charged for the xarray nodes over file pages 0..x-1 (576 bytes a node,
    charged by the page): one node per 64 entries, per 4,096, ... on every level below the
    height the highest index needs (none for a lone entry at index 0)."""
    if x <= 1:
        return 0
    nodes, span = 0, 64
    while True:
        nodes += -(-x // span)
        if x - 1 < span:
            break
        span *= 64
    return -(-nodes * 576 // 4096)


def expected_kill_page(seen: dict[str, Any]) -> int:
    """The first VMA page whose fault cannot be charged: the smallest k with footprint +
    (k + 1) data pages + page tables for pages 0..k + their xarray nodes' slab pages >
    memory.max."""
    va0, limit, fp = seen["va0"], seen["limit"], seen["footprint"]

    def over(k: int) -> bool:
        return (fp + (k + 1) + page_tables_for(va0, k + 1, seen["present"])
                + xarray_slab_pages(k + 1) > limit)

    lo, hi = 0, seen["npages"] - 1  # over(hi) holds for a limit below the file
    while lo < hi:
        mid = (lo + hi) // 2
        if over(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def run(reps: int = 7) -> list[Figure]:
    """Measure (c); return its figures."""
    small, (res_s, _) = median_time(lambda: scan("1GiB", "4GiB", "2GiB"), reps)
    big, (res_b, _) = median_time(lambda: scan("1TiB", "4TiB", "2TiB"), reps)
    assert res_s.tasks["reader"].outcome == "ok" and res_b.tasks["reader"].outcome == "ok"
    figures = [Figure("(c) wall time 1 TiB scan / 1 GiB scan", big / small, "x", "<= 2",
                      big / small <= 2, f"{big * 1e3:.2f} ms vs {small * 1e3:.2f} ms")]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    scan("1TiB", "4TiB", "2TiB")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    figures.append(Figure("(c) peak memory of the 1 TiB scan (tracemalloc)", peak / 2**20,
                          "MiB", "< 200 MB", peak < 200e6, f"maxrss grew {rss:.1f} MiB"))
    res, seen = scan("1TiB", "4TiB", "512GiB")
    out = res.tasks["reader"]
    want = expected_kill_page(seen)
    exact = out.outcome == "oom_killed" and out.page == want
    figures.append(Figure("(c) 1 TiB scan, 512 GiB memcg: killed at page", float(out.page or -1),
                          "", f"= {want:,}", exact,
                          f"{out.outcome}; va0 {seen['va0']:#x} (page), footprint "
                          f"{seen['footprint']}, page tables "
                          f"{page_tables_for(seen['va0'], want + 1, seen['present'])}"))
    return figures
