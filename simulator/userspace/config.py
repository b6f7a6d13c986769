"""The `userspace_oom` scenario key: which userspace OOM killers run, with their defaults.

Each model's defaults are the ones its project ships (docs/userspace-oom.md gives the
sources): earlyoom's command-line defaults (`-m 10 -s 10`, SIGKILL at half), systemd-oomd's
oomd.conf defaults (SwapUsedLimit=90%, DefaultMemoryPressureLimit=60%,
DefaultMemoryPressureDurationSec=30s) and Meta oomd's plugin defaults in its desktop
configuration (`pressure_above` 60 for 30 s, `memory_reclaim` within 10 s,
`kill_by_memory_size_or_growth`). Which cgroups a killer watches and may kill are scenario
cgroup paths; `oomd` also takes one-level globs (`/*`: every top-level cgroup).
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from ..scenario_errors import ScenarioError
from ..scenario_types import Duration, Strict

if TYPE_CHECKING:
    from ..scenario_model import Scenario

Percent = float


def _cgroup_path(v: str) -> str:
    if not v.startswith("/") or (v != "/" and v.endswith("/")):
        raise ValueError(f"expected a cgroup path such as / or /app, got {v!r}")
    return v


class EarlyoomSpec(Strict):
    """earlyoom (v1.9): polls MemAvailable and SwapFree every 100 ms to 1 s; when both are at
    or under their percentages it sends SIGTERM to the process with the highest oom_score
    (SIGKILL when both are at or under the kill percentages) and waits for it to exit."""

    mem_term_percent: Percent = Field(
        default=10, gt=0, le=100, description="`-m`: SIGTERM when MemAvailable is at or under "
        "this percentage of `user mem total` (MemAvailable + AnonPages) ...")
    swap_term_percent: Percent = Field(
        default=10, gt=0, le=100, description="`-s`: ... and SwapFree at or under this "
        "percentage of SwapTotal (a machine without swap counts as 0% free)")
    mem_kill_percent: Percent | None = Field(
        default=None, gt=0, le=100, description="SIGKILL threshold for memory (default: half of "
        "`mem_term_percent`)")
    swap_kill_percent: Percent | None = Field(
        default=None, gt=0, le=100, description="SIGKILL threshold for swap (default: half of "
        "`swap_term_percent`)")
    sort_by_rss: bool = Field(default=False, description="`--sort-by-rss`: the victim is the "
                              "largest rss instead of the highest oom_score")


class SystemdOomdSpec(Strict):
    """systemd-oomd: kills whole cgroups. Every second it reads the `full avg10` memory
    pressure of each cgroup with ManagedOOMMemoryPressure=kill; above the limit for the
    duration, with reclaim in it in the last 30 s, it kills the candidate below it with the
    most reclaim (pgscan) since the last check. Every 150 ms, when MemAvailable and free swap
    are both under 100% - SwapUsedLimit, it kills the candidate below a ManagedOOMSwap=kill
    cgroup using the most swap. Candidates are leaf cgroups and those with memory.oom.group."""

    swap_used_limit: Percent = Field(default=90, ge=0, le=100,
                                     description="SwapUsedLimit= (oomd.conf)")
    default_memory_pressure_limit: Percent = Field(
        default=60, ge=0, le=100, description="DefaultMemoryPressureLimit= (oomd.conf)")
    default_memory_pressure_duration: Duration = Field(
        default="30s", description="DefaultMemoryPressureDurationSec= (oomd.conf)")
    managed_oom_memory_pressure: list[str] | None = Field(
        default=None, description="cgroups with ManagedOOMMemoryPressure=kill (default: every "
        "top-level cgroup of the scenario)")
    managed_oom_swap: list[str] = Field(
        default_factory=lambda: ["/"], description="cgroups with ManagedOOMSwap=kill")

    @field_validator("managed_oom_memory_pressure", "managed_oom_swap")
    @classmethod
    def _paths(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_cgroup_path(p) for p in v]


class OomdSpec(Strict):
    """Meta's oomd with the ruleset of its desktop configuration: `pressure_above` (full
    avg10 of `pressure_cgroup` above `threshold` for `duration`) and `memory_reclaim` (pgscan
    grew in `reclaim_cgroup` within `reclaim_duration`) -> `kill_by_memory_size_or_growth`
    over `kill_cgroup`, then no action for `post_action_delay`."""

    interval: Duration = Field(default="5s", description="`--interval`: the event loop's period")
    pressure_cgroup: list[str] = Field(default_factory=lambda: ["/"],
                                       description="pressure_above `cgroup` (`/`: the host)")
    threshold: Percent = Field(default=60, ge=0, le=100, description="pressure_above `threshold`")
    duration: Duration = Field(default="30s", description="pressure_above `duration`")
    reclaim_cgroup: list[str] = Field(default_factory=lambda: ["/*"],
                                      description="memory_reclaim `cgroup`")
    reclaim_duration: Duration = Field(default="10s", description="memory_reclaim `duration`")
    kill_cgroup: list[str] = Field(default_factory=lambda: ["/*"],
                                   description="kill_by_memory_size_or_growth `cgroup`")
    size_threshold: Percent = Field(default=50, ge=0, le=100,
                                    description="percent of the candidates' total usage")
    min_growth_ratio: float = Field(default=1.25, gt=0,
                                    description="usage over its decaying average")
    growing_size_percentile: Percent = Field(default=80, ge=0, le=100,
                                             description="growth kills only among the largest")
    post_action_delay: Duration = Field(default="15s", description="no action after a kill")

    @field_validator("pressure_cgroup", "reclaim_cgroup", "kill_cgroup")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [_cgroup_path(p) for p in v]


class UserspaceOomSpec(Strict):
    """Userspace OOM killers running beside the kernel's (`{}` for a killer's defaults)."""

    earlyoom: EarlyoomSpec | None = None
    systemd_oomd: SystemdOomdSpec | None = None
    oomd: OomdSpec | None = None


def check_userspace_oom(sc: Scenario) -> None:
    """Cross-field check: every cgroup a killer names is declared (or `/`), every oomd glob
    matches a declared cgroup."""
    spec = sc.userspace_oom
    if spec is None:
        return
    known = {"/", *sc.cgroups}

    def check(paths: list[str] | None, where: tuple[Any, ...], globs: bool) -> None:
        for i, p in enumerate(paths or ()):
            if globs and any(c in p for c in "*?["):
                if not fnmatch.filter(sorted(known), p):
                    raise ScenarioError(f"{p!r} matches no cgroup; declared: "
                                        f"{', '.join(sc.cgroups) or 'none'}", (*where, i))
            elif p not in known:
                raise ScenarioError(f"no such cgroup {p!r}; declared: "
                                    f"{', '.join(sc.cgroups) or 'none'}", (*where, i))

    if spec.systemd_oomd is not None:
        s = spec.systemd_oomd
        base = ("userspace_oom", "systemd_oomd")
        check(s.managed_oom_memory_pressure, (*base, "managed_oom_memory_pressure"), False)
        check(s.managed_oom_swap, (*base, "managed_oom_swap"), False)
    if spec.oomd is not None:
        for key in ("pressure_cgroup", "reclaim_cgroup", "kill_cgroup"):
            check(getattr(spec.oomd, key), ("userspace_oom", "oomd", key), True)
