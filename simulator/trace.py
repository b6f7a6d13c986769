"""A run as a Chrome/Perfetto trace: the trace-event format's JSON Object Format.

`chrome_trace(runs, plan)` turns the event log and the level records of each run into
`{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}`, which ui.perfetto.dev
and chrome://tracing open. Fields as the format defines them: `name`, `cat`, `ph`, `ts` and
`dur` in microseconds (of simulated time; floats, rounded to the nanosecond), `pid`, `tid`,
`args`, `s` (an instant's scope). Format: "Trace Event Format" (Google, the catapult
project's docs/trace-event-format.md links it); Perfetto's JSON import follows it.

Layout:
    - One process (`pid`) per run (per seed), named `seed S: SCENARIO (kernel K)` (and the
      what-if switches that are on).
    - One track (`tid`) per task, named after it, in the scenario's order (`thread_sort_index`);
      then one track per node's kswapd (`kswapd0`, ...) and a `kernel` track for records of no
      task (page tables freed after RCU, an inode evicted, writeback, a panic). tids are unique
      across the whole trace.
    - On a task's track, complete slices (`X`), properly nested: the task (task_start to
      task_exit, or to the run's end), its ops, `do_exit` (outcome to task_exit), and inside an
      op the walk's time slices (`fault_slice`) and bulk steps (`fault_bulk`), direct reclaim
      (`vmscan`), memory.high's penalty sleep (`memcg_high_throttle`) and MADV_PAGEOUT's write
      (`madvise_pageout`). Direct reclaim is drawn on the reclaiming task's track, not a track
      of its own: it runs in the allocating task's context, which is where ftrace's
      mm_vmscan_direct_reclaim_begin/end put it too, and reclaimers running at once would
      overlap on a shared track.
    - Instants (`i`, scope `t`): each OOM kill on its victim's track (from the run's kill
      records), each task's outcome at its time (from the outcomes: a `hung` task's is the
      run's end), and every other record of the event log on its task's track (the kernel track
      for none), with its fields as args. kswapd's `balance_pgdat` runs are slices on the node's
      track.
    - Counters (`C`): the level records (memcg usage and swap per memcg, free pages per node,
      swap slots in use, Committed_AS), one counter per kind and key, named `KIND KEY`, in
      pages.

Times the event log does not hold are derived, and each is named here:
    - An op ends at the task's next `op_start`, `op_error` or `task_outcome`; the last op of a
      task the run's end left running ends at the run's end.
    - A walk's time slice (`fault_slice`, logged at its start, before its time passes) ends at
      the task's next own record. Its bulk steps (`fault_bulk` records of the same instant,
      logged as each is taken, all before the slice's time passes) share the time up to the
      task's next own record other than the slice's own, in proportion to their pages (the
      model lets their time pass at once; pages already present cost nothing, so this is an
      approximation within the group).
    - Direct reclaim lasts `reclaim_time` (pages scanned x `Costs.reclaim_scan` + pages written
      to swap x `Costs.pageout`, the model's own rule); memory.high's penalty sleep its jiffies
      at HZ=250; MADV_PAGEOUT its pages x `Costs.pageout`. Each is cut at the task's next own
      record (a kill ends a killable sleep).
    - kswapd's `balance_pgdat` runs from its node's `kswapd_wake` record to its `kswapd`
      record (to the run's end if the run ended first).
    - A swap-in by read(2) (`swapin`) is logged when the read call returns, its pages' reads
      interleaved with the copying: an instant.
    A task's own records are those its context writes; the records of a kill (`signal_deliver`,
    `mark_victim`, `oom_kill`, `memcg_oom_kill`, `memcg_oom_group_kill`, `oom_reaper`) name the
    victim but are written by the killer, and bound no slice of the victim.

Counters are step functions in Perfetto and chrome://tracing: a value holds until the next
sample. An instant change is one sample at its time. A bulk step's ramp (a counter moving
linearly through the step, `ramp` in levels.parquet) is drawn as a staircase from the value
before to the value after, each stair placed at the time the linear ramp reaches its value, so
the drawn level is never ahead of the ramp; the endpoints are exact, and no stair is taller
than 1/`RAMP_STEPS` of the ramp's change or 1/`RAMP_RESOLUTION` of the counter's peak, whichever
is larger (a finer stair would not show on a track; a small ramp is one stair, at its end). Each
counter gets a last sample at the run's end, so it is drawn to the end.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic_io import atomic_write_text
from .engine.rng import frozen_heap
from .mm.machine import Costs
from .outcome import RunResult
from .scenario_errors import ScenarioError

if TYPE_CHECKING:
    from .plan import Plan

HZ = 250  # the model's jiffies (memcg_high_throttle's value)
RAMP_STEPS = 16  # at most this many stairs draw one ramp
RAMP_RESOLUTION = 256  # stairs no finer than the counter's peak / this
# Records that name a task but are written by another context (the killer, the OOM reaper).
KILL_KINDS = frozenset({"signal_deliver", "mark_victim", "oom_kill", "memcg_oom_kill",
                        "memcg_oom_group_kill", "oom_reaper"})
OP_END_KINDS = frozenset({"op_start", "op_error", "task_outcome"})
# Drawn otherwise than as an instant of its own: slices, the outcome instants, the kill instants.
NOT_INSTANTS = frozenset({"task_start", "op_start", "task_exit", "task_outcome", "fault_bulk",
                          "fault_slice", "vmscan", "memcg_high_throttle", "madvise_pageout",
                          "oom_kill", "kswapd", "kswapd_wake"})
# Nesting depth on a task's track: at one ts, parents sort before children (same `dur`).
DEPTH = {"task": 0, "op": 1, "exit": 1, "fault_slice": 2, "fault_bulk": 3, "slice": 2}


def ns(t: float) -> int:
    """Simulated seconds -> whole nanoseconds (ts and dur are these / 1000: microseconds)."""
    return int(t * 1e9 + 0.5)


class TraceBuilder:
    """The trace's events, and its tids (one per track, unique in the trace)."""

    def __init__(self) -> None:
        self.meta: list[dict[str, Any]] = []
        self.events: list[tuple[float, float, int, dict[str, Any]]] = []
        self.next_tid = 1

    def track(self, pid: int, name: str, sort: int) -> int:
        """A new named track of process `pid`; returns its tid."""
        tid = self.next_tid
        self.next_tid += 1
        self.meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                          "args": {"name": name}})
        self.meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                          "args": {"sort_index": sort}})
        return tid

    def complete(self, pid: int, tid: int, name: str, cat: str, t0: float, t1: float,
                 args: dict[str, Any], depth: int) -> None:
        """A complete slice (`X`) from t0 to t1 (seconds)."""
        n0 = ns(t0)
        ts, dur = n0 / 1000, max(0, ns(t1) - n0) / 1000
        self.events.append((ts, -dur, depth, {"name": name, "cat": cat, "ph": "X", "ts": ts,
                                              "dur": dur, "pid": pid, "tid": tid, "args": args}))

    def instant(self, pid: int, tid: int, name: str, cat: str, t: float,
                args: dict[str, Any]) -> None:
        """An instant (`i`) on the track (scope `t`)."""
        ts = ns(t) / 1000
        self.events.append((ts, 0.0, 9, {"name": name, "cat": cat, "ph": "i", "s": "t", "ts": ts,
                                         "pid": pid, "tid": tid, "args": args}))

    def counter(self, pid: int, tid: int, name: str, t: float, value: float) -> None:
        """A counter sample (`C`): `name` is `value` pages from `t` on. Counters belong to the
        process; `tid` (the format's field, which viewers ignore here) is the kernel track."""
        ts = ns(t) / 1000
        self.events.append((ts, 0.0, 9, {"name": name, "cat": "level", "ph": "C", "ts": ts,
                                         "pid": pid, "tid": tid, "args": {"pages": value}}))

    def sorted_events(self) -> list[dict[str, Any]]:
        """Metadata first, then the events by ts (parents before children at one ts)."""
        self.events.sort(key=lambda e: e[:3])
        return [*self.meta, *(e[3] for e in self.events)]


