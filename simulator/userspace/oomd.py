"""Meta's oomd with its desktop ruleset: pressure_above + memory_reclaim ->
kill_by_memory_size_or_growth.

Models facebookincubator/oomd: the event loop (Main.cpp `--interval`, default 5 s), the
detector group that runs every detector each tick (engine/DetectorGroup.cpp `check`), the
detectors `pressure_above` (plugins/PressureAbove.cpp: of its cgroups, the one with the
largest 3 x avg10 + 2 x avg60 + avg300 of `full` memory pressure; CONTINUE once its avg10 has
been above `threshold` for `duration` whole seconds) and `memory_reclaim`
(plugins/MemoryReclaim.cpp: CONTINUE if the summed pgscan of its cgroups grew within
`duration` seconds), and the action `kill_by_memory_size_or_growth`
(plugins/KillMemoryGrowth-inl.h, BaseKillPlugin.cpp): among its cgroups that hold processes
and anonymous memory, first those using at least `size_threshold`% of the candidates' total
memory.current (largest effective usage first), then those growing by `min_growth_ratio`
(memory.current over its decaying average, `average_usage` with decay 4) among the
`growing_size_percentile` largest, then the rest by effective usage; SIGKILL to every process
of the chosen cgroup, then actions pause for `post_action_delay`. The defaults are those of
oomd's etc/desktop.json and its plugin documentation (docs/core_plugins.md).

Simplifications:
    Effective usage is memory.current less min(memory.current, max(memory.min, memory.low))
    (oomd scales nested protection by the parent's); no kill preferences (xattrs), no
    prekill hooks, no `recursive`, no `process_mrelease` (`reap_memory` is off by default);
    the loop ticks exactly every interval from time 0.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..mm.psi import now_ns, psi_show
from ..units import parse_seconds
from .kill import cgroup_tasks, kill_cgroup

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.memcontrol import MemCgroup
    from .config import OomdSpec

KILLER = "oomd"
AVERAGE_SIZE_DECAY = 4.0


def resolve(m: Machine, patterns: list[str]) -> list[MemCgroup]:
    """A plugin's `cgroup` argument: paths and globs (`/*`), each cgroup once, in path order."""
    out: dict[str, MemCgroup] = {}
    for p in patterns:
        for path in sorted(m.memcgs):
            if path == p or (any(c in p for c in "*?[") and fnmatch.fnmatchcase(path, p)
                             and path.count("/") == p.count("/") and path != "/"):
                out.setdefault(path, m.memcgs[path])
    return list(out.values())


@dataclass
class Oomd:
    """The daemon's state: its settings and what its plugins remember between ticks."""

    m: Machine
    spec: OomdSpec
    duration: float
    reclaim_duration: float
    post_action_delay: float
    hit_thres_at: float | None = None
    last_pgscan: int = 0
    last_reclaim_at: float | None = None
    paused_until: float = -1.0
    average_usage: dict[str, float] = field(default_factory=dict)


def pressure_above(d: Oomd) -> bool:
    """`PressureAbove::run()`."""
    m, now = d.m, d.m.env.now
    best = None
    for c in resolve(m, d.spec.pressure_cgroup):
        p = psi_show(c.psi, now_ns(m))
        rp = (p["full_avg10"], p["full_avg60"], p["full_avg300"])
        if best is None or rp[0] * 3 + rp[1] * 2 + rp[2] > best[0] * 3 + best[1] * 2 + best[2]:
            best = rp
    if best is not None and best[0] > d.spec.threshold:
        if d.hit_thres_at is None:
            d.hit_thres_at = now
        return math.floor(now - d.hit_thres_at) >= d.duration
    d.hit_thres_at = None
    return False


def memory_reclaim(d: Oomd) -> bool:
    """`MemoryReclaim::run()`: pgscan summed over its cgroups (the root's: the host's)."""
    m, now = d.m, d.m.env.now
    pgscan = sum(c.vmscan["pgscan"] for c in resolve(m, d.spec.reclaim_cgroup))
    if pgscan > d.last_pgscan:
        d.last_reclaim_at = now
    d.last_pgscan = pgscan
    return d.last_reclaim_at is not None and math.floor(now - d.last_reclaim_at) <= d.reclaim_duration


def effective_usage(c: MemCgroup) -> int:
    """`CgroupContext::effective_usage()`: memory.current less its protection."""
    return c.usage - min(c.usage, max(c.min, c.low))


def prerun_average_usage(d: Oomd, cgroups: list[MemCgroup]) -> None:
    """`KillMemoryGrowth::prerun()` -> `getAverageUsage()`: avg = avg x 3/4 + current/4, each
    tick, from 0 for a cgroup seen the first time."""
    for c in cgroups:
        prev = d.average_usage.get(c.path, 0.0)
        d.average_usage[c.path] = float(int(prev * ((AVERAGE_SIZE_DECAY - 1) / AVERAGE_SIZE_DECAY)
                                             + c.usage / AVERAGE_SIZE_DECAY))


def rank_for_killing(d: Oomd, cgroups: list[MemCgroup]) -> list[MemCgroup]:
    """`KillMemoryGrowth::get_ranking_fn()`, sorted descending: (size-eligible effective
    usage, growth-eligible growth ratio, effective usage)."""
    if not cgroups:
        return []
    s = d.spec
    size_threshold = sum(c.usage for c in cgroups) * (s.size_threshold / 100)
    nth = math.ceil(len(cgroups) * (100 - s.growing_size_percentile) / 100) - 1
    by_eff = sorted((effective_usage(c) for c in cgroups), reverse=True)
    growth_min = by_eff[max(0, nth)]

    def rank(c: MemCgroup) -> tuple[float, float, int, str]:
        avg = d.average_usage.get(c.path, 0.0)
        growth = c.usage / avg if avg else 0.0
        eff = effective_usage(c)
        size_ok = c.usage >= size_threshold
        growth_ok = growth >= s.min_growth_ratio and eff >= growth_min
        return (eff if size_ok else 0, growth if growth_ok else 0.0, eff, c.path)

    return sorted(cgroups, key=rank, reverse=True)


def kill_by_memory_size_or_growth(d: Oomd) -> bool:
    """`BaseKillPlugin::tryToKillSomething()` with KillMemoryGrowth's ranking: kill the first
    ranked cgroup that holds processes and anonymous memory. True if it killed."""
    m = d.m
    for c in rank_for_killing(d, resolve(m, d.spec.kill_cgroup)):
        if not cgroup_tasks(c) or c.stat["anon"] == 0:
            continue
        reason = (f"pressure above {d.spec.threshold:g} for {d.duration:g}s with reclaim: "
                  f"picked {c.path} ({c.usage * m.page_size >> 20}MB)")
        kill_cgroup(m, c, KILLER, reason)
        return True
    return False


def oomd(m: Machine, spec: OomdSpec) -> Generator[Any, Any, None]:
    """The event loop as a SimPy process: every interval, prerun, run the detectors, and if
    all fire and actions are not paused, the action; until every task has exited."""
    d = Oomd(m, spec, parse_seconds(spec.duration), parse_seconds(spec.reclaim_duration),
             parse_seconds(spec.post_action_delay))
    interval = parse_seconds(spec.interval)
    while not all(t.exited for t in m.tasks):
        prerun_average_usage(d, resolve(m, spec.kill_cgroup))
        fired = [pressure_above(d), memory_reclaim(d)]
        if all(fired) and m.env.now >= d.paused_until:
            if kill_by_memory_size_or_growth(d):
                d.paused_until = m.env.now + d.post_action_delay
        yield m.env.timeout(interval)
