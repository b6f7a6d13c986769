"""earlyoom: kill the process with the highest oom_score when memory and swap both run low.

Models earlyoom v1.9 (github.com/rfjakob/earlyoom, main.c `poll_loop`, `lowmem_sig`,
`sleep_time_ms`; kill.c `find_largest_process`, `is_larger`, `kill_wait`; meminfo.c
`parse_meminfo`) with its default arguments: `-m 10 -s 10`, so SIGTERM when MemAvailable is
at or under 10% of `user mem total` (MemAvailable + AnonPages) **and** SwapFree at or under
10% of SwapTotal, SIGKILL at or under half of both.

The loop reads /proc/meminfo, and when a signal is due picks its victim among all processes
(highest /proc/PID/oom_score, ties to the larger rss; oom_score_adj -1000 never), reads
meminfo again (the situation may have recovered while it looked), then `kill_wait`: kill(2)
plus `process_mrelease`, and every 100 ms for up to 10 s: escalate a SIGTERM to SIGKILL once
both values are at or under the kill percentages, stop when the victim has exited. Then it
sleeps 100 ms to 1 s: the time memory (6000 MiB/s) and swap (800 MiB/s) would take to fill the
headroom left above the SIGTERM percentages.

Simplifications:
    Reading /proc and choosing the victim take no simulated time (2.5 ms measured by
    earlyoom's author on a desktop); earlyoom's own process and memory are not modelled; no
    `--prefer`/`--avoid`/`--ignore` regexes, no `-g` (process groups), no hooks.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..mm.meminfo import Meminfo, meminfo_proc_show, proc_oom_score
from ..mm.task import OOM_SCORE_ADJ_MIN
from .kill import kill_task
from .poll import quiet_polls

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.task import TaskStruct
    from .config import EarlyoomSpec

KILLER = "earlyoom"
MEM_FILL_RATE = 6000  # KiB per ms (~MiB/s): "seen with stress -m 4 --vm-bytes 4G"
SWAP_FILL_RATE = 800  # KiB per ms: "seen with membomb on ZRAM"
MIN_SLEEP_MS, MAX_SLEEP_MS = 100, 1000
KILL_WAIT_POLL = 0.1  # kill_wait's poll_ms
KILL_WAIT_POLLS = 100  # ... for at most 10 s
NO_VICTIM_SLEEP = 1.0  # "Could not find a process to kill. Sleeping 1 second."


@dataclass(frozen=True)
class EarlyoomArgs:
    """`poll_loop_args_t`: the four percentages and the sort order."""

    mem_term_percent: float
    swap_term_percent: float
    mem_kill_percent: float
    swap_kill_percent: float
    sort_by_rss: bool = False

    @classmethod
    def of(cls, spec: EarlyoomSpec) -> EarlyoomArgs:
        """The arguments of a scenario's `earlyoom` key (kill percentages default to half)."""
        mk = spec.mem_kill_percent if spec.mem_kill_percent is not None else spec.mem_term_percent / 2
        sk = (spec.swap_kill_percent if spec.swap_kill_percent is not None
              else spec.swap_term_percent / 2)
        return cls(spec.mem_term_percent, spec.swap_term_percent, mk, sk, spec.sort_by_rss)


@dataclass(frozen=True)
class MeminfoT:
    """`meminfo_t` as `parse_meminfo` computes it (KiB and percentages)."""

    mem_available_kib: int
    user_mem_total_kib: int
    swap_total_kib: int
    swap_free_kib: int
    mem_available_percent: float
    swap_free_percent: float


def parse_meminfo(m: Machine) -> MeminfoT:
    """`parse_meminfo()`: MemAvailablePercent is of `user mem total` (MemAvailable +
    AnonPages), SwapFreePercent of SwapTotal (0 without swap)."""
    mi: Meminfo = meminfo_proc_show(m)
    k = m.page_kb
    avail, user_total = mi.mem_available * k, (mi.mem_available + mi.anon_pages) * k
    swap_total, swap_free = mi.swap_total * k, mi.swap_free * k
    return MeminfoT(avail, user_total, swap_total, swap_free,
                    avail * 100 / user_total if user_total else 0.0,
                    swap_free * 100 / swap_total if swap_total else 0.0)


def lowmem_sig(args: EarlyoomArgs, mi: MeminfoT) -> str | None:
    """`lowmem_sig()`: SIGKILL when both are at or under the kill percentages, SIGTERM when
    both are at or under the term percentages, else nothing."""
    if (mi.mem_available_percent <= args.mem_kill_percent
            and mi.swap_free_percent <= args.swap_kill_percent):
        return "SIGKILL"
    if (mi.mem_available_percent <= args.mem_term_percent
            and mi.swap_free_percent <= args.swap_term_percent):
        return "SIGTERM"
    return None


