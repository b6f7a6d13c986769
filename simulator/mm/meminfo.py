"""/proc/meminfo as a userspace OOM killer reads it: MemTotal, MemAvailable, AnonPages, swap.

Models `si_mem_available()` in mm/show_mem.c (v6.18) and the fields of `meminfo_proc_show()`
in fs/proc/meminfo.c that earlyoom and systemd-oomd read, and `proc_oom_score()` in
fs/proc/base.c (/proc/PID/oom_score). Everything is in pages.

Simplifications:
    The file LRU is the node's page cache less its shmem (shmem sits on the anon LRU), with no
    unevictable file pages. No reclaimable slab (the model's slab, the page cache's xarray
    nodes, is accounted as unreclaimable) and no NR_KERNEL_MISC_RECLAIMABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .oom_kill import oom_badness

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


@dataclass(frozen=True)
class Meminfo:
    """The /proc/meminfo lines the killers read, in pages."""

    mem_total: int
    mem_available: int
    anon_pages: int
    swap_total: int
    swap_free: int


def si_mem_available(m: Machine) -> int:
    """Models `si_mem_available()`: free pages less the reserves (`totalreserve_pages`), plus
    the file LRU less min(half of it, the low watermarks), plus reclaimable slab likewise
    (none here); at least 0."""
    wmark_low = sum(n.low_wmark() for n in m.nodes)
    available = sum(n.free for n in m.nodes) - m.totalreserve_pages()
    pagecache = sum(n.stat["file"] - n.stat["shmem"] for n in m.nodes)
    pagecache -= min(pagecache // 2, wmark_low)
    available += pagecache
    return max(0, available)


def meminfo_proc_show(m: Machine) -> Meminfo:
    """Models the lines of `meminfo_proc_show()` the killers parse: MemTotal
    (`totalram_pages`), MemAvailable, AnonPages (NR_ANON_MAPPED), SwapTotal and SwapFree."""
    return Meminfo(mem_total=m.totalram, mem_available=si_mem_available(m),
                   anon_pages=sum(n.stat["anon"] for n in m.nodes),
                   swap_total=m.swap.pages, swap_free=m.swap.nr_free())


def proc_oom_score(m: Machine, task: TaskStruct) -> int:
    """Models `proc_oom_score()`: (1000 + badness x 1000 / totalpages) x 2/3, with totalpages
    all RAM + swap; 0 for a task that is never chosen. C division truncates toward zero."""
    totalpages = m.totalram + m.swap.pages
    badness = oom_badness(task, totalpages)
    if badness is None:
        return 0
    q = abs(badness * 1000) // totalpages
    scaled = q if badness >= 0 else -q
    return max(0, (1000 + scaled) * 2 // 3)
