"""Pressure stall information for memory: per memcg and for the system, `some` and `full`.

Models kernel/sched/psi.c (v6.18) for the memory resource: `psi_memstall_enter()` /
`psi_memstall_leave()` mark a task stalled on memory; `psi_group_change()` accrues each
group's stall time as its state changes (`test_states`: PSI_MEM_SOME while any of its tasks is
stalled, PSI_MEM_FULL while, besides, none of its tasks runs productively); `psi_avgs_work()`
folds the totals into the running averages every PSI_FREQ with `update_averages()` /
`calc_avgs()`, the load-average fixed point of include/linux/sched/loadavg.h (`calc_load`,
`calc_load_n`); `psi_show()` is what /proc/pressure/memory and memory.pressure print.

A task belongs to the system group and to its memcg's group and every ancestor's (cgroup PSI
is hierarchical; the root cgroup's pressure file shows the system group, so the root memcg's
group is the system's). A task is non-idle while it runs its ops; it is idle before it starts,
while it sleeps (a `sleep` op, a killable sleep in the kernel such as a v1 oom_kill_disable
wait) and after it exits. A stalled task counts as non-idle, running or asleep (the kernel's
NR_MEMSTALL counts for PSI_NONIDLE).

The averages are computed lazily: nothing runs every 2 s. Each group keeps the time of the
next run of its averaging work (None while that clock is stopped, as the kernel stops it when
a period saw no stall), and every state change or read first replays the runs due since the
last one, in closed form: the state between two changes is constant, so all but a couple of
those runs sample the same value, and a run of equal samples stops changing an average once it
reaches its fixed point. A run of an hour costs, per group, a few calc_load steps per state
change and at most about 2,300 per stretch of constant stall.

Simplifications:
    One CPU per group: the kernel keeps the state per CPU and weighs each CPU's stall time by
    its non-idle time (`collect_percpu_times`). For a group whose stalled task is alone
    (every single-task memcg) both give the same totals and averages. For a group whose tasks
    run on several CPUs at once the kernel's some and full are both about the non-idle-weighted
    mean of its CPUs' stall shares, where the model's some is higher (any task stalled) and its
    full lower (no task productive). The model has no CPU count and tasks never wait for a CPU.
    Only memory stalls exist: CPU and IO pressure, which on a real machine keep the averaging
    clock running through idle periods, are not modelled, so an idle period's decay is folded
    in at once (`calc_load_n`, the missed periods) where a busy machine decays it period by
    period (the results differ by rounding only). The averaging work runs exactly on its
    2.004 s grid (the kernel's is a delayed work item, a jiffy or more late), and a restart
    runs PSI_FREQ after the state change that wakes the clock. No PSI triggers (rtpoll).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct

# CONFIG_HZ of the modelled kernel: 250, the value of the 6.18 validation machine's config
# (/proc/config.gz: CONFIG_HZ_250=y) and of most distribution kernels.
HZ = 250
NSEC_PER_SEC = 1_000_000_000
NSEC_PER_USEC = 1000

# include/linux/sched/loadavg.h
FSHIFT = 11
FIXED_1 = 1 << FSHIFT
# kernel/sched/psi.c: PSI_FREQ is 2 s and one jiffy (2.004 s at HZ=250); 1/exp(2s/10s) etc.
PSI_FREQ = 2 * HZ + 1
EXP_10s, EXP_60s, EXP_300s = 1677, 1981, 2034
EXPS = (EXP_10s, EXP_60s, EXP_300s)
PSI_PERIOD_NS = PSI_FREQ * (NSEC_PER_SEC // HZ)  # jiffies_to_nsecs(PSI_FREQ)

SOME, FULL = 0, 1


def calc_load(load: int, exp: int, active: int) -> int:
    """Models `calc_load()` in include/linux/sched/loadavg.h (v6.18): one step of the
    exponential average, a1 = a0 * e + a * (1 - e), rounding up while rising."""
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1
    return newload // FIXED_1


def fixed_power_int(x: int, frac_bits: int, n: int) -> int:
    """Models `fixed_power_int()` in kernel/sched/loadavg.c (v6.18): x^n in fixed point, by
    squaring, rounding each product to nearest."""
    result = 1 << frac_bits
    while n:
        if n & 1:
            result = (result * x + (1 << (frac_bits - 1))) >> frac_bits
        n >>= 1
        if not n:
            break
        x = (x * x + (1 << (frac_bits - 1))) >> frac_bits
    return result


def calc_load_n(load: int, exp: int, active: int, n: int) -> int:
    """Models `calc_load_n()` in kernel/sched/loadavg.c (v6.18): n steps at once."""
    return calc_load(load, fixed_power_int(exp, FSHIFT, n), active)


def calc_avgs(avg: list[int], missed_periods: int, time: int, period: int) -> None:
    """Models `calc_avgs()` in kernel/sched/psi.c (v6.18): decay the missed periods with zero
    samples, then sample the last one (`time` ns stalled out of `period` ns) as a percentage."""
    if time == 0 and not any(avg):
        return  # zero decays and a zero sample leave zero averages (calc_load(0, e, 0) == 0)
    if missed_periods:
        for i, e in enumerate(EXPS):
            avg[i] = calc_load_n(avg[i], e, 0, missed_periods)
    pct = (time * 100 // period) * FIXED_1
    for i, e in enumerate(EXPS):
        avg[i] = calc_load(avg[i], e, pct)


def calc_load_repeat(load: int, exp: int, active: int, n: int) -> int:
    """`calc_load` n times with the same sample, stopping early at its fixed point."""
    for _ in range(n):
        new = calc_load(load, exp, active)
        if new == load:
            break
        load = new
    return load


def load_value(x: int) -> float:
    """The number the kernel prints for a fixed-point average: LOAD_INT(x).LOAD_FRAC(x)."""
    return (x >> FSHIFT) + (((x & (FIXED_1 - 1)) * 100) >> FSHIFT) / 100


@dataclass(eq=False)
class PsiGroup:
    """`struct psi_group` for the memory states, aggregated over the group's tasks.

    Attributes:
        nr_productive: non-idle tasks of the group not stalled (they keep FULL off).
        nr_memstall: tasks of the group stalled on memory (NR_MEMSTALL).
        state_start: when the counts last changed (ns).
        total: some and full stall time (ns) up to `state_start` (`group->total`).
        collected: the totals the averaging work saw last (its `times_prev`).
        avg_total: the part of the totals folded into the averages (`group->avg_total`).
        avg: some and full, avg10/avg60/avg300 in FIXED_1 fixed point (`group->avg`).
        avg_last_update, avg_next_update: as in `struct psi_group` (ns).
        work_at: when the averaging work runs next (ns); None while its clock is stopped.
    """

    nr_productive: int = 0
    nr_memstall: int = 0
    state_start: int = 0
    total: list[int] = field(default_factory=lambda: [0, 0])
    collected: list[int] = field(default_factory=lambda: [0, 0])
    avg_total: list[int] = field(default_factory=lambda: [0, 0])
    avg: list[list[int]] = field(default_factory=lambda: [[0, 0, 0], [0, 0, 0]])
    avg_last_update: int = 0
    avg_next_update: int = PSI_PERIOD_NS
    work_at: int | None = None

    def stalled(self) -> tuple[bool, bool]:
        """`test_states` for memory: (PSI_MEM_SOME, PSI_MEM_FULL) now."""
        some = self.nr_memstall > 0
        return some, some and self.nr_productive == 0

    def totals_at(self, now: int) -> list[int]:
        """Some and full stall time (ns) up to `now`, the state unchanged since `state_start`."""
        some, full = self.stalled()
        dt = now - self.state_start
        return [self.total[SOME] + (dt if some else 0), self.total[FULL] + (dt if full else 0)]


def update_averages(g: PsiGroup, now: int, totals: list[int]) -> int:
    """Models `update_averages()` in kernel/sched/psi.c (v6.18): fold the stall time since the
    last update into the averages (capped at the period, the excess carried to the next one),
    decaying the periods missed while the clock was stopped. Returns the next update's time."""
    missed = 0
    expires = g.avg_next_update
    if now - expires >= PSI_PERIOD_NS:
        missed = (now - expires) // PSI_PERIOD_NS
    avg_next_update = expires + (1 + missed) * PSI_PERIOD_NS
    period = now - (g.avg_last_update + missed * PSI_PERIOD_NS)
    g.avg_last_update = now
    for s in (SOME, FULL):
        sample = min(totals[s] - g.avg_total[s], period)
        g.avg_total[s] += sample
        calc_avgs(g.avg[s], missed, sample, period)
    return avg_next_update


