"""Run one scenario under several mitigation policies, kernels and seeds; tidy frames out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from .outcome import RunResult
from .plan import resolve
from .policies import apply_policy, parse_policy
from .scenario_model import Scenario
from .simulation import simulate


@dataclass(frozen=True)
class SweepRun:
    """One cell of a sweep: which policy and kernel, and the run."""

    policy: str
    kernel: str
    run: RunResult


def sweep(sc: Scenario, policies: Iterable[str], kernels: Iterable[str],
          seeds: Iterable[int]) -> list[SweepRun]:
    """Every policy x kernel x seed, in that order (deterministic); a policy is a spec
    (`mlock`, `swap:size=1GiB`, `protect_reader@reader`: simulator/policies.py)."""
    out = []
    seeds = list(seeds)
    for name in policies:
        variant = resolve(apply_policy(parse_policy(name), sc))
        for k in kernels:
            for s in seeds:
                out.append(SweepRun(name, k, simulate(variant, seed=s, kernel=k)))
    return out


def sweep_frame(sc: Scenario, runs: list[SweepRun]) -> pd.DataFrame:
    """One row per task per run, with policy, kernel and seed: the input of analysis/."""
    rows = []
    for r in runs:
        for task, o in r.run.tasks.items():
            rows.append({"scenario": sc.name, "policy": r.policy, "kernel": r.kernel,
                         "seed": r.run.seed, "task": task, **o.as_dict()})
    out = pd.DataFrame(rows)
    for col in ("op", "page"):  # nullable integers, as in tasks.parquet
        if col in out:
            out[col] = out[col].astype("Int64")
    return out