def chrome_trace(runs: Iterable[RunResult], plan: Plan) -> dict[str, Any]:
    """The trace of one or more runs of a scenario (one process per run), as a JSON object."""
    b = TraceBuilder()
    runs = list(runs)
    costs = Costs(**plan.costs)
    with frozen_heap():  # a trace is a heap of small dicts, none cyclic: no collections
        for i, run in enumerate(runs):
            add_run(b, run, plan, costs, pid=i + 1, sort=i)
        events = b.sorted_events()
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "scenario": plan.scenario.name,
            "seeds": [r.seed for r in runs],
            "kernels": sorted({r.kernel for r in runs}),
            "clock": "simulated time (ts in microseconds from the run's start)",
            "page_size": plan.page_size,
        },
    }


def check_trace_path(path: Path) -> None:
    """`--trace FILE` must name a file that can be written: not a directory, and no part of its
    directory a file. Checked before anything runs."""
    if path.is_dir():
        raise ScenarioError(f"--trace {path}: is a directory; give a file name (run.json)")
    for p in path.parents:
        if p.exists() and not p.is_dir():
            raise ScenarioError(f"--trace {path}: {p} exists and is not a directory")


def write_trace(path: Path, runs: Iterable[RunResult], plan: Plan) -> None:
    """Write the trace as JSON to `path`, atomically (whole or not at all)."""
    doc = chrome_trace(runs, plan)
    atomic_write_text(json.dumps(doc, separators=(",", ":"), default=str), path)


