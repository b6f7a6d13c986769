"""Bulk fault steps over an explicit page sequence (random or stride order, any mapping)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..mm.booking import anon_pages_added_at, lru_add_faulted, pgtables_added, shmem_folios_added_at
from ..mm.memcontrol import obj_stock_take
from ..mm.memory import fault_plans, map_file_pages_at
from ..mm.mm_types import PT_SHIFTS
from ..mm.shmem import shmem_acct_taken, xa_charge_taken
from ..mm.xarray import XA_NODE_BYTES, xa_insert_indices, xa_new_nodes_seq
from ..mm.zap import unmap_pages
from .book import charge_and_take_parts
from .fault_around import do_fault_around_array, filemap_map_windows
from .limits import Caps
from .solve import cumulative_fit

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.mm_types import VMA
    from ..mm.task import TaskStruct


def bulk_fault_array(
    m: Machine, task: TaskStruct, vma: VMA, idx: np.ndarray, write: bool, caps: Caps
) -> tuple[int, int]:
    """Vectorised walk of an explicit page sequence (any order, any mapping kind): each page
    as `fault_plans` says, and the step ends before the first page that needs the one-page path
    (SIGBUS, a swap-in)."""
    mm = task.mm
    inode = vma.file
    plans = fault_plans(m, vma, idx, write)
    stops = plans.sigbus | plans.swapin
    if getattr(inode, "file_lru", False):
        stops = stops | plans.data  # a disk read: `filemap_fault`, one page at a time
    stop = np.flatnonzero(stops)
    if len(stop):
        if stop[0] == 0:
            return 0, 0
        plans = plans.cut(int(stop[0]))
        idx = idx[:int(stop[0])]
    L = len(idx)
    act = ~plans.present
    anon, data, zero_new, mapf = plans.anon, plans.data, plans.zero, plans.map_file
    in_map, in_zero, fidx = plans.in_map, plans.in_zero, plans.fidx
    private_write = write and not vma.shared
    va = vma.start + idx
    pt_need = np.zeros(L, dtype=np.int64)
    pt_masks = {}
    cand = np.flatnonzero(act)
    for s in PT_SHIFTS:
        r = va >> s
        first = np.zeros(L, dtype=bool)
        first[cand[first_occurrences(r[cand])]] = True
        new = first & ~mm.pt[s].contains(r)
        pt_masks[s] = new
        pt_need += new
    # The slab pages the xarray nodes of each new folio cost the memcg's byte stock (last).
    slab = np.zeros(L, dtype=np.int64)
    dpos = np.flatnonzero(data)
    if len(dpos) and m.profile.kmem_charged:
        assert inode is not None  # data pages are folios of a file
        nodes = np.cumsum(xa_new_nodes_seq(inode.xa, inode.max_index(), fidx[dpos]))
        short = nodes * XA_NODE_BYTES - task.memcg.obj_stock
        slab_cum = np.maximum(0, -(-short // m.page_size))
        slab[dpos] = np.diff(slab_cum, prepend=0)
    per_page = pt_need + anon + data + slab
    alloc_cum = np.cumsum(per_page)
    data_cum = np.cumsum(data)
    charge_cum = None if m.profile.kmem_charged else alloc_cum - np.cumsum(pt_need)
    n = cumulative_fit(caps, alloc_cum, data_cum, data, charge_cum)
    if n == 0:
        return 0, 0
    around = do_fault_around_array(m, vma, idx[:n], plans.cut(n), write)  # before any PTE
    total = int(alloc_cum[n - 1])
    uncharged = 0 if charge_cum is None else total - int(charge_cum[n - 1])
    segs = charge_and_take_parts(m, task, total, uncharged)
    seg_nodes = np.array([nid for nid, _ in segs], dtype=np.int64)
    seg_ends = np.cumsum([c for _, c in segs]) if segs else np.zeros(0, np.int64)

    def node_of(alloc_index: np.ndarray) -> np.ndarray:
        return seg_nodes[np.searchsorted(seg_ends, alloc_index, side="left")]

    ac = alloc_cum[:n]
    d, an, sl = data[:n], anon[:n], slab[:n]
    data_nodes = node_of((ac - sl)[d]) if total else np.zeros(0, np.int64)
    anon_nodes = node_of((ac - sl - d)[an]) if total else np.zeros(0, np.int64)
    per_node = {nid: 0 for nid, _ in segs}
    for nid, c in segs:
        per_node[nid] += c
    for s in PT_SHIFTS:
        mm.pt[s].add_pages((va[:n] >> s)[pt_masks[s][:n]], 0)
    if sl.any():
        slab_nodes = node_of(ac[sl > 0])
        parts = [(nid, int((slab_nodes == nid).sum())) for nid in np.unique(slab_nodes).tolist()]
        xa_charge_taken(m, task.memcg, parts)
        for nid, c in parts:
            per_node[nid] -= c
    if inode is not None and d.any():
        fd = fidx[:n][d]
        if m.profile.kmem_charged:
            k = xa_insert_indices(inode.xa, inode.max_index(), fd, m.memcg_tag(task.memcg))
            obj_stock_take(task.memcg, k * XA_NODE_BYTES, 0, m.page_size)
        for nid in np.unique(data_nodes).tolist():
            sel = fd[data_nodes == nid]
            shmem_folios_added_at(m, inode, task.memcg, nid, sel, lru=False)
            shmem_acct_taken(m, inode, len(sel))
            per_node[nid] -= len(sel)
    if an.any():
        ai = idx[:n][an]
        if private_write:
            for p in ai[in_map[:n][an]].tolist():
                unmap_pages(m, task, vma, p, p + 1)
            for p in ai[in_zero[:n][an]].tolist():
                vma.zero.remove(p, p + 1)
        elif inode is None:
            for p in ai[in_zero[:n][an]].tolist():
                vma.zero.remove(p, p + 1)
        for nid in np.unique(anon_nodes).tolist():
            sel = ai[anon_nodes == nid]
            anon_pages_added_at(m, task, vma, sel, nid, lru=False)
            per_node[nid] -= len(sel)
    if d.any() or an.any():
        # Onto the LRU in fault order: each fault's folio, then its COW copy.
        pos = np.concatenate((np.flatnonzero(d) * 2, np.flatnonzero(an) * 2 + 1))
        order = np.argsort(pos, kind="stable")
        which = (pos[order] & 1).astype(np.int64)
        index = np.concatenate((fidx[:n][d] if inode is not None and d.any()
                                else np.zeros(0, np.int64), idx[:n][an]))[order]
        nids = np.concatenate((data_nodes, anon_nodes))[order]
        lru_add_faulted(m, task.memcg, (inode, vma), which, index, nids)
    for nid, c in per_node.items():
        pgtables_added(m, task, nid, c)
    if zero_new[:n].any():
        vma.zero.add_pages(idx[:n][zero_new[:n]], 0)
    if mapf[:n].any():
        if write:
            for p in idx[:n][mapf[:n] & in_zero[:n]].tolist():
                vma.zero.remove(p, p + 1)
        map_file_pages_at(m, task, vma, idx[:n][mapf[:n]])
    if around is None:
        return n, int(act[:n].sum())
    filemap_map_windows(m, task, vma, around)
    return n, int(act[:n].sum()) - around.covered


def first_occurrences(v: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct value of v, in order of value."""
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    if np.all(v[1:] >= v[:-1]):
        order = np.arange(len(v))
        sv = v
    else:
        order = np.argsort(v, kind="stable")
        sv = v[order]
    head = np.empty(len(v), dtype=bool)
    head[0] = True
    np.not_equal(sv[1:], sv[:-1], out=head[1:])
    return order[head]
