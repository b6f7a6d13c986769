"""CONFIG_DEBUG_VM: the invariants checked where the state is consistent, and after a panic."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from simulator.mm import debug
from simulator.mm.debug import check_invariants, vm_debug_check
from simulator.scenario import load_scenario
from simulator.simulation import Run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_off_by_default_and_cheap():
    """Without the switch, `vm_debug_check` does nothing."""
    run = Run(load_scenario(SCENARIOS / "sealed-holes-memcg.yaml"))
    with mock.patch.object(debug, "check_invariants") as check:
        vm_debug_check(run.m)
        run.run()
    check.assert_not_called()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_scenario_holds_its_invariants_at_every_exit_and_reaping(path):
    """With the switch on, every exit and OOM reaping checks the invariants."""
    run = Run(load_scenario(path))
    run.m.debug_vm = True
    calls = []
    real = debug.check_invariants

    def counted(m):
        calls.append(m.env.now)
        real(m)

    with mock.patch.object(debug, "check_invariants", counted):
        run.run()
    assert len(calls) >= sum(t.exited for t in run.m.tasks)


@pytest.mark.parametrize(("name", "panic_on_oom"), [
    ("sealed-holes-memcg", 2), ("row03-touch-unsealed-256m", 2), ("row07-map-populate", 2),
    ("global-oom-shared-memfd", 1), ("global-oom-shared-memfd", 2),
])
def test_invariants_hold_after_a_panic(name, panic_on_oom):
    """A panic stops the machine mid-allocation: the page it was charging is neither free nor
    booked, which the check allows for, and everything else still adds up."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    sc = sc.model_copy(update={"sysctl": sc.sysctl.model_copy(update={"panic_on_oom": panic_on_oom})})
    run = Run(sc)
    result = run.run()
    assert result.panic is not None and run.m.panic == result.panic
    check_invariants(run.m)
