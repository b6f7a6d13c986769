"""The walkers: a range of pages taken in order, by slices of simulated time.

Models the loops of mm/gup.c (v6.18) `__get_user_pages` -> `faultin_page` -> `handle_mm_fault`
(used by `populate_vma_page_range` for mlock, MAP_POPULATE and MAP_LOCKED, and by
`faultin_page_range` for MADV_POPULATE_READ/WRITE, and the same walk for a program touching
pages itself), of `shmem_fallocate`/`generic_perform_write` (SGP_FALLOC/SGP_WRITE), and of
`shmem_file_read_iter` over pages in swap.

Each walker asks the machine's engine (`Machine.engine`, simulator/engine/engines.py) for the
largest step that needs no slow path: the bulk engine takes it in closed form, the per-page
reference one page at a time through the kernel's own one-page path. Where a step is 0, the
page needs a slow path (reclaim, OOM, SIGBUS, ENOSPC): the time of the pages already done
passes first, so that the slow path runs at its true time, and the one-page kernel function
(`handle_mm_fault`, `shmem_get_folio`) runs there. Both engines slice alike (slicing.py), so
each stops at the same page at the same time.

A page whose fault swaps in (a swap PTE, or a file page in swap) is a fast page only in a
sequential walk of an anonymous or shared mapping, when the memcg recorded for it is the
faulting task's (`swapin_in_range`): the bulk engine then takes such runs at once and the
reference one by one, each page costing `Costs.swapin` on top of the fault. Any other swap-in
is a one-page step in both engines, its swap read's time passing as soon as the page is mapped.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..mm.booking import shmem_folios_dirtied, shmem_folios_fallocated, shmem_folios_uptodate
from ..mm.debug import vm_debug_check
from ..mm.errno import EINTR, EINVAL
from ..mm.gup import PageSeq, WalkResult
from ..mm.memcg_high import mem_cgroup_handle_over_high, over_high_pending
from ..mm.memcontrol import CTX_SYSCALL
from ..mm.memory import (
    VM_FAULT_OK,
    disk_walkable,
    fault_dirty_shared_page,
    faulted_folios_uptodate,
    handle_mm_fault,
    needs_disk_read,
    needs_swapin,
    range_walkable,
)
from ..mm.psi import psi_memstall_wait
from ..mm.shmem import shmem_get_folio
from ..mm.shmem_inode import ShmemInode
from ..mm.shmem_io import FillResult
from .interact import walked_file
from .slicing import elapse, slice_pages

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.mm_types import VMA
    from ..mm.task import TaskStruct


def faultin_range(
    m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, write: bool, ctx: str, cost: float
) -> Generator[Any, Any, WalkResult]:
    """Fault in the pages of `seq` in order; stop at the first fault that fails.

    Returns a WalkResult; its page is the VMA page index where the walk stopped.
    """
    eng = m.engine
    pos, total = 0, len(seq)
    # Sequential walks of a range-walkable mapping take pages in swap on the fast path too
    # (`bulk_swapin_range`, and one page at a time in the reference), and a disk file's pages
    # read from disk (`bulk_fault_disk_range`); those reads' time is counted from the task's
    # read accounting.
    swapin_fast = seq.arr is None and (range_walkable(m, vma, write) or disk_walkable(vma, write))
    swapin_cost, disk_cost = m.costs.swapin, m.costs.disk_read
    passes, inode = walked_file(m, task, vma)  # may it pass other tasks' events
    walker = task if passes else None
    while pos < total:
        budget = slice_pages(m, cost, walker, total - pos, inode)
        m.levels.mark()
        faulted = swapped = reads = 0
        end = min(total, pos + budget)
        while pos < end:
            if task.sigkill:
                yield elapse(m, faulted * cost + swapped * swapin_cost + reads * disk_cost)
                return WalkResult("killed", pos, seq.at(pos))
            r0 = task.ioac_read_pages
            n, nf, ns = eng.fault_step(m, task, vma, seq, pos, end - pos, write, ctx, swapin_fast)
            if n:
                faulted_folios_uptodate(m, vma, seq, pos, pos + n)
                if write:
                    fault_dirty_shared_page(m, vma, seq, pos, pos + n)
                vm_debug_check(m)
                pos += n
                faulted += nf
                swapped += ns
                reads += task.ioac_read_pages - r0
                m.log.emit("fault_bulk", task=task.name, memcg=task.memcg.path,
                           page=seq.at(pos - 1), pages=n, value=task.memcg.usage)
                continue
            idx = seq.at(pos)
            if faulted or swapped:
                # Let the time of the pages already done pass before the slow path runs.
                task.cursor = idx
                yield elapse(m, faulted * cost + swapped * swapin_cost + reads * disk_cost)
                m.levels.mark()
                faulted = swapped = reads = 0
            was_present = vma.pte_present(idx, write)
            swapin = not was_present and needs_swapin(m, vma, idx, write)
            disk = not was_present and needs_disk_read(m, vma, idx, write)
            thrash0 = task.ioac_thrash_pages
            status = yield from handle_mm_fault(m, task, vma, idx, write, ctx)
            if status != VM_FAULT_OK:
                yield elapse(m, faulted * cost)
                return WalkResult(status, pos, idx)
            faulted += 0 if was_present else 1
            faulted_folios_uptodate(m, vma, seq, pos, pos + 1)
            if write:
                fault_dirty_shared_page(m, vma, seq, pos, pos + 1)
            pos += 1
            if swapin or disk:  # the synchronous read, after the page is in and mapped
                read = elapse(m, swapin_cost if swapin else m.costs.disk_read)
                if task.ioac_thrash_pages > thrash0:  # a workingset refault: thrashing
                    yield from psi_memstall_wait(m, task, read)
                else:
                    yield read
                m.levels.mark()
            if over_high_pending(task, ctx):
                # A user fault returns to user space (memory.high's reclaim and penalty sleep):
                # the fault's time first; then a fresh slice.
                yield elapse(m, faulted * cost)
                m.levels.mark()
                faulted = 0
                yield from mem_cgroup_handle_over_high(m, task)
                end = pos
        task.cursor = seq.at(min(pos, total - 1))
        m.log.emit("fault_slice", task=task.name, memcg=task.memcg.path, page=seq.at(pos - 1),
                   pages=faulted, value=task.memcg.usage)
        yield elapse(m, faulted * cost + swapped * swapin_cost + reads * disk_cost)
    if task.sigkill:
        return WalkResult("killed", pos, None)
    return WalkResult(VM_FAULT_OK, pos)


def shmem_fill_range(
    m: Machine, task: TaskStruct, inode: ShmemInode, a: int, b: int, cost: float,
    falloc: bool = False,
) -> Generator[Any, Any, FillResult]:
    """Instantiate every hole of file pages `[a, b)` in order, as SGP_FALLOC/SGP_WRITE do
    (`shmem_fallocate`, `shmem_write_begin`): by the engine's steps, and through
    `shmem_get_folio` at the page where a limit is reached. Every folio reached is dirtied; a
    write makes it uptodate, fallocate (`falloc`) leaves the holes it fills !uptodate."""
    eng = m.engine
    filled: list[tuple[int, int]] = []
    pos = a
    swapin = m.costs.swapin
    while pos < b:
        budget = slice_pages(m, cost)
        m.levels.mark()
        end = min(b, pos + budget)
        start = pos
        swapped = 0  # pages of this slice swapped in: their reads take time too
        while pos < end:
            if task.sigkill:
                yield elapse(m, (pos - start) * cost + swapped * swapin)
                return FillResult(EINTR, pos - a, pos, filled)
            k = len(filled)
            n, ns = eng.fill_step(m, task, inode, pos, end - pos, filled)
            if n:
                # write(2) and fallocate dirty every folio they reach (`shmem_write_end`;
                # `shmem_fallocate` so that reclaim swaps rather than frees them).
                shmem_folios_dirtied(m, inode, pos, pos + n)
                # Every folio reached is uptodate after (a write fills it; SGP_FALLOC clears
                # one an earlier fallocate left !uptodate) but the holes fallocate fills.
                shmem_folios_uptodate(m, inode, pos, pos + n)
                if falloc:
                    shmem_folios_fallocated(m, inode, filled[k:])
                vm_debug_check(m)
                pos += n
                swapped += ns
                continue
            if pos > start:
                yield elapse(m, (pos - start) * cost + swapped * swapin)
                m.levels.mark()
                start, swapped = pos, 0
            was_swapped = inode.swap.has(pos)
            err = yield from shmem_get_folio(m, task, inode, pos, CTX_SYSCALL, past_eof=True)
            if err:
                yield elapse(m, (pos - start) * cost)
                return FillResult(err, pos - a, pos, filled)
            shmem_folios_dirtied(m, inode, pos, pos + 1)
            if not falloc:
                shmem_folios_uptodate(m, inode, pos, pos + 1)
            elif not was_swapped:
                shmem_folios_fallocated(m, inode, [(pos, pos + 1)])
            pos += 1
            if was_swapped:  # not added by this call (no undo); its swap read takes time
                yield elapse(m, cost + m.costs.swapin)
                m.levels.mark()
                start = pos
            else:
                filled.append((pos - 1, pos))
            if over_high_pending(task, CTX_SYSCALL):  # try_charge_memcg's synchronous call
                yield elapse(m, (pos - start) * cost + swapped * swapin)
                m.levels.mark()
                start, swapped = pos, 0
                yield from mem_cgroup_handle_over_high(m, task)
                end = pos
        yield elapse(m, (pos - start) * cost + swapped * swapin)
    if task.sigkill:
        return FillResult(EINTR, pos - a, None, filled)
    return FillResult(None, b - a, None, filled)


def read_range(
    m: Machine, task: TaskStruct, inode: ShmemInode, a: int, end: int
) -> Generator[Any, Any, tuple[int, int, int, str | None, float]]:
    """The walk of `shmem_file_read_iter` over pages `[a, end)` (below i_size) with pages in
    swap: holes and pages in memory are copied, runs of pages in swap are swapped in by the
    engine's steps, and the page where a limit is reached goes through `shmem_get_folio`
    (reclaim, OOM). Returns as `shmem_file_read_iter`; the time passes here, by slices.
    """
    eng = m.engine
    rd, sw = m.costs.read, m.costs.read + m.costs.swapin
    pos, holes, swapped = a, 0, 0

    def took(n_rd: int, n_sw: int) -> float:
        """The time of the pages a slice took (from counts, so that the engines agree)."""
        return n_rd * rd + n_sw * sw

    while pos < end:
        stop = min(end, pos + slice_pages(m, sw))
        m.levels.mark()
        n_rd = n_sw = 0
        while pos < stop:
            if task.sigkill:
                yield elapse(m, took(n_rd, n_sw))
                return pos - a, holes, swapped, None, 0.0
            nxt = inode.swap.first_present(pos, stop)
            upto = stop if nxt is None else nxt
            if upto > pos:  # holes and pages in memory: copied
                holes += inode.pages.holes(pos, upto)
                n_rd += upto - pos
                pos = upto
                continue
            n = eng.read_swapin_step(m, task, inode, pos, stop)
            if n:
                vm_debug_check(m)
                swapped += n
                n_sw += n
                pos += n
                continue
            yield elapse(m, took(n_rd, n_sw))  # the pages so far, then the slow path
            m.levels.mark()
            n_rd = n_sw = 0
            was_swapped = inode.swap.has(pos)
            err = yield from shmem_get_folio(m, task, inode, pos, CTX_SYSCALL)
            if err == EINVAL and pos >= inode.size_pages(m.page_size):
                return pos - a, holes, swapped, None, 0.0  # truncated meanwhile: EOF
            if err:
                return pos - a, holes, swapped, (err if pos == a else None), 0.0
            if task.sigkill:
                return pos - a, holes, swapped, None, 0.0
            swapped += int(was_swapped)
            n_sw += int(was_swapped)
            n_rd += int(not was_swapped)
            pos += 1
            if over_high_pending(task, CTX_SYSCALL):  # try_charge_memcg's synchronous call
                yield elapse(m, took(n_rd, n_sw))
                m.levels.mark()
                n_rd = n_sw = 0
                yield from mem_cgroup_handle_over_high(m, task)
                stop = pos
        yield elapse(m, took(n_rd, n_sw))
    return end - a, holes, swapped, None, 0.0
