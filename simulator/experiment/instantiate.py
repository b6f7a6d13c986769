"""One run's workload: a scenario with distributions, `count` and `repeat` made concrete.

A scenario file may describe a family of workloads: fields drawn from distributions
(draws.py), tasks that stand for several (`count: N`, copies named `NAME.0` ... `NAME.N-1`,
each with its own draws; `start: {poisson: {rate: 2/s}}` spaces their starts), and ops
repeated (`repeat: {times: N, ops: [...]}`). `instantiate` turns it into the plain scenario of
one run, which the loader then checks like any file.

Seeding (common random numbers): every drawn field has its own Generator, from the scenario's
seed, the run index and the field's path (`field_rng`). The same run index therefore draws the
same workload under every mitigation policy and every grid cell, so comparisons between them
are paired; adding a field or a task does not shift the draws of the others; a run reproduces
alone.
"""

from __future__ import annotations

import copy
import zlib
from typing import Any

import numpy as np

from ..scenario_errors import ScenarioError
from ..units import UnitError, parse_bytes
from .draws import DISTRIBUTIONS, draw, is_distribution, poisson_starts


def field_rng(seed: int, run: int, path: str) -> np.random.Generator:
    """The Generator of one drawn field of run `run` of a scenario seeded `seed`."""
    ss = np.random.SeedSequence(entropy=[seed, run], spawn_key=(zlib.crc32(path.encode()),))
    return np.random.Generator(np.random.PCG64(ss))


def may_have_draws(text: str) -> bool:
    """Whether a scenario's text could describe more than one workload: False when no
    distribution's name, `repeat` or `count` is written anywhere (and no escape could spell
    one), so that `has_draws` need not walk a 10,000-task file's 270,000 values."""
    return "\\" in text or any(w in text for w in (*DISTRIBUTIONS, "repeat", "count"))


def has_draws(raw: Any) -> bool:
    """Whether a scenario (as parsed YAML) describes more than one workload.

    A distribution, a `repeat` or a `count` beside `ops` anywhere but under `sweep`. Walked with
    a stack, scalars skipped in place: a 10,000-task file is 270,000 values."""
    stack = [raw]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if is_distribution(x) or "repeat" in x or ("count" in x and "ops" in x):
                return True
            stack.extend(v for k, v in x.items()
                         if k != "sweep" and isinstance(v, (dict, list)))
        elif isinstance(x, list):
            stack.extend(v for v in x if isinstance(v, (dict, list)))
    return False


class Instantiation:
    """The draws of one run: where they go and what they were."""

    def __init__(self, seed: int, run: int, page_size: int) -> None:
        self.seed, self.run, self.page_size = seed, run, page_size
        self.draws: dict[str, Any] = {}

    def value(self, v: Any, path: str) -> Any:
        """`v` with every distribution inside it drawn (paths below `path`)."""
        if is_distribution(v):
            x = draw(v, field_rng(self.seed, self.run, path), self.page_size)
            self.draws[path] = x
            return x
        if isinstance(v, dict):
            return {k: self.value(x, f"{path}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x, f"{path}.{i}") for i, x in enumerate(v)]
        return v

    def ops(self, ops: list[Any], path: str) -> list[Any]:
        """A task's ops with `repeat` blocks unrolled and their distributions drawn."""
        out: list[Any] = []
        for i, op in enumerate(ops):
            here = f"{path}.{i}"
            if isinstance(op, dict) and set(op) == {"repeat"}:
                block = op["repeat"]
                if not isinstance(block, dict) or set(block) != {"times", "ops"}:
                    raise ScenarioError(f"{here}.repeat: expected {{times: N, ops: [...]}}")
                times = self.value(block["times"], f"{here}.repeat.times")
                if not isinstance(times, int) or isinstance(times, bool) or times < 0:
                    raise ScenarioError(f"{here}.repeat.times: expected a whole number, got "
                                        f"{times!r}")
                for k in range(times):
                    out += self.ops(list(block["ops"]), f"{here}.repeat.{k}.ops")
            else:
                out.append(self.value(op, here))
        return out

    def task(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """A task spec as the one or several tasks it stands for."""
        name = spec.get("name", "?")
        base = f"tasks.{name}"
        if "count" not in spec:
            return [self.one(spec, name, None)]
        n = self.value(spec["count"], f"{base}.count")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ScenarioError(f"{base}.count: expected a whole number, got {n!r}")
        starts = None
        start = spec.get("start")
        if isinstance(start, dict) and set(start) == {"poisson"}:
            starts = poisson_starts(start, n, field_rng(self.seed, self.run, f"{base}.start"))
            self.draws[f"{base}.start"] = starts
        return [self.one(spec, f"{name}.{i}", None if starts is None else starts[i])
                for i in range(n)]

    def one(self, spec: dict[str, Any], name: str, start: float | None) -> dict[str, Any]:
        """One task: its name, its drawn fields and unrolled ops."""
        t = {k: v for k, v in spec.items() if k not in ("count", "ops")}
        t["name"] = name
        if start is not None:
            t["start"] = start
        t = self.value(t, f"tasks.{name}")
        t["ops"] = self.ops(list(spec.get("ops", [])), f"tasks.{name}.ops")
        return t


def page_size_of(raw: dict[str, Any]) -> int:
    """The scenario's page size in bytes (4 KiB unless set)."""
    machine = raw.get("machine") or {}
    try:
        return parse_bytes(machine.get("page_size", 4096)) if isinstance(machine, dict) else 4096
    except UnitError:
        return 4096  # the loader reports it


def instantiate(raw: dict[str, Any], seed: int, run: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain scenario of run `run` (the `sweep` block left out), and its draws by path."""
    inst = Instantiation(seed, run, page_size_of(raw))
    out: dict[str, Any] = {}
    copies: dict[str, list[str]] = {}
    for k, v in raw.items():
        if k == "sweep":
            continue
        if k == "tasks" and isinstance(v, list):
            tasks: list[dict[str, Any]] = []
            for spec in v:
                if not isinstance(spec, dict):
                    tasks.append(spec)
                    continue
                made = inst.task(spec)
                if "count" in spec:
                    copies[str(spec.get("name"))] = [t["name"] for t in made]
                tasks += made
            out[k] = tasks
        elif k == "expect":
            out[k] = copy.deepcopy(v)
        else:
            out[k] = inst.value(v, k)
    expect = out.get("expect")
    if isinstance(expect, dict):  # an expectation of a counted task holds for each copy
        for name, names in copies.items():
            if name in expect:
                want = expect.pop(name)
                for c in names:
                    expect.setdefault(c, copy.deepcopy(want))
    return out, inst.draws


__all__ = ["DISTRIBUTIONS", "field_rng", "has_draws", "instantiate", "may_have_draws"]
