"""(d) Many tasks: 10,000 processes doing mixed ops on an 8-node machine over one simulated
hour, the whole pipeline's time against SimPy alone, and how the cost grows with the tasks.

The scenario (built from one seeded numpy Generator) is a busy host: tasks start at random
times over the hour; producers create memfds, write part of them, seal them and keep them
for their consumers, which map them, read them through faults and read(2), and sleep; batch
workers allocate and touch anonymous memory in memcgs with oom.group; tmpfs users write and
read files on /dev/shm and truncate them away. Some service and batch memcgs are small
enough that their tasks get OOM-killed now and then.

The pipeline is what `oomsim run FILE --json` does with the scenario's text: load and validate
it (`parse_scenario`), build the run (`Run`), simulate, and write the JSON document. It is
timed at 1,000, 2,000, 10,000 and 20,000 tasks (issue 14's targets: 10,000 tasks within 20
times SimPy alone doing as many processes and timeouts; ten times the tasks within eleven
times the time; events per task about constant). Each scaling figure also says how SimPy
alone scales over the same sizes: ten times the processes and events cost it 11.3-11.4x
here (its event heap and the caches), the floor under any model built on it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from simulator.outcome import to_json
from simulator.scenario import parse_scenario
from simulator.simulation import Run

from .common import Figure

NODES = 8
NODE_MEMORY_MIB = 16 << 10  # at 10,000 tasks
HOUR = 3600.0
MiB = 1 << 20


def mib(n: float) -> str:
    """A size in whole MiB."""
    return f"{max(1, int(n))}MiB"


def secs(x: float) -> str:
    """A duration in milliseconds (the scenario's units)."""
    return f"{x * 1000:.0f}ms"


def busy_host(ntasks: int = 10_000, seed: int = 2024) -> dict[str, Any]:
    """The YAML-equivalent dict of the many-tasks scenario.

    Above 10,000 tasks the host grows with them: k = ntasks // 10,000 times the nodes' memory,
    the mount and the two parents' limits, and k times the memcgs below them (each as at
    10,000 tasks), so that each memcg holds as many tasks as at 10,000 (20,000 tasks in the
    10,000-task host's memcgs is another workload: it OOM-kills a hundred times as often).
    """
    rng = np.random.default_rng(seed)
    k = max(1, ntasks // 10_000)

    def scaled(mib_at_10k: int) -> str:
        return mib(mib_at_10k * k)

    # Every task is forked at time 0 (its footprint charged, an OOM candidate while it waits
    # for its start), so each memcg holds the footprints of a few hundred tasks all along.
    cgroups: dict[str, Any] = {"/svc": {"memory.max": scaled(48 << 10)},
                               "/batch": {"memory.max": scaled(32 << 10)}}
    for i in range(16 * k):
        cgroups[f"/svc/s{i}"] = {"memory.max": mib(384 if i % 4 == 0 else 1 << 10)}
    for i in range(8 * k):
        cgroups[f"/batch/b{i}"] = {"memory.max": mib(768 if i % 4 == 0 else 2 << 10),
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
            task["cgroup"] = f"/svc/s{int(rng.integers(0, 16 * k))}"
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
            task["cgroup"] = f"/svc/s{int(rng.integers(0, 16 * k))}"
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
            task["cgroup"] = f"/batch/b{int(rng.integers(0, 8 * k))}"
            task["oom_score_adj"] = int(rng.choice([0, 0, 200, 500]))
            ops: list[dict[str, Any]] = []
            for _ in range(int(rng.integers(1, 4))):
                ops.append({"alloc_anon": {"size": mib(rng.lognormal(3.0, 1.0))}})
                ops.append({"sleep": secs(rng.uniform(1, 30))})
            task["ops"] = ops
        else:
            fd, path = f"shm{i}", f"/dev/shm/f{i}"
            size = int(rng.integers(1, 33))
            task["cgroup"] = f"/svc/s{int(rng.integers(0, 16 * k))}"
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
        "machine": {"nodes": [{"memory": scaled(NODE_MEMORY_MIB)}] * NODES},
        "mounts": [{"path": "/dev/shm", "size": scaled(8 << 10)}],
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


def pipeline(text: str) -> dict[str, Any]:
    """The scenario text through load, build, run and JSON out, each phase timed."""
    t0 = time.perf_counter()
    sc = parse_scenario(text, "busy-host.yaml")
    t1 = time.perf_counter()
    r = Run(sc, levels=False)  # as `oomsim run --json` builds it: its output has no levels
    t2 = time.perf_counter()
    result, events, wall = counted_run(r)
    t3 = time.perf_counter()
    doc = json.dumps(to_json(sc.name, [result], sc.warnings, sc.draws), default=str)
    t4 = time.perf_counter()
    pages = sum(rec[5] for rec in result.events if rec[1] == "fault_bulk")
    return {"load": t1 - t0, "build": t2 - t1, "run": wall, "json": t4 - t3, "total": t4 - t0,
            "events": events, "pages": pages, "result": result, "bytes": len(doc)}


def measure(ntasks: int, reps: int) -> dict[str, Any]:
    """The pipeline of the `ntasks` busy host `reps` times: the run of median total time, and
    SimPy alone's time for as many processes and events."""
    text = json.dumps(busy_host(ntasks))  # JSON is YAML: the file `oomsim run` would read
    runs = sorted((pipeline(text) for _ in range(reps)), key=lambda p: p["total"])
    med = runs[len(runs) // 2]
    med["bare"] = med["events"] / simpy_alone(ntasks, med["events"])
    med["ntasks"] = ntasks
    return med


def run(reps: int = 3, sizes: tuple[int, ...] = (1_000, 2_000, 10_000, 20_000)) -> list[Figure]:
    """Measure (d); return its figures."""
    at = {n: measure(n, reps) for n in sizes}
    d = at[10_000]
    result = d["result"]
    outcomes: dict[str, int] = {}
    for o in result.tasks.values():
        outcomes[o.outcome] = outcomes.get(o.outcome, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    ratio = d["total"] / d["bare"]
    per_task = {n: p["events"] / n for n, p in at.items()}
    spread = max(per_task.values()) / min(per_task.values())

    def scaling(a: int, b: int) -> Figure:
        x = at[b]["total"] / at[a]["total"]
        return Figure(f"(d) pipeline time, {b:,} / {a:,} tasks", x, "x", "<= 11x", x <= 11,
                      f"{at[b]['total']:.2f} s vs {at[a]['total']:.2f} s; events "
                      f"{at[b]['events'] / at[a]['events']:.2f}x; SimPy alone with as many "
                      f"processes and events {at[b]['bare'] / at[a]['bare']:.2f}x")

    return [
        Figure("(d) 10,000-task pipeline / SimPy alone", ratio, "x", "<= 20x", ratio <= 20,
               f"{d['total']:.2f} s (load {d['load']:.2f}, build {d['build']:.2f}, run "
               f"{d['run']:.2f}, JSON {d['json']:.2f}) vs {d['bare']:.3f} s for 10,000 processes "
               f"and {d['events']:,} events; {len(result.oom_kills)} OOM kills; {summary}"),
        scaling(1_000, 10_000),
        scaling(2_000, 20_000),
        Figure("(d) events per task, most / fewest (1,000-20,000 tasks)", spread, "x",
               "<= 1.1x", spread <= 1.1, ", ".join(f"{n:,}: {v:.1f}" for n, v in per_task.items())),
        Figure("(d) 10,000 tasks: events/s of the run", d["events"] / d["run"], "events/s", "",
               None, f"SimPy alone {d['events'] / d['bare']:,.0f} events/s"),
        Figure("(d) 10,000 tasks: simulated pages/s of the run", d["pages"] / d["run"],
               "pages/s", "", None, f"{d['pages']:,} pages faulted by bulk steps; per task "
               + ", ".join(f"{n:,}: {p['pages'] / n:,.0f}" for n, p in at.items())),
    ]
