"""`oomsim report DIR`: a sweep's tables, figures and one self-contained HTML page.

It reads what `oomsim sweep` wrote (DIR/sweep.json, DIR/runs/), computes the tables of
analysis/summary.py, draws the figures of analysis/plots.py (the memory timeline from one run
simulated again with its cell, policy, kernel and seed), and writes, each atomically:
DIR/summary.csv, DIR/paired.csv, DIR/failures.csv, DIR/figures/*.png and *.svg, and
DIR/report.html (its images embedded, so the file stands alone).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from ..atomic_io import atomic_write, atomic_write_text
from ..scenario import load_data
from ..scenario_errors import ScenarioError
from .work import OneRun, one_run


@dataclass
class Sweep:
    """A sweep's directory as read back: sweep.json and the rows of runs/."""

    path: Path
    meta: dict[str, Any]
    runs: pd.DataFrame
    grid: list[str]

    @property
    def cells(self) -> list[dict[str, Any]]:
        """The grid cells, in the plan's order."""
        cells: list[dict[str, Any]] = self.meta["plan"]["cells"]
        return cells

    @property
    def name(self) -> str:
        """The scenario's name (or its file's)."""
        raw = load_data(self.meta["text"], self.meta.get("scenario", "scenario"))
        return str(raw.get("name") or self.meta.get("scenario", "sweep"))

    def cell_of(self, row: Any) -> int:
        """The index of the cell a row of `runs` belongs to."""
        for i, cell in enumerate(self.cells):
            if all(_same(row[p], v) for p, v in cell.items()):
                return i
        raise ScenarioError(f"a row's grid values match no cell of {self.path}/sweep.json")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def load_sweep(path: Path) -> Sweep:
    """Read a sweep's directory; a directory that is not one is an input error saying why."""
    meta_file = path / "sweep.json"
    hint = f"give the directory `oomsim sweep FILE --out {path}` wrote"
    if not path.is_dir():
        raise ScenarioError(f"{path} is not a directory; {hint}")
    if not meta_file.is_file():
        raise ScenarioError(f"{path} is not a sweep's directory: it has no sweep.json; {hint}")
    try:
        meta = json.loads(meta_file.read_text())
        meta["text"], meta["plan"]["cells"], meta["plan"]["policies"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ScenarioError(f"{meta_file}: not a sweep.json written by `oomsim sweep` ({e})") from None
    parts = sorted((path / "runs").glob("part-*.parquet"))
    if not parts:
        raise ScenarioError(f"{path}/runs/ holds no results yet; run `oomsim sweep "
                            f"{meta.get('scenario', 'FILE')} --out {path}` (again) to make them")
    runs = pd.read_parquet(path / "runs")
    grid = [p for p in meta["plan"].get("grid", {}) if p in runs.columns]
    return Sweep(path, meta, runs, grid)


@dataclass(frozen=True)
class RunChoice:
    """The run whose memory timeline the report draws."""

    cell: int
    policy: str
    kernel: str
    run: int

    def describe(self, sw: Sweep) -> str:
        """`policy none, kernel 6.18, run 3 (seed 4) of cell memory.max=64MiB`."""
        cell = ", ".join(f"{k}={v}" for k, v in sw.cells[self.cell].items()) or "the only cell"
        return f"policy {self.policy}, kernel {self.kernel}, run {self.run} of cell {cell}"


RUN_KEYS = ("policy", "kernel", "cell", "run")


def choose_run(sw: Sweep, baseline: str, task: str | None, spec: str | None = None) -> RunChoice:
    """The run `--run policy=P,kernel=K,cell=I,run=N` names (each key optional), completed by
    default: the baseline policy, the first kernel, and the first cell and run in which
    `task` failed under them (else cell 0, run 0)."""
    want: dict[str, str] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or key not in RUN_KEYS or not val.strip():
            raise ScenarioError(f"--run {spec!r}: expected key=value pairs separated by commas, "
                                f"keys {', '.join(RUN_KEYS)} (e.g. policy=none,cell=0,run=3)")
        want[key] = val.strip()
    plan = sw.meta["plan"]
    policy = want.get("policy", baseline)
    if policy not in plan["policies"]:
        raise ScenarioError(f"--run policy={policy}: the sweep ran {', '.join(plan['policies'])}")
    kernels = [str(k) for k in plan.get("kernels", [])] or sorted(set(sw.runs["kernel"]))
    kernel = want.get("kernel", kernels[0])
    if kernel not in kernels:
        raise ScenarioError(f"--run kernel={kernel}: the sweep ran {', '.join(kernels)}")
    ints: dict[str, int] = {}
    for key, top in (("cell", len(sw.cells)), ("run", int(plan["runs"]))):
        if key in want:
            if not want[key].isdigit() or int(want[key]) >= top:
                raise ScenarioError(f"--run {key}={want[key]}: expected 0..{top - 1}")
            ints[key] = int(want[key])
    if "cell" not in ints or "run" not in ints:
        df = sw.runs
        sel = df[(df["policy"] == policy) & (df["kernel"].astype(str) == kernel)]
        if task is not None:
            sel = sel[sel["task"] == task]
        from analysis.summary import task_rows

        failed = task_rows(sel)
        failed = failed[failed["failed"]]
        if "cell" in ints:
            failed = failed[[sw.cell_of(r) == ints["cell"] for _, r in failed.iterrows()]]
        if "run" in ints:
            failed = failed[failed["run"] == ints["run"]]
        if len(failed):
            first = failed.assign(cell=[sw.cell_of(r) for _, r in failed.iterrows()]).sort_values(
                ["cell", "run"]).iloc[0]
            ints.setdefault("cell", int(first["cell"]))
            ints.setdefault("run", int(first["run"]))
    return RunChoice(ints.get("cell", 0), policy, kernel, ints.get("run", 0))


def rerun(sw: Sweep, choice: RunChoice) -> OneRun:
    """Simulate the chosen run again, as the sweep ran it (same scenario text, cell, policy,
    kernel and run, so the same seed and draws), with its level records for the timelines."""
    cell_json = json.dumps(sw.cells[choice.cell], sort_keys=True, default=str)
    return one_run(sw.meta["text"], str(sw.meta.get("scenario", "scenario")), cell_json,
                   choice.policy, choice.kernel, choice.run, levels=True)


@dataclass
class Report:
    """What `oomsim report` writes: its tables, its figures (matplotlib Figures by file name,
    without extension) and their captions."""

    sweep: Sweep
    baseline: str
    task: str | None
    summary: pd.DataFrame
    failures: pd.DataFrame
    paired: pd.DataFrame
    choice: RunChoice
    figures: dict[str, Any] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)


