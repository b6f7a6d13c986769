"""Compare a run's outcomes with the scenario's `expect` block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .scenario_model import Bound, ExpectTask
from .units import parse_bytes
from .validify import PRESSURE_TOTALS, expect_number

if TYPE_CHECKING:
    from .outcome import RunResult
    from .scenario_model import Scenario


def mismatches(sc: Scenario, run: RunResult) -> list[str]:
    """One line per expectation the run does not meet (empty: all met)."""
    out = []
    for name, exp in sc.expect.items():
        if name == "memcg":
            out.extend(memcg_mismatches(exp, run, sc))  # type: ignore[arg-type]
            continue
        if name == "nodes":
            out.extend(node_mismatches(exp, run, sc))  # type: ignore[arg-type]
            continue
        got = run.tasks.get(name)
        if got is None:
            out.append(f"{name}: no outcome recorded")
            continue
        if isinstance(exp, dict):  # validify allows a mapping only under `memcg`
            continue
        want = exp if isinstance(exp, ExpectTask) else ExpectTask(outcome=exp)
        checks: list[tuple[str, object, object]] = [
            ("outcome", want.outcome, got.outcome), ("errno", want.errno, got.errno),
            ("op", want.op, got.op_name), ("page", want.page, got.page)]
        for field, w, g in checks:
            if w is not None and w != g:
                out.append(f"{name}: expected {field} {w!r}, got {g!r}")
        if want.reason is not None and not (got.reason is not None and want.reason in got.reason):
            out.append(f"{name}: expected reason {want.reason!r}, got {got.reason!r}")
    return out


def memcg_mismatches(exp: dict[str, dict[str, Any]], run: RunResult, sc: Scenario) -> list[str]:
    """Counters of memcgs: final (`shmem`) or peak (`peak_shmem`) values, and event counts.

    Peaks of memory.stat items are summed over the subtree as memory.stat shows them only for
    the memcg itself; `usage`/`peak_usage` are the page counter (hierarchical).
    """
    out = []
    ps = parse_bytes(sc.machine.page_size)
    for path, stats in exp.items():
        got = run.counters["memcg"][path]
        for key, want in stats.items():
            if key in ("events", "pressure"):
                out.extend(counter_mismatches(path, key, want, got[key]))
                continue
            if key == "usage":
                have = got["usage_pages"]
            elif key == "peak_usage":
                have = got["max_usage_pages"]
            elif key == "peak_memsw":
                have = got["memsw_peak_pages"]
            elif key == "memsw":  # memory + swap now (v2: memory.current + memory.swap.current)
                have = got["usage_pages"] + got["swap_current_pages"]
            else:
                have = got[key]
            if isinstance(want, dict):
                out.extend(size_bound_mismatches(path, key, want, have, ps))
                continue
            want_pages = parse_bytes(want) // ps if isinstance(want, str) else int(want)
            if have != want_pages:
                out.append(f"memcg {path}: expected {key} {want} ({want_pages} pages), got {have} pages")
    return out


def size_bound_mismatches(path: str, key: str, want: dict[str, Any], have: int, ps: int
                          ) -> list[str]:
    """A memcg size within `{min, max}`, or `values_close` to `{close, err}` as the kernel's
    cgroup selftests check it: |have - close| <= (have + close) x err / 100."""
    def pages(v: Any) -> int:
        return parse_bytes(v) // ps if isinstance(v, str) else int(v)

    if "close" in want:
        close, err = pages(want["close"]), float(want["err"])
        if abs(have - close) > (have + close) * err / 100:
            return [f"memcg {path}: expected {key} within {err:g}% of {want['close']} "
                    f"({close} pages), got {have} pages"]
        return []
    lo, hi = want.get("min"), want.get("max")
    if (lo is not None and have < pages(lo)) or (hi is not None and have > pages(hi)):
        return [f"memcg {path}: expected {key} in [{lo}, {hi}], got {have} pages"]
    return []


def counter_mismatches(path: str, kind: str, want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """memory.events counts, or memory.pressure values (totals as durations, averages in
    percent), each exact or within a `{min, max}` range."""
    out = []
    for name, w in want.items():
        have = got[name] if kind == "events" else (
            got[f"{name}_us"] if name in PRESSURE_TOTALS else got[name])
        if isinstance(w, Bound):
            lo = None if w.min is None else expect_number(kind, name, w.min)
            hi = None if w.max is None else expect_number(kind, name, w.max)
            if (lo is not None and have < lo) or (hi is not None and have > hi):
                rng = " and ".join(x for x in (w.min is not None and f"at least {w.min}",
                                               w.max is not None and f"at most {w.max}") if x)
                out.append(f"memcg {path}: expected {kind} {name} {rng}, got {shown(name, have)}")
        elif have != expect_number(kind, name, w):
            out.append(f"memcg {path}: expected {kind} {name} {w}, got {shown(name, have)}")
    return out


def shown(name: str, have: float) -> str:
    """A counter as the message shows it: totals in seconds."""
    return f"{have / 1e6:g}s" if name in PRESSURE_TOTALS else f"{have:g}"
def node_mismatches(exp: dict[Any, dict[str, Any]], run: RunResult, sc: Scenario) -> list[str]:
    """Counters of NUMA nodes, by node id: final (`shmem`, `free`) or peak (`peak_shmem`;
    `peak_free` is the fewest free pages), a size or a number of pages each."""
    out = []
    ps = parse_bytes(sc.machine.page_size)
    for nid, stats in exp.items():
        got = run.counters["nodes"][int(nid)]
        for key, want in stats.items():
            want_pages = parse_bytes(want) // ps if isinstance(want, str) else int(want)
            if got[key] != want_pages:
                out.append(f"node {nid}: expected {key} {want} ({want_pages} pages), "
                           f"got {got[key]} pages")
    return out
