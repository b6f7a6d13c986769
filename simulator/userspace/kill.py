"""How a userspace OOM killer kills: kill(2) on a process or on every process of a cgroup,
recorded like the kernel's kills.

The signal goes through the kernel model's own path (`do_send_sig_info`): the victim is woken
or interrupted and exits through `do_exit`, as an OOM victim does, but is not marked
TIF_MEMDIE (a userspace kill grants no memory reserves), so its outcome is `killed`.
earlyoom and oomd follow the kill with `process_mrelease` (earlyoom always, since v1.8),
which reaps the victim's private memory at once instead of at its exit.

Each kill is a row of `oom_kills` with `killer` (`earlyoom`, `systemd_oomd`, `oomd`) and
`signal`, and an event `userspace_kill`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.oom_kill import dump_task, oom_badness, process_mrelease
from ..mm.signal import do_send_sig_info

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.memcontrol import MemCgroup
    from ..mm.task import TaskStruct


def kill_task(m: Machine, victim: TaskStruct, sig: str, killer: str, line: str, reason: str,
              memcg: MemCgroup | None = None, mrelease: bool = False) -> None:
    """kill(2) `victim` with `sig` and record it; `memcg` is the cgroup a cgroup killer
    chose (None for a process killer). `mrelease`: then `process_mrelease` it."""
    totalpages = m.totalram + m.swap.pages
    mm = victim.mm
    m.oom_kills.append({
        "victim": victim.name,
        "constraint": "userspace",
        "oom_constraint": None,
        "nodemask": None,
        "memcg": None if memcg is None else memcg.path,
        "task_memcg": victim.memcg.path,
        "points": oom_badness(victim, totalpages) or 0,
        "totalpages": totalpages,
        "time": m.env.now,
        "rss_pages": mm.get_mm_rss(),
        "pgtables_pages": mm.pgtables_pages(),
        "swapents": mm.swapents,
        "oom_score_adj": victim.oom_score_adj,
        "line": line,
        "task_line": dump_task(victim, m.page_size),
        "summary_line": reason,
        "killer": killer,
        "signal": sig,
    })
    m.log.emit("userspace_kill", task=victim.name, memcg=victim.memcg.path,
               value=oom_badness(victim, totalpages) or 0, detail=f"{killer} {sig}: {line}")
    do_send_sig_info(m, victim, sig)
    if mrelease:
        process_mrelease(m, victim)


def cgroup_tasks(memcg: MemCgroup) -> list[TaskStruct]:
    """The live tasks of a cgroup and its descendants, in pre-order (cgroup.procs of each)."""
    return [t for c in memcg.descendants_pre() for t in c.tasks if not t.exited and not t.sigkill]


def kill_cgroup(m: Machine, memcg: MemCgroup, killer: str, reason: str,
                mrelease: bool = False) -> int:
    """SIGKILL every process of `memcg` and its descendants (systemd's `cg_kill_recursive`,
    oomd's kill of a cgroup's procs). Returns how many were killed."""
    victims = cgroup_tasks(memcg)
    for t in victims:
        line = f"{killer}: Killed {t.pid} ({t.comm}) in {memcg.path}"
        kill_task(m, t, "SIGKILL", killer, line, reason, memcg=memcg, mrelease=mrelease)
    return len(victims)
