"""Validate scenario files: skip or refuse, run on the kernel, simulate, compare.

Scenarios run in parallel threads (`jobs`), each in its own cgroups and mounts; a scenario spends
most of its time asleep, so a few at once change nothing but the wall time. Ctrl-C or SIGTERM
sets `abort`: every run stops, removes what it created, and `validate_files` raises Aborted.
"""

from __future__ import annotations

import concurrent.futures as cf
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..outcome import RunResult
from ..scenario import Scenario, ScenarioError, load_scenario
from ..simulation import simulate
from .admit import refusal, skip_reason
from .compare import Row, compare
from .host import Host
from .mounts import MountError
from .order import start_barriers
from .runner import Aborted, KernelResult, KernelRunError, run_on_kernel

STATUSES = ("match", "mismatch", "skipped", "refused", "failed")


@dataclass
class Validation:
    """One scenario file's validation.

    Attributes:
        status: match, mismatch, skipped (this machine cannot run it), refused (unsafe to run
            here), or failed (the run itself went wrong; `reason` says how).
    """

    file: Path
    name: str
    status: str
    reason: str | None = None
    rows: list[Row] = field(default_factory=list)
    scenario: Scenario | None = None
    kernel: KernelResult | None = None
    sim: RunResult | None = None


def validate_scenario(file: Path, host: Host, worker: Path,
                      abort: threading.Event | None = None) -> Validation:
    """Validate one scenario file (a bad file raises ScenarioError)."""
    sc = load_scenario(file)
    why = skip_reason(sc, host)
    if why:
        return Validation(file, sc.name, "skipped", why, scenario=sc)
    why = refusal(sc, host)
    if why:
        return Validation(file, sc.name, "refused", why, scenario=sc)
    sim = simulate(sc)
    try:
        real = run_on_kernel(sc, host, worker, abort, start_barriers(sc, sim))
    except (KernelRunError, MountError, OSError, subprocess.TimeoutExpired) as e:
        return Validation(file, sc.name, "failed", str(e), scenario=sc)
    rows = compare(real.tasks, sim.tasks, [t.name for t in sc.tasks])
    status = "match" if all(r.match for r in rows) else "mismatch"
    return Validation(file, sc.name, status, None, rows, sc, real, sim)


def validate_files(files: list[Path], host: Host, worker: Path, jobs: int = 4,
                   abort: threading.Event | None = None) -> list[Validation]:
    """Validate each file (in parallel), in the files' order; Aborted if `abort` gets set."""
    for f in files:  # every file must load before anything runs
        load_scenario(f)
    abort = abort or threading.Event()
    with cf.ThreadPoolExecutor(max(1, jobs), thread_name_prefix="oomsim-validate") as pool:
        futures = [pool.submit(validate_scenario, path, host, worker, abort) for path in files]
        try:
            while not all(fut.done() for fut in futures):
                cf.wait(futures, timeout=0.1)
        except BaseException:
            abort.set()
            raise
        finally:
            if abort.is_set():
                for fut in futures:
                    fut.cancel()
    if abort.is_set():
        raise Aborted()
    return [fut.result() for fut in futures]


@contextmanager
def abort_on_signals(abort: threading.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set `abort` (runs clean up and stop) instead of killing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        abort.set()

    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = ["Aborted", "ScenarioError", "Validation", "abort_on_signals", "validate_files",
           "validate_scenario"]