def add_run(b: TraceBuilder, run: RunResult, plan: Plan, costs: Costs, pid: int,
            sort: int) -> None:
    """One run's process: its tracks, slices, instants and counters."""
    what_if = "".join(f", what-if {k}" for k, v in sorted(run.what_if.items()) if v)
    b.meta.append({"name": "process_name", "ph": "M", "pid": pid, "args": {
        "name": f"seed {run.seed}: {run.scenario} (kernel {run.kernel}{what_if})"}})
    b.meta.append({"name": "process_sort_index", "ph": "M", "pid": pid,
                   "args": {"sort_index": sort}})
    names = [tp.spec.name for tp in plan.tasks]
    tids = {name: b.track(pid, name, k) for k, name in enumerate(names)}
    kswapd = {n: b.track(pid, f"kswapd{n}", len(names) + n) for n in range(len(plan.nodes))}
    kernel = b.track(pid, "kernel", len(names) + len(plan.nodes))

    own: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    woken: dict[int, tuple[Any, ...]] = {}  # node -> its kswapd_wake record, while it runs
    for r in run.events:
        t, kind, task = r[0], r[1], r[2]
        if task in tids and kind not in KILL_KINDS:
            own[task].append(r)
        if kind in NOT_INSTANTS:
            if kind == "kswapd_wake":
                woken[r[4]] = r
            elif kind == "kswapd":
                w = woken.pop(r[4], r)
                b.complete(pid, kswapd.get(r[4], kernel), "balance_pgdat", "reclaim", w[0], t,
                           {"node": r[4], "free_before": w[6], "reclaimed": r[5],
                            "free_after": r[6]}, DEPTH["task"])
            continue
        b.instant(pid, tids.get(task, kernel), kind, category(kind), t, record_args(r))
    for nid, w in woken.items():  # still reclaiming when the run ended
        b.complete(pid, kswapd.get(nid, kernel), "balance_pgdat", "reclaim", w[0], run.end_time,
                   {"node": nid, "free_before": w[6]}, DEPTH["task"])
    for name in names:
        task_slices(b, pid, tids[name], own.get(name, []), run.end_time, costs)
    for k in run.oom_kills:
        args = {f: v for f, v in k.items() if f != "time"}
        b.instant(pid, tids.get(k["victim"], kernel), "oom_kill", "oom", k["time"], args)
    for name, o in run.tasks.items():
        b.instant(pid, tids.get(name, kernel), f"outcome: {o.outcome}", "outcome", o.time,
                  {k: v for k, v in o.as_dict().items() if v is not None})
    level_counters(b, pid, kernel, run.levels, run.end_time)


def category(kind: str) -> str:
    """The `cat` of a record's instant: a few families, for filtering."""
    if "oom" in kind or kind in ("mark_victim", "signal_deliver"):
        return "oom"
    if kind.startswith("memcg_"):
        return "memcg"
    if kind in ("swapin", "writeback", "shmem_file_read_iter", "filemap_read"):
        return "io"
    return "mm"


def record_args(r: tuple[Any, ...]) -> dict[str, Any]:
    """An event-log record's fields that hold something, as args (docs/output.md: kinds)."""
    task, memcg, page, pages, value, detail = r[2:8]
    args: dict[str, Any] = {}
    if task:
        args["task"] = task
    if memcg:
        args["memcg"] = memcg
    if page != -1:
        args["page"] = page
    if pages:
        args["pages"] = pages
    if value:
        args["value"] = value
    if detail:
        args["detail"] = detail
    return args


