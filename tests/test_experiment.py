"""Experiments: distributions, seeding and common random numbers, grids, count and repeat, and
sweeps that lose nothing when killed, give the same rows with any number of jobs, and on Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.experiment.draws import draw, poisson_starts
from simulator.experiment.grid import check_path, set_path
from simulator.experiment.instantiate import field_rng, has_draws, instantiate, may_have_draws
from simulator.experiment.plan import plan_sweep
from simulator.experiment.sweep import run_sweep
from simulator.scenario import load_data, parse_scenario
from simulator.scenario_errors import ScenarioError

MiB = 1 << 20
N = 20_000

SWEEP = """
name: sw
seed: 3
machine: {{nodes: [{{memory: 4GiB}}]}}
cgroups:
  /app: {{memory.max: 64MiB}}
tasks:
  - name: sender
    ops:
      - memfd_create: {{fd: buf, flags: [allow_sealing]}}
      - ftruncate: {{fd: buf, size: {{uniform: [32MiB, 96MiB]}}}}
      - add_seals: {{fd: buf, seals: [write, shrink, grow]}}
  - name: reader
    cgroup: /app
    start: {{after: sender}}
    ops:
      - mmap: {{fd: buf, map: m, prot: [read], flags: [shared]}}
      - touch: {{map: m, access: read}}
sweep:
  runs: {runs}
  grid: {{cgroups./app.memory.max: [48MiB, 80MiB]}}
  policies: [none, zero_page]
"""


def draws(spec, n=N, seed=1):
    rng = np.random.default_rng(seed)
    return np.array([draw(spec, rng) for _ in range(n)], dtype=float)


class TestDistributions:
    def test_uniform_sizes_are_whole_pages_spread_evenly(self):
        """uniform: [32MiB, 96MiB] draws whole pages with the uniform's mean and spread."""
        x = draws({"uniform": ["32MiB", "96MiB"]})
        assert np.all(x % 4096 == 0) and x.min() >= 32 * MiB and x.max() <= 96 * MiB
        assert x.mean() == pytest.approx(64 * MiB, rel=0.01)
        assert x.std() == pytest.approx(64 * MiB / np.sqrt(12), rel=0.02)

    def test_uniform_integers_include_both_ends(self):
        """uniform over integers is a whole number from low to high inclusive."""
        x = draws({"uniform": [1, 3]}, n=3000)
        assert set(x) == {1, 2, 3}

    def test_normal_is_truncated_at_zero(self):
        """normal {mean, sd} has numpy's mean and sd far from 0, and is never negative."""
        x = draws({"normal": {"mean": "64MiB", "sd": "8MiB"}})
        assert x.mean() == pytest.approx(64 * MiB, rel=0.01)
        assert x.std() == pytest.approx(8 * MiB, rel=0.03)
        assert draws({"normal": {"mean": 1, "sd": 5}}, n=2000).min() >= 0

    def test_lognormal_has_its_median(self):
        """lognormal {median, sigma}: median x exp(sigma x N(0,1))."""
        x = draws({"lognormal": {"median": "64MiB", "sigma": 0.5}})
        assert np.median(x) == pytest.approx(64 * MiB, rel=0.02)
        assert np.std(np.log(x)) == pytest.approx(0.5, rel=0.03)

    def test_exponential_durations_have_their_mean(self):
        """exponential {mean: 2s} draws seconds with mean 2 and sd 2."""
        x = draws({"exponential": {"mean": "2s"}})
        assert x.mean() == pytest.approx(2.0, rel=0.03) and x.std() == pytest.approx(2.0, rel=0.05)

    def test_pareto_starts_at_its_scale(self):
        """pareto {scale, shape}: never below scale, mean scale x shape / (shape - 1)."""
        x = draws({"pareto": {"scale": "1MiB", "shape": 3}})
        assert x.min() >= MiB - 4096
        assert x.mean() == pytest.approx(1.5 * MiB, rel=0.03)

    def test_choice_picks_each_item_equally(self):
        """choice: [4KiB, 2MiB] returns the items as written, about half each."""
        rng = np.random.default_rng(0)
        got = [draw({"choice": ["4KiB", "2MiB"]}, rng) for _ in range(4000)]
        assert set(got) == {"4KiB", "2MiB"}
        assert got.count("4KiB") / 4000 == pytest.approx(0.5, abs=0.03)

    def test_poisson_starts_have_exponential_gaps(self):
        """poisson {rate: 2/s}: increasing starts, gaps of mean 0.5 s."""
        s = np.array(poisson_starts({"poisson": {"rate": "2/s"}}, N, np.random.default_rng(1)))
        assert np.all(np.diff(s) > 0)
        assert np.diff(s).mean() == pytest.approx(0.5, rel=0.03)

    def test_bad_parameters_are_input_errors(self):
        """Mixed units, a reversed range or a misplaced poisson are errors that say so."""
        rng = np.random.default_rng(0)
        for spec in ({"uniform": ["1s", "2MiB"]}, {"uniform": ["2MiB", "1MiB"]},
                     {"poisson": {"rate": "1/s"}}, {"normal": {"mean": 1}}):
            with pytest.raises(ScenarioError):
                draw(spec, rng)


