"""The OOM killer: badness, victim selection, the kill, the reaper.

Models mm/oom_kill.c (v6.18): `oom_badness`, `constrained_alloc`, `oom_evaluate_task`,
`select_bad_process`, `out_of_memory`, `oom_kill_process`, `__oom_kill_process`,
`mark_oom_victim`, `queue_oom_reaper`/`oom_reap_task`, and memcg's `mem_cgroup_out_of_memory`.

The OOM domain of a global OOM follows the allocation's nodemask (`constrained_alloc`): a bind
policy's nodes, or the cpuset's mems (which `prepare_alloc_pages` makes the nodemask of a task
in a cpuset), confine `totalpages` and the candidates (`oom_cpuset_eligible`).

Simplifications:
    One thread per process and no mm shared between processes; no OOM notifiers; the reaper
    always gets the mmap lock on its first try; no __GFP_THISNODE allocations.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .booking import anon_footprint
from .debug import vm_debug_check
from .memcontrol import mem_cgroup_get_oom_group, memcg_memory_event, page_counter_uncharge
from .mempolicy import Nodemask, cpuset_mems_allowed_intersects, mempolicy_in_oom_domain
from .page_alloc import free_pages
from .psi import psi_memstall_enter, psi_memstall_leave
from .signal import do_send_sig_info, wait_event_killable, wake_up_all
from .task import OOM_SCORE_ADJ_MIN
from .zap import free_cow_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .task import TaskStruct

LONG_MIN = -(1 << 63)
CONSTRAINT_NONE, CONSTRAINT_CPUSET = "CONSTRAINT_NONE", "CONSTRAINT_CPUSET"
CONSTRAINT_MEMORY_POLICY, CONSTRAINT_MEMCG = "CONSTRAINT_MEMORY_POLICY", "CONSTRAINT_MEMCG"
OOM_REAPER_DELAY = 2.0  # seconds: `queue_oom_reaper` waits 2 * HZ


class KernelPanic(Exception):  # noqa: N818 - the kernel's word for it
    """The kernel panicked (`panic("Out of memory...")` or `panic_on_oom`)."""


@dataclass
class OomControl:
    """Models `struct oom_control`: the OOM domain and the victim being chosen."""

    memcg: MemCgroup | None = None
    nodemask: Nodemask | None = None
    order: int = 0
    totalpages: int = 1
    constraint: str = CONSTRAINT_NONE
    chosen: TaskStruct | None = None
    chosen_points: int = LONG_MIN
    abort: TaskStruct | None = None


def oom_unkillable_task(task: TaskStruct) -> bool:
    """Models `oom_unkillable_task()`: init and kernel threads (none run ops here)."""
    return task.pid == 1 and task.name == "init"


def oom_badness(task: TaskStruct, totalpages: int) -> int | None:
    """Models `oom_badness()`: rss + swap entries + page-table pages, adjusted by oom_score_adj.

    Returns None (the kernel's LONG_MIN) for a task that is never chosen: unkillable, gone, at
    adj -1000, or already reaped (MMF_OOM_SKIP). Mapped shmem counts in rss; pages held only
    through an fd count for nobody.
    """
    if oom_unkillable_task(task) or task.exited or task.mm is None:
        return None
    adj = task.oom_score_adj
    if adj == OOM_SCORE_ADJ_MIN or task.mm.mmf_oom_skip:
        return None
    mm = task.mm
    points = mm.get_mm_rss() + mm.swapents + mm.pgtables_pages()
    adj *= totalpages // 1000
    return points + adj


def constrained_alloc(m: Machine, oc: OomControl, current: TaskStruct) -> str:
    """Models `constrained_alloc()`: the constraint and `totalpages` of the OOM domain.

    A memcg OOM: its max (+ swap). An allocation whose nodemask leaves out a node with memory
    (a bind policy's nodes, or the cpuset's mems that `prepare_alloc_pages` makes the
    nodemask): CONSTRAINT_MEMORY_POLICY, the present pages of those nodes + swap. A nodemask
    covering every node but a cpuset that does not (not reached by a task's allocation here,
    as in the kernel): CONSTRAINT_CPUSET, the cpuset's nodes. Else all RAM + swap.
    """
    if oc.memcg is not None:
        limit = oc.memcg.max
        if m.total_swap and m.sysctl.get("swappiness", 60):
            limit += min(oc.memcg.swap_max, m.total_swap)
        oc.totalpages = max(1, min(limit, m.totalram + m.total_swap))
        return CONSTRAINT_MEMCG
    oc.totalpages = max(1, m.totalram + m.total_swap)
    mask = oc.nodemask
    if mask is not None and any(n.nid not in mask for n in m.nodes):
        oc.totalpages = m.total_swap + sum(m.nodes[nid].present for nid in mask)
        return CONSTRAINT_MEMORY_POLICY
    mems = current.mems_allowed if m.cpusets_enabled else None
    if mems is not None and any(n.nid not in mems for n in m.nodes):
        oc.totalpages = m.total_swap + sum(m.nodes[nid].present for nid in mems)
        return CONSTRAINT_CPUSET
    return CONSTRAINT_NONE


def oom_cpuset_eligible(m: Machine, task: TaskStruct, current: TaskStruct,
                        oc: OomControl) -> bool:
    """Models `oom_cpuset_eligible()`: in a mempolicy-constrained OOM (a nodemask) a task is a
    candidate unless it is bound to nodes outside it (`mempolicy_in_oom_domain`; its cpuset
    does not matter); otherwise unless its cpuset's mems miss the current task's
    (`cpuset_mems_allowed_intersects`)."""
    if oc.nodemask is not None:
        return mempolicy_in_oom_domain(task, oc.nodemask)
    return not m.cpusets_enabled or cpuset_mems_allowed_intersects(current, task)


def oom_candidates(m: Machine, oc: OomControl, current: TaskStruct) -> list[TaskStruct]:
    """The scan order: memcg pre-order then tasks in attach order, or `for_each_process`
    less the tasks outside the OOM's nodes (`oom_cpuset_eligible`)."""
    if oc.memcg is not None:
        return [t for c in oc.memcg.descendants_pre() for t in c.tasks if not t.exited]
    return [t for t in m.tasks if not t.exited and oom_cpuset_eligible(m, t, current, oc)]


def oom_evaluate_task(oc: OomControl, task: TaskStruct) -> bool:
    """Models `oom_evaluate_task()`: returns False to abort the scan (a victim is exiting).

    An eligible existing victim whose mm is not yet reaped aborts the scan; otherwise the
    highest points win and a tie goes to the later-scanned task.
    """
    if oom_unkillable_task(task):
        return True
    if task.oom_victim and task.mm is not None and not task.mm.mmf_oom_skip:
        oc.abort = task
        return False
    points = oom_badness(task, oc.totalpages)
    if points is None or points < oc.chosen_points:
        return True
    oc.chosen, oc.chosen_points = task, points
    return True


def select_bad_process(m: Machine, oc: OomControl, current: TaskStruct) -> None:
    """Models `select_bad_process()` (and `mem_cgroup_scan_tasks` for a memcg OOM)."""
    for t in oom_candidates(m, oc, current):
        if not oom_evaluate_task(oc, t):
            oc.chosen = None
            return


def task_will_free_mem(task: TaskStruct) -> bool:
    """Models `task_will_free_mem()`: the task is already exiting or killed and not reaped."""
    return (task.sigkill or task.exiting) and task.mm is not None and not task.mm.mmf_oom_skip


def out_of_memory(m: Machine, current: TaskStruct, oc: OomControl) -> TaskStruct | None:
    """Models `out_of_memory()`: pick and kill a victim in the OOM domain.

    Returns the task whose exit the allocator should wait for (the victim, an earlier victim
    still exiting, or the dying current task), or None when nothing could be done (no killable
    task in a memcg). A global OOM with nothing to kill, or panic_on_oom, raises KernelPanic.
    """
    if task_will_free_mem(current):
        mark_oom_victim(m, current)
        queue_oom_reaper(m, current)
        return current
    oc.constraint = constrained_alloc(m, oc, current)
    if oc.constraint != CONSTRAINT_MEMORY_POLICY:
        oc.nodemask = None
    panic_on_oom = m.sysctl.get("panic_on_oom", 0)
    if panic_on_oom == 2 or (panic_on_oom == 1 and oc.constraint == CONSTRAINT_NONE):
        m.panic = (f"Out of memory: {'compulsory' if panic_on_oom == 2 else 'system-wide'}"
                   f" panic_on_oom is enabled")
        raise KernelPanic(m.panic)
    if (oc.memcg is None and m.sysctl.get("oom_kill_allocating_task", 0)
            and current.mm is not None and not oom_unkillable_task(current)
            and oom_cpuset_eligible(m, current, current, oc)
            and current.oom_score_adj != OOM_SCORE_ADJ_MIN):
        oc.chosen = current
        oc.chosen_points = oom_badness(current, oc.totalpages) or 0
        oom_kill_process(m, current, oc, "Out of memory (oom_kill_allocating_task)")
        return current
    select_bad_process(m, oc, current)
    if oc.abort is not None:
        m.log.emit("oom_abort", task=current.name, detail=f"victim {oc.abort.name} still exiting")
        return oc.abort
    if oc.chosen is None:
        if oc.memcg is None:
            m.panic = "System is deadlocked on memory"
            raise KernelPanic(m.panic)
        m.log.emit("oom_no_victim", task=current.name, memcg=oc.memcg.path)
        return None
    msg = "Memory cgroup out of memory" if oc.memcg is not None else "Out of memory"
    victim = oc.chosen
    oom_kill_process(m, current, oc, msg)
    return victim


def mem_cgroup_out_of_memory(m: Machine, current: TaskStruct, memcg: MemCgroup) -> TaskStruct | None:
    """Models `mem_cgroup_out_of_memory()`: `out_of_memory` confined to the memcg's subtree."""
    return out_of_memory(m, current, OomControl(memcg=memcg))


def oom_kill_process(m: Machine, current: TaskStruct, oc: OomControl, message: str) -> None:
    """Models `oom_kill_process()`: kill the chosen task, then the rest of its oom.group."""
    victim = oc.chosen
    assert victim is not None
    if task_will_free_mem(victim):
        mark_oom_victim(m, victim)
        queue_oom_reaper(m, victim)
        return
    group = mem_cgroup_get_oom_group(victim, oc.memcg)
    oom_kill_task(m, victim, message, oc, current)
    if group is not None:
        memcg_memory_event(m, group, "oom_group_kill", victim.name)
        for c in group.descendants_pre():
            for t in list(c.tasks):
                if t is victim or t.exited or t.oom_score_adj == OOM_SCORE_ADJ_MIN:
                    continue
                if not task_will_free_mem(t):
                    oom_kill_task(m, t, message, oc, current)


def kill_report(task: TaskStruct, message: str, page_kb: int) -> str:
    """The kernel's own log line for a kill, as `__oom_kill_process` prints it (sizes in kB,
    `K(x)` = x pages of `page_kb` KiB)."""
    mm = task.mm
    k = page_kb
    return (
        f"{message}: Killed process {task.pid} ({task.comm}) total-vm:{mm.total_vm * k}kB, "
        f"anon-rss:{mm.rss['anon'] * k}kB, file-rss:{mm.rss['file'] * k}kB, "
        f"shmem-rss:{mm.rss['shmem'] * k}kB, UID:0 pgtables:{mm.pgtables_pages() * k}kB "
        f"oom_score_adj:{task.oom_score_adj}"
    )


def dump_task(task: TaskStruct, page_size: int) -> str:
    """The victim's row of the `oom_dump_tasks` table (`dump_task`), where the kernel prints
    MM_SWAPENTS: pid, uid, tgid, total_vm, rss, rss_anon, rss_file, rss_shmem (pages),
    pgtables_bytes, swapents, oom_score_adj, comm."""
    mm = task.mm
    return (f"[{task.pid:7d}] {0:5d} {task.pid:5d} {mm.total_vm:8d} {mm.get_mm_rss():8d} "
            f"{mm.rss['anon']:8d} {mm.rss['file']:8d} {mm.rss['shmem']:9d} "
            f"{mm.pgtables_pages() * page_size:8d} {mm.swapents:8d}         "
            f"{task.oom_score_adj:5d} {task.comm}")


def nodelist(mask: Nodemask | None) -> str:
    """A nodemask as `%*pbl` prints it (`0-1,3`); `(null)` for none."""
    if mask is None:
        return "(null)"
    runs: list[list[int]] = []
    for n in sorted(mask):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def dump_oom_summary(m: Machine, oc: OomControl, current: TaskStruct, victim: TaskStruct) -> str:
    """The `oom-kill:` line `dump_oom_summary()` prints before the kill: the constraint, the
    nodemask (only a mempolicy-constrained OOM has one), the current task's cpuset and mems,
    the OOM's memcg (or `global_oom`) and the victim's."""
    mems = current.mems_allowed if current.mems_allowed is not None else tuple(range(len(m.nodes)))
    where = f"oom_memcg={oc.memcg.path}" if oc.memcg is not None else "global_oom"
    cpuset = current.memcg.path.rsplit("/", 1)[-1] or "/"  # the cgroup's name
    return (f"oom-kill:constraint={oc.constraint},nodemask={nodelist(oc.nodemask)},cpuset={cpuset},"
            f"mems_allowed={nodelist(mems)},{where},task_memcg={victim.memcg.path},"
            f"task={victim.comm},pid={victim.pid},uid=0")


def oom_kill_task(m: Machine, victim: TaskStruct, message: str, oc: OomControl,
                  current: TaskStruct) -> None:
    """Models `__oom_kill_process()` (once `oom_kill_task`): SIGKILL, mark, report, reap."""
    points = oom_badness(victim, oc.totalpages)
    line = kill_report(victim, message, m.page_kb)
    do_send_sig_info(m, victim)
    mark_oom_victim(m, victim)
    memcg_memory_event(m, victim.memcg, "oom_kill", victim.name)
    m.oom_kills.append({
        "victim": victim.name,
        "constraint": "memcg" if oc.memcg is not None else "global",
        "oom_constraint": oc.constraint,
        "nodemask": None if oc.nodemask is None else list(oc.nodemask),
        "memcg": oc.memcg.path if oc.memcg is not None else None,
        "task_memcg": victim.memcg.path,
        "points": points,
        "totalpages": oc.totalpages,
        "time": m.env.now,
        "rss_pages": victim.mm.get_mm_rss(),
        "pgtables_pages": victim.mm.pgtables_pages(),
        "swapents": victim.mm.swapents,
        "oom_score_adj": victim.oom_score_adj,
        "line": line,
        "task_line": dump_task(victim, m.page_size),
        "summary_line": dump_oom_summary(m, oc, current, victim),
        "killer": "kernel",
        "signal": "SIGKILL",
    })
    m.log.emit("oom_kill", task=victim.name, memcg=victim.memcg.path, value=points, detail=line)
    queue_oom_reaper(m, victim)


def mark_oom_victim(m: Machine, task: TaskStruct) -> None:
    """Models `mark_oom_victim()`: TIF_MEMDIE, which grants ALLOC_OOM reserves."""
    if not task.oom_victim:
        task.oom_victim = True
        m.log.emit("mark_victim", task=task.name, memcg=task.memcg.path)


def queue_oom_reaper(m: Machine, task: TaskStruct) -> None:
    """Models `queue_oom_reaper()`: reap the victim's private memory 2 s from now."""
    if task.mm is not None and not getattr(task, "_reaper_queued", False):
        task._reaper_queued = True  # type: ignore[attr-defined]
        m.env.process(oom_reap_task(m, task))


def oom_reap_task(m: Machine, task: TaskStruct) -> Generator[Any, Any, None]:
    """Models `oom_reaper`/`oom_reap_task_mm()`: unmap anonymous and private VMAs, set
    MMF_OOM_SKIP. Shared shmem mappings are never reaped."""
    yield m.env.timeout(OOM_REAPER_DELAY)
    mm = task.mm
    if task.exited or mm is None or mm.mmf_oom_skip:
        return
    freed = __oom_reap_task_mm(m, task)
    mm.mmf_oom_skip = True
    m.log.emit("oom_reaper", task=task.name, memcg=task.memcg.path, pages=freed)
    wake_up_all(m.oom_waiters)
    vm_debug_check(m)


def process_mrelease(m: Machine, task: TaskStruct) -> int:
    """Models `process_mrelease()` (the syscall): reap a dying task's private memory now, in
    the caller's context, as the OOM reaper would (`__oom_reap_task_mm`), then set
    MMF_OOM_SKIP. A task not dying (`task_will_free_mem` false) is left alone (-EINVAL), as
    is one already reaped or gone. Returns the pages freed."""
    mm = task.mm
    if task.exited or mm is None or mm.mmf_oom_skip or not task_will_free_mem(task):
        return 0
    freed = __oom_reap_task_mm(m, task)
    mm.mmf_oom_skip = True
    m.log.emit("process_mrelease", task=task.name, memcg=task.memcg.path, pages=freed)
    wake_up_all(m.oom_waiters)
    vm_debug_check(m)
    return freed


def __oom_reap_task_mm(m: Machine, task: TaskStruct) -> int:
    """Models `__oom_reap_task_mm()`: free the anonymous and private pages; returns how many.

    Shared shmem mappings are left alone: their pages belong to the file. `exit_mmap` does the
    same work for every exiting task.
    """
    mm = task.mm
    freed = 0
    for vma in mm.vmas.values():
        if not vma.shared:
            freed += free_cow_pages(m, task, vma, 0, vma.npages)
    for nid, n in list(mm.anon_nodes.items()):
        if n:
            anon_footprint(m, task, nid, -n)
            page_counter_uncharge(m, task.memcg, n)
            free_pages(m, nid, n)
            freed += n
    return freed


def wait_for_oom_progress(m: Machine, current: TaskStruct, victim: TaskStruct) -> Generator[Any, Any, None]:
    """The allocator's retry loop while a victim exits: wait for its exit or its reaping.

    In the kernel the charging task keeps looping (reclaim, then `out_of_memory` finds the
    victim still exiting and aborts the scan) until the victim's memory is freed; here it
    sleeps until memory is freed, a victim is reaped, or it is killed itself. For PSI the
    wait is a memory stall: the loop it stands for is the allocator's reclaim retries, each
    in `psi_memstall_enter` (`try_charge_memcg`, `__alloc_pages_direct_reclaim`).
    """
    if victim.exited or (victim.mm is not None and victim.mm.mmf_oom_skip):
        return
    yield from memstall_wait_for_memory(m, current, "waiting for OOM victim to exit")


def memstall_wait_for_memory(m: Machine, task: TaskStruct, reason: str) -> Generator[Any, Any, None]:
    """Sleep, killably, until memory is freed somewhere (`m.oom_waiters`), as one PSI memory
    stall: the reclaim-and-retry loop of a charge or an allocation the sleep stands for."""
    psi_memstall_enter(m, task)
    try:
        yield from wait_event_killable(m, task, m.oom_waiters, reason)
    finally:
        psi_memstall_leave(m, task)


def pagefault_out_of_memory(m: Machine, task: TaskStruct) -> Generator[Any, Any, None]:
    """Models `pagefault_out_of_memory()`: what a user fault ending in VM_FAULT_OOM does.

    A pending memcg OOM (v1 oom_kill_disable, or the [2014] deferred memcg OOM) is handled by
    `mem_cgroup_oom_synchronize`; a dying task returns to die. Otherwise v6.18 only returns and
    the instruction refaults (here: sleep until memory is freed somewhere, since an immediate
    refault would fail the same way); [2014] v3.15 invoked the global OOM killer instead.
    """
    # The kernel's memcontrol.c <-> oom_kill.c cycle, the one the model keeps (memcg_charge.py).
    from .memcg_charge import mem_cgroup_oom_synchronize

    if (yield from mem_cgroup_oom_synchronize(m, task)):
        return
    if task.dying:
        return
    if m.profile.pagefault_oom_global:
        victim = out_of_memory(m, task, OomControl())
        if victim is not None and victim is not task:
            yield from wait_for_oom_progress(m, task, victim)
        return
    m.log.emit("pagefault_out_of_memory", task=task.name, memcg=task.memcg.path)
    # The refault loop goes through `try_charge_memcg`'s reclaim each time: a memory stall.
    yield from memstall_wait_for_memory(m, task, "refault loop: VM_FAULT_OOM with no OOM victim")
