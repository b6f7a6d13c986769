"""(a) Hole-fault throughput of the bulk engine on the core scenario scaled to a 1 GiB file,
against the real kernel's MADV_POPULATE_READ rate; (b) against the per-page reference model."""

from __future__ import annotations

from simulator.simulation import simulate

from .common import Figure, median_time
from .core import reader_pages, scaled_core
from .kernel_rate import populate_read_rate

FILE = "1GiB"
COMPLETES = "2GiB"  # /app's limit: the whole file fits
KILLED = "512MiB"  # /app's limit: the reader is OOM-killed half way


def run(reps: int = 7, ref_reps: int = 3) -> list[Figure]:
    """Measure (a) and (b); return their figures."""
    figures = []
    rates = {}
    for label, limit in (("completes", COMPLETES), ("OOM-killed", KILLED)):
        sc = scaled_core(FILE, limit)
        wall, res = median_time(lambda sc=sc: simulate(sc), reps)
        outcome = res.tasks["reader"].outcome
        pages = reader_pages(res)
        rates[label] = pages / wall
        figures.append(Figure(f"(a) sim hole faults, 1 GiB file, {label}", pages / wall,
                              "pages/s", "", None,
                              f"{pages} pages in {wall * 1e3:.2f} ms, reader {outcome}"))
    kernel = populate_read_rate()
    if kernel.rate:
        for label, rate in rates.items():
            ratio = rate / kernel.rate
            figures.append(Figure(f"(a) sim / kernel MADV_POPULATE_READ ({label})", ratio, "x",
                                  ">= 100x", ratio >= 100))
        figures.append(Figure("(a) kernel MADV_POPULATE_READ, 1 GiB memfd holes",
                              kernel.rate, "pages/s", "", None, kernel.note))
    else:
        figures.append(Figure("(a) sim / kernel MADV_POPULATE_READ", float("nan"), "x",
                              ">= 100x", None, f"kernel rate not measured: {kernel.note}"))
    sc = scaled_core(FILE, COMPLETES)
    bulk, _ = median_time(lambda: simulate(sc), reps)
    ref, res = median_time(lambda: simulate(sc, reference=True), ref_reps)
    figures.append(Figure("(b) reference model, same scenario (completes)",
                          reader_pages(res) / ref, "pages/s", "", None,
                          f"{ref:.2f} s per run"))
    figures.append(Figure("(b) bulk engine / per-page reference (wall time)", ref / bulk, "x",
                          ">= 50x", ref / bulk >= 50))
    return figures
