"""The `oomsim` command: run, check, compare, sweep, report, schema. No logic of its own beyond wiring and
printing.

Start-up is kept short: the simulator itself (numpy, SimPy), pandas (the Parquet frames),
matplotlib and analysis/ (compare) are imported by the commands that use them, not by
`oomsim --help`; `oomsim run --json` imports neither pandas nor matplotlib.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.table import Table

from .console import FORMAT_HELP, Format, LazyConsole, console, format_error, write_rows
from .mm.profiles import PROFILES
from .outcome import RunResult, to_json
from .scenario_errors import ScenarioError
from .validate.cli import validate

if TYPE_CHECKING:
    from .scenario_model import Scenario

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="oomsim: a discrete-event simulator of the Linux memory paths that decide "
                       "whether a program survives memory pressure.")


out_console = LazyConsole(stderr=False)
err_console = LazyConsole(stderr=True)

EXIT_MISMATCH, EXIT_BAD_INPUT = 1, 2


def fail_input(e: ScenarioError) -> NoReturn:
    """One clear message on stderr and a non-zero exit."""
    err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def warn(warnings: tuple[str, ...] | list[str]) -> None:
    """Each loader warning as one line on stderr."""
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True, markup=True)


_SEEDS = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(values: list[str], option: str = "--seed") -> list[int]:
    """`7`, `1,2,3`, `1-100` (inclusive), or several of these -> the seeds, in order, once each."""
    out: list[int] = []
    for v in values:
        for part in str(v).split(","):
            m = _SEEDS.match(part)
            if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
                raise ScenarioError(f"{option} {v!r}: expected a seed (7), a list (1,2,3) or a "
                                    "range (1-100), non-negative integers")
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else int(m.group(2))
            out.extend(s for s in range(lo, hi + 1) if s not in out)
    return out


def check_out_dir(out: Path | None) -> None:
    """`--out` must be a directory (or not exist yet): checked before anything runs."""
    if out is None:
        return
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise ScenarioError(f"--out {out}: {p} exists and is not a directory; give a "
                                "directory (it is created if missing)")
        if p.exists():
            return


def check_format(fmt: str) -> Format:
    """`--format` is table, csv or json."""
    why = format_error(fmt)
    if why:
        raise ScenarioError(why)
    return fmt  # type: ignore[return-value]


WHAT_IFS = ("zero_page_sealed_holes", "charge_at_seal")  # the keys of `what_if` (WhatIf)


def parse_what_if(items: list[str]) -> dict[str, Any]:
    """`--what-if zero_page_sealed_holes=true` -> {"zero_page_sealed_holes": True}."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, val = item.partition("=")
        if key not in WHAT_IFS or val.lower() not in ("true", "false", "1", "0", ""):
            raise ScenarioError(f"--what-if {item!r}: expected "
                                f"{' or '.join(k + '=true|false' for k in WHAT_IFS)}")
        out[key] = val.lower() in ("true", "1", "")
    return out


def check_kernels(kernels: list[str]) -> None:
    """`--kernel` names a behaviour profile: 6.18 or 3.15."""
    for k in kernels:
        if k not in PROFILES:
            raise ScenarioError(f"--kernel {k!r}: expected {' or '.join(PROFILES)}")


def outcome_table(sc: Scenario, run: RunResult) -> Table:
    """The readable table of what happened to each task."""
    title = f"{sc.name}  (kernel {run.kernel}, seed {run.seed}"
    for key in WHAT_IFS:
        if run.what_if.get(key):
            title += f", what-if {key}"
    title += ")"
    t = Table(title=title, title_justify="left")
    for col in ("task", "cgroup", "outcome", "errno", "op", "page", "time", "reason"):
        t.add_column(col, justify="right" if col in ("page", "time") else "left")
    cg = {ts.name: ts.cgroup for ts in sc.tasks}
    colors = {"ok": "green", "oom_killed": "red", "sigbus": "magenta", "error": "yellow",
              "hung": "cyan"}
    for name, o in run.tasks.items():
        op = "" if o.op is None else f"{o.op}:{o.op_name}"
        t.add_row(name, cg.get(name, ""), f"[{colors.get(o.outcome, 'white')}]{o.outcome}[/]",
                  o.errno or "", op, "" if o.page is None else str(o.page),
                  f"{o.time * 1e3:.3f} ms", o.reason or "")
    return t


def print_kills(run: RunResult) -> None:
    """The kernel-style report lines of each OOM kill: `dump_oom_summary`'s `oom-kill:` line
    (the constraint), then the "Killed process" line."""
    for k in run.oom_kills:
        who = "" if k.get("killer", "kernel") == "kernel" else f"{k['killer']}: "  # userspace
        out_console.print(f"[dim]{k['time'] * 1e3:9.3f} ms[/] {who}{k['summary_line']}",
                          highlight=False, soft_wrap=True)
        out_console.print(f"[dim]{k['time'] * 1e3:9.3f} ms[/] {who}{k['line']}", highlight=False,
                          soft_wrap=True)
    if run.panic:
        out_console.print(f"[bold red]Kernel panic - not syncing: {run.panic}[/]")


