"""The page allocator's entry points: allocate a page, or enter reclaim and the OOM killer.

Models mm/page_alloc.c (v6.18) `__alloc_pages()` -> `get_page_from_freelist()`, then
`__alloc_pages_slowpath()` -> `__alloc_pages_may_oom()` for order-0 pages, and a
`__GFP_ACCOUNT` allocation's memcg charge. Split from page_alloc.py (the free pages and
watermarks) because this half calls the OOM killer, and the OOM killer frees pages: with both
halves in one module the two would import each other.

Simplifications: see page_alloc.py; no kswapd (the allocator reclaims directly).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .memcg_charge import try_charge_memcg
from .oom_kill import OomControl, out_of_memory, wait_for_oom_progress
from .page_alloc import alloc_margin, free_pages, take_pages
from .vmscan_lru import try_to_free_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .task import TaskStruct


def alloc_pages(m: Machine, task: TaskStruct) -> Generator[Any, Any, int | None]:
    """Models `__alloc_pages()` for one order-0 page: `get_page_from_freelist`, else the slow
    path. A generator (the slow path may wait for an OOM victim to exit). Returns the node id
    the page came from, or None (only for an OOM victim that found the ALLOC_OOM reserves
    empty: "too small to fail")."""
    nid = get_page_from_freelist(m, task)
    if nid is not None:
        return nid
    return (yield from alloc_pages_slowpath(m, task))


def get_page_from_freelist(m: Machine, task: TaskStruct, oom_victim: bool = False) -> int | None:
    """Models `get_page_from_freelist()`: the first node of the task's zonelist above the
    watermark, low on the fast path, then min once kswapd is woken (`take_pages` goes through
    both passes), min/2 for an OOM victim (ALLOC_OOM). None when no node has a page."""
    nodes = m.zonelist(task.node)
    if alloc_margin(nodes, oom_victim=oom_victim) >= 1:
        return take_pages(nodes, 1, oom_victim=oom_victim)[0][0]
    return None


def alloc_pages_slowpath(m: Machine, task: TaskStruct) -> Generator[Any, Any, int | None]:
    """Models `__alloc_pages_slowpath()` once every node is at its min watermark.

    Direct reclaim runs (`try_to_free_pages` over every memcg) and the allocation is retried
    while it frees pages; when it frees nothing, an OOM victim takes the ALLOC_OOM reserves
    (or fails) and anyone else calls `__alloc_pages_may_oom` -> `out_of_memory`, waits for
    the victim, and retries. kswapd is not modelled.
    """
    while True:
        if task.oom_victim:
            nid = get_page_from_freelist(m, task, oom_victim=True)
            if nid is None:
                m.log.emit("page_alloc_fail", task=task.name, detail="OOM victim, reserves empty")
            return nid
        # __alloc_pages_direct_reclaim: reclaim from every memcg, then retry while it frees
        # something (should_reclaim_retry); kswapd is not modelled.
        if (yield from try_to_free_pages(m, task)):
            nid = get_page_from_freelist(m, task)
            if nid is not None:
                return nid
            continue
        m.log.emit("alloc_slowpath_oom", task=task.name)
        victim = out_of_memory(m, task, OomControl())
        if victim is None:
            return None
        if victim is not task:
            yield from wait_for_oom_progress(m, task, victim)
        nid = get_page_from_freelist(m, task)
        if nid is not None:
            return nid


def alloc_charged_page(
    m: Machine, task: TaskStruct, ctx: str, memcg: MemCgroup | None = None
) -> Generator[Any, Any, int | None]:
    """Allocate one page, then charge it (`__GFP_ACCOUNT`) to `memcg` (the task's unless
    given; a swap-in's is the recorded one): the node id, or None when either failed
    (-ENOMEM; the page is freed again)."""
    nid = yield from alloc_pages(m, task)
    if nid is None:
        return None
    err = yield from try_charge_memcg(m, task, task.memcg if memcg is None else memcg, 1, ctx)
    if err:
        free_pages(m, nid, 1)
        return None
    return nid