def psi_avgs_work(g: PsiGroup, now: int) -> None:
    """Models `psi_avgs_work()` in kernel/sched/psi.c (v6.18): collect the totals, update the
    averages if due, and run again at the next update only if some stall time accrued since
    the last run (`changed_states & PSI_STATE_RESCHEDULE`); otherwise the clock stops."""
    totals = g.totals_at(now)
    changed = totals[SOME] != g.collected[SOME]  # full time is some time too
    g.collected = totals
    if now >= g.avg_next_update:
        g.avg_next_update = update_averages(g, now, totals)
    g.work_at = g.avg_next_update if changed else None


def fast_forward(g: PsiGroup, now: int) -> bool:
    """The runs of the averaging work due by `now` that all sample the same, at once.

    They do when the clock runs on its grid (the last update a period before the next), the
    state has not changed since the last update, some stall persists (so the clock keeps
    running) and no excess is carried in a state not stalled: each run then samples 100% for
    a stalled state and 0% for the other, over a full period. Returns whether it advanced.
    """
    w = g.work_at
    if (w is None or w > now or w != g.avg_next_update
            or g.avg_last_update != w - PSI_PERIOD_NS or g.state_start > g.avg_last_update):
        return False
    some, full = g.stalled()
    if not some:
        return False
    last = g.totals_at(g.avg_last_update)
    if not full and last[FULL] != g.avg_total[FULL]:
        return False
    k = (now - w) // PSI_PERIOD_NS + 1
    for s, on in ((SOME, some), (FULL, full)):
        active = 100 * FIXED_1 if on else 0
        g.avg[s] = [calc_load_repeat(a, e, active, k) for a, e in zip(g.avg[s], EXPS, strict=True)]
        if on:
            g.avg_total[s] += k * PSI_PERIOD_NS
    end = w + (k - 1) * PSI_PERIOD_NS
    g.avg_last_update = end
    g.avg_next_update = g.work_at = end + PSI_PERIOD_NS
    g.collected = g.totals_at(end)
    return True


