"""The swap device: its slots, their allocation with the memcg swap charge, and their freeing.

Models mm/swapfile.c (v6.18) for one swap device: `folio_alloc_swap` (a slot, then
`mem_cgroup_try_charge_swap`), `swap_free_nr`/`free_swap_and_cache` with the
`__mem_cgroup_uncharge_swap` they lead to, and `get_nr_swap_pages`.

The device is treated as SWP_SYNCHRONOUS_IO (zram, pmem): writeout completes inside the
reclaim pass, so a paged-out folio is freed at once; swap-in allocates the folio directly and
reads it synchronously, bypassing the swap cache and readahead (`shmem_swap_alloc_folio`,
`do_swap_page`'s skip_swapcache path, taken when the entry's swap count is 1, which it always is
here: no fork), and the slot is freed as soon as the page is back in memory.

Simplifications:
    One device, one priority, no clusters, no discard; slots are counted, not placed. With a
    rotational or otherwise asynchronous device the kernel would instead read through the swap
    cache with readahead (`swap_cluster_readahead`/`swap_vma_readahead`, up to 2^page-cluster =
    8 pages, each allocated and charged on its own with silent failures, only the target's
    counting), keep the folio in the swap cache after swap-in and free the slot only when
    `should_try_to_free_swap` says so (swap more than half full, an mlocked page, or an
    exclusive write fault): more memory charged per fault, and slots held longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .levels import SWAP_USED
from .memcontrol import (
    mem_cgroup_try_charge_swap,
    mem_cgroup_uncharge_swap,
    memcg_swap_event,
    swap_margin,
)

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup


@dataclass(eq=False)
class SwapInfo:
    """The swap device (`struct swap_info_struct`): its size and the slots in use.

    Attributes:
        pages: usable slots (`si->pages`, total_swap_pages).
        inuse: slots holding a page (`si->inuse_pages`).
        pswpin: pages read back (the vmstat event).
        pswpout: pages written out.

    The device is always SWP_SYNCHRONOUS_IO (see the module docstring).
    """

    pages: int
    kind: str = "zram"  # `zram`, or `disk`: only the page times differ (costs.swapin/pageout)
    inuse: int = 0
    pswpin: int = 0
    pswpout: int = 0

    def nr_free(self) -> int:
        """Models `get_nr_swap_pages()`: free slots."""
        return self.pages - self.inuse


def folio_alloc_swap(m: Machine, memcg: MemCgroup, nr_pages: int, task: str = "") -> int:
    """Models `folio_alloc_swap()` for `nr_pages` order-0 folios of `memcg`, tried in order.

    Each folio first takes a free slot, then `mem_cgroup_try_charge_swap` charges it (which
    runs even when no slot was found, to count MEMCG_SWAP_FAIL). Returns how many of the
    folios, from the first, got a slot and a charge; nothing frees slots or swap charge during
    a pageout, so once one folio fails every later one of the same memcg fails the same way:
    with slots left, on memory.swap.max (`max` and `fail` events); without, `fail` only.
    """
    if nr_pages <= 0:
        return 0
    slots = m.swap.nr_free()
    k = min(nr_pages, slots, swap_margin(memcg))
    if k and not mem_cgroup_try_charge_swap(m, memcg, k, task):
        raise AssertionError("swap charge within the margin refused")
    m.swap.inuse += k
    if k:
        m.levels.record(SWAP_USED, "", m.swap.inuse)
    failed = nr_pages - k
    if failed:
        if slots - k > 0:
            mem_cgroup_try_charge_swap(m, memcg, failed, task)  # refused: counts max and fail
        else:
            memcg_swap_event(m, memcg, "fail", failed, task)
    return k


def swap_free_nr(m: Machine, memcg: MemCgroup, nr_pages: int) -> None:
    """Models `swap_free_nr()`/`free_swap_and_cache()` of entries recorded for `memcg`: the
    slots go back to the device and the memcg's swap charge is dropped
    (`__mem_cgroup_uncharge_swap`)."""
    if nr_pages <= 0:
        return
    m.swap.inuse -= nr_pages
    if m.swap.inuse < 0:
        raise AssertionError("swap: more slots freed than used")
    m.levels.record(SWAP_USED, "", m.swap.inuse)
    mem_cgroup_uncharge_swap(memcg, nr_pages)