def in_grid_order(df: pd.DataFrame, sw: Sweep) -> pd.DataFrame:
    """Rows sorted by each grid value's place in the sweep's grid (64MiB before 128MiB), then
    as they were (policy, kernel, task)."""
    if not sw.grid or df.empty:
        return df
    grid = sw.meta["plan"]["grid"]
    rank = pd.DataFrame({p: [grid[p].index(v) if v in grid[p] else len(grid[p])
                             for v in df[p]] for p in sw.grid}, index=df.index)
    order = rank.sort_values(sw.grid, kind="stable").index
    return df.loc[order].reset_index(drop=True)


def main_task(runs: pd.DataFrame, failures: pd.DataFrame) -> str | None:
    """The task the report is about: of the tasks that parse (read or touch the data), the one
    that failed most often; else of all tasks; else the first."""
    if failures.empty:
        return None
    parsing = set(runs.loc[runs["parse_start"].notna(), "task"]) if "parse_start" in runs else set()
    pool = failures[failures["task"].isin(parsing)] if parsing else failures
    by = pool.groupby("task", sort=False)["failed"].sum()
    return str(by.idxmax()) if by.max() > 0 else str(pool["task"].iloc[0])


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1,
               **kw: Any) -> tuple[Any, Any]:
    """A Figure with its own Agg canvas (pyplot's global state is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def build_report(sw: Sweep, baseline: str | None = None, run_spec: str | None = None,
                 task: str | None = None) -> Report:
    """The tables and figures of a sweep (nothing written); the figures and the main table
    are about `task` (default: `main_task`), the policies compared with `baseline` (default:
    `none`, or the sweep's first policy if it did not run `none`)."""
    from analysis.plots import (
        legend_outside,
        plot_failure_rate_vs,
        plot_memcg_timeline,
        plot_node_timeline,
        plot_outcome_shares,
        shades,
        share_names,
    )
    from analysis.summary import failure_frame, paired_frame, summary_frame

    policies = sw.meta["plan"]["policies"]
    if baseline is None:
        baseline = "none" if "none" in policies else str(policies[0])
    if baseline not in policies:
        raise ScenarioError(f"--baseline {baseline!r}: the sweep ran {', '.join(policies)}")
    summary = in_grid_order(summary_frame(sw.runs, sw.grid), sw)
    failures = in_grid_order(failure_frame(sw.runs, sw.grid), sw)
    paired = in_grid_order(paired_frame(sw.runs, baseline, sw.grid), sw)
    tasks = sorted(set(failures["task"]))
    if task is not None and task not in tasks:
        raise ScenarioError(f"--task {task!r}: the sweep's tasks are {', '.join(tasks)}")
    task = task or main_task(sw.runs, failures)
    choice = choose_run(sw, baseline, task, run_spec)
    rep = Report(sw, baseline, task, summary, failures, paired, choice)
    kernels = sorted(set(failures["kernel"].astype(str)))
    for kernel in kernels:
        suffix = "" if len(kernels) == 1 else f"-{kernel}"
        fk = failures[failures["kernel"].astype(str) == kernel]
        for param in sw.grid:
            fig, axes = new_figure(7.5, 4)
            order = sw.meta["plan"]["grid"][param]
            plot_failure_rate_vs(fk, param, task=task, order=order, ax=axes[0][0])
            axes[0][0].set_title(f"{task}: failure rate against {param} (kernel {kernel})")
            name = f"failure-vs-{_slug(param)}{suffix}"
            rep.figures[name] = fig
            rep.captions[name] = (f"Failure rate of {task} against {param}, one line per policy, "
                                  "with its Wilson 95% interval as a band (other grid values "
                                  "pooled).")
        sk = summary[summary["kernel"].astype(str) == kernel]
        names = share_names(sk[sk["task"] == task])
        palette = shades([n for _, _, n in names])
        cells = sw.cells if 1 < len(sw.cells) <= 8 else [None]
        # Room for each policy's bar and label; many policies' labels stand upright, below.
        upright = len(policies) > 5
        per_panel = max(3.2, 0.3 * len(policies))
        below = 0.08 * max(len(str(p)) for p in policies) if upright else 0.0
        fig, axes = new_figure(min(per_panel * len(cells), 24) + 3.5, 4.5 + below, 1, len(cells),
                               sharey=True)
        for ax, cell in zip(axes[0], cells, strict=True):
            part = sk
            if cell is not None:
                for p, v in cell.items():
                    part = part[part[p] == v]
            plot_outcome_shares(part, task or "", palette=palette, ax=ax)
            ax.set_title(", ".join(f"{p.rsplit('.', 1)[-1] if len(p) > 24 else p}={v}"
                                   for p, v in (cell or {}).items()) or f"kernel {kernel}",
                         fontsize="small")
            ax.tick_params(axis="x", labelrotation=90 if upright else 30)
            if ax is not axes[0][0]:
                ax.set_ylabel("")
            leg = ax.get_legend()
            if leg is not None:
                leg.remove()
        handles: dict[str, Any] = {}
        for ax in axes[0]:
            for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, h)
        order = [n for _, _, n in names if n in handles]
        legend_outside(axes[0][-1], "outcome@op (where it struck)", [handles[n] for n in order],
                       order)
        name = f"outcome-shares{suffix}"
        rep.figures[name] = fig
        rep.captions[name] = (f"How {task} ended under each policy (kernel {kernel}), per grid "
                              "cell: colour = outcome and the op it ended in; hatching = where "
                              "it struck (// in the mitigation's own call, .. elsewhere than "
                              "the parse).")
    done = rerun(sw, choice)
    from simulator.results import levels_frame, oom_kills_frame

    levels = levels_frame(sw.name, [done.result])
    kills = oom_kills_frame(sw.name, [done.result])
    limits = {path: cp.max for path, cp in done.plan.cgroups.items() if cp.max is not None}
    managed = {str(n["nid"]): int(n["managed"]) for n in done.result.counters["nodes"]}
    fig, axes = new_figure(9, 6, 2, 1, sharex=True)
    plot_memcg_timeline(levels, limits, done.plan.page_size, kills, ax=axes[0][0])
    plot_node_timeline(levels, managed, done.plan.page_size, ax=axes[1][0])
    axes[0][0].set_title(f"Memory of one run: {choice.describe(sw)} (seed {done.seed})",
                         fontsize="small")
    axes[0][0].set_xlabel("")
    rep.figures["timeline"] = fig
    rep.captions["timeline"] = (f"Usage of each memcg (dashed: its memory.max; X: an OOM kill, on "
                                f"the victim's own memcg) and of each node, in {choice.describe(sw)}"
                                f", simulated again with seed {done.seed}.")
    return rep


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """A figure as PNG or SVG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110 if fmt == "png" else None)
    return buf.getvalue()


def fmt_table(df: pd.DataFrame) -> str:
    """A frame as an HTML table, numbers rounded for reading."""
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="",
                      classes="t", border=0)


def report_html(rep: Report, pngs: dict[str, bytes]) -> str:
    """The one self-contained page: the scenario, the tables, the figures (PNG in data URLs)."""
    sw = rep.sweep
    plan = sw.meta["plan"]
    title = f"oomsim report: {sw.name}"
    figs = "\n".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(rep.captions[name])}'
        "</figcaption></figure>" for name, data in pngs.items())
    versions = ", ".join(f"{k} {v}" for k, v in sw.meta.get("versions", {}).items())
    shown = rep.failures if rep.task is None else rep.failures[rep.failures["task"] == rep.task]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }}
table.t {{ border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }}
table.t th, table.t td {{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.9em; color: #444; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{plan.get('total_runs', '?')} runs: {len(sw.cells)} cell(s) x {len(plan['policies'])} policies
({html.escape(', '.join(plan['policies']))}) x {len(plan.get('kernels', []))} kernel(s) x
{plan.get('runs', '?')} runs, each policy on the same draws (paired). Baseline:
<b>{html.escape(rep.baseline)}</b>. Main task: <b>{html.escape(str(rep.task))}</b>.</p>
<h2>Failure rate and cost</h2>
<p>Per cell, policy and kernel: the share of runs in which {html.escape(str(rep.task))} failed,
its Wilson 95% interval, the failures in the mitigation's own call, and the mean costs (pages
instantiated by its memcg, peak memcg usage in pages, when the parse started in simulated
seconds, other tasks killed).</p>
{fmt_table(shown)}
<h2>Against the baseline ({html.escape(rep.baseline)}), run by run</h2>
<p>fail_both / fail_policy_only / fail_baseline_only count the paired runs; rate_diff is the
policy's failure rate less the baseline's with Newcombe's paired 95% interval (method 10,
Statistics in Medicine 1998); mcnemar_p is McNemar's exact two-sided p-value.</p>
{fmt_table(rep.paired)}
<h2>Figures</h2>
{figs}
<h2>Outcomes</h2>
{fmt_table(rep.summary)}
<h2>Scenario</h2>
<p>{html.escape(str(sw.meta.get('scenario', '')))}; {html.escape(versions)}</p>
<pre>{html.escape(sw.meta['text'])}</pre>
</body></html>
"""


