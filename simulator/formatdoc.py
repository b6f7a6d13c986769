"""Generate the scenario format reference (docs/scenario-format.md) from the pydantic models.

The models in simulator/scenario_model.py and scenario_ops.py are the single source of the
format; this renders them, so the reference can never drift from what the loader accepts.
`python -m simulator.formatdoc` prints it; a test checks the committed file is current. The
hand-written rules of the format (fds shared by name, `after`, `pattern: random`, ...) live in
docs/scenario-format-rules.md, which the generator appends.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .scenario_model import (
    CgroupSpec,
    CostsSpec,
    ExpectTask,
    Footprint,
    MachineSpec,
    MountSpec,
    NodeSpec,
    Outcome,
    Scenario,
    SwapSpec,
    SweepSpec,
    SysctlSpec,
    TaskSpec,
    WhatIfSpec,
)
from .scenario_ops import OP_ARGS
from .units import SIZE_UNITS_DOC, TIME_UNITS_DOC
from .userspace.config import EarlyoomSpec, OomdSpec, SystemdOomdSpec, UserspaceOomSpec


def type_name(tp: Any) -> str:
    """A short human name for a field's type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        meta = " ".join(type(a).__name__ for a in args[1:])
        if "AfterValidator" in meta:
            base = str(args[0])
            if "float" in base:
                return "duration"
            return "size"
        return type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.__name__
    return getattr(tp, "__name__", str(tp))


def default_of(f: FieldInfo) -> str:
    """The default, or 'required'."""
    if f.is_required():
        return "required"
    if f.default_factory is not None:
        try:
            d = f.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
        if isinstance(d, BaseModel):
            return "(defaults)"
        return repr(d)
    return repr(f.default)


def field_type(name: str, f: FieldInfo) -> str:
    """A field's type, naming sizes and durations by what their validator checks."""
    checks = [getattr(getattr(m, "func", None), "__name__", "") for m in f.metadata]
    text = type_name(f.annotation)
    if "_check_size" in checks:
        return "size" + (" or null" if "None" in text else "")
    if "_check_size_or_max" in checks:
        return "size or 'max'"
    if "_check_duration" in checks:
        return "duration"
    if name == "ops":
        return "list of ops (below)"
    if name == "expect":
        return "mapping (see Expectations)"
    if name == "start":
        return "duration or {after: TASK}"
    return text


