"""Shared fixtures: a tiny machine, its SimPy environment and event log, scenario builders."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import matplotlib
import pytest
import simpy

matplotlib.use("Agg")

from simulator.scenario import Scenario, parse_scenario  # noqa: E402
from simulator.simulation import Run  # noqa: E402

TINY = """
name: tiny
seed: 1
duration: 10s
machine: {page_size: 4KiB, nodes: [{memory: 64MiB}]}
tasks:
  - name: idle
    ops: [{sleep: 1ms}]
"""


@pytest.fixture
def env() -> simpy.Environment:
    """A fresh SimPy environment."""
    return simpy.Environment()


@pytest.fixture
def run_tiny() -> Run:
    """A built (not yet run) run of a single-node 64 MiB machine with one idle task."""
    return Run(parse_scenario(TINY))


@pytest.fixture
def machine(run_tiny: Run) -> Any:
    """The tiny machine: one node, 64 MiB, one idle task."""
    return run_tiny.m


@pytest.fixture
def log(machine: Any) -> Any:
    """The tiny machine's event log."""
    return machine.log


@pytest.fixture
def scenario() -> Callable[[str], Scenario]:
    """Build a scenario from indented YAML text (dedented first)."""

    def build(text: str) -> Scenario:
        return parse_scenario(textwrap.dedent(text))

    return build


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    """Close every matplotlib figure a test opened."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- BEGIN differential testing (tests/test_differential.py, tests/strategies.py) ----------
# Profiles for the bulk-versus-reference tests. `make test` runs the `differential` profile
# (500 derandomised scenarios); `make fuzz` sets HYPOTHESIS_PROFILE=fuzz, which this loads for
# every property test, and which keeps failing examples in .hypothesis/ for replay.
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "differential", max_examples=500, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True,
)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True,
)
if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz":
    settings.load_profile("fuzz")
# ---- END differential testing ---------------------------------------------------------------
