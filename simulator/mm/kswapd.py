"""kswapd: one background reclaimer per node, woken when an allocation falls below the low
watermark, reclaiming until the node is above its high watermark.

Models mm/vmscan.c (v6.18) `kswapd()` -> `balance_pgdat()` and `wakeup_kswapd()` (the wake-up
is page_alloc.py's, where the allocator's fast path fails): a SimPy process per node. It
reclaims from every memcg's lists on its node (root reclaim, `may_swap`), SWAP_CLUSTER_MAX
pages a round, each round taking the simulated time its scan and writes cost, until free pages
exceed the high watermark (`pgdat_balanced`). A run that reclaims nothing counts a failure
(`kswapd_failures`); after MAX_RECLAIM_RETRIES (16) the node is left to direct reclaim, and a
later run that frees something resets the count.

Simplifications:
    kswapd's own memory stall is not counted in PSI; no watermark boosting, no
    `kcompactd`; one round's pages are reclaimed before its time passes (as for a bulk step).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .signal import wake_up_all
from .vmscan_lru import SWAP_CLUSTER_MAX, ScanControl, do_try_to_free_pages, reclaim_time

if TYPE_CHECKING:
    from .machine import Machine
    from .page_alloc import Node

MAX_RECLAIM_RETRIES = 16


def pgdat_balanced(node: Node) -> bool:
    """`pgdat_balanced()`: free pages above the high watermark."""
    return node.free > node.high_wmark()


def balance_pgdat(m: Machine, node: Node) -> Generator[Any, Any, int]:
    """`balance_pgdat()`: reclaim on `node` until it is balanced or a round frees nothing.
    Returns the pages reclaimed."""
    total = 0
    while not pgdat_balanced(node):
        sc = ScanControl(SWAP_CLUSTER_MAX, m.root, cgroup_reclaim=False, task="kswapd",
                         zonelist=(node.nid,), memcg_full_walk=True)
        got = do_try_to_free_pages(m, sc)
        t = reclaim_time(m, sc)
        if got:
            total += got
            wake_up_all(m.oom_waiters)
        if t:
            yield m.env.timeout(t)
        if not got:
            break
    return total


def kswapd(m: Machine, node: Node) -> Generator[Any, Any, None]:
    """`kswapd()`: sleep until woken, balance the node, sleep again."""
    while True:
        node.kswapd_wait = m.env.event()
        yield node.kswapd_wait
        node.kswapd_wakeups += 1
        m.log.emit("kswapd_wake", page=node.nid, value=node.free)  # mm_vmscan_kswapd_wake
        got = yield from balance_pgdat(m, node)
        m.log.emit("kswapd", page=node.nid, pages=got, value=node.free)
        node.kswapd_failures = 0 if got else node.kswapd_failures + 1
