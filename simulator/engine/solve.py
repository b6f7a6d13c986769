"""Exact bulk steps: the searches that find how many pages fit before any limit.

A touch, populate or fallocate over N pages is not N events. Every limit the step could cross
is asked how many more pages it allows (simulator/engine/limits.py); the costs of the first x
pages of the step (page-table pages of the 2 MiB / 1 GiB / 512 GiB regions first entered, holes
to fill, slab pages of xarray nodes) are monotone in x, so a search finds the largest x that
fits (a binary search, started from a proportional guess since the costs are close to
linear). Those x pages are instantiated at once, split across nodes where the allocator would
move on to the next node of the zonelist (`split_at`); the next page is exactly where the
kernel would enter its slow path, and the one-page path (`handle_mm_fault`,
`shmem_alloc_and_add_folio`) runs there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .limits import Caps

INF = 1 << 62


def largest_fit(limit: int, fits: Callable[[int], bool], hint: int | None = None) -> int:
    """The largest x in [0, limit] with fits(x), given that fits is monotone (true, then false).

    A `hint` near the answer (the costs are close to linear, so a proportional guess is
    usually off by a few pages) is widened by doubling steps until it brackets the answer,
    which a binary search then finds: a few calls of `fits` instead of log2(limit).
    """
    if limit <= 0 or fits(limit):
        return max(limit, 0)
    lo, hi = 0, limit  # fits(lo) holds (zero pages always fit), fits(hi) does not
    if hint is not None:
        hint = max(1, hint)  # a guess of 0 (at a limit) is settled by fits(1), not log2(limit)
    if hint is not None and lo < hint < hi:
        step = 1
        if fits(hint):
            lo = hint
            while lo + step < hi and fits(lo + step):
                lo += step
                step *= 2
            hi = min(hi, lo + step)
        else:
            hi = hint
            while hi - step > lo and not fits(hi - step):
                hi -= step
                step *= 2
            lo = max(lo, hi - step)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def new_regions(pt: dict, va0: int, x: int) -> int:  # type: ignore[type-arg]
    """Page-table pages the first x pages from va0 need: regions entered not yet present."""
    if x <= 0:
        return 0
    total = 0
    last = va0 + x - 1
    for s, present in pt.items():
        r0, r1 = va0 >> s, (last >> s) + 1
        total += (r1 - r0) - present.count(r0, r1)
    return total


def cumulative_fit(caps: Caps, alloc_cum: np.ndarray, data_cum: np.ndarray,
                   data_mask: np.ndarray, charge_cum: np.ndarray | None = None) -> int:
    """Pages of an explicit sequence that fit: the first index any cumulative cost exceeds
    (`charge_cum`: the charged part of the allocations, when not all of them are)."""
    n = len(alloc_cum)
    cut = n
    for cum, cap in ((alloc_cum, caps.alloc), (alloc_cum if charge_cum is None else charge_cum,
                                                 caps.charge)):
        if n and cum[-1] > cap:
            cut = min(cut, int(np.searchsorted(cum, cap, side="right")))
    if n and data_cum[-1] > caps.acct:
        cut = min(cut, int(np.searchsorted(data_cum, caps.acct, side="right")))
    if caps.guess_2014 is not None:
        bad = np.flatnonzero(data_mask & (alloc_cum > caps.guess_2014 - 1))
        if len(bad):
            cut = min(cut, int(bad[0]))
    return cut


def range_fits(caps: Caps, alloc: int, data: int, last_data_alloc: int | None,
               uncharged: int = 0) -> bool:
    """Whether a prefix with these cumulative costs passes every limit: `alloc` pages from the
    allocator, of which all but `uncharged` (3.15's page tables) charged to the memcg."""
    if alloc > caps.alloc or alloc - uncharged > caps.charge or data > caps.acct:
        return False
    if caps.guess_2014 is not None and data and last_data_alloc is not None:
        return last_data_alloc <= caps.guess_2014 - 1
    return True


def split_at(
    t: int, n: int, costs: Callable[[int], tuple[int, int, int]], hint: int
) -> tuple[int, int, int]:
    """Where the first `t` allocations of a step end: (end page of the payloads among them,
    payloads, slab pages). The pages whose allocations all lie within are found by a search;
    the next page may have its first allocations in too, in order: page tables, payload, slab.
    """
    p = largest_fit(n, lambda x: sum(costs(x)) <= t, hint)
    pt, pay, sl = costs(p)
    r = t - (pt + pay + sl)
    if r == 0 or p == n:
        return p, pay, sl
    pt1, pay1, _ = costs(p + 1)
    r -= min(r, pt1 - pt)
    take_pay = min(r, pay1 - pay)
    return (p + 1 if take_pay else p), pay + take_pay, sl + (r - take_pay)


def proportional(limit: int, cost: int, *caps: int | None) -> int:
    """Where a cost of `cost` over `limit` pages, if linear, would reach the smallest cap."""
    cap = min((c for c in caps if c is not None), default=limit)
    return max(0, min(limit, limit * cap // max(cost, 1)))