def task_rows(sc: Scenario, runs: list[RunResult]) -> list[dict[str, Any]]:
    """One row per task per run: what the table shows, for CSV."""
    cg = {ts.name: ts.cgroup for ts in sc.tasks}
    return [{"scenario": sc.name, "seed": r.seed, "kernel": r.kernel, "task": name,
             "cgroup": cg.get(name, ""), **o.as_dict()}
            for r in runs for name, o in r.tasks.items()]


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="a scenario YAML file")],
    out: Annotated[Path | None, typer.Option(
        help="a directory: write tasks/events/oom_kills/levels Parquet and run.json there")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print one JSON document instead of tables (= --format json)")] = False,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    seed: Annotated[list[str] | None, typer.Option(
        help="seed(s) to run: 7, 1,2,3 or 1-100; may repeat; default the scenario's")] = None,
    seeds: Annotated[str | None, typer.Option(
        help="the same as --seed: a list or range of seeds, e.g. 1-100")] = None,
    kernel: Annotated[str | None, typer.Option(help="behaviour profile: 6.18 or 3.15")] = None,
    what_if: Annotated[list[str] | None, typer.Option(
        "--what-if", help="zero_page_sealed_holes=true or charge_at_seal=true")] = None,
    reference: Annotated[bool, typer.Option(help="run the per-page reference model (slow)")] = False,
    debug_vm: Annotated[bool, typer.Option(
        help="check the model's invariants after every step and op (CONFIG_DEBUG_VM; slow)")] = False,
    trace: Annotated[Path | None, typer.Option(
        help="a file: write the run as a Chrome/Perfetto trace (JSON; one process per seed), "
             "to open in ui.perfetto.dev or chrome://tracing")] = None,
) -> None:
    """Run a scenario and print what happened to each task."""
    from .plan import resolve
    from .scenario import load_scenario
    from .simulation import simulate

    try:
        form = "json" if as_json else check_format(fmt)
        check_out_dir(out)
        if trace is not None:
            from .trace import check_trace_path

            check_trace_path(trace)
        wanted = parse_seeds([*(seed or []), *([seeds] if seeds else [])])
        sc = load_scenario(file)
        check_kernels([kernel] if kernel is not None else [])
        wi = parse_what_if(what_if or [])
        plan = resolve(sc)
        runs = [simulate(plan, seed=s, kernel=kernel, what_if=wi, reference=reference,
                         debug_vm=debug_vm, levels=out is not None or trace is not None)
                for s in (wanted or [sc.seed])]
    except ScenarioError as e:
        fail_input(e)
    warn(sc.warnings)
    if out is not None:
        from .results import write_results

        try:
            write_results(out, sc.name, runs, sc.warnings, sc.draws)
        except OSError as e:
            fail_input(ScenarioError(f"--out {out}: cannot write: {e.strerror or e}"))
    if trace is not None:
        from .trace import write_trace

        try:
            write_trace(trace, runs, plan)
        except OSError as e:
            fail_input(ScenarioError(f"--trace {trace}: cannot write: {e.strerror or e}"))
    if form == "json":
        sys.stdout.write(json.dumps(to_json(sc.name, runs, sc.warnings, sc.draws), default=str)
                         + "\n")
        return
    if form == "csv":
        write_rows("csv", task_rows(sc, runs))
        return
    for r in runs:
        out_console.print(outcome_table(sc, r))
        print_kills(r)
    if out is not None:
        out_console.print(f"wrote {out}/tasks.parquet, events.parquet, oom_kills.parquet, "
                          "levels.parquet, run.json")
    if trace is not None:
        out_console.print(f"wrote {trace} (open it in ui.perfetto.dev or chrome://tracing)")


