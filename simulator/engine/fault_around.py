"""Fault-around over a bulk step, in closed form.

Models, for a whole step of a walk, what `do_read_fault` -> `do_fault_around` ->
`filemap_map_pages` (mm/memory.c, mm/filemap.c, v6.18) do fault by fault, as the reference
does through `memory.do_fault_around`: each read fault first maps the pages of its window (the
16-page block of its virtual address, clamped to the VMA) that are in the page cache,
uptodate and under an empty PTE (`fault_around_pages`). Nothing is allocated or charged, so a
step's length (what fits every limit) does not change; only (a) which pages end up mapped and
(b) how many faults the step takes (its time) do.

Within a step, a page the walk has not reached yet is in the state it had at the step's
start: the walk's own faults change only the pages they fault (a hole instantiated, a
fallocated folio cleared, a folio swapped in: each mapped by its own fault). So the pages a
fault-around may map are the step's `C0`: cached, uptodate, empty-PTE pages at the step's
start. The first fault of the step in a window (`f_B`, in walk order) maps all of C0 in that
window, and every later fault there maps nothing new. Hence:

- a walked page of C0 visited after `f_B` of its window is already mapped: no fault
  (`covered`); `f_B` itself faults, whichever it is;
- every window with a fault has its C0 pages mapped, walked or not (`windows`): for a
  sequential walk the walked pages are mapped anyway, and only the first and last windows
  reach beyond the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..mm.memory import (
    FAULT_AROUND_PAGES,
    fault_around_pages,
    fault_around_window,
    map_file_pages,
    map_file_pages_at,
    should_fault_around,
)

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.memory import FaultPlans
    from ..mm.mm_types import VMA
    from ..mm.task import TaskStruct


@dataclass
class AroundStep:
    """A step's fault-around, worked out from the state at its start.

    Attributes:
        covered: walked pages an earlier fault-around of the step mapped: not faults.
        windows: VMA page ranges `[lo, hi)` of the windows with a fault of a random or stride
            step, whose cached pages it maps besides the ones it walks (`filemap_map_windows`,
            after the step: they may be many and fragmented, so as a mask over their pages).
        runs: the VMA page runs a sequential step maps that way: beyond it, so known at once.
    """

    covered: int = 0
    windows: list[tuple[int, int]] = field(default_factory=list)
    runs: list[tuple[int, int]] = field(default_factory=list)


def not_present(vma: VMA, a: int, b: int) -> int:
    """The pages of `[a, b)` with no PTE a read may use (`pte_present` false)."""
    if b <= a:
        return 0
    n = b - a - vma.mapped.count(a, b)
    if len(vma.cow):
        n -= vma.cow.count(a, b)
    if len(vma.zero):
        n -= vma.zero.count(a, b)
    return n


def do_fault_around_range(m: Machine, vma: VMA, a: int, n: int,
                          write: bool) -> AroundStep | None:
    """The fault-around of a sequential read step over VMA pages `[a, a + n)` whose faults
    all reach `do_read_fault` (no swap PTE, none past i_size), over runs: None when none of
    its faults has a page to map around it.

    In the walk's order, the first fault of a window is its first page without a PTE; that
    page is of C0 (so not covered) only if no other page without a PTE precedes it in the
    window. Every window the step enters has had a fault unless all its walked pages were
    mapped; the inner ones are walked whole, so only the first and last can add pages.
    """
    inode = vma.file
    if write or n <= 0 or inode is None or not should_fault_around(vma):
        return None
    F, base, b = FAULT_AROUND_PAGES, vma.start, a + n
    ws = max((base + a) // F * F - base, 0)  # the first window's start, the last's end
    we = min(((base + b - 1) // F + 1) * F - base, vma.npages)
    cached = inode.pages.count(vma.pgoff + ws, vma.pgoff + we)
    if not cached or cached == vma.mapped.count(ws, we):
        return None  # no page cache near, or all of it mapped: nothing to map around
    c0 = fault_around_pages(m, vma, ws, we)
    if not c0:
        return None
    step = AroundStep()
    for s, e in c0:
        s, e = max(s, a), min(e, b)
        if e <= s:
            continue
        block = (base + s) // F
        first = int(not_present(vma, max(a, block * F - base), s) == 0)
        firsts = first + (base + e - 1) // F - block
        step.covered += e - s - firsts
    # The parts of the first and last windows beyond the step, if they had a fault there: as
    # at the step's start, so C0 there is known now.
    edges = []
    if ws < a and not_present(vma, a, min(b, (base + a) // F * F + F - base)):
        edges.append((ws, a))
    if b < we and not_present(vma, max(a, (base + b - 1) // F * F - base), b):
        edges.append((b, we))
    for lo, hi in edges:
        step.runs += [(max(s, lo), min(e, hi)) for s, e in c0 if s < hi and e > lo]
    return step


def edge_windows(vma: VMA, a: int, b: int) -> list[tuple[int, int]]:
    """The parts beyond a sequential step over `[a, b)` of its first and last windows."""
    out = []
    ws = fault_around_window(vma, a)[0]
    if ws < a:
        out.append((ws, a))
    we = fault_around_window(vma, b - 1)[1]
    if b < we:
        out.append((b, we))
    return out


def do_fault_around_array(m: Machine, vma: VMA, idx: np.ndarray, plans: FaultPlans,
                          write: bool) -> AroundStep | None:
    """The fault-around of a read step over the distinct VMA pages `idx`, in that order, whose
    `plans` (at the step's start) have no SIGBUS or swap PTE: None when none of its faults has
    a page to map around it.

    Each window's first fault is the first position in it without a PTE (`act`); the walked
    pages of C0 (cached, uptodate, PTE none: a mapped folio's plan that is not fallocated)
    after it in their window are covered. Every window with a fault maps its C0 pages.
    """
    inode = vma.file
    if write or not len(idx) or inode is None or not should_fault_around(vma):
        return None
    act = ~plans.present
    if not act.any():
        return None
    lo = fault_around_window(vma, int(idx.min()))[0]
    hi = fault_around_window(vma, int(idx.max()))[1]
    if not inode.pages.count(vma.pgoff + lo, vma.pgoff + hi):
        return None  # no page cache anywhere near: nothing to map around
    fault_at = np.flatnonzero(act)
    block = (vma.start + idx[fault_at]) // FAULT_AROUND_PAGES
    c0 = plans.map_file[fault_at] & ~plans.data[fault_at]
    if len(inode.falloc):
        c0 &= ~inode.falloc.contains(plans.fidx[fault_at])
    uniq, first = np.unique(block, return_index=True)
    step = AroundStep(covered=int(c0.sum()) - int(c0[first].sum()))
    # The windows with a fault, as runs of adjacent blocks, clamped to the VMA.
    cut = np.flatnonzero(np.diff(uniq) != 1) + 1
    for run in np.split(uniq, cut):
        ws = max(int(run[0]) * FAULT_AROUND_PAGES - vma.start, 0)
        we = min((int(run[-1]) + 1) * FAULT_AROUND_PAGES - vma.start, vma.npages)
        step.windows.append((ws, we))
    return step


def filemap_map_windows(m: Machine, task: TaskStruct, vma: VMA, step: AroundStep | None) -> int:
    """Map, after the step's own pages, the cached pages of its windows that it did not walk
    (`filemap_map_pages` for each window with a fault): the state outside the walked pages is
    the step's start state, so they are C0. Returns how many."""
    if step is None:
        return 0
    added = sum(map_file_pages(m, task, vma, s, e) for s, e in step.runs)
    if not step.windows:
        return added
    pages = np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in step.windows])
    return added + map_file_pages_at(m, task, vma, pages[fault_around_mask(m, vma, pages)])


def fault_around_mask(m: Machine, vma: VMA, pages: np.ndarray) -> np.ndarray:
    """`fault_around_pages` as a mask over the VMA pages `pages`: cached, uptodate, below
    i_size, under an empty PTE."""
    inode = vma.file
    assert inode is not None
    fidx = vma.pgoff + pages
    ok = (fidx < inode.size_pages(m.page_size)) & inode.pages.contains(fidx)
    if len(inode.falloc):
        ok &= ~inode.falloc.contains(fidx)
    for em in (vma.mapped, vma.cow, vma.zero, vma.swap):
        if len(em):
            ok &= ~em.contains(pages)
    return ok
