"""Tables from the tasks frame (`results.tasks_frame`, `sweep.sweep_frame`)."""

from __future__ import annotations

import pandas as pd

from simulator.outcome import DURATION_RAN_OUT, NOT_STARTED

FAILURES = ("oom_killed", "sigbus", "error", "hung", "panic", "sigsegv", "killed")


# `hung` tasks that were merely still running (or not yet started) when the duration ended.
STILL_RUNNING = {DURATION_RAN_OUT: "running", NOT_STARTED: "not_started"}


def outcome_labels(tasks: pd.DataFrame) -> pd.Series:
    """`oom_killed@touch`, `error:EAGAIN@mlock`, `ok`: one label per row, saying where it struck.

    A `hung` task whose reason says the duration ran out while it ran is labelled `running`
    (one still waiting for its start time `not_started`): neither counts as a failure."""
    def label(r: pd.Series) -> str:
        s = r["outcome"]
        if s == "hung" and r.get("reason") in STILL_RUNNING:
            s = STILL_RUNNING[r["reason"]]
        if isinstance(r.get("errno"), str) and r["errno"]:
            s += f":{r['errno']}"
        if r["outcome"] != "ok" and isinstance(r.get("op_name"), str):
            s += f"@{r['op_name']}"
        return s

    return tasks.apply(label, axis=1)


def failure_rates(tasks: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Share of runs per outcome label, grouped (default: policy, kernel, task when present).

    Returns one row per group and label with columns `runs`, `count`, `rate`, and `failed`
    (whether the label is a failure).
    """
    by = by or [c for c in ("policy", "kernel", "task") if c in tasks.columns]
    df = tasks.assign(label=outcome_labels(tasks))
    counts = df.groupby([*by, "label"], sort=True).size().rename("count").reset_index()
    totals = df.groupby(by, sort=True).size().rename("runs").reset_index()
    out = counts.merge(totals, on=by)
    out["rate"] = out["count"] / out["runs"]
    out["failed"] = out["label"].str.split(r"[:@]", regex=True).str[0].isin(FAILURES)
    return out[[*by, "label", "runs", "count", "rate", "failed"]]
