"""The page allocator's bookkeeping: per-node free pages, watermarks, zonelists, freeing.

Models mm/page_alloc.c (v6.18): `calculate_min_free_kbytes`, `__setup_per_zone_wmarks`,
`__zone_watermark_ok`, the zonelist walk of `get_page_from_freelist`, `free_pages`, and the
watermark choices of `__alloc_pages_slowpath`. Each node has one zone (ZONE_NORMAL). The
allocator's entry points, which may invoke the OOM killer, are in page_alloc_slowpath.py, so
that this free-page bookkeeping sits below oom_kill.py (whose reaper frees pages).

Simplifications:
    One zone per node (no DMA/DMA32/Movable, no lowmem_reserve); order-0 pages only; no per-CPU
    lists, no compaction, no watermark boosting. Reclaim is not modelled yet (no swap, no clean
    page cache), so kswapd wakes but frees nothing, and the slow path goes straight to the OOM
    killer after its retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .levels import NODE_FREE

if TYPE_CHECKING:
    from .levels import LevelLog
    from .machine import Machine

WMARK_MIN, WMARK_LOW, WMARK_HIGH = 0, 1, 2


def calculate_min_free_kbytes(lowmem_kbytes: int) -> int:
    """Models `calculate_min_free_kbytes()`: sqrt(16 x lowmem KiB), clamped to 128 KiB..256 MiB."""
    return max(128, min(262144, math.isqrt(lowmem_kbytes * 16)))


def setup_per_zone_wmarks(
    managed: list[int], min_free_kbytes: int, watermark_scale_factor: int, page_kb: int
) -> list[tuple[int, int, int]]:
    """Models `__setup_per_zone_wmarks()`: (min, low, high) in pages for each zone.

    min is min_free_kbytes shared among the (lowmem) zones by managed size; the gap to low and
    from low to high is max(min/4, managed x watermark_scale_factor / 10000).
    """
    pages_min = min_free_kbytes // page_kb
    lowmem = sum(managed) or 1
    marks = []
    for m in managed:
        wmin = pages_min * m // lowmem
        gap = max(wmin >> 2, m * watermark_scale_factor // 10000)
        marks.append((wmin, wmin + gap, wmin + 2 * gap))
    return marks


NODE_STAT_ITEMS = ("anon", "shmem", "file", "pagetables", "kernel", "slab")


class NodeStat(dict[str, int]):
    """A node's page counters (`node_page_state`) that keep each item's peak (`peak`), so
    that the per-node output has a `peak_` of each: every `stat[item] += n` records it."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys(NODE_STAT_ITEMS, 0))
        self.peak: dict[str, int] = dict.fromkeys(NODE_STAT_ITEMS, 0)

    def __setitem__(self, item: str, value: int) -> None:
        super().__setitem__(item, value)
        if value > self.peak.get(item, 0):
            self.peak[item] = value


@dataclass
class Node:
    """A NUMA node with its one zone: `struct pglist_data` + `struct zone` counters."""

    nid: int
    present: int
    managed: int
    watermark: tuple[int, int, int] = (0, 0, 0)
    free: int = 0
    distance: list[int] = field(default_factory=list)
    stat: NodeStat = field(default_factory=NodeStat)
    lowest_free: int | None = None  # the fewest free pages the node has had (`peak_free`)
    kswapd_wait: Any = field(default=None, repr=False, compare=False)  # kswapd's wait queue
    kswapd_failures: int = 0  # balance_pgdat runs that reclaimed nothing
    kswapd_wakeups: int = 0
    levels: LevelLog | None = field(default=None, repr=False, compare=False)  # set by the Machine

    def min_wmark(self) -> int:
        """The min watermark (pages)."""
        return self.watermark[WMARK_MIN]

    def low_wmark(self) -> int:
        """The low watermark (pages)."""
        return self.watermark[WMARK_LOW]

    def high_wmark(self) -> int:
        """The high watermark (pages)."""
        return self.watermark[WMARK_HIGH]


def alloc_oom_mark(mark: int) -> int:
    """The watermark an OOM victim allocates against: ALLOC_OOM halves min (`__zone_watermark_ok`)."""
    return mark - mark // 2


