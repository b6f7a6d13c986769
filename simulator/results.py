"""Run results as pandas frames, Parquet files and the JSON document other tools read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic_io import atomic_write_parquet, atomic_write_text
from .outcome import RunResult, TaskOutcome, to_json

__all__ = ["RunResult", "TaskOutcome", "atomic_write_parquet", "atomic_write_text", "to_json"]

# Every column of every frame is documented in docs/output.md (a test holds them together).
EVENT_COLUMNS = ["time", "kind", "task", "memcg", "page", "pages", "value", "detail"]
LEVEL_COLUMNS = ["time", "kind", "key", "value", "ramp"]
TASK_COLUMNS = ["scenario", "seed", "kernel", "zero_page_sealed_holes", "task", "outcome", "errno",
                "op", "op_name", "page", "time", "reason", "charge_at_seal"]
OOM_KILL_COLUMNS = ["scenario", "seed", "kernel", "victim", "constraint", "memcg", "task_memcg",
                    "points", "totalpages", "time", "rss_pages", "pgtables_pages", "swapents",
                    "oom_score_adj", "line", "task_line", "oom_constraint", "nodemask",
                    "summary_line", "killer", "signal"]


def tasks_frame(scenario: str, runs: list[RunResult]) -> pd.DataFrame:
    """One row per task per run; `op` and `page` are nullable integers (pandas "Int64": <NA>
    where the task ended in no op or at no page)."""
    rows = []
    for r in runs:
        for name, o in r.tasks.items():
            rows.append({"scenario": scenario, "seed": r.seed, "kernel": r.kernel,
                         "zero_page_sealed_holes": bool(r.what_if.get("zero_page_sealed_holes")),
                         "task": name, **o.as_dict(),
                         "charge_at_seal": bool(r.what_if.get("charge_at_seal"))})
    out = pd.DataFrame(rows, columns=TASK_COLUMNS)
    for col in ("op", "page"):
        out[col] = out[col].astype("Int64")
    return out


def records_frame(scenario: str, runs: list[RunResult], records: str,
                  columns: list[str]) -> pd.DataFrame:
    """The `records` list of every run (its events, its levels) as one frame, a row each."""
    frames = []
    for r in runs:
        f = pd.DataFrame.from_records(getattr(r, records), columns=columns)
        f.insert(0, "kernel", r.kernel)
        f.insert(0, "seed", r.seed)
        f.insert(0, "scenario", scenario)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=["scenario", "seed", "kernel", *columns])
    return pd.concat(frames, ignore_index=True)


def events_frame(scenario: str, runs: list[RunResult]) -> pd.DataFrame:
    """The event log of every run, one row per record (kinds and columns: docs/output.md)."""
    out = records_frame(scenario, runs, "events", EVENT_COLUMNS)
    out["value"] = out["value"].astype("float64")
    return out


def levels_frame(scenario: str, runs: list[RunResult]) -> pd.DataFrame:
    """Memcg usage, node free pages, Committed_AS and swap slots in use, recorded whenever they
    changed (one row per change; `ramp`: reached linearly from the row before for that key,
    through a bulk step, rather than at once)."""
    out = records_frame(scenario, runs, "levels", LEVEL_COLUMNS)
    out["value"] = out["value"].astype("int64")
    out["ramp"] = out["ramp"].astype(bool)
    return out


def oom_kills_frame(scenario: str, runs: list[RunResult]) -> pd.DataFrame:
    """One row per OOM kill."""
    rows = [{"scenario": scenario, "seed": r.seed, "kernel": r.kernel, **k}
            for r in runs for k in r.oom_kills]
    return pd.DataFrame(rows, columns=OOM_KILL_COLUMNS)


def write_results(out: Path, scenario: str, runs: list[RunResult],
                  warnings: tuple[str, ...] | list[str] = (),
                  draws: dict[str, Any] | None = None) -> list[Path]:
    """tasks.parquet, events.parquet, oom_kills.parquet, levels.parquet and run.json under
    `out`."""
    files = {
        out / "tasks.parquet": tasks_frame(scenario, runs),
        out / "events.parquet": events_frame(scenario, runs),
        out / "oom_kills.parquet": oom_kills_frame(scenario, runs),
        out / "levels.parquet": levels_frame(scenario, runs),
    }
    for path, df in files.items():
        atomic_write_parquet(df, path)
    atomic_write_text(json.dumps(to_json(scenario, runs, warnings, draws), indent=1, default=str),
                      out / "run.json")
    return [*files, out / "run.json"]


def read_results(out: Path) -> dict[str, pd.DataFrame]:
    """Read back the frames `write_results` wrote."""
    return {name: pd.read_parquet(out / f"{name}.parquet")
            for name in ("tasks", "events", "oom_kills", "levels")}