@app.command()
def check(
    target: Annotated[Path, typer.Argument(help="a scenario file or a directory of them")],
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
) -> None:
    """Run each scenario and compare with its `expect`. A file that cannot be loaded is a
    failed row and the others still run. Exit 1 on any mismatch, 2 if a file was bad input."""
    from .expect import mismatches
    from .scenario import load_scenario, scenario_files
    from .simulation import simulate

    try:
        form = check_format(fmt)
    except ScenarioError as e:
        fail_input(e)
    files = scenario_files(target)
    if not files:
        fail_input(ScenarioError("no scenario files (*.yaml) found", file=str(target)))
    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            sc = load_scenario(f)
        except ScenarioError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            rows.append({"scenario": str(f), "kernel": "", "result": "bad input", "detail": str(e)})
            continue
        warn(sc.warnings)
        r = simulate(sc)
        problems = mismatches(sc, r) if sc.expect else []
        result = "no expectation" if not sc.expect else "FAIL" if problems else "pass"
        detail = "; ".join(problems) or ", ".join(f"{k}={v.outcome}" for k, v in r.tasks.items())
        rows.append({"scenario": str(f), "kernel": r.kernel, "result": result, "detail": detail})
    counts = {k: sum(r["result"] == k for r in rows)
              for k in ("pass", "FAIL", "bad input", "no expectation")}
    summary = (f"{counts['pass']} passed, {counts['FAIL'] + counts['bad input']} failed"
               + (f" ({counts['bad input']} bad input)" if counts["bad input"] else "")
               + (f", {counts['no expectation']} with no expectation"
                  if counts["no expectation"] else ""))
    if form == "table":
        table = Table(title="oomsim check", title_justify="left")
        for col in ("scenario", "kernel", "result", "detail"):
            table.add_column(col)
        style = {"pass": "green", "FAIL": "red", "bad input": "red", "no expectation": "dim"}
        for row in rows:
            table.add_row(row["scenario"], row["kernel"], f"[{style[row['result']]}]{row['result']}[/]",
                          row["detail"])
        out_console.print(table)
        out_console.print(summary)
    else:
        write_rows(form, rows, {"summary": summary, "counts": counts})
    if counts["bad input"]:
        raise typer.Exit(EXIT_BAD_INPUT)
    if counts["FAIL"]:
        raise typer.Exit(EXIT_MISMATCH)


