"""MADV_PAGEOUT steps: the pages a range maps, reclaimed to swap by runs (bulk engine).

The rules are the kernel's, in simulator/mm/madvise.py (`kept_file_pages`) and vmscan.py (`anon_pageout`)
and vmscan.py (`shrink_folio_list`: clean shmem folios freed, dirty ones to `shmem_writeout`);
the reference engine takes the same walk one page at a time (reference.py `pageout_pages`).
Both must leave the same state and counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.madvise import kept_file_pages, unmap_file_range
from ..mm.vmscan import anon_pageout, shrink_folio_list

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.mm_types import VMA
    from ..mm.task import TaskStruct


def pageout_runs(m: Machine, task: TaskStruct, vma: VMA, a: int, b: int) -> int:
    """`madvise_cold_or_pageout_pte_range` over `[a, b)` by runs of pages, in address order."""
    segs: list[tuple[int, int, bool]] = [(s, e, True) for s, e, _ in vma.cow.runs(a, b)]
    inode = vma.file
    if inode is not None and len(vma.mapped) and not getattr(inode, "file_lru", False):
        kept = kept_file_pages(vma, inode)
        off = vma.pgoff
        for s, e, _ in vma.mapped.runs(a, b):
            for hs, he in kept.hole_runs(off + s, off + e):
                segs.append((hs - off, he - off, False))
    segs.sort()
    done = 0
    for s, e, anon in segs:
        if anon:
            done += anon_pageout(m, task, vma, s, e)
        else:
            assert inode is not None
            unmap_file_range(m, task, vma, vma.pgoff + s, vma.pgoff + e)
            done += shrink_folio_list(m, inode, vma.pgoff + s, vma.pgoff + e, task.name)
    return done
