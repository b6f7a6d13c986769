"""The work of one chunk: its runs simulated, each task's outcome as a slim row.

`run_chunk` is what a worker process or a Dask worker executes: it takes only plain data (the
scenario text, the cell's grid values, the policy, kernel and runs), so it pickles cheaply and
gives the same rows wherever it runs. Within a process the scenario is parsed once and, when it
draws nothing, resolved once per cell and policy (the run's seed is all that changes).
"""

from __future__ import annotations

import json
import traceback
from functools import lru_cache
from typing import Any

from ..plan import Plan, resolve
from ..policies import apply_policy
from ..scenario import load_data, scenario_from_data
from ..simulation import simulate
from .instantiate import has_draws, instantiate
from .plan import cell_scenario

ROW_FIELDS = ("outcome", "errno", "op", "op_name", "page", "time", "reason")


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
def _static_plan(text: str, file: str, cell_json: str, policy: str) -> tuple[Plan, dict[str, str]]:
    """The resolved plan of a cell and policy whose scenario draws nothing (loaded once)."""
    raw, _ = _cell(text, file, cell_json)
    sc = apply_policy(policy, scenario_from_data(raw, file))
    return resolve(sc), {t.name: t.cgroup for t in sc.tasks}


def one_run(text: str, file: str, cell_json: str, policy: str, kernel: str,
            run: int) -> tuple[Any, dict[str, str], dict[str, Any], int]:
    """Simulate one run: (RunResult, task -> memcg, the run's draws, its seed)."""
    raw, draws_any = _cell(text, file, cell_json)
    seed0 = int(raw.get("seed", 1))
    seed = seed0 + run
    if not draws_any:
        plan, memcgs = _static_plan(text, file, cell_json, policy)
        return simulate(plan, seed=seed, kernel=kernel), memcgs, {}, seed
    concrete, draws = instantiate(raw, seed0, run)
    sc = apply_policy(policy, scenario_from_data(concrete, file, lines=raw))
    memcgs = {t.name: t.cgroup for t in sc.tasks}
    return simulate(resolve(sc), seed=seed, kernel=kernel), memcgs, draws, seed


def run_chunk(text: str, file: str, cell: dict[str, Any], policy: str, kernel: str,
              first: int, last: int) -> list[dict[str, Any]]:
    """Runs `[first, last)` of a cell under a policy and kernel: one row per task per run, or
    one error row (with its traceback) for a run that raised."""
    cell_json = json.dumps(cell, sort_keys=True, default=str)
    rows: list[dict[str, Any]] = []
    for run in range(first, last):
        base = {"policy": policy, "kernel": kernel, "run": run, **cell}
        try:
            result, memcgs, draws, seed = one_run(text, file, cell_json, policy, kernel, run)
        except Exception:  # recorded (ScenarioError included), and the sweep goes on
            rows.append({**base, "seed": None, "task": None, "error": traceback.format_exc()})
            continue
        memcg_counters = result.counters.get("memcg", {})
        draws_json = json.dumps(draws, sort_keys=True, default=str) if draws else None
        for task, o in result.tasks.items():
            d = o.as_dict()
            peak = memcg_counters.get(memcgs.get(task, "/"), {}).get("max_usage_pages")
            rows.append({**base, "seed": seed, "task": task,
                         **{k: d[k] for k in ROW_FIELDS},
                         "memcg": memcgs.get(task), "memcg_peak_pages": peak,
                         "draws": draws_json, "error": None})
    return rows
