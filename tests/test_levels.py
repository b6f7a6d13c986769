"""Level records: memcg usage, node free pages, Committed_AS and swap in use, as they change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import simpy

from simulator.mm.levels import (
    COMMITTED_AS,
    MEMCG_SWAP,
    MEMCG_USAGE,
    NODE_FREE,
    SWAP_USED,
    LevelLog,
)
from simulator.scenario import load_scenario
from simulator.simulation import Run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
CORE = SCENARIOS / "sealed-holes-memcg.yaml"


def series(records: list[tuple[Any, ...]], kind: str, key: Any) -> list[tuple[float, int]]:
    """One counter's (time, value) points, in time order."""
    return sorted(((t, v) for t, k, key_, v in records if k == kind and key_ == key),
                  key=lambda p: p[0])


def test_records_end_at_the_final_counters():
    """Each counter's last record is its value at the end of the run, uncharges included."""
    run = Run(load_scenario(CORE))
    run.run()
    m = run.m
    recs = m.levels.records
    assert [r[0] for r in recs] == sorted(r[0] for r in recs)
    for c in m.memcgs.values():
        s = series(recs, MEMCG_USAGE, c.path)
        assert (s[-1][1] if s else 0) == c.usage
    for n in m.nodes:
        assert series(recs, NODE_FREE, n.nid)[-1][1] == n.free
    assert series(recs, COMMITTED_AS, "")[-1][1] == m.overcommit.committed_as
    assert series(recs, SWAP_USED, "")[-1][1] == m.swap.inuse


def test_memcg_swap_is_recorded_as_it_is_charged_and_freed():
    """memory.swap.current of each memcg: MADV_PAGEOUT charges /producer's swap, the consumer's
    swap-ins free it; the records reach its peak and end at its final value."""
    run = Run(load_scenario(SCENARIOS / "swapin-read-kills-producer.yaml"))
    run.run()
    recs = run.m.levels.records
    for c in run.m.memcgs.values():
        s = series(recs, MEMCG_SWAP, c.path)
        assert (s[-1][1] if s else 0) == c.swap_usage, c.path
        assert max((v for _, v in s), default=0) == c.swap_watermark, c.path
    assert run.m.memcgs["/producer"].swap_watermark > 0


def test_one_record_per_change_not_per_page():
    """The core scenario's bulk walk charges ~16,000 pages in two steps: a handful of records."""
    run = Run(load_scenario(CORE))
    run.run()
    app = series(run.m.levels.records, MEMCG_USAGE, "/app")
    assert len(app) < 12
    assert max(v for _, v in app) == run.m.memcgs["/app"].max
    # The victim's exit uncharged everything but its page tables, which go one RCU grace
    # period later (`tlb_remove_table`), and the slab byte stock, which `refill_obj_stock`
    # leaves holding at most one page (it uncharges only when it holds more than a page).
    assert 0 < app[-2][1] < 64 and app[-1][1] <= 1
    assert app[-1][0] - app[-2][0] == pytest.approx(run.m.costs.pgtable_rcu)


def test_bulk_steps_show_usage_rising_through_the_walk():
    """The walker ramps each bulk step's changes over the step's time: usage rises through the
    walk, reaches the limit at the kill, and falls to 0 at the victim's exit."""
    run = Run(load_scenario(CORE))
    m = run.m
    result = run.run()
    kill = result.oom_kills[0]["time"]
    limit = m.memcgs["/app"].max
    app = series(m.levels.records, MEMCG_USAGE, "/app")
    # The walk starts a few microseconds in, far below the limit, and is one bulk step (the
    # sender's exit cannot interact with it, so it does not cut it): the step's record at its
    # start and the one at the OOM kill (about 42 ms) are joined by a line that rises all along.
    start = [(t, v) for t, v in app if 0 < t < kill][-1]
    assert start[0] < 2e-3 and start[1] < limit // 10
    assert (kill, limit) in app
    # The victim's exit uncharges all but its page tables, which go a grace period later, and
    # at most one page of slab byte stock (`refill_obj_stock`).
    after = [v for t, v in app if t > kill]
    assert len(after) == 2 and 0 < after[0] < 64 and after[1] <= 1
    values = [v for _, v in app if _ <= kill]
    assert values == sorted(values)


def test_same_time_changes_overwrite_and_unchanged_values_are_skipped():
    """At one instant a counter keeps one record, its last value; no record repeats a value."""
    env = simpy.Environment()
    lv = LevelLog(env)
    lv.record(NODE_FREE, 0, 100)
    lv.record(NODE_FREE, 0, 90)
    lv.record(NODE_FREE, 1, 50)
    env.run(until=1)
    lv.record(NODE_FREE, 0, 90)
    lv.record(NODE_FREE, 0, 80)
    assert lv.records == [(0, NODE_FREE, 0, 90), (0, NODE_FREE, 1, 50), (1, NODE_FREE, 0, 80)]


def test_ramp_spreads_a_step_to_its_end():
    """A marked step's change is stamped at its start with the old value and at its end with
    the new one; the next step at that end ramps on from there."""
    env = simpy.Environment()
    lv = LevelLog(env)
    lv.record(MEMCG_USAGE, "/a", 10)
    env.run(until=1)
    lv.mark()
    lv.record(MEMCG_USAGE, "/a", 50)
    lv.ramp(3)
    env.run(until=3)
    lv.mark()
    lv.record(MEMCG_USAGE, "/a", 70)
    lv.ramp(4)
    assert series(lv.records, MEMCG_USAGE, "/a") == [(0, 10), (1, 10), (3, 50), (3, 50), (4, 70)]


def test_a_change_during_a_ramp_moves_its_end():
    """Another task's uncharge while a step's ramp is in flight lands at the ramp's end."""
    env = simpy.Environment()
    lv = LevelLog(env)
    lv.record(MEMCG_USAGE, "/", 10)
    lv.mark()
    lv.record(MEMCG_USAGE, "/", 50)
    lv.ramp(2)
    env.run(until=1)
    lv.record(MEMCG_USAGE, "/", 40)
    assert series(lv.records, MEMCG_USAGE, "/") == [(0, 10), (0, 10), (2, 40)]


@pytest.mark.parametrize("name", ["sealed-holes-memcg.yaml", "pressure/s8-written-shmem-swapped.yaml",
                                  "numa-bind-oom.yaml", "memcg-high-throttle.yaml"])
def test_a_run_without_levels_is_the_same_run(name):
    """`levels=False` (`oomsim run` without --out or --trace) keeps no level records and
    changes nothing else: the same outcomes, kills, counters and event log."""
    path = SCENARIOS / name
    full = Run(load_scenario(path)).run()
    bare = Run(load_scenario(path), levels=False).run()
    assert full.levels and not bare.levels
    assert bare.tasks == full.tasks
    assert bare.oom_kills == full.oom_kills
    assert bare.counters == full.counters
    assert bare.events == full.events
