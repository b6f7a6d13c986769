"""The real kernel's outcomes next to the simulator's: the rule of a match, and the table.

A task matches when the outcome, the errno and the name of the op it ended in are the same.
The page need not be the same: both are shown, with the difference, because the difference is
what the model's per-task and per-page accounting is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from ..outcome import TaskOutcome

MATCH_FIELDS = ("outcome", "errno", "op_name")
COLORS = {"ok": "green", "oom_killed": "red", "sigbus": "magenta", "sigsegv": "magenta",
          "error": "yellow", "hung": "cyan"}


@dataclass(frozen=True)
class Row:
    """One task: what the kernel did, what the simulator did."""

    task: str
    real: TaskOutcome | None
    sim: TaskOutcome | None

    @property
    def differences(self) -> list[str]:
        """The fields that must match and do not (empty: a match)."""
        if self.real is None or self.sim is None:
            return ["no real outcome" if self.real is None else "no simulated outcome"]
        out = []
        for f in MATCH_FIELDS:
            r, s = getattr(self.real, f), getattr(self.sim, f)
            if r != s:
                out.append(f"{f}: real {r!r}, simulated {s!r}")
        return out

    @property
    def match(self) -> bool:
        """Outcome, errno and op name agree."""
        return not self.differences

    @property
    def page_delta(self) -> int | None:
        """Real page minus simulated page, when both have one."""
        if self.real is None or self.sim is None or self.real.page is None or self.sim.page is None:
            return None
        return self.real.page - self.sim.page


def compare(real: dict[str, TaskOutcome], sim: dict[str, TaskOutcome],
            order: list[str]) -> list[Row]:
    """A row per task, in the scenario's order."""
    return [Row(name, real.get(name), sim.get(name)) for name in order]


def describe(o: TaskOutcome | None) -> str:
    """`oom_killed touch p16271`, `error EPERM write`, `ok`."""
    if o is None:
        return "[dim]none[/]"
    parts = [f"[{COLORS.get(o.outcome, 'white')}]{o.outcome}[/]"]
    if o.errno:
        parts.append(o.errno)
    if o.op_name:
        parts.append(o.op_name)
    if o.page is not None:
        parts.append(f"p{o.page}")
    return " ".join(parts)


def fmt_time(o: TaskOutcome | None) -> str:
    """Seconds since the start, in ms."""
    return "" if o is None else f"{o.time * 1e3:.1f}"


def side_by_side(title: str, rows: list[Row]) -> Table:
    """The rich table: task, real, simulated, page difference, times, match."""
    t = Table(title=title, title_justify="left")
    t.add_column("task")
    t.add_column("real kernel")
    t.add_column("simulator")
    t.add_column("Δpage", justify="right")
    t.add_column("ms real/sim", justify="right")
    t.add_column("match")
    for r in rows:
        delta = r.page_delta
        t.add_row(
            r.task, describe(r.real), describe(r.sim), "" if delta is None else f"{delta:+d}",
            f"{fmt_time(r.real)}/{fmt_time(r.sim)}",
            "[green]yes[/]" if r.match else "[red]NO[/] " + "; ".join(r.differences),
        )
    return t
