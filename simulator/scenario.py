"""The scenario loader: parse a file, check it, load its machine profile, once.

`parse_scenario` reads the YAML (yaml_lines.py: libyaml, with the line of every key), checks
the shape of every key with the pydantic models (scenario_model.py, scenario_ops.py), reads
the machine profile the scenario names (its costs fill in `machine.costs` where the scenario
sets none, so nothing reads the file again) and runs the cross-field checks (validify.py). A
bad file fails here, before anything runs, with one message naming the file, the line, the
key path, what was expected and what was found; settings accepted but without effect become
the scenario's `warnings`, with their lines. The run builder turns the loaded scenario into
pages and seconds (plan.py).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .experiment.instantiate import has_draws, instantiate, may_have_draws
from .machine_profile import load_profile
from .scenario_errors import ScenarioError, clean_loc, describe, keypath, line_of
from .scenario_model import (
    RESERVED_EXPECT_KEYS,
    CgroupSpec,
    CostsSpec,
    ExpectTask,
    Footprint,
    MachineSpec,
    MountSpec,
    NodeSpec,
    Outcome,
    Rlimits,
    Scenario,
    StartAfter,
    SysctlSpec,
    TaskSpec,
    WhatIfSpec,
)
from .scenario_ops import OP_ARGS, OP_MODELS, Op, op_args, op_name
from .scenario_types import Strict
from .units import counting_percentages
from .validify import scenario_warnings, validify
from .yaml_lines import YamlError, load_yaml

__all__ = [
    "OP_ARGS", "OP_MODELS", "RESERVED_EXPECT_KEYS", "CgroupSpec", "CostsSpec", "ExpectTask",
    "Footprint", "MachineSpec", "MountSpec", "NodeSpec", "Op", "Outcome", "Rlimits", "Scenario",
    "ScenarioError", "StartAfter", "Strict", "SysctlSpec", "TaskSpec", "WhatIfSpec", "keypath",
    "load_scenario", "op_args", "op_name", "parse_scenario", "scenario_files",
]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a file's objects are built: they are all alive, and
    collections triggered by their numbers alone took 2/3 of a 10,000-task file's validation.
    On the way out the survivors go straight to the oldest generation (`gc.freeze()` then
    `gc.unfreeze()`, as `frozen_heap` does after a run): the first young collection would
    otherwise walk all of them (0.5 s after a 20,000-task file)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was:
            gc.enable()


def parse_scenario(text: str, file: str = "<scenario>", run: int = 0) -> Scenario:
    """Parse and validate scenario text; raise ScenarioError with file, line and key path.

    A scenario with distributions, `count` or `repeat` (simulator/experiment/) is made
    concrete first: run `run`'s workload, drawn from the scenario's seed.
    """
    with _gc_paused():
        data = load_data(text, file)
        if may_have_draws(text) and has_draws(data):
            try:
                concrete, draws = instantiate(data, int(data.get("seed", 1)), run)
            except ScenarioError as e:
                e.file = file
                raise
            sc = scenario_from_data(concrete, file, lines=data, any_percentages="%" in text)
            sc._draws = draws
            return sc
        return scenario_from_data(data, file, any_percentages="%" in text, from_text=True)


def load_data(text: str, file: str = "<scenario>") -> Any:
    """The YAML of a scenario file, as nested mappings and lists that remember their lines."""
    try:
        data = load_yaml(text)
    except YamlError as e:
        raise ScenarioError(e.message, file=file, line=e.line) from None
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping at the top level", file=file, line=1)
    return data


def validation_error(e: ValidationError, file: str = "<scenario>", lines: Any = None) -> ScenarioError:
    """The one message for a model validation error: its key path, its line in `lines`."""
    errors = e.errors()
    # A typo shows as an unknown key plus a missing one: report the unknown key first.
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = clean_loc(tuple(err["loc"]))
    msg = describe(err)
    if err["type"] == "extra_forbidden":
        missing = [clean_loc(tuple(x["loc"]))[-1] for x in errors if x["type"] == "missing"
                   and clean_loc(tuple(x["loc"]))[:-1] == loc[:-1]]
        if missing:
            msg += f"; missing: {', '.join(map(str, missing))}"
    return ScenarioError(msg, loc, file, line_of(lines, loc) if lines is not None else None)


def scenario_from_data(data: Any, file: str = "<scenario>", lines: Any = None,
                       any_percentages: bool = True, from_text: bool = False) -> Scenario:
    """Validate parsed scenario data: the models, the machine profile, the cross-field checks.
    Error lines are looked up in `lines` (the data as parsed) when `data` was derived from it.
    `from_text`: `data` is plain values parsed from text (no models), so the percentages the
    models read while validating it are all it holds (`validify` may skip their walk)."""
    lines = data if lines is None else lines
    try:
        with counting_percentages() as read:
            sc = Scenario.model_validate(data, context={"base_dir": str(Path(file).parent)})
    except ValidationError as e:
        raise validation_error(e, file, lines) from None
    try:
        sc = with_profile_costs(sc)
        validify(sc, any_percentages=any_percentages,
                 percentages_read=read[0] if from_text else None)
    except ScenarioError as e:
        e.file, e.line = file, line_of(lines, e.path)
        raise
    sc._warnings = tuple(str(ScenarioError(msg, path, file, line_of(lines, path)))
                         for msg, path in scenario_warnings(sc))
    return sc


def with_profile_costs(sc: Scenario) -> Scenario:
    """The scenario with its machine profile's costs where `machine.costs` sets none.

    The profile file is read here and nowhere else; a missing or bad one is an error at the
    scenario's `machine.profile` line.
    """
    if sc.machine.profile is None:
        return sc
    try:
        prof = load_profile(sc.machine.profile).costs
    except ValueError as e:
        raise ScenarioError(str(e), ("machine", "profile")) from None
    own = sc.machine.costs
    fill = {k: getattr(prof, k) for k in CostsSpec.model_fields
            if getattr(own, k) is None and getattr(prof, k) is not None}
    costs = own.model_copy(update=fill)
    return sc.model_copy(update={"machine": sc.machine.model_copy(update={"costs": costs})})


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ScenarioError(f"cannot read: {e.strerror}", file=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ScenarioError(f"not a text file: byte 0x{raw[e.start]:02x} at offset {e.start} is "
                            "not UTF-8 (a scenario is a YAML text file)", file=str(p),
                            line=line) from None
    return parse_scenario(text, str(p))


def scenario_files(target: str | Path) -> list[Path]:
    """The scenario files of a path: the file itself, or every *.yaml below a directory."""
    p = Path(target)
    if p.is_dir():
        return sorted(q for q in p.rglob("*.yaml") if q.is_file())
    return [p]
