"""systemd-oomd: kill whole cgroups under sustained memory pressure or when swap runs out.

Models systemd's src/oom (oomd-manager.c `monitor_memory_pressure_contexts_handler`,
`monitor_swap_contexts_handler`, `recursively_get_cgroup_context`; oomd-util.c
`oomd_pressure_above`, `oomd_insert_cgroup_context`, `oomd_select_by_pgscan_rate`,
`oomd_select_by_swap_usage`, `oomd_mem_available_below`, `oomd_swap_free_below`,
`oomd_cgroup_kill`; constants in oomd-manager.h) with oomd.conf's defaults.

Pressure, every second (MEM_PRESSURE_INTERVAL_USEC), for each cgroup with
ManagedOOMMemoryPressure=kill: its memory.pressure `full avg10` above the limit (60%) since a
first sighting at least the duration (30 s) ago makes it a target; a target whose pgscan has
not grown within the last 30 s (RECLAIM_DURATION_USEC) is passed over ("killing won't help").
Of the candidates below a target (leaf cgroups, and cgroups with memory.oom.group=1 taken
whole), the one with the largest pgscan growth since the previous check (then the largest
memory.current) is killed whole, SIGKILL to every process (`cg_kill_recursive`), and no
pressure kill follows for 15 s (POST_ACTION_DELAY_USEC). The candidates' previous pgscan is
kept only across checks where some monitored cgroup is over its limit.

Swap, every 150 ms (SWAP_INTERVAL_USEC), when a cgroup has ManagedOOMSwap=kill: MemAvailable
under 100% - SwapUsedLimit (10%) of MemTotal and free swap under 10% of SwapTotal kill the
candidate below such a cgroup with the most memory.swap.current, among those using more than
5% of swap (THRESHOLD_SWAP_USED_PERCENT).

Simplifications:
    No per-unit ManagedOOMMemoryPressureLimit (the default limit for all), no
    ManagedOOMPreference (avoid/omit xattrs), no prekill hooks, no OOMRules; the root
    cgroup's pgscan reads as 0, as systemd never reads it (so monitoring `/` for pressure
    never kills); the timers run on the simulated clock from time 0.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..mm.meminfo import meminfo_proc_show
from ..mm.psi import now_ns, psi_show
from ..units import parse_seconds
from .kill import kill_cgroup
from .poll import quiet_polls

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.memcontrol import MemCgroup
    from .config import SystemdOomdSpec

KILLER = "systemd_oomd"
SWAP_INTERVAL = 0.15
MEM_PRESSURE_INTERVAL = 1.0
THRESHOLD_SWAP_USED_PERCENT = 5
RECLAIM_DURATION = 30.0
POST_ACTION_DELAY = 15.0


@dataclass
class OomdCGroupContext:
    """`OomdCGroupContext`: what one read of a cgroup gives, and what carries over."""

    memcg: MemCgroup
    avg10: float
    current_memory_usage: int
    swap_usage: int
    pgscan: int
    last_pgscan: int = 0
    mem_pressure_limit_hit_start: float | None = None
    last_had_mem_reclaim: float | None = None

    @property
    def path(self) -> str:
        """The cgroup's path."""
        return self.memcg.path

    def pgscan_rate(self) -> int:
        """`oomd_pgscan_rate()`: pgscan growth since the previous read."""
        last = 0 if self.last_pgscan > self.pgscan else self.last_pgscan
        return self.pgscan - last


def oomd_cgroup_context_acquire(m: Machine, memcg: MemCgroup) -> OomdCGroupContext:
    """`oomd_cgroup_context_acquire()`: memory.pressure (full), memory.current,
    memory.swap.current and memory.stat's pgscan (the root: memory used, no pgscan)."""
    full_avg10 = psi_show(memcg.psi, now_ns(m))["full_avg10"]
    if memcg.is_root():
        mi = meminfo_proc_show(m)
        return OomdCGroupContext(memcg, full_avg10, mi.mem_total - mi.mem_available, 0, 0)
    return OomdCGroupContext(memcg, full_avg10, memcg.usage, memcg.swap_usage,
                             memcg.vmscan["pgscan"])


def oomd_insert_cgroup_context(m: Machine, old: dict[str, OomdCGroupContext],
                               memcg: MemCgroup) -> OomdCGroupContext:
    """`oomd_insert_cgroup_context()`: a fresh read carrying the previous one's pgscan (as
    last_pgscan), limit-hit start and last reclaim; reclaim seen now if pgscan grew."""
    ctx = oomd_cgroup_context_acquire(m, memcg)
    prev = old.get(memcg.path)
    if prev is not None:
        ctx.last_pgscan = prev.pgscan
        ctx.mem_pressure_limit_hit_start = prev.mem_pressure_limit_hit_start
        ctx.last_had_mem_reclaim = prev.last_had_mem_reclaim
    if ctx.pgscan_rate() > 0:
        ctx.last_had_mem_reclaim = m.env.now
    return ctx


