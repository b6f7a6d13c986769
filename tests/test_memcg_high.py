"""memory.high (mm/memcg_high.py, memcontrol.py): which charges find it exceeded, the penalty
`__mem_cgroup_handle_over_high` computes, its 10 ms floor and 2 s cap, the reclaim rounds and
their `high` events, the sleep as a PSI stall, and whole runs throttled on both engines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.mm.memcg_high import (
    MEMCG_MAX_HIGH_DELAY_JIFFIES,
    calculate_high_delay,
    calculate_overage,
    mem_cgroup_handle_over_high,
    mem_find_max_overage,
)
from simulator.mm.memcontrol import (
    MEMCG_CHARGE_BATCH,
    drain_all_stock,
    high_margin,
    memcg_charge_done,
    page_counter_try_charge,
)
from simulator.mm.psi import HZ, psi_show, psi_task_running
from simulator.simulation import Run, simulate

MIB = 256  # pages of 4 KiB

BASE = """
    name: high
    duration: 60s
    machine: {nodes: [{memory: 1GiB}]}
    cgroups: {/p: {memory.high: HIGH_P}, /p/app: {memory.high: HIGH}}
    tasks:
      - {name: t, cgroup: /p/app, start: 100s, ops: [{sleep: 1ms}]}
"""


def machine(scenario, high="100MiB", high_p="max"):
    """A machine whose task `t` is in /p/app (its own process never starts: the test drives
    it), with the memcg's usage at 0 apart from the task's footprint."""
    run = Run(scenario(BASE.replace("HIGH_P", high_p).replace("HIGH", high)))
    m = run.m
    t = m.tasks[0]
    psi_task_running(m, t, True)
    return m, t, m.memcgs["/p/app"]


def set_usage(memcg, pages):
    assert page_counter_try_charge(memcg, pages - memcg.usage) is None


def handle(m, t, pending):
    """Run mem_cgroup_handle_over_high with `pending` pages as a real SimPy process; returns
    how long it took."""
    t.memcg_nr_pages_over_high = pending
    start = m.env.now
    m.env.process(mem_cgroup_handle_over_high(m, t))
    m.env.run()
    return m.env.now - start


# The kernel's table (mm/memcontrol.c, above MEMCG_DELAY_PRECISION_SHIFT): with memory.high
# 100M, the delay per 64-page batch in ms at HZ=1000, capped at 2000.
KERNEL_TABLE = {100: 0, 101: 6, 102: 25, 103: 57, 104: 102, 105: 159, 106: 230, 107: 313,
                108: 409, 109: 518, 110: 639, 111: 774, 112: 921, 113: 1081, 114: 1254,
                115: 1439, 116: 1638, 117: 1849, 118: 2000, 119: 2000, 120: 2000}


class TestPenalty:
    @pytest.mark.parametrize(("usage_mib", "ms"), sorted(KERNEL_TABLE.items()))
    def test_the_kernels_table(self, usage_mib, ms):
        """overage = (usage - high) / high in 20-bit fixed point; delay = overage^2 x HZ >> 34
        per batch: the kernel's own table at HZ=1000; at this model's HZ=250 the same formula
        in 4 ms jiffies."""
        ov = calculate_overage(usage_mib * MIB, 100 * MIB)
        assert min((ov * ov * 1000) >> 34, 2000) == ms
        assert calculate_high_delay(MEMCG_CHARGE_BATCH, ov) == (ov * ov * HZ) >> 34

    def test_the_delay_is_the_tasks_share_of_a_batch(self):
        """x nr_pages / 64: two batches pending, twice the sleep; a page alone, 1/64."""
        ov = calculate_overage(110 * MIB, 100 * MIB)
        one = calculate_high_delay(64, ov)
        assert calculate_high_delay(128, ov) == 2 * one
        assert calculate_high_delay(1, ov) == one // 64

    def test_the_highest_overage_up_the_tree_counts(self, scenario):
        """mem_find_max_overage: the parent further over its high decides."""
        m, t, app = machine(scenario, high="200MiB", high_p="100MiB")
        set_usage(app, 110 * MIB)
        assert mem_find_max_overage(app) == calculate_overage(110 * MIB, 100 * MIB)


class TestHandleOverHigh:
    def test_sleeps_the_penalty_after_reclaim_fails(self, scenario):
        """110M over a high of 100M, one batch: 159 jiffies (636 ms); reclaim tried 1 + 16
        times first, each a `high` event in the memcg."""
        m, t, app = machine(scenario)
        set_usage(app, 110 * MIB)
        took = handle(m, t, 64)
        assert took == pytest.approx(159 / HZ)
        assert app.events["high"] == 17
        assert t.memcg_nr_pages_over_high == 0

    def test_ten_ms_or_less_is_not_worth_a_sleep(self, scenario):
        """penalty <= HZ/100 jiffies: no sleep and a single reclaim round."""
        m, t, app = machine(scenario)
        set_usage(app, 101 * MIB)  # 1 jiffy a batch at HZ=250
        assert handle(m, t, 64) == 0
        assert app.events["high"] == 1
        set_usage(app, 102 * MIB)  # 6 jiffies: 24 ms
        assert handle(m, t, 64) == pytest.approx(6 / HZ)

    def test_capped_at_two_seconds(self, scenario):
        """Twice over high is 16,000 jiffies by the formula; the sleep is 2 s."""
        m, t, app = machine(scenario)
        set_usage(app, 200 * MIB)
        assert handle(m, t, 640) == pytest.approx(MEMCG_MAX_HIGH_DELAY_JIFFIES / HZ) == 2.0

    def test_events_count_in_every_memcg_over_high_and_up_the_tree(self, scenario):
        """reclaim_high visits each memcg over its high; memory.events is hierarchical."""
        m, t, app = machine(scenario, high="100MiB", high_p="100MiB")
        set_usage(app, 101 * MIB)
        handle(m, t, 64)
        assert (app.events["high"], m.memcgs["/p"].events["high"]) == (1, 2)

    def test_a_dying_task_does_not_wait(self, scenario):
        """task_is_dying(): no reclaim, no sleep."""
        m, t, app = machine(scenario)
        set_usage(app, 200 * MIB)
        t.sigkill = True
        assert handle(m, t, 64) == 0 and app.events["high"] == 0

    def test_the_sleep_is_a_memory_stall(self, scenario):
        """The penalty counts as some and full pressure in the memcg and the system."""
        m, t, app = machine(scenario)
        set_usage(app, 200 * MIB)
        handle(m, t, 64)
        now = round(m.env.now * 1e9)
        for c in (app, m.root):
            p = psi_show(c.psi, now)
            assert p["some_total_us"] == p["full_total_us"] == 2_000_000


class TestWhichChargesNotice:
    def test_only_a_batch_refill_checks_high(self, scenario):
        """The stock covers 63 charges after each refill: 64 charges over high add one batch."""
        m, t, app = machine(scenario)
        set_usage(app, 101 * MIB)
        for _ in range(64):
            assert page_counter_try_charge(app, 1) is None
            memcg_charge_done(t, app, 1)
        assert t.memcg_nr_pages_over_high == MEMCG_CHARGE_BATCH

    def test_the_margin_ends_before_the_first_batch_over_high(self, scenario):
        """high_margin: the bulk step stops right before the charge whose batch sees it."""
        m, t, app = machine(scenario)
        set_usage(app, 100 * MIB - 10)
        t.memcg_stock[app] = 5  # refills at the 6th, 70th, ... charge; over high from the 11th
        assert high_margin(t, app) == 69
        set_usage(app, 101 * MIB)
        assert high_margin(t, app) == 5

    def test_drain_all_stock_takes_the_subtrees_stocks_only(self, scenario):
        """drain_all_stock: a charge batch's rest is stocked; draining /p takes the stocks of
        /p and /p/app (the next charge takes a new batch) and leaves another memcg's."""
        m, t, app = machine(scenario)
        other = m.memcgs["/p"]
        root = m.root
        for c in (app, other):
            assert page_counter_try_charge(c, 1) is None
            memcg_charge_done(t, c, 1)
        t.memcg_stock[root] = 7  # the root is never charged in batches: a stand-in for any
        assert t.memcg_stock[app] == t.memcg_stock[other] == MEMCG_CHARGE_BATCH - 1
        drain_all_stock(m, other)
        assert app not in t.memcg_stock and other not in t.memcg_stock
        assert t.memcg_stock[root] == 7
        memcg_charge_done(t, app, 1)  # a new batch again
        assert t.memcg_stock[app] == MEMCG_CHARGE_BATCH - 1

    def test_no_high_no_margin(self, scenario):
        m, t, app = machine(scenario, high="max")
        assert high_margin(t, app) is None