def model_table(model: type[BaseModel]) -> list[str]:
    """A Markdown table of a model's keys."""
    lines = [f"**{model.__name__}**: {(model.__doc__ or '').strip()}", "",
             "| key | type | default | note |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        key = f.alias or name
        note = (f.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | {field_type(name, f)} | {default_of(f)} | {note} |")
    return [*lines, ""]


def render() -> str:
    """The whole reference."""
    out = [
        "# Scenario file format",
        "",
        "Generated from the pydantic models in `simulator/scenario_model.py` and "
        "`simulator/scenario_ops.py` by "
        "`python -m simulator.formatdoc`; do not edit by hand. `oomsim schema` prints the same "
        "as JSON Schema for editors.",
        "",
        "Sizes take units (`4KiB`, `64MiB`, `1.5GiB`, `1EB`; a bare integer is bytes) and, "
        "where there is a whole, percentages (`25%`: of the machine's memory for cgroup limits "
        "and mount sizes, of the map for ranges, of the file for the offsets and lengths of "
        "write, read, fallocate and mmap; see Rules). A range is `[START, END]`. Durations "
        "take `h`, `min`, `s`, `ms`, `us`, `ns` (a bare number is seconds). Unknown keys are "
        "errors.",
        "",
        *units_table(),
        "## Top level",
        "",
    ]
    for model in (Scenario, MachineSpec, SwapSpec, NodeSpec, CostsSpec, SysctlSpec, MountSpec,
                  CgroupSpec, TaskSpec, Footprint, WhatIfSpec, ExpectTask, UserspaceOomSpec,
                  EarlyoomSpec, SystemdOomdSpec, OomdSpec):
        out += model_table(model)
    out += ["## Ops", "",
            "Each op is a mapping with one key, the op's name (`exit` may be a bare string).", ""]
    for name, args in OP_ARGS.items():
        if isinstance(args, type) and issubclass(args, BaseModel):
            out.append(f"### `{name}`")
            out.append("")
            out += model_table(args)[2:]
        else:
            out += [f"### `{name}`", "", f"`{name}: {type_name(args)}`", ""]
    out += [
        "## Expectations",
        "",
        "`expect` maps a task name to an outcome ("
        + ", ".join(f"`{o}`" for o in typing.get_args(Outcome))
        + ") or to `{outcome, errno, op, page, reason}` (`op` is the "
        "op's name; `reason` matches as a substring). The reserved key `memcg` maps cgroup paths "
        "to counters checked at the end of the run: `usage`, `anon`, `shmem`, `file` (the page "
        "cache, shmem included, as memory.stat's), `kernel`, "
        "`pagetables`, `file_mapped`, `swap`, each also as `peak_*` (the highest value during "
        "the run), `memsw` and `peak_memsw` (memory + swap at the end, and its highest), "
        "`pgscan` and `pgsteal` (pages "
        "reclaim scanned and freed), `workingset_refault` (evicted disk file pages read again), "
        "`workingset_activate` and `workingset_restore` (of those, activated; and of those, "
        "back in the working set: thrashing), "
        "`events: {low, high, max, oom, oom_kill, oom_group_kill}` (memory.events), and "
        "`pressure: {some_total, full_total, some_avg10, some_avg60, some_avg300, full_avg10, "
        "full_avg60, full_avg300}` (memory.pressure; the root `/` is the system's "
        "/proc/pressure/memory): totals as durations (`1500ms`), averages as percentages. "
        "Sizes there take units; a bare integer is pages. An event count or a pressure value "
        "may be a range instead, both ends included and either left out: "
        "`events: {high: {min: 1}}`, `pressure: {some_total: {min: 1s, max: 2s}}`. A size may "
        "be a range too (`usage: {min: 20MiB, max: 40MiB}`), or compared as the kernel's cgroup "
        "selftests compare (`values_close`): `usage: {close: 29MiB, err: 15}` passes when "
        "|got - 29 MiB| is at most 15% of (got + 29 MiB).",
        "",
        "## Experiments: distributions, copies, repeats, sweeps",
        "",
        "Any size, duration, count or integer value may be a distribution instead "
        "(`simulator/experiment/draws.py`): `{uniform: [32MiB, 256MiB]}`, "
        "`{choice: [4KiB, 2MiB]}`, `{normal: {mean: 64MiB, sd: 8MiB}}` (truncated at 0), "
        "`{lognormal: {median: 64MiB, sigma: 0.5}}`, `{exponential: {mean: 2s}}`, "
        "`{pareto: {scale: 1MiB, shape: 1.5}}`. Parameters written as sizes draw sizes (whole "
        "pages), as durations draw seconds, as integers draw integers; `choice` returns an item "
        "as written.",
        "",
        "A task may stand for several: `count: N` (or a distribution) makes copies named "
        "`NAME.0` ... `NAME.N-1`, each with its own draws; an `expect` entry for `NAME` holds "
        "for each copy; `start: {poisson: {rate: 2/s}}` spaces the copies' starts as a Poisson "
        "process. In a task's ops, `repeat: {times: N, ops: [...]}` unrolls its ops N times "
        "(each repetition drawing anew). `touch` takes `count`: only that many pages of the "
        "range, as the pattern picks them (the first N in order, N distinct pages at random, "
        "or the first N strides).",
        "",
        "Every draw of run `i` comes from a numpy Generator seeded by (the scenario's `seed`, "
        "`i`, the field's path), so a run reproduces alone and run `i` draws the same workload "
        "under every policy and grid cell (common random numbers). `oomsim run` runs run 0 "
        "(seed `seed`); a sweep's run `i` runs with seed `seed + i`.",
        "",
        *model_table(SweepSpec),
        "Grid paths name a value from the top of the scenario down, keys joined by dots; keys "
        "that contain dots (`memory.max`) are matched whole, tasks by name and ops by index: "
        "`cgroups./app.memory.max`, `tasks.reader.ops.1.touch.pattern`. `oomsim sweep FILE "
        "--out DIR` runs every cell x policy x kernel x run into `DIR/runs/` (Parquet, one row "
        "per task per run) and `DIR/sweep.json`.",
        "",
        RULES.read_text().rstrip("\n"),
        "",
    ]
    return "\n".join(out)


RULES = Path(__file__).resolve().parent.parent / "docs" / "scenario-format-rules.md"


def units_table() -> list[str]:
    """The size and duration units the loader reads (units.py), as two Markdown tables."""
    out = ["| size unit | bytes |", "|---|---|"]
    out += [f"| {u} | {v} |" for u, v in SIZE_UNITS_DOC]
    out += ["", "Units are case-insensitive: `64M`, `64MiB` and `64mib` are 64 x 1024^2 bytes, "
            "`64MB` is 64,000,000.", "", "| duration unit | seconds |", "|---|---|"]
    out += [f"| {u} | {v} |" for u, v in TIME_UNITS_DOC]
    return [*out, ""]


if __name__ == "__main__":
    sys.stdout.write(render())
