"""The loader resolves a scenario once: the profile is read at load, the run reads no file."""

from __future__ import annotations

import pytest

from simulator.machine_profile import MachineProfile, write_profile
from simulator.policies import apply_policy, default_specs
from simulator.scenario import load_scenario
from simulator.simulation import Run


def test_the_machine_profile_is_read_once_at_load(tmp_path):
    """After loading, the profile file is no longer needed: its costs are in machine.costs."""
    write_profile(tmp_path / "p.yaml", MachineProfile(costs={"fault": "3000ns", "read": "200ns"}))
    (tmp_path / "s.yaml").write_text(
        "name: p\nmachine: {profile: p.yaml, costs: {read: 100ns}}\n"
        "tasks: [{name: t, ops: [{sleep: 1ms}]}]\n")
    sc = load_scenario(tmp_path / "s.yaml")
    (tmp_path / "p.yaml").unlink()
    for spec in default_specs():  # the policies' rewritten scenarios keep the costs too
        costs = Run(apply_policy(spec, sc)).m.costs
        assert (costs.fault, costs.read) == (pytest.approx(3e-6), pytest.approx(1e-7))