def psi_advance(g: PsiGroup, now: int) -> None:
    """Replay the runs of the group's averaging work due by `now` (the state unchanged)."""
    while g.work_at is not None and g.work_at <= now:
        if not fast_forward(g, now):
            psi_avgs_work(g, g.work_at)


def psi_group_change(g: PsiGroup, now: int, d_productive: int, d_memstall: int) -> None:
    """Models `psi_group_change()` in kernel/sched/psi.c (v6.18) for one group: the time in
    the old state is recorded, the counts change, and the averaging clock is woken (the work
    runs PSI_FREQ later) if it was stopped."""
    w = g.work_at
    if w is not None and w <= now:
        psi_advance(g, now)
    if g.nr_memstall:  # the time in a stalled state counts (otherwise the totals stand)
        g.total = g.totals_at(now)
    g.state_start = now
    g.nr_productive += d_productive
    g.nr_memstall += d_memstall
    assert g.nr_productive >= 0 and g.nr_memstall >= 0, (g.nr_productive, g.nr_memstall)
    if g.work_at is None:
        g.work_at = now + PSI_PERIOD_NS


def now_ns(m: Machine) -> int:
    """The simulated time in whole nanoseconds (`sched_clock()`)."""
    return round(m.env.now * NSEC_PER_SEC)