def write_report(rep: Report) -> list[Path]:
    """Write the report's files into the sweep's directory, each atomically; their paths."""
    out = rep.sweep.path
    written: list[Path] = []
    for name, df in (("summary", rep.summary), ("paired", rep.paired), ("failures", rep.failures)):
        path = out / f"{name}.csv"
        atomic_write_text(df.to_csv(index=False), path)
        written.append(path)
    pngs: dict[str, bytes] = {}
    for name, fig in rep.figures.items():
        for fmt in ("png", "svg"):
            data = figure_bytes(fig, fmt)
            if fmt == "png":
                pngs[name] = data
            path = out / "figures" / f"{name}.{fmt}"
            atomic_write(path, lambda tmp, data=data: Path(tmp).write_bytes(data))  # type: ignore[misc]
            written.append(path)
    path = out / "report.html"
    atomic_write_text(report_html(rep, pngs), path)
    written.append(path)
    return written


def report_table(rep: Report) -> Table:
    """The report's main table: per cell, policy and kernel, the main task's failure rate with
    its interval, the difference from the baseline with its paired interval and McNemar's p,
    and the mean costs."""
    sw = rep.sweep
    f = rep.failures if rep.task is None else rep.failures[rep.failures["task"] == rep.task]
    keys = [*sw.grid, "policy", "kernel", "task"]
    df = f.merge(rep.paired.drop(columns=["runs"]), on=keys, how="left")
    t = Table(title=f"{sw.name}: failure of {rep.task} by policy (vs {rep.baseline}, paired runs)",
              title_justify="left")
    for col in (*sw.grid, "policy", "kernel", "runs", "failed", "95% CI", f"vs {rep.baseline}",
                "95% CI ", "McNemar p", "in mitigation", "pages inst.", "parse start",
                "others killed"):
        t.add_column(col, justify="left" if col in (*sw.grid, "policy", "kernel") else "right")

    def num(v: Any, spec: str) -> str:
        return "" if v is None or pd.isna(v) else format(v, spec)

    for r in df.to_dict("records"):
        style = "red" if r["rate"] > 0 else "green"
        t.add_row(*(str(r[g]) for g in sw.grid), str(r["policy"]), str(r["kernel"]),
                  str(r["runs"]), f"[{style}]{r['rate']:.0%}[/]",
                  f"{r['ci_low']:.0%}-{r['ci_high']:.0%}", num(r.get("rate_diff"), "+.0%"),
                  "" if pd.isna(r.get("diff_ci_low")) else
                  f"{r['diff_ci_low']:+.0%} to {r['diff_ci_high']:+.0%}",
                  num(r.get("mcnemar_p"), ".3g"), str(int(r["in_mitigation"])),
                  num(r.get("pages_instantiated"), ",.0f"),
                  num(None if pd.isna(r.get("parse_start")) else r["parse_start"] * 1e3, ".2f")
                  + (" ms" if not pd.isna(r.get("parse_start")) else ""),
                  num(r.get("others_killed"), ".2f"))
    return t
