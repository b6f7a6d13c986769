"""The registry of mitigation policies: each a function with its parameters, default target
and an example spec (simulator/policies.py parses specs and applies them).

A policy module registers with `@policy(name, Param(...), target=..., example=...)`, importing
from here (not from simulator.policies, which imports every policy module to register it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..registry import Registry
from ..scenario_errors import ScenarioError
from ..scenario_model import Scenario
from ..units import UnitError, parse_bytes, parse_seconds

REQUIRED = object()  # a parameter without a default


@dataclass(frozen=True)
class Param:
    """A parameter of a policy: `size` (bytes, with units), `duration` (seconds, with units),
    `int`, `float` or `str`."""

    name: str
    kind: str = "size"
    default: Any = REQUIRED
    help: str = ""

    def parse(self, text: str) -> Any:
        """The value of `key=text`, or ValueError saying what was expected."""
        if self.kind == "size":
            try:
                return parse_bytes(text)
            except UnitError as e:
                raise ValueError(str(e)) from None
        if self.kind == "duration":
            try:
                return parse_seconds(text)
            except UnitError as e:
                raise ValueError(str(e)) from None
        if self.kind in ("int", "float"):
            try:
                return int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise ValueError(f"expected {'an integer' if self.kind == 'int' else 'a number'}, "
                                 f"got {text!r}") from None
        return text

    def describe(self) -> str:
        """`size=SIZE` or `size=SIZE (default 8MiB)`, for `oomsim policies`."""
        out = f"{self.name}={self.kind.upper()}"
        if self.default is REQUIRED:
            return f"{out} ({self.help})" if self.help else out
        return f"{out} ({self.help or f'default {self.default}'})"


PolicyFn = Callable[..., Scenario]


@dataclass(frozen=True)
class PolicyDef:
    """A registered policy.

    Attributes:
        name: what a spec names.
        fn: `fn(sc, params, target) -> Scenario` (params parsed, defaults filled in; target a
            task name or None for the policy's default), or `fn(sc)` for a policy that takes
            neither.
        params: its parameters.
        target: what it applies to without `@task` (one line, for `oomsim policies`); None:
            the policy takes no target (it changes the whole machine).
        example: a spec that runs as it is (for `compare` without `--policy`, and notebooks).
    """

    name: str
    fn: PolicyFn
    params: tuple[Param, ...] = ()
    target: str | None = "every task"
    example: str = ""

    @property
    def doc(self) -> str:
        """The first paragraph of the function's docstring, on one line."""
        first = (self.fn.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(line.strip() for line in first.splitlines())

    def __call__(self, sc: Scenario, params: dict[str, Any] | None = None,
                 target: str | None = None) -> Scenario:
        """Apply the policy to a scenario (missing parameters take their defaults)."""
        given = dict(params or {})
        for p in self.params:
            if p.name not in given:
                if p.default is REQUIRED:
                    raise ScenarioError(f"policy {self.name!r}: missing parameter {p.name!r} "
                                        f"(e.g. {self.example or self.name})")
                given[p.name] = p.parse(str(p.default)) if isinstance(p.default, str) else p.default
        if target is not None and target not in {t.name for t in sc.tasks}:
            raise ScenarioError(f"policy {self.name!r}: no task named {target!r}; tasks: "
                                f"{', '.join(t.name for t in sc.tasks)}")
        if len(inspect.signature(self.fn).parameters) == 1:
            return self.fn(sc)
        return self.fn(sc, given, target)


class PolicyRegistry(Registry[Any]):
    """Policies by name. `register(name)` (the plain registry's decorator) takes a function
    `fn(sc)`; `policy(...)` below declares parameters and targets."""

    def __getitem__(self, name: str) -> PolicyDef:
        fn = super().__getitem__(name)
        return fn if isinstance(fn, PolicyDef) else PolicyDef(name, fn, example=name)


POLICIES = PolicyRegistry()


def policy(name: str, *params: Param, target: str | None = "every task",
           example: str | None = None) -> Callable[[PolicyFn], PolicyFn]:
    """Register the decorated function as policy `name` with its parameters and default target."""

    def deco(fn: PolicyFn) -> PolicyFn:
        POLICIES[name] = PolicyDef(name, fn, params, target, example or name)
        return fn

    return deco
