"""Compare a run's outcomes with the scenario's `expect` block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .scenario_model import ExpectTask
from .units import parse_bytes

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
            if key == "events":
                for ev, n in want.items():
                    if got["events"].get(ev) != n:
                        out.append(f"memcg {path}: expected {n} {ev} events, got {got['events'].get(ev)}")
                continue
            if key == "usage":
                have = got["usage_pages"]
            elif key == "peak_usage":
                have = got["max_usage_pages"]
            else:
                have = got[key]
            want_pages = parse_bytes(want) // ps if isinstance(want, str) else int(want)
            if have != want_pages:
                out.append(f"memcg {path}: expected {key} {want} ({want_pages} pages), got {have} pages")
    return out


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