class TestSeeding:
    def test_a_run_reproduces_alone(self):
        """The same seed and run index draw the same workload; another run draws another."""
        raw = load_data(SWEEP.format(runs=3))
        a, da = instantiate(raw, 3, 5)
        b, db = instantiate(raw, 3, 5)
        c, dc = instantiate(raw, 3, 6)
        assert a == b and da == db and da != dc

    def test_fields_draw_independently(self):
        """A field's draws depend on its path alone, not on the fields drawn before it."""
        assert field_rng(1, 0, "x").random() == field_rng(1, 0, "x").random()
        assert field_rng(1, 0, "x").random() != field_rng(1, 0, "y").random()

    def test_every_drawn_value_is_recorded(self):
        """instantiate returns each drawn value by its path."""
        _, d = instantiate(load_data(SWEEP.format(runs=1)), 3, 0)
        assert list(d) == ["tasks.sender.ops.1.ftruncate.size"]


class TestCountAndRepeat:
    TEXT = """
name: c
tasks:
  - name: w
    count: {uniform: [2, 4]}
    start: {poisson: {rate: 10/s}}
    ops:
      - repeat: {times: 3, ops: [{sleep: {exponential: {mean: 1s}}}, {sleep: 1ms}]}
expect: {w: ok}
"""

    def test_count_makes_named_copies_with_their_own_draws(self):
        """count: N makes NAME.0 .. NAME.N-1, each with its start and its own draws, and the
        expectation of NAME holds for each copy."""
        sc = parse_scenario(self.TEXT)
        names = [t.name for t in sc.tasks]
        assert names == [f"w.{i}" for i in range(len(names))] and 2 <= len(names) <= 4
        assert set(sc.expect) == set(names)
        sleeps = {t.name: float(t.ops[0].sleep) for t in sc.tasks}
        assert len(set(sleeps.values())) == len(names)

    def test_repeat_unrolls_its_ops(self):
        """repeat: {times: 3, ops: [a, b]} is a, b, a, b, a, b."""
        sc = parse_scenario(self.TEXT)
        assert len(sc.tasks[0].ops) == 6

    def test_touch_count_touches_that_many_pages(self):
        """touch with count: 100 of a random pattern faults 100 distinct pages."""
        from simulator.simulation import simulate

        sc = parse_scenario("""
name: t
tasks:
  - name: a
    ops:
      - memfd_create: {fd: f}
      - ftruncate: {fd: f, size: 64MiB}
      - mmap: {fd: f, map: m, prot: [read], flags: [shared]}
      - touch: {map: m, access: read, pattern: random, count: 100}
""")
        r = simulate(sc)
        assert r.counters["memcg"]["/"]["peak_shmem"] == 100


class TestGrid:
    def test_paths_match_dotted_keys_whole_and_tasks_by_name(self):
        """cgroups./app.memory.max and tasks.reader.ops.1.touch.pattern name one value each."""
        raw = load_data(SWEEP.format(runs=1))
        out = set_path(raw, "cgroups./app.memory.max", "32MiB")
        out = set_path(out, "tasks.reader.ops.1.touch.pattern", "random")
        assert out["cgroups"]["/app"]["memory.max"] == "32MiB"
        assert out["tasks"][1]["ops"][1]["touch"]["pattern"] == "random"
        assert raw["cgroups"]["/app"]["memory.max"] == "64MiB"  # the original is untouched

    def test_a_bad_path_names_the_nearest_key(self):
        """A path that leads nowhere is an input error naming it and the nearest valid key."""
        raw = load_data(SWEEP.format(runs=1))
        with pytest.raises(ScenarioError, match="'taks'.*nearest key is 'tasks'"):
            check_path(raw, "taks.reader.ops.1.touch.pattern")
        with pytest.raises(ScenarioError, match="'raeder'.*nearest is 'reader'"):
            check_path(raw, "tasks.raeder.ops.1.touch.pattern")

    def test_the_plan_is_grid_x_policies_x_kernels_x_runs(self):
        """Two values x two policies x one kernel x 30 runs: 120 runs, chunked."""
        plan = plan_sweep(load_data(SWEEP.format(runs=30)))
        assert plan.total_runs == 120 and len(plan.cells) == 2
        assert len({c.key for c in plan.chunks}) == len(plan.chunks)


def sweep_rows(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out / "runs")
    return df.sort_values(["cgroups./app.memory.max", "policy", "run", "task"]).reset_index(
        drop=True)


@pytest.fixture
def sweep_file(tmp_path):
    def make(runs: int) -> Path:
        p = tmp_path / "sweep.yaml"
        p.write_text(SWEEP.format(runs=runs))
        return p
    return make


