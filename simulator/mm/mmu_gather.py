"""Freeing page tables through RCU.

Models mm/mmu_gather.c (v6.18) with CONFIG_MMU_GATHER_RCU_TABLE_FREE (x86 selects it):
`tlb_remove_table` batches the page-table pages `free_pgtables` (munmap, exit) and
`zap_pte_range`'s PT_RECLAIM (MADV_DONTNEED) take out, and `tlb_remove_table_free` hands the
batch to `call_rcu`: the pages are uncharged and freed only after a grace period, so that a
lockless page-table walker (GUP-fast) never sees a freed table. `pagetable_dtor` has already
taken them out of NR_PAGETABLE and the memcg's `pagetables`, and `mm_dec_nr_ptes` out of
`mm_pgtables_bytes`, at once.

Simplifications:
    The grace period is one fixed delay, `Costs.pgtable_rcu` (measured; call_rcu is lazy with
    CONFIG_RCU_LAZY and waits for other callbacks or a flush, so it varies from run to run);
    every batch waits it in full. [2014] 3.15 x86 freed page tables at once (no RCU table
    free without paravirt), and charged none.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .booking import pgtables_rcu_freed, pgtables_to_rcu
from .memcontrol import page_counter_uncharge
from .page_alloc import free_pages
from .signal import wake_up_all

if TYPE_CHECKING:
    from .machine import Machine
    from .memcontrol import MemCgroup
    from .task import TaskStruct


def tlb_remove_table(m: Machine, task: TaskStruct, n: int) -> None:
    """Models `tlb_remove_table()` -> `tlb_remove_table_free()` -> `call_rcu()` for n page-table
    pages of the task (taken from its nodes in node order): out of the mm's and the stats'
    counts now, uncharged from its memcg and freed after the grace period."""
    parts: list[tuple[int, int]] = []
    for nid in sorted(task.mm.pt_nodes):
        k = min(n, task.mm.pt_nodes[nid])
        if k:
            pgtables_to_rcu(m, task, nid, k)
            parts.append((nid, k))
            n -= k
    assert n == 0, "more page tables freed than the task has"
    if not parts:
        return
    if m.profile.pgtable_rcu_free:
        m.env.process(tlb_remove_table_rcu(m, task.memcg, parts))
    else:
        _free(m, task.memcg, parts)


def tlb_remove_table_rcu(
    m: Machine, memcg: MemCgroup, parts: list[tuple[int, int]]
) -> Generator[Any, Any, None]:
    """Models the RCU callback `tlb_remove_table_rcu()`: after the grace period the batch's
    pages are uncharged and freed; a charger waiting on an OOM may then find room."""
    yield m.env.timeout(m.costs.pgtable_rcu)
    _free(m, memcg, parts)
    m.log.emit("pgtable_rcu_free", memcg=memcg.path, pages=sum(n for _, n in parts),
               value=memcg.usage)


def _free(m: Machine, memcg: MemCgroup, parts: list[tuple[int, int]]) -> None:
    for nid, n in parts:
        pgtables_rcu_freed(m, memcg, nid, n)
        page_counter_uncharge(m, memcg, m.kmem_charge(n))
        free_pages(m, nid, n)
    wake_up_all(m.oom_waiters)
