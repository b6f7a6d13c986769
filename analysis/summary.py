"""The tables of a sweep's report, as pure functions of its runs frame
(`pandas.read_parquet("DIR/runs")`, one row per task per run).

- `summary_frame`: each outcome's share of runs, with its Wilson 95% interval.
- `failure_frame`: the failure rate per cell, policy, kernel and task, with its interval and
  the run's costs (pages instantiated, peak memcg usage, when the parse started, tasks killed).
- `paired_frame`: each policy against a baseline on the same runs (common random numbers: run i
  of a cell draws the same workload under every policy): the 2x2 counts of failures, the
  difference in failure rate with Newcombe's paired interval, McNemar's exact p.
"""

from __future__ import annotations

import pandas as pd

from .frames import FAILURES, outcome_labels
from .stats import mcnemar_exact_p, paired_difference_interval, wilson_interval

KEYS = ["policy", "kernel", "task"]
# the columns every sweep row has; any other column is a grid path (simulator/experiment/sweep.py)
ROW_COLUMNS = {"policy", "kernel", "run", "seed", "task", "outcome", "errno", "op", "op_name",
               "page", "time", "reason", "memcg", "memcg_peak_pages", "draws", "error", "struck",
               "pages_instantiated", "parse_start", "others_killed"}
COST_COLUMNS = ["pages_instantiated", "memcg_peak_pages", "parse_start", "others_killed"]


def grid_columns(runs: pd.DataFrame) -> list[str]:
    """The grid paths of a runs frame, in its column order."""
    return [c for c in runs.columns if c not in ROW_COLUMNS]