@app.command()
def compare(
    file: Annotated[Path, typer.Argument(help="a scenario YAML file")],
    policy: Annotated[list[str] | None, typer.Option(
        help="mitigations to compare, as `oomsim policies` lists them: name, "
             "name:key=value[,key=value], name@task (default: every policy, each with its "
             "example parameters)")] = None,
    kernel: Annotated[list[str] | None, typer.Option(help="kernels (default: the scenario's)")] = None,
    seeds: Annotated[str, typer.Option(
        help="runs per cell: N (seeds seed..seed+N-1), or the seeds themselves as a list or "
             "range (1,2,3 or 1-100)")] = "1",
    out: Annotated[Path | None, typer.Option(help="a directory: write the tidy sweep.parquet there")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
) -> None:
    """Run a scenario under mitigation policies (`oomsim policies`) and kernels, and tabulate
    how each task ended."""
    import pandas as pd

    from analysis.frames import failure_rates, outcome_labels

    from .experiment.work import run_chunk
    from .policies import check_policies, default_specs
    from .scenario import load_scenario

    try:
        form = check_format(fmt)
        check_out_dir(out)
        sc = load_scenario(file)
        check_kernels(kernel or [])
        if seeds.strip().isdigit():
            n = int(seeds)
            if n < 1:
                raise ScenarioError(f"--seeds {seeds!r}: expected at least 1 run per cell")
            seed_list = list(range(sc.seed, sc.seed + n))
        else:
            seed_list = parse_seeds([seeds], "--seeds")
        if min(seed_list) < sc.seed:
            raise ScenarioError(f"--seeds: run i of a scenario runs with seed {sc.seed} + i; "
                                f"seeds below {sc.seed} have no run")
        names = policy or default_specs()
        check_policies(names, sc)
        text = file.read_text()
    except ScenarioError as e:
        fail_input(e)
    warn(sc.warnings)
    # The same work as `oomsim sweep` (simulator/experiment/), here in this process: run i is
    # seed + i, and draws the same workload under every policy (paired).
    rows = [row for name in names for k in (kernel or [sc.kernel]) for s in seed_list
            for row in run_chunk(text, str(file), {}, name, k, s - sc.seed, s - sc.seed + 1)]
    failed = [r for r in rows if r.get("error")]
    if failed:
        fail_input(ScenarioError(f"run {failed[0]['run']} under {failed[0]['policy']} failed:\n"
                                 f"{failed[0]['error']}", file=str(file)))
    df = pd.DataFrame([{"scenario": sc.name, **r} for r in rows]).drop(
        columns=["draws", "error", "memcg"])
    df["op"] = df["op"].astype("Int64")
    df["page"] = df["page"].astype("Int64")
    if out is not None:
        from .atomic_io import atomic_write_parquet

        atomic_write_parquet(df, out / "sweep.parquet")
    rates = failure_rates(df)
    times = df.assign(label=outcome_labels(df)).groupby(
        ["policy", "kernel", "task", "label"])["time"].mean()
    if form != "table":
        rows = [{"policy": r.policy, "kernel": r.kernel, "task": r.task, "outcome": r.label,
                 "runs": int(r.runs), "count": int(r.count), "share": float(r.rate),
                 "failed": bool(r.failed),
                 "mean_time": float(times[(r.policy, r.kernel, r.task, r.label)])}
                for r in rates.itertuples()]
        write_rows(form, rows, {"scenario": sc.name, "seeds": seed_list})
        return
    table = Table(title=f"{sc.name}: outcomes by mitigation ({len(seed_list)} run(s) each)",
                  title_justify="left")
    for col in ("policy", "kernel", "task", "outcome", "share", "mean time"):
        table.add_column(col, justify="right" if col in ("share", "mean time") else "left")
    for r in rates.itertuples():
        style = "red" if r.failed else "green"
        table.add_row(r.policy, r.kernel, r.task, f"[{style}]{r.label}[/]", f"{r.rate:.0%}",
                      f"{times[(r.policy, r.kernel, r.task, r.label)] * 1e3:.1f} ms")
    out_console.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (generated from the pydantic models)."""
    from .scenario_model import Scenario

    sys.stdout.write(json.dumps(Scenario.model_json_schema(by_alias=True), indent=1) + "\n")


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="a scenario YAML file, usually with a `sweep:` block")],
    out: Annotated[Path, typer.Option(help="the sweep's directory: runs/ (Parquet) and sweep.json")],
    jobs: Annotated[int | None, typer.Option(
        min=1, help="worker processes (default: every core)")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="run on this Dask cluster instead (tcp://HOST:PORT)")] = None,
    runs: Annotated[int | None, typer.Option(min=1, help="runs per cell (default: the file's)")] = None,
) -> None:
    """Run an experiment: every grid cell x policy x kernel x run of a scenario, into a
    Parquet dataset; started again with the same command it runs only what is missing."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from .experiment.sweep import run_sweep

    if out.exists() and not out.is_dir():
        fail_input(ScenarioError(f"--out {out} exists and is not a directory"))
    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f} runs/s" if task.speed else "")

    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), Rate(),
                  TimeRemainingColumn(), console=console(stderr=True), transient=False) as bar:
        task = bar.add_task(file.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            plan = run_sweep(file, out, jobs=jobs, scheduler=scheduler, runs=runs,
                             progress=progress)
        except ScenarioError as e:
            bar.stop()
            fail_input(e)
    out_console.print(f"{plan.total_runs} runs in {len(plan.cells)} cell(s) x "
                      f"{len(plan.spec.policies)} policies x {len(plan.kernels)} kernel(s): "
                      f"{out}/runs/ (pandas.read_parquet), {out}/sweep.json")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="a sweep's directory (oomsim sweep FILE --out DIR)")],
    baseline: Annotated[str | None, typer.Option(
        help="the policy every other is compared with, run by run (default: none, or the "
             "sweep's first policy)")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="the run whose memory timeline is drawn: policy=P,kernel=K,cell=I,run=N "
                      "(each optional; default: the baseline's first failing run)")] = None,
    task: Annotated[str | None, typer.Option(
        help="the task the figures and the table are about (default: the parsing task that "
             "failed most)")] = None,
) -> None:
    """Report on a sweep: DIR/summary.csv, paired.csv, failures.csv, figures/ (PNG, SVG) and a
    self-contained report.html; prints the failure rates against the baseline."""
    from .experiment.report import build_report, load_sweep, report_table, write_report

    try:
        sw = load_sweep(directory)
        rep = build_report(sw, baseline, run, task)
        written = write_report(rep)
    except ScenarioError as e:
        fail_input(e)
    except OSError as e:
        fail_input(ScenarioError(f"{directory}: cannot write the report: {e.strerror or e}"))
    errors = int(sw.runs["task"].isna().sum())
    if errors:
        err_console.print(f"[yellow]warning:[/] {errors} run(s) raised (their `error` column in "
                          f"{directory}/runs/); the tables leave them out", highlight=False)
    out_console.print(report_table(rep))
    out_console.print(f"wrote {len(written)} files: {directory}/summary.csv, paired.csv, "
                      f"failures.csv, figures/, report.html")


@app.command()
def policies() -> None:
    """List the mitigation policies a sweep or `compare` can name, a line each: the name, what
    it does, its parameters (`name:key=value`) and what it applies to without `@task`."""
    from .policies import describe_policies

    for name, doc, params, target in describe_policies():
        extra = f" [{params}]" if params else ""
        out_console.print(f"{name:22} {doc}{extra} (default target: {target})",
                          highlight=False, soft_wrap=True, markup=False)


app.command()(validate)  # `oomsim validate`: scenarios on the real kernel (simulator/validate/)


if __name__ == "__main__":  # python -m simulator.cli
    app()
