"""The `oomsim` command: run, check, schema. No logic of its own beyond wiring and printing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from .expect import mismatches
from .mm.profiles import PROFILES
from .outcome import RunResult
from .plan import resolve
from .scenario import Scenario, ScenarioError, load_scenario, scenario_files
from .simulation import simulate
from .validate.cli import validate

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="oomsim: a discrete-event simulator of the Linux memory paths that decide "
                       "whether a program survives memory pressure.")
out_console = Console()
err_console = Console(stderr=True)

EXIT_MISMATCH, EXIT_BAD_INPUT = 1, 2


def fail_input(e: ScenarioError) -> NoReturn:
    """One clear message on stderr and a non-zero exit."""
    err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def parse_what_if(items: list[str]) -> dict[str, Any]:
    """`--what-if zero_page_sealed_holes=true` -> {"zero_page_sealed_holes": True}."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, val = item.partition("=")
        if key != "zero_page_sealed_holes" or val.lower() not in ("true", "false", "1", "0", ""):
            raise ScenarioError(f"--what-if {item!r}: expected zero_page_sealed_holes=true|false")
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
    if run.what_if.get("zero_page_sealed_holes"):
        title += ", what-if zero_page_sealed_holes"
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
    """The kernel-style report line of each OOM kill."""
    for k in run.oom_kills:
        out_console.print(f"[dim]{k['time'] * 1e3:9.3f} ms[/] {k['line']}", highlight=False,
                          soft_wrap=True)
    if run.panic:
        out_console.print(f"[bold red]Kernel panic - not syncing: {run.panic}[/]")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="a scenario YAML file")],
    out: Annotated[Path | None, typer.Option(
        help="write tasks/events/oom_kills Parquet and run.json here")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print one JSON document instead of tables")] = False,
    seed: Annotated[list[int] | None, typer.Option(help="seed(s) to run; default the scenario's")] = None,
    kernel: Annotated[str | None, typer.Option(help="behaviour profile: 6.18 or 3.15")] = None,
    what_if: Annotated[list[str] | None, typer.Option(
        "--what-if", help="e.g. zero_page_sealed_holes=true")] = None,
    reference: Annotated[bool, typer.Option(help="run the per-page reference model (slow)")] = False,
    debug_vm: Annotated[bool, typer.Option(
        help="check the model's invariants after every step and op (CONFIG_DEBUG_VM; slow)")] = False,
) -> None:
    """Run a scenario and print what happened to each task."""
    try:
        sc = load_scenario(file)
        check_kernels([kernel] if kernel is not None else [])
        wi = parse_what_if(what_if or [])
        plan = resolve(sc)
        runs = [simulate(plan, seed=s, kernel=kernel, what_if=wi, reference=reference,
                         debug_vm=debug_vm)
                for s in (seed or [sc.seed])]
    except ScenarioError as e:
        fail_input(e)
    if out is not None:
        from .results import write_results

        write_results(out, sc.name, runs)
    if as_json:
        from .results import to_json

        sys.stdout.write(json.dumps(to_json(sc.name, runs), default=str) + "\n")
        return
    for r in runs:
        out_console.print(outcome_table(sc, r))
        print_kills(r)
    if out is not None:
        out_console.print(f"wrote {out}/tasks.parquet, events.parquet, oom_kills.parquet, run.json")


@app.command()
def check(
    target: Annotated[Path, typer.Argument(help="a scenario file or a directory of them")],
) -> None:
    """Run each scenario and compare with its `expect`; exit 1 on any mismatch."""
    files = scenario_files(target)
    if not files:
        fail_input(ScenarioError("no scenario files (*.yaml) found", file=str(target)))
    scenarios = []
    for f in files:
        try:
            scenarios.append((f, load_scenario(f)))
        except ScenarioError as e:
            fail_input(e)
    table = Table(title="oomsim check", title_justify="left")
    for col in ("scenario", "kernel", "result", "detail"):
        table.add_column(col)
    bad = 0
    for f, sc in scenarios:
        r = simulate(sc)
        problems = mismatches(sc, r) if sc.expect else []
        status = "[green]pass[/]" if not problems else "[red]FAIL[/]"
        if not sc.expect:
            status = "[dim]no expect[/]"
        bad += bool(problems)
        detail = "; ".join(problems) or ", ".join(f"{k}={v.outcome}" for k, v in r.tasks.items())
        table.add_row(str(f), r.kernel, status, detail)
    out_console.print(table)
    out_console.print(f"{len(scenarios) - bad} passed, {bad} failed")
    if bad:
        raise typer.Exit(EXIT_MISMATCH)


@app.command()
def compare(
    file: Annotated[Path, typer.Argument(help="a scenario YAML file")],
    policy: Annotated[list[str] | None, typer.Option(help="mitigations to compare (default: all)")] = None,
    kernel: Annotated[list[str] | None, typer.Option(help="kernels (default: the scenario's)")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="runs per cell: seeds seed..seed+N-1")] = 1,
    out: Annotated[Path | None, typer.Option(help="write the tidy sweep.parquet here")] = None,
) -> None:
    """Run a scenario under mitigation policies (none, mlock, populate, map_populate,
    zero_page) and kernels, and tabulate how each task ended."""
    from analysis.frames import failure_rates, outcome_labels

    from .policies import POLICIES
    from .sweep import sweep, sweep_frame

    try:
        sc = load_scenario(file)
        check_kernels(kernel or [])
        runs = sweep(sc, policy or list(POLICIES), kernel or [sc.kernel],
                     range(sc.seed, sc.seed + seeds))
    except ScenarioError as e:
        fail_input(e)
    df = sweep_frame(sc, runs)
    if out is not None:
        from .atomic_io import atomic_write_parquet

        atomic_write_parquet(df, out / "sweep.parquet")
    rates = failure_rates(df)
    table = Table(title=f"{sc.name}: outcomes by mitigation ({seeds} run(s) each)",
                  title_justify="left")
    for col in ("policy", "kernel", "task", "outcome", "share", "mean time"):
        table.add_column(col, justify="right" if col in ("share", "mean time") else "left")
    times = df.assign(label=outcome_labels(df)).groupby(
        ["policy", "kernel", "task", "label"])["time"].mean()
    for r in rates.itertuples():
        style = "red" if r.failed else "green"
        table.add_row(r.policy, r.kernel, r.task, f"[{style}]{r.label}[/]", f"{r.rate:.0%}",
                      f"{times[(r.policy, r.kernel, r.task, r.label)] * 1e3:.1f} ms")
    out_console.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (generated from the pydantic models)."""
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
                  TimeRemainingColumn(), console=err_console, transient=False) as bar:
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
def policies() -> None:
    """List the mitigation policies a sweep or `compare` can name, a line each."""
    from .policies import POLICIES

    for name, fn in POLICIES.items():
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        out_console.print(f"{name:16} {doc}", highlight=False, soft_wrap=True)


app.command()(validate)  # `oomsim validate`: scenarios on the real kernel (simulator/validate/)


if __name__ == "__main__":  # python -m simulator.cli
    app()
