"""Every scenario file runs and meets its `expect`: the simulator agrees with the real kernel."""

import csv
from pathlib import Path

import pytest

from simulator.expect import mismatches
from simulator.scenario import load_scenario, scenario_files
from simulator.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent
FILES = scenario_files(ROOT / "scenarios")
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT / "scenarios")) for p in FILES])
def test_scenario_meets_its_expectations(path):
    """`oomsim check` on each file, as a test."""
    sc = load_scenario(path)
    run = simulate(sc)
    assert mismatches(sc, run) == []


def test_every_measured_row_has_a_scenario():
    """docs/kernel-outcomes.md rows 1..18 each have a scenario file with an expect block."""
    rows = {int(p.name[3:5]) for p in FILES if p.name.startswith("row")}
    assert rows == set(range(1, 19))
    assert all(load_scenario(p).expect for p in FILES if p.name.startswith("row"))


def golden_rows(path: Path) -> list[dict[str, str]]:
    sc = load_scenario(path)
    run = simulate(sc)
    return [{"task": n, "outcome": o.outcome, "errno": o.errno or "", "op": str(o.op),
             "page": "" if o.page is None else str(o.page), "time": f"{o.time:.9f}"}
            for n, o in run.tasks.items()]


GOLDEN_CASES = ["sealed-holes-memcg", "row13-tmpfs-touch-sigbus", "global-oom-shared-memfd",
                "sealed-holes-3.15"]


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden_seeded_runs(name):
    """Seeded runs reproduce their stored outcomes exactly (page and time included)."""
    rows = golden_rows(ROOT / "scenarios" / f"{name}.yaml")
    with open(GOLDEN / f"{name}.csv", newline="") as f:
        assert list(csv.DictReader(f)) == rows