def task_groups(task: TaskStruct) -> list[PsiGroup]:
    """The groups a task's state counts in: its memcg's and every ancestor's, the root's being
    the system's (`task_psi_group()` and the walk up `psi_group->parent`)."""
    return [c.psi for c in task.memcg.ancestors()]


def psi_task_change(m: Machine, task: TaskStruct, running: bool | None = None,
                    memstall: int = 0) -> None:
    """Models `psi_task_change()` in kernel/sched/psi.c (v6.18): the task becomes non-idle or
    idle (`running`), or enters (+1) or leaves (-1) a memory stall section; every group the
    task is in sees the change of its counts at once."""
    if not m.profile.psi:
        return
    was_prod = task.psi_running and task.psi_memstall == 0
    was_stall = task.psi_memstall > 0
    if running is not None:
        task.psi_running = running
    task.psi_memstall += memstall
    assert task.psi_memstall >= 0
    d_prod = int(task.psi_running and task.psi_memstall == 0) - int(was_prod)
    d_stall = int(task.psi_memstall > 0) - int(was_stall)
    if not d_prod and not d_stall:
        return
    now = now_ns(m)
    for c in task.memcg.ancestors():  # `task_groups`, without building the list
        psi_group_change(c.psi, now, d_prod, d_stall)


def psi_task_running(m: Machine, task: TaskStruct, running: bool) -> None:
    """The task starts running its ops, or sleeps (idle) or exits (no longer counted)."""
    if task.psi_running != running:
        psi_task_change(m, task, running=running)


def psi_memstall_enter(m: Machine, task: TaskStruct) -> None:
    """Models `psi_memstall_enter()` in kernel/sched/psi.c (v6.18): the task is stalled on
    memory from now (reclaim, a refault's or a thrashing swap-in's read, memory.high's
    throttling). Sections nest: only the outermost counts (PF_MEMSTALL)."""
    psi_task_change(m, task, memstall=1)


def psi_memstall_leave(m: Machine, task: TaskStruct) -> None:
    """Models `psi_memstall_leave()` in kernel/sched/psi.c (v6.18): the stall section ends."""
    psi_task_change(m, task, memstall=-1)


def psi_memstall_wait(m: Machine, task: TaskStruct, ev: Any) -> Any:
    """Yield `ev` (a SimPy event: a timeout, a wake-up) as one memory stall section, left even
    when the task is interrupted. The API for a step that stalls for a known time: a bulk
    step's reclaim or refault reads take `yield from psi_memstall_wait(m, task,
    m.env.timeout(seconds))`, one event, however many pages they cover."""
    psi_memstall_enter(m, task)
    try:
        result = yield ev
    finally:
        psi_memstall_leave(m, task)
    return result


def psi_show(g: PsiGroup, now: int) -> dict[str, Any]:
    """Models `psi_show()` in kernel/sched/psi.c (v6.18) for memory: the averages are brought
    up to date first (an update due now runs), then printed as the kernel prints them
    (two decimals) with the totals in microseconds."""
    psi_advance(g, now)
    totals = g.totals_at(now)
    g.collected = totals
    if now >= g.avg_next_update:
        g.avg_next_update = update_averages(g, now, totals)
    out: dict[str, Any] = {"some_total_us": totals[SOME] // NSEC_PER_USEC,
                           "full_total_us": totals[FULL] // NSEC_PER_USEC}
    for s, name in ((SOME, "some"), (FULL, "full")):
        for w, avg in zip((10, 60, 300), g.avg[s], strict=True):
            out[f"{name}_avg{w}"] = load_value(avg)
    return out
