"""The work of one chunk: its runs simulated, each task's outcome as a slim row.

`run_chunk` is what a worker process or a Dask worker executes: it takes only plain data (the
scenario text, the cell's grid values, the policy, kernel and runs), so it pickles cheaply and
gives the same rows wherever it runs. Within a process the scenario is parsed once and, when it
draws nothing, resolved once per cell and policy (the run's seed is all that changes).

Besides the outcome, a row says where in the program the task ended (`struck`: in an op the
policy added or changed, in the parse, elsewhere) and what the run cost: the page cache the
task's memcg paid for, when the parse started, and the other tasks killed (docs/output.md).
"""

from __future__ import annotations

import difflib
import json
import traceback
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..outcome import RunResult
from ..plan import Plan, resolve
from ..policies import apply_policy
from ..scenario import load_data, scenario_from_data
from ..scenario_model import Scenario
from ..scenario_ops import op_name
from ..simulation import simulate
from .instantiate import has_draws, instantiate
from .plan import cell_scenario

ROW_FIELDS = ("outcome", "errno", "op", "op_name", "page", "time", "reason")
PARSE_OPS = ("touch", "read")  # the ops that read the data: the program's parse
KILLED = ("oom_killed", "killed")


@dataclass(frozen=True)
class TaskParts:
    """A task's ops as the policy left them: those it added or changed (`mitigation`) and the
    parse (the first touch or read op; None if the task has none)."""

    mitigation: frozenset[int]
    parse: int | None

    def struck(self, op: int | None) -> str | None:
        """Which part of the program op `op` is: `mitigation`, `parse` or `other`."""
        if op is None:
            return None
        if op in self.mitigation:
            return "mitigation"
        return "parse" if op == self.parse else "other"


def program_parts(base: Scenario, variant: Scenario) -> dict[str, TaskParts]:
    """Each task's `TaskParts`: the variant's ops matched against the program as written (the
    longest common subsequence of op names, then matched ops compared whole); an op with no
    match, or matched to a different op (an mmap given MAP_POPULATE), is the policy's, and so
    is every op of a task the policy added."""
    written = {t.name: t.ops for t in base.tasks}
    out: dict[str, TaskParts] = {}
    for t in variant.tasks:
        parse = next((i for i, o in enumerate(t.ops) if op_name(o) in PARSE_OPS), None)
        if t.name not in written:
            out[t.name] = TaskParts(frozenset(range(len(t.ops))), parse)
            continue
        old = written[t.name]
        if len(old) == len(t.ops) and all(a == b for a, b in zip(old, t.ops, strict=True)):
            out[t.name] = TaskParts(frozenset(), parse)  # the program as written
            continue
        sm = difflib.SequenceMatcher(None, [op_name(o) for o in old], [op_name(o) for o in t.ops],
                                     autojunk=False)
        added: set[int] = set()
        for tag, i1, _, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                added.update(j for k, j in enumerate(range(j1, j2)) if old[i1 + k] != t.ops[j])
            elif tag in ("replace", "insert"):
                added.update(range(j1, j2))
        out[t.name] = TaskParts(frozenset(added), parse)
    return out


def parse_starts(result: RunResult, parts: dict[str, TaskParts]) -> dict[str, float]:
    """When each task started its parse op (`op_start` of that op), for the tasks that did."""
    want = {task: p.parse for task, p in parts.items() if p.parse is not None}
    out: dict[str, float] = {}
    for rec in result.events:
        if rec[1] == "op_start" and rec[2] not in out and want.get(rec[2]) == int(rec[6]):
            out[rec[2]] = rec[0]
    return out


@lru_cache(maxsize=8)
def _raw(text: str, file: str) -> dict[str, Any]:
    """The scenario text parsed once per process."""
    data: dict[str, Any] = load_data(text, file)
    return data


@lru_cache(maxsize=64)
def _cell(text: str, file: str, cell_json: str) -> tuple[dict[str, Any], bool]:
    """A grid cell's scenario, and whether it draws anything."""
    raw = cell_scenario(_raw(text, file), json.loads(cell_json))
    return raw, has_draws(raw)


