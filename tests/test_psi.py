"""Pressure stall information (mm/psi.py): the kernel's fixed-point averages, some and full,
the hierarchy, and the lazy replay of the 2 s averaging work.

The expected averages were computed with the kernel's own `calc_load` / `fixed_power_int`
(include/linux/sched/loadavg.h, kernel/sched/loadavg.c) compiled as C.
"""

from __future__ import annotations

import copy
from pathlib import Path

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import scenarios

from simulator.mm.psi import (
    FIXED_1,
    PSI_PERIOD_NS,
    SOME,
    EXP_10s,
    EXP_60s,
    EXP_300s,
    PsiGroup,
    calc_load,
    calc_load_n,
    fixed_power_int,
    load_value,
    psi_advance,
    psi_avgs_work,
    psi_group_change,
    psi_memstall_enter,
    psi_memstall_leave,
    psi_memstall_wait,
    psi_show,
    psi_task_running,
)
from simulator.scenario import load_scenario
from simulator.simulation import Run, simulate

P = PSI_PERIOD_NS  # 2.004 s: PSI_FREQ = 2 * HZ + 1 jiffies at HZ=250


class TestFixedPoint:
    def test_one_fully_stalled_period(self):
        """a1 = a0 * e + 100% * (1 - e), rounded up while rising: the kernel's numbers."""
        assert [calc_load(0, e, 100 * FIXED_1) for e in (EXP_10s, EXP_60s, EXP_300s)] == [
            37100, 6700, 1400]

    def test_missed_periods_fold_through_fixed_power_int(self):
        """n idle periods at once: e^n in fixed point, by squaring, rounded to nearest."""
        assert fixed_power_int(EXP_10s, 11, 4) == 920
        assert [calc_load(calc_load_n(a, e, 0, 4), e, 0)
                for a, e in zip((30379, 6480, 1390), (EXP_10s, EXP_60s, EXP_300s), strict=True)
                ] == [11173, 5487, 1341]

    def test_printed_as_the_kernel_prints(self):
        """LOAD_INT.LOAD_FRAC: 37100 is 18.11 (the exact 1 - e^-0.2 would be 18.13)."""
        assert (load_value(37100), load_value(6700), load_value(1400)) == (18.11, 3.27, 0.68)
        assert load_value(100 * FIXED_1) == 100.0


class TestAverages:
    def test_a_period_stalled_then_read(self):
        """A task stalled for exactly the first period: the work at 2.004 s samples 100%."""
        g = PsiGroup()
        psi_group_change(g, 0, 0, +1)
        psi_group_change(g, P, 0, -1)
        out = psi_show(g, P)
        assert out["some_total_us"] == out["full_total_us"] == P // 1000 == 2_004_000
        assert (out["some_avg10"], out["some_avg60"], out["some_avg300"]) == (18.11, 3.27, 0.68)

    def test_the_clock_stops_when_idle_and_catches_up_with_missed_periods(self):
        """After one zero sample the work stops; a read four periods later decays them with
        calc_load_n and samples the last one (update_averages' missed_periods)."""
        g = PsiGroup()
        psi_group_change(g, 0, 0, +1)
        psi_group_change(g, P, 0, -1)
        psi_advance(g, 2 * P)
        assert g.work_at is None and g.avg[SOME] == [30379, 6480, 1390]
        psi_show(g, 7 * P)
        assert g.avg[SOME] == [11173, 5487, 1341]  # not 11182, 5485, 1340: one by one

    def test_a_long_stall_reaches_100_percent(self):
        """An hour stalled: every average at 100.00 (the kernel's fixed point, 204800)."""
        g = PsiGroup()
        psi_group_change(g, 0, 0, +1)
        out = psi_show(g, 3600 * 10**9)
        assert out["some_avg300"] == out["full_avg10"] == 100.0
        assert out["some_total_us"] == 3600 * 10**6

    def test_the_closed_form_equals_the_work_run_period_by_period(self):
        """psi_advance's jumps over runs of equal samples give what running the averaging work
        at every period gives."""
        g = PsiGroup()
        psi_group_change(g, 0, 1, 0)  # a productive task
        psi_group_change(g, P // 3, 0, 1)  # another stalls: some, not full
        psi_group_change(g, 5 * P, -1, 0)  # the first sleeps: full too
        lazy, eager = copy.deepcopy(g), copy.deepcopy(g)
        end = 700 * P + 12345
        psi_advance(lazy, end)
        while eager.work_at is not None and eager.work_at <= end:
            psi_avgs_work(eager, eager.work_at)
        assert lazy.avg == eager.avg and lazy.avg_total == eager.avg_total
        assert (lazy.avg_next_update, lazy.work_at) == (eager.avg_next_update, eager.work_at)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.integers(1, 3 * P), st.sampled_from([(1, 0), (-1, 0), (0, 1),
                                                                       (0, -1)])),
                    max_size=30),
           st.lists(st.integers(0, 100 * P), max_size=10))
    def test_asking_early_changes_nothing(self, changes, peeks):
        """The averages do not depend on when they are brought up to date."""
        a, b = PsiGroup(), PsiGroup()
        t = 0
        for dt, (dp, ds) in changes:
            t += dt
            if a.nr_productive + dp < 0 or a.nr_memstall + ds < 0:
                continue
            for p in sorted(peeks):
                if p <= t:
                    psi_advance(b, p)
            psi_group_change(a, t, dp, ds)
            psi_group_change(b, t, dp, ds)
        end = t + 50 * P
        assert psi_show(a, end) == psi_show(b, end)


