"""What a run produced, as plain data: each task's outcome and the run's result.

The run builder fills these in; results.py turns them into frames, Parquet and JSON. They live
below both so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The reason of a `hung` task that was still running (in an op, or sleeping) when the scenario's
# duration ended: not a failure (analysis labels it `running`). Other `hung` reasons are waits
# that would never end (a refault loop, a v1 oom_kill_disable wait, a task it starts after).
DURATION_RAN_OUT = "the duration ran out"
NOT_STARTED = "waiting for its start time"


@dataclass
class TaskOutcome:
    """What happened to a task: the `tasks` entry of the JSON output."""

    outcome: str
    errno: str | None = None
    op: int | None = None
    op_name: str | None = None
    page: int | None = None
    time: float = 0.0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "outcome": self.outcome, "errno": self.errno, "op": self.op, "op_name": self.op_name,
            "page": self.page, "time": round(self.time, 9), "reason": self.reason,
        }


@dataclass
class RunResult:
    """One run of a scenario with one seed: outcomes, kills, events and final counters."""

    scenario: str
    seed: int
    kernel: str
    tasks: dict[str, TaskOutcome]
    oom_kills: list[dict[str, Any]]
    events: list[tuple[Any, ...]]
    counters: dict[str, Any]
    end_time: float
    panic: str | None = None
    what_if: dict[str, Any] = field(default_factory=dict)
    levels: list[tuple[float, str, str, int, bool]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The run's entry in the JSON output."""
        return {
            "seed": self.seed,
            "kernel": self.kernel,
            "what_if": self.what_if,
            "tasks": {k: v.as_dict() for k, v in self.tasks.items()},
            "oom_kills": [
                {k: v for k, v in kill.items() if k in (
                    "victim", "constraint", "memcg", "points", "time", "task_memcg",
                    "totalpages", "rss_pages", "pgtables_pages", "swapents", "oom_score_adj",
                    "line", "task_line", "oom_constraint", "nodemask", "summary_line",
                    "killer", "signal")}
                for kill in self.oom_kills
            ],
            "panic": self.panic,
            "end_time": self.end_time,
            "counters": self.counters,
        }


def to_json(scenario: str, runs: list[RunResult],
            warnings: tuple[str, ...] | list[str] = (),
            draws: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document: {"scenario": ..., "warnings": [...], "runs": [{"seed", "tasks",
    "oom_kills", ...}]} (`warnings`: the loader's, `file:line: key: message` each), and
    `draws` (field path -> value) for a scenario whose workload was drawn."""
    doc: dict[str, Any] = {"scenario": scenario, "warnings": list(warnings),
                           "runs": [r.as_dict() for r in runs]}
    if draws:
        doc["draws"] = draws
    return doc
