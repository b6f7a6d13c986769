"""Compare a run's outcomes with the scenario's `expect` block."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .scenario import ExpectTask

if TYPE_CHECKING:
    from .scenario import Scenario
    from .simulation import RunResult


def mismatches(sc: Scenario, run: RunResult) -> list[str]:
    """One line per expectation the run does not meet (empty: all met)."""
    out = []
    for name, exp in sc.expect.items():
        got = run.tasks.get(name)
        if got is None:
            out.append(f"{name}: no outcome recorded")
            continue
        want = exp if isinstance(exp, ExpectTask) else ExpectTask(outcome=exp)
        checks = [("outcome", want.outcome, got.outcome), ("errno", want.errno, got.errno),
                  ("op", want.op, got.op_name), ("page", want.page, got.page),
                  ("reason", want.reason, got.reason)]
        for field, w, g in checks:
            if w is None:
                continue
            if field == "reason" and g is not None and w in g:
                continue
            if w != g:
                out.append(f"{name}: expected {field} {w!r}, got {g!r}")
    return out