class TestSomeAndFull:
    def test_full_only_while_no_task_is_productive(self):
        """One task stalls while another runs: some; when the other sleeps: full too."""
        g = PsiGroup()
        psi_group_change(g, 0, +1, 0)
        psi_group_change(g, 0, 0, +1)
        psi_group_change(g, 3 * 10**9, -1, 0)
        out = psi_show(g, 5 * 10**9)
        assert (out["some_total_us"], out["full_total_us"]) == (5 * 10**6, 2 * 10**6)

    def test_no_stall_no_pressure(self):
        """Running tasks alone are not pressure."""
        g = PsiGroup()
        psi_group_change(g, 0, +2, 0)
        out = psi_show(g, 10 * P)
        assert out["some_total_us"] == out["full_total_us"] == 0 and out["some_avg10"] == 0


HIERARCHY = """
    name: psi-tree
    duration: 10s
    machine: {nodes: [{memory: 256MiB}]}
    cgroups: {/a: {}, /a/b: {}, /c: {}}
    tasks:
      - {name: inb, cgroup: /a/b, start: 100s, ops: [{sleep: 1ms}]}
      - {name: inc, cgroup: /c, start: 100s, ops: [{sleep: 1ms}]}
"""


def stall_for(m, task, t0, t1):
    """A real SimPy process: the task runs from t0, stalled on memory from t0 to t1 (its own
    process starts at 100 s, after all this)."""
    yield m.env.timeout(t0)
    psi_task_running(m, task, True)
    psi_memstall_enter(m, task)
    yield m.env.timeout(t1 - t0)
    psi_memstall_leave(m, task)


class TestHierarchy:
    def test_a_stall_counts_in_the_memcg_every_ancestor_and_the_system(self, scenario):
        """cgroup PSI is hierarchical; the root's pressure is the system's."""
        run = Run(scenario(HIERARCHY))
        m = run.m
        inb = next(t for t in m.tasks if t.name == "inb")
        m.env.process(stall_for(m, inb, 1.0, 3.5))
        m.env.run(until=5.0)
        now = 5 * 10**9
        got = {p: psi_show(c.psi, now)["some_total_us"] for p, c in m.memcgs.items()}
        assert got == {"/": 2_500_000, "/a": 2_500_000, "/a/b": 2_500_000, "/c": 0}
        assert m.root.psi is m.memcgs["/"].psi

    def test_a_productive_task_elsewhere_keeps_the_system_from_full(self, scenario):
        """Full in the stalled memcg, only some in the system while a task of /c runs."""
        run = Run(scenario(HIERARCHY))
        m = run.m
        inb, inc = (next(t for t in m.tasks if t.name == n) for n in ("inb", "inc"))
        m.env.process(stall_for(m, inb, 0.0, 2.0))
        psi_task_running(m, inc, True)
        m.env.run(until=3.0)
        b, root = psi_show(m.memcgs["/a/b"].psi, 3 * 10**9), psi_show(m.root.psi, 3 * 10**9)
        assert (b["some_total_us"], b["full_total_us"]) == (2_000_000, 2_000_000)
        assert (root["some_total_us"], root["full_total_us"]) == (2_000_000, 0)


