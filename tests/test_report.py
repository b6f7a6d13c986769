"""`oomsim report DIR` on a real sweep: its tables agree with a hand count of the runs, its
figures show what they say (axes, a line per policy, legends outside), its HTML stands alone."""

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from analysis.plots import plot_outcome_rates
from analysis.stats import mcnemar_exact_p, wilson_interval
from simulator.cli import app
from simulator.experiment.report import build_report, load_sweep
from simulator.experiment.sweep import FIXED_COLUMNS, run_sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "compare-mitigations.yaml"
GRID = "cgroups./app.memory.max"
POLICIES = yaml.safe_load(SCENARIO.read_text())["sweep"]["policies"]
FAILED = {"oom_killed", "sigbus", "error", "panic", "sigsegv", "killed"}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """compare-mitigations.yaml swept for real (8 runs per cell), then `oomsim report`."""
    out = tmp_path_factory.mktemp("sweep")
    run_sweep(SCENARIO, out, jobs=1, runs=8)
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def hand_failed(row) -> bool:
    return row["outcome"] in FAILED or (row["outcome"] == "hung"
                                        and row["reason"] not in ("the duration ran out",
                                                                  "waiting for its start time"))


def test_files_written(swept):
    out, printed = swept
    for f in ("summary.csv", "paired.csv", "failures.csv", "report.html"):
        assert (out / f).is_file(), f
    names = {p.name for p in (out / "figures").iterdir()}
    for stem in ("failure-vs-cgroups-app-memory-max", "outcome-shares", "timeline"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left
    assert "failure of reader" in printed and "zero_page" in printed


def test_summary_matches_a_hand_count(swept):
    """Each outcome's count and rate, and its Wilson interval, from the rows themselves."""
    out, _ = swept
    s = pd.read_csv(out / "summary.csv")
    assert list(s.columns[:10]) == [GRID, "policy", "kernel", "task", "outcome", "runs", "count",
                                    "rate", "ci_low", "ci_high"]
    runs = pd.read_parquet(out / "runs")
    sel = runs[(runs[GRID] == "96MiB") & (runs.policy == "mlock") & (runs.task == "reader")]
    by_hand = Counter(("ok" if r.outcome == "ok" else f"{r.outcome}@{r.op_name}")
                      for r in sel.itertuples())
    got = s[(s[GRID] == "96MiB") & (s.policy == "mlock") & (s.task == "reader")]
    assert dict(zip(got.outcome, got["count"], strict=True)) == dict(by_hand)
    assert (got.runs == 8).all()
    row = got.iloc[0]
    assert row.rate == pytest.approx(row["count"] / 8)
    assert (row.ci_low, row.ci_high) == pytest.approx(wilson_interval(int(row["count"]), 8))
    mit = got[got.outcome == "oom_killed@mlock"]
    assert len(mit) == 0 or (mit.struck == "mitigation").all()


def test_paired_matches_a_hand_count(swept):
    """Runs matched one by one (same cell and run): both failed, only one failed; McNemar's p
    of the discordant counts; `none` is the baseline."""
    out, _ = swept
    p = pd.read_csv(out / "paired.csv")
    assert list(p.columns) == [GRID, "policy", "baseline", "kernel", "task", "runs", "fail_both",
                               "fail_policy_only", "fail_baseline_only", "rate_diff",
                               "diff_ci_low", "diff_ci_high", "mcnemar_p"]
    assert set(p.baseline) == {"none"} and set(p.policy) == set(POLICIES) - {"none"}
    runs = pd.read_parquet(out / "runs")
    for cell in ("64MiB", "128MiB"):
        r = runs[(runs[GRID] == cell) & (runs.task == "reader")]
        base = {x["run"]: hand_failed(x) for _, x in r[r.policy == "none"].iterrows()}
        zp = {x["run"]: hand_failed(x) for _, x in r[r.policy == "zero_page"].iterrows()}
        both = sum(base[i] and zp[i] for i in base)
        only_p = sum(zp[i] and not base[i] for i in base)
        only_b = sum(base[i] and not zp[i] for i in base)
        row = p[(p[GRID] == cell) & (p.policy == "zero_page") & (p.task == "reader")].iloc[0]
        assert (row.runs, row.fail_both, row.fail_policy_only, row.fail_baseline_only) == (
            8, both, only_p, only_b)
        assert row.rate_diff == pytest.approx((only_p - only_b) / 8)
        assert row.diff_ci_low <= row.rate_diff <= row.diff_ci_high
        assert row.mcnemar_p == pytest.approx(mcnemar_exact_p(only_p, only_b))
    # the core result: ZERO_PAGE for sealed holes never fails where `none` does at 64 MiB
    row = p[(p[GRID] == "64MiB") & (p.policy == "zero_page") & (p.task == "reader")].iloc[0]
    assert row.fail_policy_only == 0 and row.fail_baseline_only > 0 and row.diff_ci_high < 0


def test_baseline_option(swept, tmp_path):
    """--baseline mlock compares every other policy with mlock."""
    out, _ = swept
    rep = build_report(load_sweep(out), baseline="mlock")
    assert set(rep.paired.baseline) == {"mlock"} and "mlock" not in set(rep.paired.policy)


def outside(fig, ax) -> bool:
    """The Axes' legend lies to the right of its plotting area, covering none of it."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return ax.get_legend().get_window_extent(r).x0 >= ax.get_window_extent(r).x1


@pytest.fixture(scope="module")
def report(swept):
    return build_report(load_sweep(swept[0]))


def test_failure_rate_figure(report):
    """Axes named after the grid path and the failure rate; one line per policy (their
    labels), each with a band; the legend outside."""
    fig = report.figures["failure-vs-cgroups-app-memory-max"]
    ax = fig.axes[0]
    assert ax.get_xlabel() == GRID and "failure rate of reader" in ax.get_ylabel()
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert sorted(ln.get_label() for ln in lines) == sorted(POLICIES)
    assert len(ax.collections) == len(POLICIES)  # the bands
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64MiB", "96MiB", "128MiB", "160MiB"]
    zp = next(ln for ln in lines if ln.get_label() == "zero_page")
    assert list(zp.get_ydata()) == [0, 0, 0, 0]
    assert outside(fig, ax)


def test_outcome_share_figure(report):
    """A bar per policy in each cell, stacked to 1; failures in the mitigation's own call are
    told apart from those in the parse; one legend, outside."""
    fig = report.figures["outcome-shares"]
    axes = fig.axes
    assert len(axes) == 4 and all(ax.get_ylabel() in ("", "share of runs (reader)") for ax in axes)
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == sorted(POLICIES)
        heights: dict[float, float] = {}
        for patch in ax.patches:
            heights[round(patch.get_x(), 6)] = heights.get(round(patch.get_x(), 6), 0) + \
                patch.get_height()
        assert all(h == pytest.approx(1.0) for h in heights.values())
    legend = axes[-1].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert "oom_killed@touch (in the parse)" in texts
    assert "oom_killed@mlock (in the mitigation)" in texts
    assert "oom_killed@madvise (in the mitigation)" in texts
    assert all(ax.get_legend() is None for ax in axes[:-1])
    assert outside(fig, axes[-1])


def test_timeline_marks_kills_on_their_own_memcg(report):
    """The chosen run (the baseline's first failure) simulated again: /app's usage under its
    dashed 64 MiB limit, each kill an X on /app's line (the victims' memcg), node usage below."""
    fig = report.figures["timeline"]
    top, bottom = fig.axes
    assert top.get_ylabel() == "memcg usage (MiB)" and bottom.get_xlabel() == "simulated time (ms)"
    labels = [ln.get_label() for ln in top.get_lines()]
    assert "/app" in labels and "/app memory.max" in labels and "/" not in labels
    app_line = next(ln for ln in top.get_lines() if ln.get_label() == "/app")
    limit = next(ln for ln in top.get_lines() if ln.get_label() == "/app memory.max")
    assert limit.get_ydata()[0] == pytest.approx(64.0)
    kills = [ln for ln in top.get_lines() if ln.get_label().startswith("OOM kill")]
    assert {k.get_label() for k in kills} <= {"OOM kill: reader", "OOM kill: sidecar"} and kills
    for k in kills:
        assert k.get_color() == app_line.get_color()
        assert k.get_ydata()[0] <= 64.0 + 1e-6
    assert report.choice.policy == "none" and report.choice.cell == 0
    assert [ln.get_label() for ln in bottom.get_lines()] == ["node 0 in use", "node 0 managed"]
    assert outside(fig, top)


def test_html_stands_alone(swept):
    """report.html holds the tables, the scenario text and every figure as a data URL: no
    file or address outside it."""
    out, _ = swept
    page = (out / "report.html").read_text()
    assert page.count("<table") == 3
    assert "fail_policy_only" in page and "ci_high" in page
    assert "name: compare-mitigations" in page
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)) == 3
    assert not re.search(r'(src|href)="(?!data:)', page)


def test_not_a_sweep_directory(tmp_path):
    """A directory without sweep.json: one clear message, exit 2, nothing written."""
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2
    assert "not a sweep's directory" in res.output and "oomsim sweep" in res.output
    assert list(tmp_path.iterdir()) == []


def test_bad_baseline_and_run(swept):
    out, _ = swept
    res = CliRunner().invoke(app, ["report", str(out), "--baseline", "nope"])
    assert res.exit_code == 2 and "--baseline 'nope'" in res.output
    res = CliRunner().invoke(app, ["report", str(out), "--run", "cell=9"])
    assert res.exit_code == 2 and "--run cell=9" in res.output


def test_run_option_picks_the_timeline(swept):
    """--run policy=zero_page,cell=3,run=2: that run is the one drawn."""
    rep = build_report(load_sweep(swept[0]), run_spec="policy=zero_page,cell=3,run=2")
    assert (rep.choice.policy, rep.choice.cell, rep.choice.run) == ("zero_page", 3, 2)
    top = rep.figures["timeline"].axes[0]
    assert not [ln for ln in top.get_lines() if ln.get_label().startswith("OOM kill")]


def test_plot_outcome_rates_legend_is_outside_and_labels_have_shades():
    """oom_killed@mlock and oom_killed@touch are two reds, and the legend covers no bar."""
    import matplotlib.pyplot as plt

    rows = [{"policy": p, "kernel": "6.18", "task": "reader", "outcome": "oom_killed",
             "errno": None, "op_name": op, "reason": None}
            for p, op in (("none", "touch"), ("mlock", "mlock"))]
    rows += [{"policy": "none", "kernel": "6.18", "task": "reader", "outcome": "ok",
              "errno": None, "op_name": None, "reason": None}]
    fig, ax = plt.subplots()
    plot_outcome_rates(pd.DataFrame(rows), task="reader", ax=ax)
    colors = {c.get_label(): c.patches[0].get_facecolor() for c in ax.containers}
    assert colors["oom_killed@mlock"] != colors["oom_killed@touch"]
    assert outside(fig, ax)
    plt.close(fig)


def test_new_sweep_columns_are_documented():
    """Every column of a sweep's rows is in docs/output.md's runs/ table (`outcome` ...
    `reason` as one row: the fields of tasks.parquet)."""
    from simulator.experiment.work import ROW_FIELDS

    doc = (ROOT / "docs" / "output.md").read_text()
    part = doc.split("## runs/ and sweep.json")[1].split("\n## ")[0]
    documented = {name for line in part.splitlines() if line.startswith("| `")
                  for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert "`outcome` ... `reason`" in part
    missing = [name for name, _ in FIXED_COLUMNS if name not in documented | set(ROW_FIELDS)]
    assert missing == []


@pytest.mark.parametrize(("policy", "mitigation"), [
    ("none", set()), ("zero_page", set()), ("mlock", {1}), ("populate", {1}),
    ("map_populate", {0})])
def test_program_parts_find_the_mitigations_ops(policy, mitigation):
    """The ops a policy added (mlock, madvise after the mmap) or changed (the mmap given
    MAP_POPULATE) are the mitigation's; the reader's touch is its parse."""
    from simulator.experiment.work import program_parts
    from simulator.policies import POLICIES
    from simulator.scenario import load_scenario

    base = load_scenario(ROOT / "scenarios" / "sealed-holes-memcg.yaml")
    parts = program_parts(base, POLICIES[policy](base))
    assert parts["reader"].mitigation == mitigation
    assert parts["reader"].parse == (2 if mitigation == {1} else 1)
    assert parts["sender"].mitigation == set() and parts["sender"].parse is None
