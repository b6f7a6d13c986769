"""The page allocator's entry points: allocate a page, or enter reclaim and the OOM killer.

Models mm/page_alloc.c (v6.18) `__alloc_pages()` -> `get_page_from_freelist()`, then
`__alloc_pages_slowpath()` -> `__alloc_pages_may_oom()` for order-0 pages, and a
`__GFP_ACCOUNT` allocation's memcg charge; the node and nodemask come from the task's NUMA
policy (mempolicy.py). Split from page_alloc.py (the free pages and
watermarks) because this half calls the OOM killer, and the OOM killer frees pages: with both
halves in one module the two would import each other.

Simplifications: see page_alloc.py; no kswapd (the allocator reclaims directly).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .memcg_charge import try_charge_memcg
from .mempolicy import NO_INTERLEAVE_INDEX, Nodemask, allowed_zonelist, get_task_policy, policy_nodemask
from .oom_kill import OomControl, out_of_memory, wait_for_oom_progress
from .page_alloc import alloc_margin, free_pages, take_pages
from .vmscan_lru import try_to_free_pages

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .page_alloc import Node
    from .task import TaskStruct


def alloc_pages(m: Machine, task: TaskStruct,
                ilx: int | None = NO_INTERLEAVE_INDEX) -> Generator[Any, Any, int | None]:
    """Models `alloc_pages_mpol()` -> `__alloc_pages()` for one order-0 page: the task's
    policy picks the preferred node and the nodemask (`policy_nodemask`; `ilx` is the
    interleave index of a folio, none for page tables and kernel pages), then
    `get_page_from_freelist`, else the slow path. A generator (the slow path may wait for an
    OOM victim to exit). Returns the node id the page came from, or None (only for an OOM
    victim that found the ALLOC_OOM reserves empty: "too small to fail")."""
    nid, mask = policy_nodemask(m, task, get_task_policy(task), ilx)
    got = get_page_from_freelist(m, allowed_zonelist(m, nid, mask))
    if got is not None:
        return got
    return (yield from alloc_pages_slowpath(m, task, nid, mask))


def get_page_from_freelist(m: Machine, nodes: list[Node], oom_victim: bool = False) -> int | None:
    """Models `get_page_from_freelist()` over the zones of the allocation's zonelist its
    nodemask allows: the first above the watermark, low on the fast path, then min once
    kswapd is woken (`take_pages` goes through both passes), min/2 for an OOM victim
    (ALLOC_OOM). None when no node has a page."""
    if alloc_margin(nodes, oom_victim=oom_victim) >= 1:
        return take_pages(nodes, 1, oom_victim=oom_victim)[0][0]
    return None


def alloc_pages_slowpath(m: Machine, task: TaskStruct, nid: int,
                         mask: Nodemask | None) -> Generator[Any, Any, int | None]:
    """Models `__alloc_pages_slowpath()` once every allowed node is at its min watermark.

    Direct reclaim runs (`try_to_free_pages` over every memcg) and the allocation is retried
    while it frees pages; when it frees nothing, an OOM victim takes the ALLOC_OOM reserves,
    which ignore the nodemask (the slow path resets it for `reserve_flags`), or fails; anyone
    else calls `__alloc_pages_may_oom` -> `out_of_memory` with the allocation's nodemask,
    waits for the victim, and retries. kswapd is not modelled.
    """
    nodes = allowed_zonelist(m, nid, mask)
    while True:
        if task.oom_victim:
            got = get_page_from_freelist(m, m.zonelist(nid), oom_victim=True)
            if got is None:
                m.log.emit("page_alloc_fail", task=task.name, detail="OOM victim, reserves empty")
            return got
        # __alloc_pages_direct_reclaim: reclaim from every memcg, then retry while it frees
        # something (should_reclaim_retry); kswapd is not modelled.
        if (yield from try_to_free_pages(m, task, nodes)):
            got = get_page_from_freelist(m, nodes)
            if got is not None:
                return got
            continue
        m.log.emit("alloc_slowpath_oom", task=task.name)
        victim = out_of_memory(m, task, OomControl(nodemask=mask))
        if victim is None:
            return None
        if victim is not task:
            yield from wait_for_oom_progress(m, task, victim)
        got = get_page_from_freelist(m, nodes)
        if got is not None:
            return got


def alloc_charged_page(
    m: Machine, task: TaskStruct, ctx: str, memcg: MemCgroup | None = None,
    ilx: int | None = NO_INTERLEAVE_INDEX,
) -> Generator[Any, Any, int | None]:
    """Allocate one page (with interleave index `ilx`, if it has one), then charge it
    (`__GFP_ACCOUNT`) to `memcg` (the task's unless given; a swap-in's is the recorded one):
    the node id, or None when either failed (-ENOMEM; the page is freed again)."""
    nid = yield from alloc_pages(m, task, ilx)
    if nid is None:
        return None
    err = yield from try_charge_memcg(m, task, task.memcg if memcg is None else memcg, 1, ctx)
    if err:
        free_pages(m, nid, 1)
        return None
    return nid
