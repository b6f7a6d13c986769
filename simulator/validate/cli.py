"""`oomsim validate`: scenarios on the real kernel next to the simulator; `--calibrate`.

Registered on the main app at the end of simulator/cli.py. Exit status: 0 every compared task
matches, 1 a mismatch or a run that failed, 2 a bad scenario file, 3 no root or no writable
memory controller here, 4 no C compiler, 130 interrupted (after removing everything created).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..console import FORMAT_HELP, LazyConsole, format_error, write_rows
from ..scenario_errors import ScenarioError
from ..units import parse_bytes
from .build import WorkerBuildError, worker_path
from .host import Host, probe_host

if TYPE_CHECKING:  # the runner, the session and the calibration load when `validate` runs
    from .session import Validation

EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_NO_KERNEL, EXIT_NO_COMPILER, EXIT_INTERRUPTED = 1, 2, 3, 4, 130
STATUS_STYLE = {"match": "green", "mismatch": "red", "failed": "red", "skipped": "dim",
                "refused": "yellow"}

out = LazyConsole()
err = LazyConsole(stderr=True)


def fail(message: str, status: int) -> None:
    """One clear message on stderr and the given exit status."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


def ready_host() -> tuple[Host, Path]:
    """This machine and the compiled worker, or a clear exit (3: no kernel access, 4: no cc)."""
    host = probe_host()
    if host.controller is None:
        fail(f"cannot run scenarios on the real kernel here: {host.unavailable} "
             "(needs root and a writable memory cgroup controller, v1 or v2)", EXIT_NO_KERNEL)
    try:
        return host, worker_path()
    except WorkerBuildError as e:
        fail(str(e), EXIT_NO_COMPILER)
        raise  # unreachable


def footprint_note(v: Validation) -> str | None:
    """Each task's own memory before its first op (RssAnon + VmPTE), against the model's."""
    if v.kernel is None or not v.kernel.start_footprint:
        return None
    from ..scenario_model import Footprint

    parts = [f"{t} {fp.get('RssAnon', '?')}+{fp.get('VmPTE', '?')}"
             for t, fp in v.kernel.start_footprint.items()]
    d = Footprint()
    kib = {k: parse_bytes(getattr(d, k)) // 1024 for k in ("anon", "kernel", "page_tables")}
    return ("footprint before the first op, anon+page tables KiB: " + ", ".join(parts)
            + f" (the model's default: anon {kib['anon']} + kernel {kib['kernel']}"
            + f" + page tables {kib['page_tables']})")


def print_validation(v: Validation) -> None:
    """The side-by-side table of a compared scenario, or why it was not compared."""
    from .compare import side_by_side

    if v.status in ("match", "mismatch"):
        out.print(side_by_side(f"{v.name}  ({v.file})", v.rows))
        note = footprint_note(v)
        if note:
            out.print(f"  [dim]{note}[/]", highlight=False, soft_wrap=True)
    else:
        style = STATUS_STYLE[v.status]
        out.print(f"[{style}]{v.status}[/] {v.file}: {v.reason}", highlight=False, soft_wrap=True)


def summary_rows(results: list[Validation]) -> list[dict[str, str]]:
    """One row per scenario: its file, status and what differed (or why it did not run)."""
    return [{"scenario": str(v.file), "result": v.status,
             "detail": v.reason or "; ".join(f"{r.task}: {', '.join(r.differences)}"
                                             for r in v.rows if not r.match)}
            for v in results]


def summary(results: list[Validation]) -> Table:
    """One line per scenario."""
    t = Table(title="oomsim validate", title_justify="left")
    for col in ("scenario", "result", "detail"):
        t.add_column(col)
    for v in results:
        detail = v.reason or "; ".join(f"{r.task}: {', '.join(r.differences)}"
                                       for r in v.rows if not r.match)
        t.add_row(str(v.file), f"[{STATUS_STYLE[v.status]}]{v.status}[/]", detail)
    return t


def run_calibration(host: Host, worker: Path, target: Path | None, size: str,
                    repeats: int) -> None:
    """Measure, print and write the machine profile."""
    from ..machine_profile import write_profile
    from .calibrate import as_profile, calibrate, default_profile_path
    from .runner import Aborted, KernelRunError
    from .session import abort_on_signals

    path = target or default_profile_path(host)
    abort = threading.Event()
    with abort_on_signals(abort):
        try:
            cal = calibrate(host, worker, size, repeats, abort)
        except Aborted:
            fail("interrupted; everything created was removed", EXIT_INTERRUPTED)
        except KernelRunError as e:
            fail(str(e), EXIT_MISMATCH)
    t = Table(title=f"per-page costs on {host.hostname} ({host.release})", title_justify="left")
    t.add_column("cost")
    t.add_column("ns per page", justify="right")
    t.add_column("pages per second", justify="right")
    for k, v in cal.costs.items():
        t.add_row(k + (" (per call)" if k == "syscall" else ""), f"{v * 1e9:,.0f}",
                  f"{1 / v:,.0f}" if v else "")
    out.print(t)
    write_profile(path, as_profile(cal, host))
    out.print(f"wrote {path}")


def validate(
    target: Annotated[Path | None, typer.Argument(
        help="a scenario file or a directory of them (with --calibrate: the profile to write, "
             "default profiles/<hostname>.yaml)")] = None,
    do_calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="measure per-page costs and write a machine profile")] = False,
    size: Annotated[str, typer.Option(help="--calibrate: bytes per measurement")] = "256MiB",
    repeats: Annotated[int, typer.Option(help="--calibrate: runs per method")] = 3,
    jobs: Annotated[int, typer.Option(help="scenarios run at once")] = 4,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP + " (the summary rows)")] = "table",
) -> None:
    """Run scenarios on the real kernel and print them next to the simulator; exit 1 on a mismatch."""
    from ..scenario import scenario_files
    from .runner import Aborted
    from .session import abort_on_signals, validate_files

    why = format_error(fmt)
    if why:
        fail(why, EXIT_BAD_INPUT)
    host, worker = ready_host()
    if do_calibrate:
        run_calibration(host, worker, target, size, repeats)
        return
    if target is None:
        fail("expected a scenario file or directory (or --calibrate)", EXIT_BAD_INPUT)
        return
    files = scenario_files(target)
    if not files:
        fail(f"{target}: no scenario files (*.yaml) found", EXIT_BAD_INPUT)
    abort = threading.Event()
    with abort_on_signals(abort):
        try:
            results = validate_files(files, host, worker, jobs, abort)
        except ScenarioError as e:
            fail(str(e), EXIT_BAD_INPUT)
            return
        except Aborted:
            fail("interrupted; everything created was removed", EXIT_INTERRUPTED)
            return
    counts = {s: sum(v.status == s for v in results) for s in STATUS_STYLE}
    if fmt == "table":
        for v in results:
            print_validation(v)
        out.print(summary(results))
        out.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    else:
        write_rows(fmt, summary_rows(results), {"counts": counts})  # type: ignore[arg-type]
    if counts["mismatch"] or counts["failed"]:
        raise typer.Exit(EXIT_MISMATCH)