def recursively_get_cgroup_context(memcg: MemCgroup) -> list[MemCgroup]:
    """`recursively_get_cgroup_context()`: the kill candidates below a monitored cgroup: the
    leaves, and cgroups with memory.oom.group=1 (not descended into)."""
    if not memcg.children:
        return [memcg]
    out: list[MemCgroup] = []
    for c in memcg.children:
        out.extend([c] if c.oom_group else recursively_get_cgroup_context(c))
    return out


def candidates(m: Machine, monitored: list[MemCgroup],
               old: dict[str, OomdCGroupContext]) -> dict[str, OomdCGroupContext]:
    """`get_monitored_cgroup_contexts_candidates()` (with the previous candidates' data when
    `old` has them: `oomd_update_cgroup_contexts_between_hashmaps`)."""
    out: dict[str, OomdCGroupContext] = {}
    for mon in monitored:
        for c in recursively_get_cgroup_context(mon):
            if c.path not in out:
                out[c.path] = oomd_insert_cgroup_context(m, old, c)
    return out


def below(path: str, prefix: str) -> bool:
    """`path_startswith()`: `path` is `prefix` or below it."""
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def oomd_select_by_pgscan_rate(cands: dict[str, OomdCGroupContext],
                               prefix: str) -> OomdCGroupContext | None:
    """`oomd_select_by_pgscan_rate()`: under `prefix`, the largest pgscan growth, then the
    largest memory.current; cgroups with neither pgscan nor memory are skipped."""
    ranked = sorted((c for c in cands.values() if below(c.path, prefix)),
                    key=lambda c: (-c.pgscan_rate(), -c.current_memory_usage, c.path))
    return next((c for c in ranked if c.pgscan or c.current_memory_usage), None)


def oomd_select_by_swap_usage(cands: dict[str, OomdCGroupContext],
                              threshold: int) -> OomdCGroupContext | None:
    """`oomd_select_by_swap_usage()`: the largest memory.swap.current above `threshold`."""
    ranked = sorted(cands.values(), key=lambda c: (-c.swap_usage, c.path))
    return next((c for c in ranked if c.swap_usage > threshold), None)


def dump_kill_candidates(ranked: list[OomdCGroupContext], what: Any) -> str:
    """`dump_kill_candidates()`: the candidates in the order considered, as systemd-oomd logs
    them with a kill."""
    return (f"Considered {len(ranked)} cgroups for killing, top candidates were: "
            + "; ".join(f"Path: {c.path} {what(c)}" for c in ranked))


@dataclass
class Manager:
    """The daemon's state (`Manager`): its settings and the contexts it keeps."""

    m: Machine
    limit: float
    duration: float
    swap_used_limit_permyriad: int
    pressure_monitored: list[MemCgroup]
    swap_monitored: list[MemCgroup]
    contexts: dict[str, OomdCGroupContext]
    pressure_candidates: dict[str, OomdCGroupContext]
    post_action_delay_start: float | None = None


def monitor_memory_pressure_contexts_handler(mgr: Manager) -> None:
    """`monitor_memory_pressure_contexts_handler()`: one check of the monitored cgroups."""
    m, now = mgr.m, mgr.m.env.now
    mgr.contexts = {c.path: oomd_insert_cgroup_context(m, mgr.contexts, c)
                    for c in mgr.pressure_monitored}
    in_delay = False
    if mgr.post_action_delay_start is not None:
        if mgr.post_action_delay_start + POST_ACTION_DELAY > now:
            in_delay = True
        else:
            mgr.post_action_delay_start = None
    targets = []
    for ctx in mgr.contexts.values():  # oomd_pressure_above()
        if ctx.avg10 > mgr.limit:
            if ctx.mem_pressure_limit_hit_start is None:
                ctx.mem_pressure_limit_hit_start = now
            if now - ctx.mem_pressure_limit_hit_start >= mgr.duration:
                targets.append(ctx)
        else:
            ctx.mem_pressure_limit_hit_start = None
    keep_candidates = False
    if targets and not in_delay:
        for t in targets:
            if t.last_had_mem_reclaim is None or now - t.last_had_mem_reclaim > RECLAIM_DURATION:
                continue
            mgr.pressure_candidates = candidates(m, mgr.pressure_monitored,
                                                 mgr.pressure_candidates)
            keep_candidates = True
            selected = oomd_select_by_pgscan_rate(mgr.pressure_candidates, t.path)
            if selected is None:
                continue
            ranked = sorted((c for c in mgr.pressure_candidates.values() if below(c.path, t.path)),
                            key=lambda c: (-c.pgscan_rate(), -c.current_memory_usage, c.path))
            reason = (f"Memory pressure for {t.path} is {t.avg10:.2f}% > {mgr.limit:.2f}% for > "
                      f"{mgr.duration:g}s with reclaim activity; "
                      + dump_kill_candidates(ranked, lambda c: f"Pgscan: {c.pgscan}, Last Pgscan: "
                                             f"{c.last_pgscan}, Current Memory Usage: "
                                             f"{c.current_memory_usage * m.page_size}"))
            kill_cgroup(m, selected.memcg, KILLER, reason)
            mgr.post_action_delay_start = now
            return
    elif any(c.mem_pressure_limit_hit_start is not None for c in mgr.contexts.values()):
        mgr.pressure_candidates = candidates(m, mgr.pressure_monitored, mgr.pressure_candidates)
        keep_candidates = True
    if not keep_candidates:
        mgr.pressure_candidates = {}