def sleep_time_ms(args: EarlyoomArgs, mi: MeminfoT) -> int:
    """`sleep_time_ms()`: how long memory and swap take to fill the headroom above the SIGTERM
    percentages at their fastest fill rates, clamped to 100..1000 ms."""
    mem_headroom = max(0, int((mi.mem_available_percent - args.mem_term_percent)
                              * mi.user_mem_total_kib / 100))
    swap_headroom = max(0, int((mi.swap_free_percent - args.swap_term_percent)
                               * mi.swap_total_kib / 100))
    ms = mem_headroom // MEM_FILL_RATE + swap_headroom // SWAP_FILL_RATE
    return min(MAX_SLEEP_MS, max(MIN_SLEEP_MS, ms))


def is_larger(m: Machine, args: EarlyoomArgs, victim: tuple[int, int] | None,
              cur: TaskStruct) -> tuple[int, int] | None:
    """`is_larger()`: (oom_score, rss) of `cur` if it beats the victim so far, else None.
    oom_score first (ties to the larger rss), or rss first with `sort_by_rss`; adj -1000 never."""
    if cur.exited or cur.mm is None:
        return None
    score, rss = proc_oom_score(m, cur), cur.mm.get_mm_rss()
    if victim is not None:
        vs, vr = victim
        if args.sort_by_rss:
            if rss < vr or (rss == vr and score <= vs):
                return None
        elif score < vs or (score == vs and rss <= vr):
            return None
    if cur.oom_score_adj == OOM_SCORE_ADJ_MIN:
        return None
    return score, rss


def find_largest_process(m: Machine, args: EarlyoomArgs) -> TaskStruct | None:
    """`find_largest_process()`: walk /proc in pid order and keep the largest."""
    best: tuple[int, int] | None = None
    chosen = None
    for t in sorted(m.tasks, key=lambda t: t.pid):
        got = is_larger(m, args, best, t)
        if got is not None:
            best, chosen = got, t
    return chosen


def mem_stats(mi: MeminfoT) -> str:
    """`print_mem_stats()`: the numbers earlyoom logs with each action."""
    return (f"mem avail: {mi.mem_available_kib // 1024} of {mi.user_mem_total_kib // 1024} MiB "
            f"({mi.mem_available_percent:.2f}%), swap free: {mi.swap_free_kib // 1024} of "
            f"{mi.swap_total_kib // 1024} MiB ({mi.swap_free_percent:.2f}%)")


def kill_line(m: Machine, sig: str, t: TaskStruct) -> str:
    """The line `kill_process` logs before it signals."""
    return (f'sending {sig} to process {t.pid} uid 0 "{t.comm}": oom_score '
            f"{proc_oom_score(m, t)}, oom_score_adj {t.oom_score_adj}, VmRSS "
            f"{t.mm.get_mm_rss() * m.page_kb // 1024} MiB")


def kill_wait(m: Machine, args: EarlyoomArgs, victim: TaskStruct, sig: str,
              reason: str) -> Generator[Any, Any, None]:
    """`kill_process()` -> `kill_wait()`: signal (and `process_mrelease`), then poll every
    100 ms for up to 10 s, escalating a SIGTERM to SIGKILL once at or under the kill
    percentages, until the victim has exited."""
    kill_task(m, victim, sig, KILLER, kill_line(m, sig, victim), reason, mrelease=True)
    for i in range(KILL_WAIT_POLLS):
        if sig != "SIGKILL":
            mi = parse_meminfo(m)
            if (mi.mem_available_percent <= args.mem_kill_percent
                    and mi.swap_free_percent <= args.swap_kill_percent):
                sig = "SIGKILL"
                kill_task(m, victim, sig, KILLER,
                          f"escalating to SIGKILL after {i * KILL_WAIT_POLL:.3f} seconds",
                          mem_stats(mi), mrelease=True)
        if victim.exited:
            return
        yield m.env.timeout(KILL_WAIT_POLL)
    m.log.emit("userspace_kill_timeout", task=victim.name, detail=f"{KILLER}: process "
               f"{victim.pid} did not exit")


def earlyoom(m: Machine, spec: EarlyoomSpec) -> Generator[Any, Any, None]:
    """`poll_loop()`: the daemon, as a SimPy process; it stops once every task has exited."""
    args = EarlyoomArgs.of(spec)
    while not all(t.exited for t in m.tasks):
        mi = parse_meminfo(m)
        sig = lowmem_sig(args, mi)
        if sig is not None:
            pct = ((args.mem_kill_percent, args.swap_kill_percent) if sig == "SIGKILL"
                   else (args.mem_term_percent, args.swap_term_percent))
            reason = (f"low memory! at or below {sig} limits: mem {pct[0]:.2f}%, swap "
                      f"{pct[1]:.2f}% ({mem_stats(mi)})")
            victim = find_largest_process(m, args)
            if victim is None:
                m.log.emit("userspace_kill_none", detail=f"{KILLER}: could not find a process "
                           "to kill")
                yield m.env.timeout(NO_VICTIM_SLEEP)
                continue
            mi = parse_meminfo(m)
            if lowmem_sig(args, mi) is not None:
                yield from kill_wait(m, args, victim, sig, reason)
                yield m.env.timeout(sleep_time_ms(args, mi) / 1000)
                continue
        sleep = sleep_time_ms(args, mi) / 1000
        yield m.env.timeout(sleep + quiet_polls(m, sleep) * sleep)
