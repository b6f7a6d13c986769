"""Shared fixtures: scenario builders, matplotlib without a display, Hypothesis profiles."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from typing import Any

import matplotlib
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

from simulator.scenario import Scenario, parse_scenario  # noqa: E402

# Profiles for the bulk-versus-reference tests (tests/test_differential.py, tests/strategies.py).
# `make test` runs the `differential` profile (500 derandomised scenarios); `make fuzz` sets
# HYPOTHESIS_PROFILE=fuzz, which this loads for every property test, and which keeps failing
# examples in .hypothesis/ for replay.
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
