"""A disk file's page cache walked by read(2) and write(2): the walker and both engines' steps.

The walker takes the range in order by slices (slicing.py), as the other walkers do; within a
slice it asks the engine for the largest step that needs no slow path. The bulk step is closed
form: up to the first page with a shadow entry (a refault is one page at a time in both
engines: its activation depends on the lists as they are then), the largest prefix whose
missing pages fit every limit (`largest_fit` over their count) is taken at once: cached folios
marked accessed (or dirtied), missing ones charged, taken from the zonelist and added. The
reference takes one page through `filemap_add_folio`. Where a step is 0 the one-page kernel
path (`filemap_get_folio`) runs after the time of the pages done has passed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..mm.booking import file_folios_added, shmem_folios_dirtied
from ..mm.debug import vm_debug_check
from ..mm.errno import EINVAL
from ..mm.filemap_io import filemap_add_folio, filemap_get_folio
from ..mm.lru import LRU_INACTIVE_FILE
from ..mm.memcg_high import mem_cgroup_handle_over_high, over_high_pending
from ..mm.memcontrol import CTX_SYSCALL
from ..mm.pagecache import folio_mark_accessed
from ..mm.psi import psi_memstall_wait
from .book import charge_and_take_parts
from .limits import snapshot_caps
from .slicing import elapse, run_fast_path, slice_pages
from .solve import largest_fit, range_fits

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.pagecache import DiskInode
    from ..mm.task import TaskStruct


def file_range(
    m: Machine, task: TaskStruct, inode: DiskInode, a: int, end: int, write: bool
) -> Generator[Any, Any, tuple[int, int, str | None]]:
    """The walk of `filemap_read` (or, `write`, of `generic_perform_write`) over pages
    `[a, end)`: (pages done, of which read from disk, errno or None: only when no page was
    done). A page costs `costs.read` (`costs.write`), plus `costs.disk_read` for a read from
    disk; the time passes here, by slices."""
    eng = m.engine
    per = m.costs.write if write else m.costs.read
    disk = 0.0 if write else m.costs.disk_read
    pos, reads = a, 0

    def took(n: int, nd: int) -> float:
        return n * per + nd * disk

    while pos < end:
        stop = min(end, pos + slice_pages(m, per + disk))
        m.levels.mark()
        n_all = n_disk = 0
        while pos < stop:
            if task.sigkill:
                yield elapse(m, took(n_all, n_disk))
                return pos - a, reads, None
            if not write:  # a read stops at i_size as it is now (truncated meanwhile: EOF)
                stop = min(stop, inode.size_pages(m.page_size))
                if pos >= stop:
                    yield elapse(m, took(n_all, n_disk))
                    return pos - a, reads, None
            n, nd = eng.file_step(m, task, inode, pos, stop, write)
            if n:
                vm_debug_check(m)
                pos += n
                n_all += n
                n_disk += nd
                reads += nd
                continue
            yield elapse(m, took(n_all, n_disk))  # the pages so far, then the slow path
            m.levels.mark()
            n_all = n_disk = 0
            cached = inode.pages.has(pos)
            thrash0 = task.ioac_thrash_pages
            err = yield from filemap_get_folio(m, task, inode, pos, write)
            if err == EINVAL:
                return pos - a, reads, None  # truncated below it meanwhile: EOF
            if err:
                return pos - a, reads, (err if pos == a else None)
            if write:
                shmem_folios_dirtied(m, inode, pos, pos + 1)
            if task.sigkill:
                return pos - a, reads, None
            nd = int(not cached and not write)
            reads += nd
            pos += 1
            if task.ioac_thrash_pages > thrash0:
                # `filemap_read_folio` of a PG_workingset folio: its read is a memory stall
                yield from psi_memstall_wait(m, task, elapse(m, per + disk))
                m.levels.mark()
            else:
                n_all += 1
                n_disk += nd
            if over_high_pending(task, CTX_SYSCALL):  # try_charge_memcg's synchronous call
                yield elapse(m, took(n_all, n_disk))
                m.levels.mark()
                n_all = n_disk = 0
                yield from mem_cgroup_handle_over_high(m, task)
                stop = pos
        yield elapse(m, took(n_all, n_disk))
    return end - a, reads, None


def bulk_file_step(m: Machine, task: TaskStruct, inode: DiskInode, pos: int, stop: int,
                   write: bool) -> tuple[int, int]:
    """The largest run of pages from `pos` (before `stop`) that needs no slow path, at once:
    (pages, of which read from disk). A read stops before the first page with a shadow entry
    (a refault); the pages missing in the run fit every limit now."""
    limit = stop - pos
    if not write and len(inode.shadow):
        sh = inode.shadow.first_present(pos, stop)
        if sh is not None:
            limit = sh - pos
    if limit <= 0:
        return 0, 0
    caps = snapshot_caps(m, task, inode)

    def fits(x: int) -> bool:
        d = inode.pages.holes(pos, pos + x)
        return range_fits(caps, d, d, None)

    n = largest_fit(limit, fits, min(limit, caps.mem + inode.pages.count(pos, pos + limit)))
    if n == 0:
        return 0, 0
    holes = inode.pages.hole_runs(pos, pos + n)
    cached = inode.pages.runs(pos, pos + n)
    d = sum(e - s for s, e in holes)
    if write:
        pass
    else:
        for s, e, _ in cached:
            folio_mark_accessed(m, inode, s, e)
    segs = charge_and_take_parts(m, task, d)
    hi = 0
    for nid, cnt in segs:
        while cnt:
            s, e = holes[hi]
            k = min(cnt, e - s)
            file_folios_added(m, inode, task.memcg, nid, s, s + k, LRU_INACTIVE_FILE,
                              referenced=not write)
            task.ioac_read_pages += 0 if write else k
            cnt -= k
            if s + k < e:
                holes[hi] = (s + k, e)
            else:
                hi += 1
    if write:
        shmem_folios_dirtied(m, inode, pos, pos + n)
    return n, 0 if write else d


def reference_file_step(m: Machine, task: TaskStruct, inode: DiskInode, pos: int, stop: int,
                        write: bool) -> tuple[int, int]:
    """The reference's step: page `pos` alone: a cached folio marked accessed (or dirtied), or
    a missing one added through `filemap_add_folio` if it needs no slow path (not a refault,
    within every limit): (1, read from disk), else (0, 0)."""
    if inode.pages.has(pos):
        if write:
            shmem_folios_dirtied(m, inode, pos, pos + 1)
        else:
            folio_mark_accessed(m, inode, pos, pos + 1)
        return 1, 0
    if not write and inode.shadow.has(pos):
        return 0, 0
    if not range_fits(snapshot_caps(m, task, inode), 1, 1, None):
        return 0, 0
    err = run_fast_path(m, filemap_add_folio(m, task, inode, pos, CTX_SYSCALL, write))
    assert err is None, err
    if write:
        shmem_folios_dirtied(m, inode, pos, pos + 1)
    return 1, 0 if write else 1
