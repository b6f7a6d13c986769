"""Mitigations as strategies: each rewrites a scenario the way a program, the kernel or an
administrator would change it.

The 2014 discussion weighed these answers to "reading holes of a sealed file can fail":
populate or mlock the mapping first (fail early, at a known point), map ZERO_PAGE for holes of
write-sealed files (a kernel change never made), or accept OOM as orthogonal (`none`). The
policies of simulator/mitigations/ add the other answers (docs/mitigations.md). Each policy is
registered by name; `oomsim compare` and `oomsim sweep` run a scenario under several.

A policy is named by a spec (the grammar, also in docs/mitigations.md):

    spec  = name [":" param ("," param)*] ["@" task]
    param = key "=" value

`memcg_headroom:size=64MiB`, `mlock@reader`, `swap:size=1GiB`. Sizes take the units of
scenario files (simulator/units.py). `@task` narrows the policy to one task (a reader, a sealer,
the task whose cgroup an administrator changes); without it each policy has its default target.
The spec as written is what the `policy` column of a sweep's rows holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .mitigations.registry import POLICIES, REQUIRED, Param, PolicyDef, policy
from .scenario_errors import ScenarioError
from .scenario_model import Scenario

__all__ = ["POLICIES", "Param", "PolicyDef", "PolicySpec", "apply_policy", "check_policies",
           "default_specs", "describe_policies", "parse_policy", "policy"]


@dataclass(frozen=True)
class PolicySpec:
    """A parsed spec: the policy's name, its parameters (parsed values), its target task."""

    text: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    target: str | None = None


_SPEC_RE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?::(?P<params>[^@]*))?(?:@(?P<target>.*))?$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_policy(text: str) -> PolicySpec:
    """Parse and check a spec against the registry: ScenarioError naming what is wrong."""
    m = _SPEC_RE.match(text.strip())
    if not m:
        raise ScenarioError(f"policy {text!r}: expected name[:key=value[,key=value]][@task], "
                            "e.g. memcg_headroom:size=64MiB@reader")
    name = m.group("name")
    if name not in POLICIES:
        raise ScenarioError(f"no policy {name!r}; known: {', '.join(POLICIES)}")
    pdef = POLICIES[name]
    known = {p.name: p for p in pdef.params}
    params: dict[str, Any] = {}
    raw = m.group("params")
    if raw is not None:
        for item in raw.split(","):
            key, eq, value = (s.strip() for s in item.partition("="))
            if not eq or not _KEY_RE.match(key) or not value:
                raise ScenarioError(f"policy {text!r}: expected key=value, got {item.strip()!r}")
            if key not in known:
                raise ScenarioError(f"policy {text!r}: {name} has no parameter {key!r}; "
                                    f"it takes: {', '.join(known) or 'none'}")
            if key in params:
                raise ScenarioError(f"policy {text!r}: parameter {key!r} given twice")
            try:
                params[key] = known[key].parse(value)
            except ValueError as e:
                raise ScenarioError(f"policy {text!r}: {key}: {e}") from None
    missing = [p.name for p in pdef.params if p.default is REQUIRED and p.name not in params]
    if missing:
        raise ScenarioError(f"policy {text!r}: missing parameter {missing[0]!r} "
                            f"(e.g. {pdef.example})")
    target = m.group("target")
    if target is not None:
        target = target.strip()
        if not target:
            raise ScenarioError(f"policy {text!r}: expected a task name after @")
        if pdef.target is None:
            raise ScenarioError(f"policy {text!r}: {name} applies to the whole machine, "
                                "not to a task (no @task)")
    return PolicySpec(text.strip(), name, params, target)


def check_policies(specs: Iterable[str], sc: Scenario | None = None) -> list[PolicySpec]:
    """Parse every spec; with a scenario, also check that each target task exists."""
    out = []
    for text in specs:
        spec = parse_policy(text)
        if sc is not None and spec.target is not None and spec.target not in {t.name for t in sc.tasks}:
            raise ScenarioError(f"policy {text!r}: no task named {spec.target!r}; tasks: "
                                f"{', '.join(t.name for t in sc.tasks)}")
        out.append(spec)
    return out


def apply_policy(spec: str | PolicySpec, sc: Scenario) -> Scenario:
    """The scenario rewritten by the policy a spec names."""
    if isinstance(spec, str):
        spec = parse_policy(spec)
    return POLICIES[spec.name](sc, spec.params, spec.target)


def default_specs() -> list[str]:
    """One runnable spec per policy (its example): what `compare` runs without `--policy`."""
    return [POLICIES[name].example for name in POLICIES]


def describe_policies() -> list[tuple[str, str, str, str]]:
    """(name, one-line description, parameters, default target) for `oomsim policies`."""
    out = []
    for name in POLICIES:
        p = POLICIES[name]
        out.append((name, p.doc, ", ".join(x.describe() for x in p.params),
                    "the machine" if p.target is None else p.target))
    return out
