"""(d) Many tasks: 10,000 processes doing mixed ops on an 8-node machine over one simulated
hour, and how many SimPy events the simulator processes per wall second.

The scenario (built from one seeded numpy Generator) is a busy host: tasks start at random
times over the hour; producers create memfds, write part of them, seal them and keep them
for their consumers, which map them, read them through faults and read(2), and sleep; batch
workers allocate and touch anonymous memory in memcgs with oom.group; tmpfs users write and
read files on /dev/shm and truncate them away. Some service and batch memcgs are small
enough that their tasks get OOM-killed now and then.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from simulator.scenario import Scenario
from simulator.simulation import Run
from simulator.validify import validify

from .common import Figure

NODES = 8
NODE_MEMORY = "16GiB"
HOUR = 3600.0
MiB = 1 << 20


def mib(n: float) -> str:
    """A size in whole MiB."""
    return f"{max(1, int(n))}MiB"


def secs(x: float) -> str:
    """A duration in milliseconds (the scenario's units)."""
    return f"{x * 1000:.0f}ms"


def busy_host(ntasks: int = 10_000, seed: int = 2024) -> dict[str, Any]:
    """The YAML-equivalent dict of the many-tasks scenario."""
    rng = np.random.default_rng(seed)
    # Every task is forked at time 0 (its footprint charged, an OOM candidate while it waits
    # for its start), so each memcg holds the footprints of a few hundred tasks all along.
    cgroups: dict[str, Any] = {"/svc": {"memory.max": "48GiB"}, "/batch": {"memory.max": "32GiB"}}
    for i in range(16):
        cgroups[f"/svc/s{i}"] = {"memory.max": "384MiB" if i % 4 == 0 else "1GiB"}
    for i in range(8):
        cgroups[f"/batch/b{i}"] = {"memory.max": "768MiB" if i % 4 == 0 else "2GiB",
                                   "memory.oom.group": i % 4 == 2}
    kinds = rng.choice(["producer", "consumer", "worker", "tmpfs"], size=ntasks,
                       p=[0.15, 0.35, 0.35, 0.15])
    starts = np.sort(rng.uniform(0, HOUR - 420, size=ntasks))  # all done within the hour
    producers: list[tuple[int, float, int]] = []  # (index, start, pages)
    tasks = []
    for i, (kind, start) in enumerate(zip(kinds.tolist(), starts.tolist(), strict=True)):
        node = int(rng.integers(0, NODES))
        task: dict[str, Any] = {"name": f"t{i}", "node": node, "start": secs(start)}
        if kind == "consumer" and not producers:
            kind = "producer"
        if kind == "producer":
            size = int(rng.integers(4, 65))
            fd = f"buf{i}"
            task["cgroup"] = f"/svc/s{int(rng.integers(0, 16))}"
            task["ops"] = [
                {"memfd_create": {"fd": fd, "flags": ["allow_sealing"]}},
                {"ftruncate": {"fd": fd, "size": mib(size)}},
                {"write": {"fd": fd, "length": mib(size * rng.uniform(0.1, 0.5))}},
                {"add_seals": {"fd": fd, "seals": ["write", "shrink", "grow"]}},
                {"sleep": secs(rng.uniform(30, 300))},
            ]
            producers.append((i, start, size))
        elif kind == "consumer":
            j, pstart, size = producers[int(rng.integers(max(0, len(producers) - 50),
                                                          len(producers)))]
            fd = f"buf{j}"
            task["start"] = secs(max(start, pstart + 0.01))
            task["cgroup"] = f"/svc/s{int(rng.integers(0, 16))}"
            upto = int(rng.integers(1, 101))
            pattern = "random" if rng.random() < 0.1 else "sequential"
            task["ops"] = [
                {"mmap": {"fd": fd, "map": "m", "prot": ["read"], "flags": ["shared"]}},
                {"touch": {"map": "m", "access": "read", "pattern": pattern,
                           "range": ["0%", f"{upto}%"]}},
                {"read": {"fd": fd}},
                {"sleep": secs(rng.uniform(5, 60))},
                {"touch": {"map": "m", "access": "read"}},
                {"munmap": {"map": "m"}},
                {"sleep": secs(rng.uniform(1, 20))},
            ]
        elif kind == "worker":
            task["cgroup"] = f"/batch/b{int(rng.integers(0, 8))}"
            task["oom_score_adj"] = int(rng.choice([0, 0, 200, 500]))
            ops: list[dict[str, Any]] = []
            for _ in range(int(rng.integers(1, 4))):
                ops.append({"alloc_anon": {"size": mib(rng.lognormal(3.0, 1.0))}})
                ops.append({"sleep": secs(rng.uniform(1, 30))})
            task["ops"] = ops
        else:
            fd, path = f"shm{i}", f"/dev/shm/f{i}"
            size = int(rng.integers(1, 33))
            task["cgroup"] = f"/svc/s{int(rng.integers(0, 16))}"
            task["ops"] = [
                {"open": {"fd": fd, "path": path}},
                {"write": {"fd": fd, "length": mib(size)}},
                {"read": {"fd": fd}},
                {"sleep": secs(rng.uniform(1, 60))},
                {"read": {"fd": fd, "length": mib(size / 2)}},
                {"ftruncate": {"fd": fd, "size": 0}},
                {"close": {"fd": fd}},
            ]
        tasks.append(task)
    return {
        "name": "busy-host",
        "seed": seed,
        "duration": f"{HOUR:.0f}s",
        "machine": {"nodes": [{"memory": NODE_MEMORY}] * NODES},
        "mounts": [{"path": "/dev/shm", "size": "8GiB"}],
        "cgroups": cgroups,
        "tasks": tasks,
    }


def counted_run(run: Run) -> tuple[Any, int, float]:
    """Run with env.step counted: (result, SimPy events processed, wall seconds of the run)."""
    env = run.env
    step = env.step
    n = 0

    def counting_step() -> None:
        nonlocal n
        n += 1
        step()

    env.step = counting_step  # type: ignore[method-assign]
    t0 = time.perf_counter()
    result = run.run()
    return result, n, time.perf_counter() - t0


def simpy_alone(ntasks: int, events: int, reps: int = 3) -> float:
    """SimPy's own events/s for the same number of processes and events, and nothing else.

    Each process sleeps to a start time, then yields timeouts through three nested
    generators, as a task does (run_task -> op -> faultin_range): the ceiling any model on
    SimPy has on this machine, to read figure (d) against.
    """
    import simpy

    per_task = max(1, events // ntasks - 1)

    def inner(env: simpy.Environment) -> Any:
        yield env.timeout(1e-3)

    def op(env: simpy.Environment) -> Any:
        yield from inner(env)

    def task(env: simpy.Environment, start: float) -> Any:
        yield env.timeout(start)
        for _ in range(per_task):
            yield from op(env)

    rates = []
    for _ in range(reps):
        env = simpy.Environment()
        for i in range(ntasks):
            env.process(task(env, HOUR * i / ntasks))
        t0 = time.perf_counter()
        env.run()
        rates.append(ntasks * (per_task + 2) / (time.perf_counter() - t0))
    return float(np.median(rates))


def run(reps: int = 3, ntasks: int = 10_000) -> list[Figure]:
    """Measure (d); return its figures."""
    t0 = time.perf_counter()
    d = busy_host(ntasks)
    sc = Scenario.model_validate(d)
    validify(sc)
    t_parse = time.perf_counter() - t0
    rates, builds = [], []
    result = None
    for _ in range(reps):
        t0 = time.perf_counter()
        r = Run(sc)
        builds.append(time.perf_counter() - t0)
        result, events, wall = counted_run(r)
        rates.append(events / wall)
    assert result is not None
    rate = float(np.median(rates))
    outcomes: dict[str, int] = {}
    for o in result.tasks.values():
        outcomes[o.outcome] = outcomes.get(o.outcome, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    bare = simpy_alone(ntasks, events)
    return [
        Figure(f"(d) {ntasks:,} tasks, 8 nodes, 1 simulated hour: events/s", rate,
               "events/s", ">= 200,000", rate >= 200_000,
               f"{events:,} events in {wall:.2f} s; {len(result.oom_kills)} OOM kills; "
               f"{summary}"),
        Figure("(d) SimPy alone, same processes and events: events/s", bare, "events/s", "",
               None, "empty processes, three nested generators each: the ceiling on SimPy"),
        Figure("(d) simulator / SimPy alone", rate / bare, "x", "", None,
               "the share of SimPy's own rate left after the model's work"),
        Figure("(d) building the scenario: validate + Run()", t_parse + float(np.median(builds)),
               "s", "", None, f"validate {t_parse:.2f} s, build {np.median(builds):.2f} s"),
    ]