def task_slices(b: TraceBuilder, pid: int, tid: int, recs: list[tuple[Any, ...]],
                end_time: float, costs: Costs) -> None:
    """The slices of one task's track, from its own records (see the module docstring for the
    times derived)."""
    n = len(recs)
    start = exit_t = outcome_t = None
    memcg = ""
    for i, r in enumerate(recs):
        t, kind = r[0], r[1]
        nxt = recs[i + 1][0] if i + 1 < n else end_time
        if kind == "task_start":
            start, memcg = t, r[3]
        elif kind == "task_exit":
            exit_t = t
        elif kind == "task_outcome" and outcome_t is None:
            outcome_t = t
        elif kind == "op_start":
            end = next((recs[j][0] for j in range(i + 1, n) if recs[j][1] in OP_END_KINDS),
                       end_time)
            b.complete(pid, tid, r[7], "op", t, end, {"op": int(r[6])}, DEPTH["op"])
        elif kind == "fault_slice":
            b.complete(pid, tid, "fault_slice", "fault", t, nxt,
                       {"pages": r[5], "last_page": r[4], "memcg": r[3], "memcg_usage": r[6]},
                       DEPTH["fault_slice"])
        elif kind == "fault_bulk" and not (i and recs[i - 1][1] == "fault_bulk"
                                           and recs[i - 1][0] == t):
            bulk_group(b, pid, tid, recs, i, end_time)
        elif kind == "vmscan":
            swapped = int(r[7].removeprefix("swapped=") or 0)
            took = r[6] * costs.reclaim_scan + swapped * costs.pageout
            b.complete(pid, tid, "vmscan", "reclaim", t, min(t + took, nxt),
                       {"memcg": r[3], "reclaimed": r[5], "scanned": r[6], "swapped": swapped},
                       DEPTH["slice"])
        elif kind == "memcg_high_throttle":
            b.complete(pid, tid, "memcg_high_throttle", "memcg", t, min(t + r[6] / HZ, nxt),
                       {"memcg": r[3], "pages_over_high": r[5], "jiffies": r[6]},
                       DEPTH["slice"])
        elif kind == "madvise_pageout":
            b.complete(pid, tid, "madvise_pageout", "swap", t,
                       min(t + r[5] * costs.pageout, nxt),
                       {"memcg": r[3], "first_page": r[4], "pages": r[5], "swap_inuse": r[6],
                        **({"errno": r[7]} if r[7] else {})}, DEPTH["slice"])
    if start is not None:
        b.complete(pid, tid, "task", "task", start, end_time if exit_t is None else exit_t,
                   {"memcg": memcg}, DEPTH["task"])
    if outcome_t is not None and exit_t is not None:
        b.complete(pid, tid, "do_exit", "task", outcome_t, exit_t, {}, DEPTH["exit"])


def bulk_group(b: TraceBuilder, pid: int, tid: int, recs: list[tuple[Any, ...]], i: int,
               end_time: float) -> None:
    """The `fault_bulk` records from `i` on at one instant: their time runs to the task's next
    own record other than `fault_slice`, shared in proportion to their pages."""
    t = recs[i][0]
    j = i
    while j < len(recs) and recs[j][1] == "fault_bulk" and recs[j][0] == t:
        j += 1
    group = recs[i:j]
    end = next((recs[k][0] for k in range(j, len(recs)) if recs[k][1] != "fault_slice"),
               end_time)
    total = sum(r[5] for r in group) or 1
    done = 0
    for r in group:
        t0 = t + (end - t) * done / total
        done += r[5]
        t1 = t + (end - t) * done / total
        b.complete(pid, tid, "fault_bulk", "fault", t0, t1,
                   {"pages": r[5], "last_page": r[4], "memcg": r[3], "memcg_usage": r[6]},
                   DEPTH["fault_bulk"])


def level_counters(b: TraceBuilder, pid: int, tid: int, levels: list[tuple[Any, ...]],
                   end_time: float) -> None:
    """The level records as counters: a sample at each change, a staircase through each ramp
    (module docstring), and a last sample at the run's end."""
    series: dict[tuple[str, str], list[tuple[float, int, bool]]] = defaultdict(list)
    for t, kind, key, value, ramp in levels:
        series[(kind, str(key))].append((t, value, ramp))
    for (kind, key), points in series.items():
        name = f"{kind} {key}".strip()
        resolution = max(1.0, max(abs(v) for _, v, _ in points) / RAMP_RESOLUTION)
        t0, v0, _ = points[0]
        b.counter(pid, tid, name, t0, v0)
        for t, v, ramp in points[1:]:
            if v != v0 and ramp and t > t0:
                dv = v - v0
                steps = min(RAMP_STEPS, max(1, math.ceil(abs(dv) / resolution)))
                for k in range(1, steps + 1):
                    vk = v0 + round(dv * k / steps)
                    b.counter(pid, tid, name, t0 + (t - t0) * (vk - v0) / dv, vk)
            elif v != v0:
                b.counter(pid, tid, name, t, v)
            t0, v0 = t, v
        if t0 < end_time:
            b.counter(pid, tid, name, end_time, v0)