def monitor_swap_contexts_handler(mgr: Manager) -> None:
    """`monitor_swap_contexts_handler()`: MemAvailable and free swap both under
    100% - SwapUsedLimit kill the largest swap user (in bytes, as systemd compares)."""
    m = mgr.m
    mi = meminfo_proc_show(m)
    ps = m.page_size
    mem_total, swap_total = mi.mem_total * ps, mi.swap_total * ps
    permyriad = 10000 - mgr.swap_used_limit_permyriad
    if not (mi.mem_available * ps < mem_total * permyriad // 10000
            and mi.swap_free * ps < swap_total * permyriad // 10000):
        return
    cands = candidates(m, mgr.swap_monitored, {})
    threshold = mi.swap_total * THRESHOLD_SWAP_USED_PERCENT // 100
    selected = oomd_select_by_swap_usage(cands, threshold)
    if selected is None:
        return
    reason = (f"Memory used ({(mi.mem_total - mi.mem_available) * ps}) / total ({mem_total}) and "
              f"swap used ({(mi.swap_total - mi.swap_free) * ps}) / total ({swap_total}) being "
              f"more than {mgr.swap_used_limit_permyriad / 100:.2f}%; "
              + dump_kill_candidates(sorted(cands.values(), key=lambda c: (-c.swap_usage, c.path)),
                                     lambda c: f"Swap Usage: {c.swap_usage * ps}"))
    kill_cgroup(m, selected.memcg, KILLER, reason)


def default_pressure_cgroups(m: Machine) -> list[MemCgroup]:
    """Without a list: every top-level cgroup (ManagedOOMMemoryPressure=kill on each)."""
    return list(m.root.children)


def timer(m: Machine, interval: float, handler: Any, mgr: Manager,
          quiet: bool = False) -> Generator[Any, Any, None]:
    """An sd-event timer: run `handler` at time 0 and every `interval` after, until every
    task has exited. `quiet`: the handler reads only what events change (not PSI averages,
    which move with time alone), so the runs before the next event that did nothing are
    skipped (`quiet_polls`)."""
    while not all(t.exited for t in m.tasks):
        kills = len(m.oom_kills)
        handler(mgr)
        skip = quiet_polls(m, interval) if quiet and len(m.oom_kills) == kills else 0
        yield m.env.timeout(interval + skip * interval)


def systemd_oomd(m: Machine, spec: SystemdOomdSpec) -> None:
    """Start the daemon: its pressure timer (if a cgroup is monitored for pressure) and its
    swap timer (if one has ManagedOOMSwap=kill), as SimPy processes."""
    mgr = Manager(
        m=m, limit=spec.default_memory_pressure_limit,
        duration=parse_seconds(spec.default_memory_pressure_duration),
        swap_used_limit_permyriad=round(spec.swap_used_limit * 100),
        pressure_monitored=(default_pressure_cgroups(m) if spec.managed_oom_memory_pressure is None
                            else [m.memcgs[p] for p in spec.managed_oom_memory_pressure]),
        swap_monitored=[m.memcgs[p] for p in spec.managed_oom_swap],
        contexts={}, pressure_candidates={})
    if mgr.pressure_monitored:
        m.env.process(timer(m, MEM_PRESSURE_INTERVAL, monitor_memory_pressure_contexts_handler,
                            mgr))
    if mgr.swap_monitored:
        m.env.process(timer(m, SWAP_INTERVAL, monitor_swap_contexts_handler, mgr, quiet=True))
