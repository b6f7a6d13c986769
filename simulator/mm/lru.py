"""The LRU lists: per memcg and node, inactive and active, for swap-backed and file pages.

Models the classic two-list LRU of mm/swap.c and mm/vmscan.c (v6.18, built without MGLRU):
`folio_add_lru` puts a new folio at the head of its inactive list (anonymous and shmem folios
on the anon lists, swap-backed; page cache of disk files on the file lists), reclaim isolates
from the tail (`isolate_lru_folios`), and puts back at the head what it keeps or activates
(`move_folios_to_lru`). Mlocked folios are unevictable (`folio_evictable`): reclaim never
looks at them.

State that grows with events, not pages: a list is a deque of runs, each a range of one
object's pages (a file's page indices, or a VMA's) that came onto the list together, in page
order. Each run has a stamp; the object's `lru` extent map holds, per page, the stamp of the
run the page is in. A page that leaves memory (freed, swapped out, truncated) is taken out of
its object's map (`lru_del`), which also lowers the run's live count and the list's size; a
run is dropped when the scan reaches it dead. So sizes are exact, the order is exact, and a
page re-added later is in its new run only.

PG_referenced and PG_workingset are kept per run (`referenced`, `workingset`); the accessed
bits of the PTEs mapping a page are per page, in the object's `young` extent map (set by the
fault that maps it, tested and cleared by reclaim's `folio_referenced`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .extents import ExtentMap

LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = 0, 1, 2, 3
LRU_UNEVICTABLE = 4
LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")
NR_LRU_LISTS = 5


def is_file_lru(lru: int) -> bool:
    """`is_file_lru()`."""
    return lru >= LRU_INACTIVE_FILE


def is_active_lru(lru: int) -> bool:
    """`is_active_lru()`."""
    return lru in (LRU_ACTIVE_ANON, LRU_ACTIVE_FILE)


@dataclass(slots=True, eq=False)
class LruRun:
    """Pages `[a, b)` of `obj` that came onto list `lru` of `lruvec` together.

    `live` counts the pages of the run still on the list (their stamp in `obj.lru` is this
    run's); pages before `a` were already taken from it.
    """

    obj: Any
    a: int
    b: int
    stamp: int
    lruvec: Lruvec
    lru: int
    referenced: bool
    live: int
    workingset: bool = False  # PG_workingset: the pages were deactivated from an active list


@dataclass(eq=False)
class Lruvec:
    """`struct lruvec` of one memcg on one node: its four lists, tail first (index 0 is the
    oldest run), and their sizes in pages (`lruvec_lru_size`)."""

    memcg: Any
    nid: int
    lists: list[deque[LruRun]] = field(
        default_factory=lambda: [deque() for _ in range(NR_LRU_LISTS)])
    nr: list[int] = field(default_factory=lambda: [0] * NR_LRU_LISTS)
    nonresident_age: int = 0  # evictions and activations so far (mm/workingset.c)
    # reclaim statistics of this lruvec's memcg are on the memcg (memory.stat)

    def size(self, lru: int) -> int:
        """`lruvec_lru_size()`: pages on list `lru`."""
        return self.nr[lru]


@dataclass(eq=False)
class LruState:
    """The machine's LRU bookkeeping: the next stamp and every run by stamp.

    `anon`: whether the anon lists are kept at all. On a machine without swap no reclaim ever
    scans them (`get_scan_count`: no swap, file lists only), so their order and sizes cannot
    change any result and the model does not keep them (the many-task benchmark pays a run
    per page of a random-order walk otherwise). Mlocked pages go unevictable only when found
    by a scan, so nothing else reads them either."""

    next_stamp: int = 1
    runs: dict[int, LruRun] = field(default_factory=dict)
    anon: bool = True


def mem_cgroup_lruvec(memcg: Any, nid: int) -> Lruvec:
    """`mem_cgroup_lruvec()`: the memcg's lruvec on node `nid`, made on first use."""
    vecs = memcg.lruvecs
    vec = vecs.get(nid)
    if vec is None:
        vec = vecs[nid] = Lruvec(memcg, nid)
    return vec


def lru_add_range(st: LruState, vec: Lruvec, lru: int, obj: Any, a: int, b: int,
                  young: bool, referenced: bool = False, workingset: bool = False) -> None:
    """`folio_add_lru` for pages `[a, b)` of `obj`, in page order, at the head of list `lru`;
    `young`: a fault maps them (their PTEs' accessed bits are set); `referenced` and
    `workingset`: their PG_referenced and PG_workingset.

    The pages must not be on any list (new folios, or folios just isolated). Pages that
    continue the head run (the same object and flags, from the page where it ends) join it:
    the list's order is the same, and a list of many short additions (the pieces a reclaim
    rotates, a page at a time in the reference engine) stays a few runs."""
    if b <= a:
        return
    dq = vec.lists[lru]
    if dq:
        head = dq[-1]
        if (head.b == a and head.obj is obj and head.live and head.referenced == referenced
                and head.workingset == workingset):
            head.b = b
            head.live += b - a
            obj.lru.fill(a, b, head.stamp)
            if young:
                obj.young.fill(a, b, 0)
            vec.nr[lru] += b - a
            return
    stamp = st.next_stamp
    st.next_stamp += 1
    run = LruRun(obj, a, b, stamp, vec, lru, referenced, b - a, workingset)
    st.runs[stamp] = run
    obj.lru.fill(a, b, stamp)
    if young:
        obj.young.fill(a, b, 0)
    dq.append(run)
    vec.nr[lru] += b - a


def lru_add_runs(st: LruState, vec: Lruvec, lru: int, obj: Any, runs: list[tuple[int, int]],
                 young: bool, referenced: bool = False, workingset: bool = False) -> None:
    """`lru_add_range` for each run of `runs`, in that order."""
    for a, b in runs:
        lru_add_range(st, vec, lru, obj, a, b, young, referenced, workingset)


def lru_del(st: LruState, obj: Any, a: int, b: int) -> None:
    """`lruvec_del_folio` for every page of `[a, b)` of `obj` on a list (the others are not):
    they leave memory, or are isolated by reclaim."""
    lru_map: ExtentMap = obj.lru
    if not len(lru_map):
        return
    for stamp, n in lru_map.remove(a, b).items():
        run = st.runs[stamp]
        run.live -= n
        run.lruvec.nr[run.lru] -= n
        if run.live == 0:
            del st.runs[stamp]


def lru_del_all(st: LruState, obj: Any) -> None:
    """Every page of `obj` leaves its list (the object goes: a file evicted, a VMA unmapped)."""
    if len(obj.lru):
        lru_del(st, obj, 0, obj.lru.last() + 1)


def lru_putback_range(st: LruState, obj: Any, a: int, b: int) -> None:
    """`folio_putback_lru` after munlock: pages of `[a, b)` of `obj` on an unevictable list
    go back to the head of their inactive list (evictable again)."""
    back: list[tuple[LruRun, int, int]] = []
    for s, e, stamp in obj.lru.runs(a, b):
        run = st.runs[stamp]
        if run.lru == LRU_UNEVICTABLE:
            back.append((run, s, e))
    for run, s, e in back:
        lru_del(st, obj, s, e)
        inactive = LRU_INACTIVE_FILE if getattr(obj, "file_lru", False) else LRU_INACTIVE_ANON
        lru_add_range(st, run.lruvec, inactive, obj, s, e, False, run.referenced, run.workingset)


def isolate_lru_folios(st: LruState, vec: Lruvec, lru: int, nr_to_scan: int
                       ) -> list[tuple[LruRun, int, int]]:
    """`isolate_lru_folios()`: take up to `nr_to_scan` pages from the tail of list `lru`.

    Returns `(run, start, end)` pieces in scan order (oldest first), each a range of one run's
    object, off the list. The run keeps its flags for the caller to read."""
    dq = vec.lists[lru]
    taken: list[tuple[LruRun, int, int]] = []
    want = nr_to_scan
    while want > 0 and dq:
        run = dq[0]
        pieces: list[tuple[LruRun, int, int]] = []
        got = 0
        if run.live:
            for s, e, stamp in run.obj.lru.runs(run.a, run.b):
                if stamp != run.stamp:
                    continue
                e = min(e, s + want - got)
                pieces.append((run, s, e))
                got += e - s
                if got == want:
                    break
        for _r, s, e in pieces:
            lru_del(st, run.obj, s, e)
        if pieces:
            run.a = pieces[-1][2]
        if run.live == 0:
            dq.popleft()
        taken += pieces
        want -= got
    return taken


def lru_pages_in_order(vec: Lruvec, lru: int) -> list[tuple[int, int, int]]:
    """The pages of list `lru`, tail first, as `(id(obj), start, end)` ranges: the list's order
    independent of how it is cut into runs (for the differential tests and invariants)."""
    out: list[tuple[int, int, int]] = []
    for run in vec.lists[lru]:
        if run.live == 0:
            continue
        for s, e, stamp in run.obj.lru.runs(run.a, run.b):
            if stamp != run.stamp:
                continue
            if out and out[-1][0] == id(run.obj) and out[-1][2] == s:
                out[-1] = (id(run.obj), out[-1][1], e)
            else:
                out.append((id(run.obj), s, e))
    return out


def lru_set_referenced(st: LruState, obj: Any, a: int, b: int) -> None:
    """`folio_set_referenced` for the pages of `[a, b)` of `obj` that are on a list without
    PG_referenced, where they are: a run is cut in place into the pages before, the pages set
    and the pages after, so the list's order does not change."""
    pos = a
    while True:
        piece = next(((s, e, t) for s, e, t in obj.lru.runs(pos, b) if not st.runs[t].referenced),
                     None)
        if piece is None:
            return
        s, e, stamp = piece
        pos = e
        run = st.runs[stamp]
        dq = run.lruvec.lists[run.lru]
        at = dq.index(run)
        tail = [(ts, te) for ts, te, t in obj.lru.runs(e, run.b) if t == stamp]
        new: list[LruRun] = []
        parts = [(s, e, True, [(s, e)])]
        if tail:
            parts.append((tail[0][0], run.b, False, tail))
        for lo, hi, ref, pieces in parts:
            n = sum(pe - ps for ps, pe in pieces)
            r = LruRun(obj, lo, hi, st.next_stamp, run.lruvec, run.lru, ref, n, run.workingset)
            st.next_stamp += 1
            st.runs[r.stamp] = r
            for ps, pe in pieces:
                obj.lru.remove(ps, pe)
                obj.lru.fill(ps, pe, r.stamp)
            run.live -= n
            new.append(r)
        run.b = s
        if run.live == 0:
            del st.runs[stamp]
        for i, r in enumerate(new):
            dq.insert(at + 1 + i, r)