@lru_cache(maxsize=64)
def _static_plan(text: str, file: str, cell_json: str,
                 policy: str) -> tuple[Plan, dict[str, str], dict[str, TaskParts]]:
    """The resolved plan of a cell and policy whose scenario draws nothing (loaded once)."""
    raw, _ = _cell(text, file, cell_json)
    base = scenario_from_data(raw, file)
    sc = apply_policy(policy, base)
    return resolve(sc), {t.name: t.cgroup for t in sc.tasks}, program_parts(base, sc)


@dataclass
class OneRun:
    """One simulated run and what its rows need besides the result."""

    result: RunResult
    memcgs: dict[str, str]  # task -> its memcg
    draws: dict[str, Any]  # the run's drawn values by field path ({} if none)
    seed: int
    parts: dict[str, TaskParts]
    plan: Plan  # the resolved scenario it ran (the policy's variant, its draws made)


def one_run(text: str, file: str, cell_json: str, policy: str, kernel: str, run: int,
            levels: bool = False) -> OneRun:
    """Simulate run `run` of a cell (its grid values as JSON) under a policy and kernel; with
    its level records only if asked (`levels`: a sweep's rows have none, a report's
    timelines do)."""
    raw, draws_any = _cell(text, file, cell_json)
    seed0 = int(raw.get("seed", 1))
    seed = seed0 + run
    if not draws_any:
        plan, memcgs, parts = _static_plan(text, file, cell_json, policy)
        return OneRun(simulate(plan, seed=seed, kernel=kernel, levels=levels), memcgs, {}, seed,
                      parts, plan)
    concrete, draws = instantiate(raw, seed0, run)
    base = scenario_from_data(concrete, file, lines=raw)
    sc = apply_policy(policy, base)
    memcgs = {t.name: t.cgroup for t in sc.tasks}
    plan = resolve(sc)
    return OneRun(simulate(plan, seed=seed, kernel=kernel, levels=levels), memcgs, draws, seed,
                  program_parts(base, sc), plan)


def task_rows(r: OneRun) -> list[dict[str, Any]]:
    """One row per task of a run: its outcome, where it struck, and the run's costs."""
    result = r.result
    memcg_counters = result.counters.get("memcg", {})
    draws_json = json.dumps(r.draws, sort_keys=True, default=str) if r.draws else None
    starts = parse_starts(result, r.parts)
    killed = {t for t, o in result.tasks.items() if o.outcome in KILLED}
    rows = []
    for task, o in result.tasks.items():
        d = o.as_dict()
        mc = memcg_counters.get(r.memcgs.get(task, "/"), {})
        parts = r.parts.get(task)
        rows.append({"seed": r.seed, "task": task, **{k: d[k] for k in ROW_FIELDS},
                     "memcg": r.memcgs.get(task), "memcg_peak_pages": mc.get("max_usage_pages"),
                     "draws": draws_json, "error": None,
                     "struck": parts.struck(o.op) if parts else None,
                     "pages_instantiated": mc.get("peak_file"),
                     "parse_start": starts.get(task),
                     "others_killed": len(killed - {task})})
    return rows


def run_chunk(text: str, file: str, cell: dict[str, Any], policy: str, kernel: str,
              first: int, last: int) -> list[dict[str, Any]]:
    """Runs `[first, last)` of a cell under a policy and kernel: one row per task per run, or
    one error row (with its traceback) for a run that raised."""
    cell_json = json.dumps(cell, sort_keys=True, default=str)
    rows: list[dict[str, Any]] = []
    for run in range(first, last):
        base = {"policy": policy, "kernel": kernel, "run": run, **cell}
        try:
            done = one_run(text, file, cell_json, policy, kernel, run)
        except Exception:  # recorded (ScenarioError included), and the sweep goes on
            rows.append({**base, "seed": None, "task": None, "error": traceback.format_exc()})
            continue
        rows.extend({**base, **row} for row in task_rows(done))
    return rows