class TestSweep:
    def test_rows_columns_and_common_random_numbers(self, sweep_file, tmp_path):
        """One row per task per run with the outcome, grid, draws and memcg peak; run i drew
        the same file size in every cell and under every policy (paired comparisons)."""
        run_sweep(sweep_file(10), tmp_path / "out", jobs=1)
        df = sweep_rows(tmp_path / "out")
        assert len(df) == 2 * 2 * 10 * 2
        for col in ("policy", "kernel", "run", "seed", "task", "outcome", "errno", "op",
                    "op_name", "page", "time", "reason", "memcg_peak_pages", "draws",
                    "cgroups./app.memory.max"):
            assert col in df.columns
        sizes = df[df.task == "sender"].groupby("run")["draws"].nunique()
        assert (sizes == 1).all()
        readers = df[df.task == "reader"]
        assert set(readers[readers.policy == "zero_page"].outcome) == {"ok"}
        meta = json.loads((tmp_path / "out" / "sweep.json").read_text())
        assert meta["plan"]["total_runs"] == 40 and "numpy" in meta["versions"]

    def test_same_rows_with_one_and_two_jobs(self, sweep_file, tmp_path):
        """The rows do not depend on how many processes ran them."""
        f = sweep_file(60)
        run_sweep(f, tmp_path / "one", jobs=1)
        run_sweep(f, tmp_path / "two", jobs=2)
        pd.testing.assert_frame_equal(sweep_rows(tmp_path / "one"), sweep_rows(tmp_path / "two"))

    def test_a_run_that_raises_is_an_error_row(self, tmp_path):
        """A drawn workload the loader refuses is recorded with its error; the sweep goes on."""
        p = tmp_path / "bad.yaml"
        p.write_text(SWEEP.format(runs=2).replace("{uniform: [32MiB, 96MiB]}",
                                                  "{choice: [-1, -2]}"))
        run_sweep(p, tmp_path / "out", jobs=1)
        df = pd.read_parquet(tmp_path / "out" / "runs")
        assert len(df) == 2 * 2 * 2  # one error row per run, every run recorded
        assert df.error.str.contains("ScenarioError").all() and df.task.isna().all()

    def test_killed_and_restarted_it_loses_nothing_and_repeats_nothing(self, sweep_file, tmp_path):
        """A sweep killed with SIGKILL half way, started again with the same command, ends with
        exactly the rows of a sweep that was never interrupted."""
        f = sweep_file(500)
        cmd = [sys.executable, "-m", "simulator.cli", "sweep", str(f), "--out",
               str(tmp_path / "killed"), "--jobs", "1"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        runs = tmp_path / "killed" / "runs"
        deadline = time.time() + 60
        while time.time() < deadline and len(list(runs.glob("part-*.parquet"))) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        parts = len(list(runs.glob("part-*.parquet")))
        assert 3 <= parts < len(plan_sweep(load_data(f.read_text())).chunks)
        subprocess.run(cmd, env=env, check=True, timeout=300, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        run_sweep(f, tmp_path / "whole", jobs=2)
        a, b = sweep_rows(tmp_path / "killed"), sweep_rows(tmp_path / "whole")
        assert not a.duplicated(["cgroups./app.memory.max", "policy", "run", "task"]).any()
        pd.testing.assert_frame_equal(a, b)

    def test_on_a_dask_cluster_on_loopback(self, sweep_file, tmp_path):
        """The same rows from a Dask LocalCluster (started here, on 127.0.0.1)."""
        distributed = pytest.importorskip("distributed")
        f = sweep_file(30)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster:
            run_sweep(f, tmp_path / "dask", scheduler=cluster.scheduler_address)
        run_sweep(f, tmp_path / "local", jobs=1)
        pd.testing.assert_frame_equal(sweep_rows(tmp_path / "dask"), sweep_rows(tmp_path / "local"))


def test_oomsim_run_reports_what_it_drew(tmp_path):
    """`oomsim run --json` of a scenario with distributions lists each drawn value by path."""
    from typer.testing import CliRunner

    from simulator.cli import app

    p = tmp_path / "d.yaml"
    p.write_text(SWEEP.format(runs=1))
    res = CliRunner().invoke(app, ["run", str(p), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    size = doc["draws"]["tasks.sender.ops.1.ftruncate.size"]
    assert 32 * MiB <= size <= 96 * MiB and size % 4096 == 0


def test_the_text_precheck_never_hides_a_draw():
    """`may_have_draws` skips the walk only where the text cannot hold a draw: every scenario
    file with draws passes it, and a file without the words is one workload."""
    files = sorted(Path(__file__).resolve().parent.parent.glob("scenarios/**/*.yaml"))
    with_draws = 0
    for f in files:
        text = f.read_text()
        if has_draws(load_data(text, str(f))):
            with_draws += 1
            assert may_have_draws(text), f
    assert with_draws >= 3
    plain = "tasks: [{name: a, ops: [{sleep: 1s}]}]"
    assert not may_have_draws(plain)
    assert may_have_draws('tasks: [{name: a, count: 2, ops: [{sleep: 1s}]}]')
    assert may_have_draws('{"tasks": [{"name": "a", "\\u0063ount": 2}]}')  # an escape
