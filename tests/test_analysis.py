import numpy as np
import pandas as pd
import pytest

from analysis import failure_rates, outcome_labels, plot_memcg_usage, plot_outcome_rates
from simulator.policies import default_specs
from simulator.results import levels_frame, oom_kills_frame
from simulator.scenario import load_scenario
from simulator.simulation import simulate
from simulator.sweep import sweep, sweep_frame


@pytest.fixture
def tasks():
    """A seeded, hand-made tasks frame: two policies, four runs each."""
    rows = []
    for seed in range(4):
        rows.append({"policy": "none", "kernel": "6.18", "seed": seed, "task": "reader",
                     "outcome": "oom_killed" if seed < 3 else "ok", "errno": None,
                     "op_name": "touch" if seed < 3 else None, "time": 0.04})
        rows.append({"policy": "mlock", "kernel": "3.15", "seed": seed, "task": "reader",
                     "outcome": "error", "errno": "EAGAIN", "op_name": "mlock", "time": 0.03})
    return pd.DataFrame(rows)


def test_labels_say_where_it_struck(tasks):
    """oom_killed@touch, error:EAGAIN@mlock, ok."""
    assert set(outcome_labels(tasks)) == {"oom_killed@touch", "ok", "error:EAGAIN@mlock"}


def test_failure_rates_sum_to_one_per_group(tasks):
    """Each group's rates add up to 1; failures are marked."""
    r = failure_rates(tasks)
    assert r.groupby(["policy", "kernel", "task"])["rate"].sum().tolist() == [1.0, 1.0]
    none = r[r.policy == "none"].set_index("label")
    assert none.loc["oom_killed@touch", "rate"] == 0.75 and bool(none.loc["oom_killed@touch", "failed"])
    assert not bool(none.loc["ok", "failed"])


def test_plot_outcome_rates_returns_the_axes(tasks):
    """One bar per policy, stacked to 1."""
    ax = plot_outcome_rates(tasks, task="reader")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mlock", "none"]
    heights = {}
    for p in ax.patches:
        heights[p.get_x()] = heights.get(p.get_x(), 0) + p.get_height()
    assert all(h == pytest.approx(1.0) for h in heights.values())


def test_plot_memcg_usage_from_a_real_run():
    """Usage rises through the reader's walk to the 64 MiB limit, is marked at the kill, and
    drops when the victim exits: not a jump to the limit at the walk's first step."""
    sc = load_scenario("scenarios/sealed-holes-memcg.yaml")
    run = simulate(sc)
    levels = levels_frame(sc.name, [run])
    ax = plot_memcg_usage(levels, "/app", oom_kills=oom_kills_frame(sc.name, [run]))
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "/app"]
    x, y = line.get_xdata(), line.get_ydata()
    kill_ms = run.oom_kills[0]["time"] * 1e3
    assert max(y) == pytest.approx(64.0)
    assert 20 < np.interp(kill_ms / 2, x, y) < 44  # half way through the walk: half full
    assert y[-1] <= 4 / 1024  # all but the slab byte stock (refill_obj_stock keeps a page)
    (mark,) = [ln for ln in ax.get_lines() if ln.get_label() == "OOM kill"]
    assert mark.get_xdata()[0] == pytest.approx(kill_ms)


def test_sweep_covers_every_policy(tmp_path):
    """A sweep runs each policy (its example spec); with mlock on 3.15 the reader fails early
    with EAGAIN."""
    sc = load_scenario("scenarios/sealed-holes-memcg.yaml")
    df = sweep_frame(sc, sweep(sc, default_specs(), ["3.15"], [1]))
    got = df[df.task == "reader"].set_index("policy")
    assert set(got.index) == set(default_specs())
    assert (got.loc["mlock", "outcome"], got.loc["mlock", "errno"]) == ("error", "EAGAIN")
    assert got.loc["zero_page", "outcome"] == "ok"