def zone_watermark_ok(node: Node, mark: int, nr_pages: int = 1) -> bool:
    """Models `__zone_watermark_ok()` for order 0: free pages after the request stay above mark."""
    return node.free - (nr_pages - 1) > mark


def zone_margin(node: Node, mark: int) -> int:
    """How many order-0 pages can be taken from the node before `zone_watermark_ok` says no."""
    return max(0, node.free - mark)


def zonelist(nodes: list[Node], local: int) -> list[Node]:
    """Models `build_zonelists()`/`find_next_best_node()`: local node first, then by distance."""
    here = nodes[local]
    return sorted(nodes, key=lambda n: (here.distance[n.nid] if here.distance else 0, n.nid))


def alloc_margin(nodes: list[Node], oom_victim: bool = False) -> int:
    """Order-0 pages the allocator can hand out before it would enter reclaim/OOM.

    The fast path takes zones above low, the slow path zones above min (`ALLOC_WMARK_MIN`), an
    OOM victim's `ALLOC_OOM` goes down to min/2. Without reclaim, the page at which this margin
    runs out is where `__alloc_pages_may_oom` is reached.
    """
    total = 0
    if oom_victim:
        for n in nodes:
            total += zone_margin(n, alloc_oom_mark(n.min_wmark()))
        return total
    for n in nodes:  # every bulk step asks: `zone_margin(n, n.min_wmark())` inline
        free = n.free - n.watermark[WMARK_MIN]
        if free > 0:
            total += free
    return total


def wakeup_kswapd(node: Node) -> None:
    """`wakeup_kswapd()`: wake the node's kswapd unless it is already awake or has given up
    (`kswapd_failures` >= MAX_RECLAIM_RETRIES). Called where the fast path failed, so every
    node of the zonelist is at its low watermark: none is balanced."""
    ev = node.kswapd_wait
    if ev is None or ev.triggered or node.kswapd_failures >= 16:
        return
    ev.succeed()


def take_pages(
    nodes: list[Node], nr_pages: int, oom_victim: bool = False
) -> list[tuple[int, int]]:
    """Take nr_pages from the zonelist as `get_page_from_freelist` would.

    First pass: each node down to its low watermark (the fast path). Second pass: down to min
    (the slow path after waking kswapd). A victim's third pass: down to min/2. Returns the
    segments in allocation order, (nid, pages) each, so that the k-th page allocated can be
    placed exactly. The caller has checked `alloc_margin` first, so the request always fits.
    """
    local = nodes[0]
    if zone_margin(local, local.low_wmark()) >= nr_pages:  # the usual case: all from one node
        local.free -= nr_pages
        if local.lowest_free is None or local.free < local.lowest_free:
            local.lowest_free = local.free
        if local.levels is not None:
            local.levels.record(NODE_FREE, local.nid, local.free)
        return [(local.nid, nr_pages)]
    segs: list[tuple[int, int]] = []
    left = nr_pages
    marks = [lambda n: n.low_wmark(), lambda n: n.min_wmark()]
    if nr_pages > sum(zone_margin(n, n.low_wmark()) for n in nodes):
        for n in nodes:  # the fast path fails: `wake_all_kswapds` before the min pass
            wakeup_kswapd(n)
    if oom_victim:
        marks.append(lambda n: alloc_oom_mark(n.min_wmark()))
    for mark in marks:
        for n in nodes:
            if left == 0:
                break
            got = min(left, zone_margin(n, mark(n)))
            if got:
                n.free -= got
                if n.lowest_free is None or n.free < n.lowest_free:
                    n.lowest_free = n.free
                if n.levels is not None:
                    n.levels.record(NODE_FREE, n.nid, n.free)
                if segs and segs[-1][0] == n.nid:
                    segs[-1] = (n.nid, segs[-1][1] + got)
                else:
                    segs.append((n.nid, got))
                left -= got
    if left:
        raise AssertionError(f"take_pages: {left} pages short; alloc_margin was not checked")
    return segs


def free_pages(m: Machine, nid: int, nr_pages: int) -> None:
    """Models `free_pages()`: return pages to their node and wake allocators waiting on OOM."""
    if nr_pages:
        node = m.nodes[nid]
        node.free += nr_pages
        if node.free > node.managed:
            raise AssertionError(f"node {nid}: freed more pages than it manages")
        m.levels.record(NODE_FREE, nid, node.free)
