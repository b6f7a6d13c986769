"""What every benchmark shares: timing (median of repetitions), figures, and the host."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured figure, its target and whether it met it."""

    name: str
    value: float
    unit: str
    target: str
    passed: bool | None  # None: no target (reported for context)
    note: str = ""

    @property
    def verdict(self) -> str:
        """PASS, MISS, or an empty string for a figure without a target."""
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")

    def line(self) -> str:
        """One printed line: name, value with unit, target, verdict."""
        target = f"(target {self.target})" if self.target else ""
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.name:<58} {fmt(self.value):>14} {self.unit:<16} {target:<24} " \
               f"{self.verdict}{note}"


def fmt(v: float) -> str:
    """A figure with thousands separators or three significant decimals."""
    if v != v:  # NaN
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def median_time(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """The median wall time of `reps` calls of fn, and the last call's result."""
    times, result = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def host() -> dict[str, str]:
    """The machine the figures were measured on."""
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "kernel": platform.release(),
        "Python": platform.python_version(),
    }