def task_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of tasks (not the error rows of runs that raised), each with its outcome
    `label` (`oom_killed@touch`, as `outcome_labels`) and whether it `failed`."""
    df = runs[runs["task"].notna()].copy()
    if df.empty:
        return df.assign(label=pd.Series(dtype=str), failed=pd.Series(dtype=bool))
    df["label"] = outcome_labels(df)
    df["failed"] = df["label"].str.split(r"[:@]", regex=True).str[0].isin(FAILURES)
    return df


def with_wilson(df: pd.DataFrame, k: str, n: str, prefix: str = "ci") -> pd.DataFrame:
    """`df` with `rate` = k/n and its Wilson 95% interval as `<prefix>_low`, `<prefix>_high`."""
    out = df.copy()
    out["rate"] = out[k] / out[n]
    cis = [wilson_interval(int(a), int(b)) for a, b in zip(out[k], out[n], strict=True)]
    out[f"{prefix}_low"] = [c[0] for c in cis]
    out[f"{prefix}_high"] = [c[1] for c in cis]
    return out


def summary_frame(runs: pd.DataFrame, grid: list[str] | None = None) -> pd.DataFrame:
    """One row per cell, policy, kernel, task and outcome label: `runs` (of the task in that
    group), `count`, `rate` with its Wilson 95% interval (`ci_low`, `ci_high`), and `struck`
    (where in the program: `mitigation`, `parse`, `other`; "" for none) and `failed`."""
    grid = grid_columns(runs) if grid is None else grid
    df = task_rows(runs)
    by = [*grid, *KEYS]
    df["struck"] = df["struck"].fillna("") if "struck" in df else ""
    counts = (df.groupby([*by, "label", "struck"], sort=True, dropna=False).size()
              .rename("count").reset_index())
    totals = df.groupby(by, sort=True, dropna=False).size().rename("runs").reset_index()
    out = with_wilson(counts.merge(totals, on=by), "count", "runs")
    out = out.rename(columns={"label": "outcome"})
    out["failed"] = out["outcome"].str.split(r"[:@]", regex=True).str[0].isin(FAILURES)
    return out[[*by, "outcome", "runs", "count", "rate", "ci_low", "ci_high", "struck", "failed"]]


def failure_frame(runs: pd.DataFrame, grid: list[str] | None = None) -> pd.DataFrame:
    """One row per cell, policy, kernel and task: `runs`, `failed` (runs in which the task
    failed), `rate`, `ci_low`, `ci_high` (Wilson 95%), `in_mitigation` (failures in an op of the
    mitigation), `failed_page_median` (the median page at which the failed runs ended), and
    the means over its runs of the costs: `pages_instantiated`,
    `memcg_peak_pages`, `parse_start` (over the runs that reached the parse), `others_killed`."""
    grid = grid_columns(runs) if grid is None else grid
    df = task_rows(runs)
    by = [*grid, *KEYS]
    struck = df["struck"] if "struck" in df else pd.Series("", index=df.index)
    df["in_mitigation"] = df["failed"] & (struck == "mitigation")
    g = df.groupby(by, sort=True, dropna=False)
    out = g.agg(runs=("failed", "size"), failed=("failed", "sum"),
                in_mitigation=("in_mitigation", "sum"),
                **{c: (c, "mean") for c in COST_COLUMNS if c in df}).reset_index()
    pages = (df[df["failed"]].groupby(by, sort=True, dropna=False)["page"].median()
             .rename("failed_page_median").reset_index())
    out = with_wilson(out.merge(pages, on=by, how="left"), "failed", "runs")
    costs = [c for c in COST_COLUMNS if c in out]
    return out[[*by, "runs", "failed", "rate", "ci_low", "ci_high", "in_mitigation",
                "failed_page_median", *costs]]


def paired_frame(runs: pd.DataFrame, baseline: str = "none",
                 grid: list[str] | None = None) -> pd.DataFrame:
    """Each policy against `baseline` on the same runs: one row per cell, policy, kernel and
    task, from the runs both have (matched by cell, kernel, run and task).

    `fail_both`, `fail_policy_only`, `fail_baseline_only` count the runs; `rate_diff` is the
    policy's failure rate less the baseline's (negative: the policy fails less), with
    Newcombe's paired 95% interval (`diff_ci_low`, `diff_ci_high`), and `mcnemar_p` the exact
    two-sided p-value of "both fail equally often".
    """
    grid = grid_columns(runs) if grid is None else grid
    df = task_rows(runs)
    on = [*grid, "kernel", "run", "task"]
    base = df[df["policy"] == baseline][[*on, "failed"]].rename(columns={"failed": "base_failed"})
    others = df[df["policy"] != baseline][[*on, "policy", "failed"]]
    pairs = others.merge(base, on=on, how="inner")
    pairs["both"] = pairs["failed"] & pairs["base_failed"]
    pairs["policy_only"] = pairs["failed"] & ~pairs["base_failed"]
    pairs["baseline_only"] = ~pairs["failed"] & pairs["base_failed"]
    by = [*grid, "policy", "kernel", "task"]
    cols = [*grid, "policy", "baseline", "kernel", "task", "runs", "fail_both",
            "fail_policy_only", "fail_baseline_only", "rate_diff", "diff_ci_low", "diff_ci_high",
            "mcnemar_p"]
    if pairs.empty:
        return pd.DataFrame(columns=cols)
    out = pairs.groupby(by, sort=True, dropna=False).agg(
        runs=("failed", "size"), fail_both=("both", "sum"), fail_policy_only=("policy_only", "sum"),
        fail_baseline_only=("baseline_only", "sum")).reset_index()
    out["baseline"] = baseline
    diffs = [paired_difference_interval(a, b, c, n - a - b - c) for a, b, c, n in
             zip(out["fail_both"], out["fail_policy_only"], out["fail_baseline_only"], out["runs"],
                 strict=True)]
    out["rate_diff"] = [d.diff for d in diffs]
    out["diff_ci_low"] = [d.low for d in diffs]
    out["diff_ci_high"] = [d.high for d in diffs]
    out["mcnemar_p"] = [mcnemar_exact_p(b, c) for b, c in
                        zip(out["fail_policy_only"], out["fail_baseline_only"], strict=True)]
    return out[cols]