class TestTheApiForBulkSteps:
    def test_a_known_stall_is_one_event(self, scenario):
        """psi_memstall_wait: a step's stall of known length, one timeout, however many pages;
        left even when the task is interrupted in it."""
        run = Run(scenario(HIERARCHY))
        m = run.m
        inb = next(t for t in m.tasks if t.name == "inb")
        psi_task_running(m, inb, True)

        def step():
            yield from psi_memstall_wait(m, inb, m.env.timeout(1.5))
            try:
                yield from psi_memstall_wait(m, inb, m.env.timeout(10))
            except simpy.Interrupt:
                pass

        proc = m.env.process(step())

        def killer():
            yield m.env.timeout(2.0)
            proc.interrupt("SIGKILL")

        m.env.process(killer())
        m.env.run(until=4.0)
        assert inb.psi_memstall == 0
        assert psi_show(m.memcgs["/a/b"].psi, 4 * 10**9)["some_total_us"] == 2_000_000


class TestProperties:
    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(scenarios())
    def test_some_covers_full_and_neither_exceeds_the_run(self, sc):
        """In every group: full time is some time too, and no total passes the run's time."""
        res = Run(sc).run()
        groups = [c["pressure"] for c in res.counters["memcg"].values()]
        for p in [*groups, res.counters["pressure"]]:
            assert p["full_total_us"] <= p["some_total_us"] <= res.end_time * 1e6 + 1
            assert all(0 <= p[f"{k}_avg{w}"] <= 100 for k in ("some", "full") for w in (10, 60, 300))


class TestWhereTheModelStalls:
    def test_waiting_for_an_oom_victim_is_a_stall(self, scenario):
        """A charger at memory.max waits for the victim it chose to exit (`costs.exit`, 50 us):
        in the kernel it loops through reclaim meanwhile, a memory stall."""
        res = Run(scenario("""
            name: oom-wait
            duration: 1s
            machine: {nodes: [{memory: 256MiB}]}
            cgroups: {/app: {memory.max: 8MiB}}
            tasks:
              - {name: hog, cgroup: /app, ops: [{alloc_anon: {size: 6MiB}}, {sleep: 10s}]}
              - {name: grower, cgroup: /app, start: 100ms, ops: [{alloc_anon: {size: 4MiB}}]}
            """)).run()
        assert (res.tasks["hog"].outcome, res.tasks["grower"].outcome) == ("oom_killed", "ok")
        p = res.counters["memcg"]["/app"]["pressure"]
        assert 50 <= p["some_total_us"] < 1000 and p["full_total_us"] == p["some_total_us"]

    def test_a_refault_loop_is_a_stall_and_a_v1_oom_wait_is_not(self):
        """No victim: the user fault refaults through reclaim forever (stalled); v1
        oom_kill_disable: the task sleeps in mem_cgroup_oom_synchronize (idle)."""
        root = Path(__file__).resolve().parent.parent / "scenarios"
        refault = simulate(load_scenario(root / "memcg-no-victim.yaml"))
        assert refault.counters["memcg"]["/app"]["pressure"]["full_total_us"] > 1_900_000
        v1 = simulate(load_scenario(root / "v1-oom-kill-disable.yaml"))
        assert refault.tasks["reader"].outcome == v1.tasks["reader"].outcome == "hung"
        assert v1.counters["pressure"]["some_total_us"] == 0