WRITER = """
    name: writer
    kernel: "KERNEL"
    duration: 300s
    machine: {nodes: [{memory: 1GiB}]}
    cgroups: {/app: {memory.high: 16MiB}}
    tasks:
      - {name: w, cgroup: /app, ops: [{alloc_anon: {size: 32MiB}}]}
"""


class TestRuns:
    @pytest.mark.parametrize("reference", [False, True])
    def test_a_writer_past_high_is_slowed_not_killed(self, scenario, reference):
        """Both engines: ok, after about two minutes of penalties, with `high` events."""
        res = simulate(scenario(WRITER.replace("KERNEL", "6.18")), reference=reference)
        assert res.tasks["w"].outcome == "ok"
        assert 100 < res.tasks["w"].time < 130
        app = res.counters["memcg"]["/app"]
        assert app["events"]["high"] > 64 and app["events"]["oom_kill"] == 0
        assert app["pressure"]["some_total_us"] > 100e6

    def test_3_15_had_no_memory_high(self, scenario):
        """No throttling and no PSI under the 2014 kernel."""
        res = simulate(scenario(WRITER.replace("KERNEL", "3.15")))
        assert res.tasks["w"].time < 1
        assert res.counters["memcg"]["/app"]["events"]["high"] == 0
        assert res.counters["pressure"]["some_total_us"] == 0

    def test_a_long_syscall_is_throttled_inside_it(self, scenario):
        """fallocate of 64 MiB past high: throttled every two batches within the call."""
        res = simulate(scenario("""
            name: fallocate-over-high
            duration: 30s
            machine: {nodes: [{memory: 1GiB}]}
            cgroups: {/app: {memory.high: 16MiB}}
            tasks:
              - name: f
                cgroup: /app
                ops:
                  - memfd_create: {fd: m}
                  - fallocate: {fd: m, length: 64MiB}
            """))
        assert res.tasks["f"].outcome == "hung" and res.tasks["f"].op_name == "fallocate"
        throttles = [e for e in res.events if e[1] == "memcg_high_throttle"]
        assert len(throttles) > 10 and all(e[5] == 2 * MEMCG_CHARGE_BATCH for e in throttles)


class TestBulkStock:
    @given(st.integers(0, 63), st.lists(st.integers(1, 300), max_size=6))
    def test_a_bulk_step_leaves_the_stock_one_page_charges_leave(self, left, steps):
        """memcg_charge_done_bulk for n charges = n one-page `memcg_charge_done` calls."""
        from simulator.mm.memcontrol import MemCgroup, memcg_charge_done_bulk
        from simulator.mm.task import TaskStruct

        root = MemCgroup(path="/")
        app = MemCgroup(path="/app", parent=root)
        one, bulk = (TaskStruct(pid=i, name=str(i), memcg=app, mm=None) for i in (1, 2))
        one.memcg_stock[app] = bulk.memcg_stock[app] = left
        for n in steps:
            for _ in range(n):
                memcg_charge_done(one, app, 1)
            memcg_charge_done_bulk(bulk, app, n)
            assert one.memcg_stock == bulk.memcg_stock
