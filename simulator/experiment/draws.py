"""Distributions in scenario files: a value written as `{uniform: [32MiB, 256MiB]}` is drawn.

Any size, duration, count or integer field may be a distribution instead of a value. The kind of
value follows from how the distribution's parameters are written: sizes with a size unit
(`64MiB`, drawn in bytes and rounded to whole pages), durations with a time unit (`2s`, drawn in
seconds), bare numbers for counts and integers (rounded to the nearest integer when every
parameter is an integer). `choice` picks one of its items as written.

| distribution | parameters | draws |
|---|---|---|
| `uniform` | `[low, high]` | uniform on [low, high] |
| `choice` | `[a, b, ...]` | one item, equally likely |
| `normal` | `{mean, sd}` | normal, truncated at 0 (drawn again until >= 0) |
| `lognormal` | `{median, sigma}` | median x exp(sigma x N(0, 1)) |
| `exponential` | `{mean}` | exponential with that mean |
| `pareto` | `{scale, shape}` | scale x (1 + Lomax(shape)): Pareto with minimum `scale` |
| `poisson` | `{rate: 2/s}` | in `start` of a task with `count`: its copies' starts, a Poisson process |

Every draw comes from the numpy Generator the caller passes (seeds.py gives each field its own).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..scenario_errors import ScenarioError
from ..units import UnitError, parse_bytes, parse_seconds

DISTRIBUTIONS = ("uniform", "choice", "normal", "lognormal", "exponential", "pareto", "poisson")
_RATE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*/\s*(s|ms|us|min|h)\s*$")


def is_distribution(value: Any) -> bool:
    """Whether a scenario value is a distribution: a one-key mapping naming one."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS


def value_kind(params: list[Any]) -> str:
    """"size", "duration", "int" or "float": what the parameters are written as."""
    if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in params):
        return "int" if all(isinstance(p, int) for p in params) else "float"
    if all(isinstance(p, str) for p in params):
        try:
            [parse_bytes(p) for p in params]
            return "size"
        except UnitError:
            pass
        try:
            [parse_seconds(p) for p in params]
            return "duration"
        except UnitError:
            pass
    raise ScenarioError(f"distribution parameters {params!r} are neither all sizes (64MiB), all "
                        "durations (2s) nor all numbers")


def number(p: Any, kind: str) -> float:
    """A parameter as a number: bytes, seconds, or itself."""
    if kind == "size":
        return float(parse_bytes(p))
    if kind == "duration":
        return parse_seconds(p)
    return float(p)


def finish(x: float, kind: str, page_size: int) -> int | float:
    """A drawn number as the field wants it: whole pages of bytes, seconds, an integer."""
    if kind == "size":
        return int(round(max(0.0, x) / page_size)) * page_size
    if kind == "int":
        return int(round(x))
    return max(0.0, x) if kind == "duration" else x


def _params(name: str, args: Any, keys: tuple[str, ...]) -> list[Any]:
    if isinstance(args, dict):
        if set(args) != set(keys):
            raise ScenarioError(f"{name} takes {{{', '.join(keys)}}}, got {sorted(args)}")
        return [args[k] for k in keys]
    if isinstance(args, list) and len(args) == len(keys):
        return list(args)
    raise ScenarioError(f"{name} takes {{{', '.join(keys)}}} (or a list of {len(keys)}), "
                        f"got {args!r}")


def draw(spec: dict[str, Any], rng: np.random.Generator, page_size: int = 4096) -> Any:
    """One value of the distribution `spec` (a one-key mapping) from `rng`."""
    (name, args), = spec.items()
    if name == "choice":
        if not isinstance(args, list) or not args:
            raise ScenarioError(f"choice takes a non-empty list, got {args!r}")
        return args[int(rng.integers(len(args)))]
    if name == "poisson":
        raise ScenarioError("poisson spaces the starts of a task's copies: it belongs in "
                            "`start` of a task with `count`")
    keys = {"uniform": ("low", "high"), "normal": ("mean", "sd"),
            "lognormal": ("median", "sigma"), "exponential": ("mean",),
            "pareto": ("scale", "shape")}[name]
    params = _params(name, args, keys)
    # sigma and shape are bare numbers whatever the value's kind
    kinds_from = params[:1] if name in ("lognormal", "pareto") else params
    kind = value_kind(kinds_from)
    if name == "uniform":
        lo, hi = (number(p, kind) for p in params)
        if hi < lo:
            raise ScenarioError(f"uniform: high {params[1]!r} is below low {params[0]!r}")
        if kind == "int":
            return int(rng.integers(int(lo), int(hi) + 1))
        x = rng.uniform(lo, hi)
    elif name == "normal":
        mean, sd = (number(p, kind) for p in params)
        x = rng.normal(mean, sd)
        while x < 0:  # truncated at 0: sizes, durations and counts are never negative
            x = rng.normal(mean, sd)
    elif name == "lognormal":
        x = number(params[0], kind) * float(np.exp(float(params[1]) * rng.standard_normal()))
    elif name == "exponential":
        x = rng.exponential(number(params[0], kind))
    else:  # pareto
        x = number(params[0], kind) * (1.0 + rng.pareto(float(params[1])))
    return finish(float(x), kind, page_size)


def poisson_starts(spec: dict[str, Any], n: int, rng: np.random.Generator) -> list[float]:
    """`start: {poisson: {rate: 2/s}}` for n copies: their start times in seconds, a Poisson
    process from 0 (exponential gaps of mean 1/rate)."""
    args = spec["poisson"]
    rate = args.get("rate") if isinstance(args, dict) else None
    m = _RATE_RE.match(str(rate)) if rate is not None else None
    if m is None:
        raise ScenarioError(f"poisson takes {{rate: N/s}} (or /ms, /min, /h), got {args!r}")
    per_second = float(m.group(1)) / parse_seconds(f"1{m.group(2)}")
    return np.cumsum(rng.exponential(1.0 / per_second, size=n)).tolist()
