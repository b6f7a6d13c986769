"""The slicing rule for anonymous walks (simulator/engine/interact.py): a walk passes the events
of tasks that cannot interact with it, stops at the others, and passing changes no outcome."""

from __future__ import annotations

import textwrap
from typing import Any
from unittest import mock

from hypothesis import given, settings
from strategies import interleaved_dicts
from test_differential import PROFILE, kills, outcomes

from simulator.outcome import RunResult
from simulator.scenario import Scenario, parse_scenario
from simulator.simulation import Run
from simulator.validify import validify


def run(sc: Scenario, rule: bool = True) -> RunResult:
    """Simulate `sc`; without `rule`, every walk stops at the next event anyone scheduled."""
    if rule:
        return Run(sc).run()
    with mock.patch("simulator.engine.slicing.anon_walk_stop",
                    lambda m, task, until, inode=None: m.env.peek()):
        return Run(sc).run()


def slices(r: RunResult, task: str) -> int:
    """The slices of a task's walks (one `fault_slice` record each)."""
    return sum(1 for e in r.events if e[1] == "fault_slice" and e[2] == task)


def two_tasks(sleeper_cgroup: str, memory: str = "256MiB") -> Scenario:
    """`walker` allocates 16 MiB in /p/a while `sleeper` (in `sleeper_cgroup`) wakes every
    millisecond and touches a little memory."""
    ops = "\n".join("      - sleep: 1ms\n      - alloc_anon: {size: 8KiB}" for _ in range(20))
    return parse_scenario(textwrap.dedent("""\
        name: two
        machine: {nodes: [{memory: MEMORY}]}
        cgroups:
          /p: {memory.max: 200MiB}
          /p/a: {memory.max: 64MiB}
          /p/b: {memory.max: 64MiB}
          /q: {memory.max: 20MiB}
          /q/c: {memory.max: 64MiB}
          /q/d: {memory.max: 64MiB}
        tasks:
          - name: walker
            cgroup: WALKER
            ops:
              - alloc_anon: {size: 16MiB}
          - name: sleeper
            cgroup: SLEEPER
            ops:
        """).replace("WALKER", "/q/c" if sleeper_cgroup.startswith("/q") else "/p/a")
        .replace("SLEEPER", sleeper_cgroup).replace("MEMORY", memory) + ops + "\n")


class TestAnonWalkStop:
    def test_passes_the_events_of_a_task_in_an_unrelated_memcg(self) -> None:
        """/p/a and /p/b share only /p, whose max covers both: the walk takes one slice."""
        sc = two_tasks("/p/b")
        assert slices(run(sc), "walker") == 1
        assert slices(run(sc, rule=False), "walker") > 10

    def test_stops_at_the_events_of_a_task_in_its_memcg(self) -> None:
        """Both in /p/a: the walk stops at each of the other task's wakeups."""
        sc = two_tasks("/p/a")
        assert slices(run(sc), "walker") == slices(run(sc, rule=False), "walker") > 10

    def test_stops_where_a_common_ancestor_can_bind(self) -> None:
        """/q/c and /q/d share /q, whose 20 MiB is less than their 128 MiB: it can bind."""
        sc = two_tasks("/q/d")
        assert slices(run(sc), "walker") == slices(run(sc, rule=False), "walker") > 10

    def test_stops_where_a_node_could_reach_its_watermark(self) -> None:
        """On a machine smaller than the two memcgs' limits together, a node's free pages could
        meet a watermark within the walk: the walk stops at the other task's events."""
        sc = two_tasks("/p/b", memory="120MiB")
        assert slices(run(sc), "walker") == slices(run(sc, rule=False), "walker") > 10


def final_state(r: RunResult) -> dict[str, Any]:
    """What a run ends with, its peaks aside (those follow how pages were booked in slices)."""
    memcgs = {path: {k: v for k, v in c.items()
                     if not k.startswith(("peak", "max_usage", "memsw_peak", "swap_peak"))
                     and k != "pressure"}
              for path, c in r.counters["memcg"].items()}
    nodes = [{k: v for k, v in n.items() if not k.startswith("peak")}
             for n in r.counters["nodes"]]
    return {"memcg": memcgs, "nodes": nodes}


class TestPassingChangesNoOutcome:
    @settings(settings.get_profile(PROFILE))
    @given(interleaved_dicts(quantum="1us"))
    def test_same_outcomes_kills_and_counters(self, d: dict[str, Any]) -> None:
        """With a one-page quantum, walks that stop at every event and walks that pass the
        events of unrelated tasks end alike: outcomes, OOM kills, final counters."""
        sc = Scenario.model_validate(d)
        validify(sc)
        a, b = run(sc), run(sc, rule=False)
        assert outcomes(a) == outcomes(b)
        assert kills(a) == kills(b)
        assert final_state(a) == final_state(b)
