"""The system-call layer: one function per scenario op, each a SimPy generator.

An op resolves its arguments (the fd's file, the map's VMA, a range in pages), calls the
kernel model's function for the call (simulator/mm/) and maps its result: it returns
(success) or raises `OpError` (the call returned an errno), `Sigbus` (a user access got
SIGBUS), `Killed` (the task got SIGKILL while in the op). The task runner
(simulator/tasks.py) turns those into outcomes. Sizes arrive resolved (plan.py): bytes,
pages and seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from .mm import memfd as memfd_mod
from .mm.errno import EBADF, EFAULT, EINVAL, EOPNOTSUPP
from .mm.fault import access_error, do_user_addr_fault
from .mm.file import close_fd, fd_install, file_writable
from .mm.filemap import shmem_file_write_iter
from .mm.filemap_io import filemap_read, filemap_write
from .mm.fs_open import vfs_fallocate
from .mm.gup import PageSeq, WalkResult, faultin_range
from .mm.ipc_shm import newseg
from .mm.madvise import madvise_vma_behavior
from .mm.memcontrol import CTX_GUP
from .mm.memfd_seal_charge import memfd_add_seals_charged
from .mm.mlock import apply_vma_lock_flags, mlock_check, mlock_posix_error_return, munlock_putback
from .mm.mm_types import VM_FAULT_OK, VM_FAULT_SIGBUS
from .mm.mmap import do_mmap, do_munmap, mprotect
from .mm.namei import do_filp_open
from .mm.pagecache import DiskInode, is_disk_file
from .mm.proc_base import __set_oom_adj
from .mm.psi import psi_task_running
from .mm.shmem import shmem_file_read_iter
from .mm.shmem_inode import ShmemInode
from .mm.truncate import shmem_setattr
from .mm.vmscan_lru import user_proactive_reclaim
from .plan import Fraction, nbytes
from .registry import Registry

if TYPE_CHECKING:
    from .mm.mm_types import VMA
    from .tasks import Proc


class OpError(Exception):
    """A syscall failed with `errno` (at `page`, when the failure has a place)."""

    def __init__(self, errno: str, page: int | None = None) -> None:
        super().__init__(errno)
        self.errno, self.page = errno, page


class Sigbus(Exception):  # noqa: N818 - the signal's name
    """The task got SIGBUS accessing `page` of a map."""

    def __init__(self, page: int | None) -> None:
        super().__init__(page)
        self.page = page


class Sigsegv(Sigbus):
    """The task got SIGSEGV: an access its mapping does not allow."""


class Killed(Exception):  # noqa: N818 - what happened to the task
    """The task has a fatal signal pending and dies at the end of the op."""

    def __init__(self, page: int | None = None) -> None:
        super().__init__(page)
        self.page = page


OpFn = Callable[["Proc", Any], Generator[Any, Any, None]]
OPS: Registry[OpFn] = Registry()
op = OPS.register


# -- helpers ----------------------------------------------------------------------------------
def _syscall(p: Proc) -> Any:
    return p.m.env.timeout(p.m.costs.syscall)


def _inode(p: Proc, fd: str) -> ShmemInode:
    inode = p.m.files.get(fd)
    if inode is None or fd not in p.task.fds or inode.evicted:
        raise OpError(EBADF)
    return inode


def _vma(p: Proc, name: str) -> VMA:
    vma = p.task.mm.vmas.get(name)
    if vma is None:
        raise OpError(EINVAL)
    return vma


def _pages_range(p: Proc, rng: tuple[int | Fraction, int | Fraction] | None,
                 npages: int) -> tuple[int, int]:
    """VMA-relative pages [start, end) of a range in bytes or a fraction of the map."""
    if rng is None:
        return 0, npages
    ps = p.m.page_size
    whole = npages * ps
    a = nbytes(rng[0], whole) // ps
    b = -(-nbytes(rng[1], whole) // ps)
    if b > npages:
        raise OpError(EFAULT)
    return a, b


def _of_file(v: int | Fraction, inode: ShmemInode) -> int:
    """An op's offset or length in bytes: itself, or its share of the file's size now."""
    return nbytes(v, inode.size)


def _check_killed(p: Proc, page: int | None = None) -> None:
    if p.task.sigkill:
        raise Killed(page)


def _walked(p: Proc, res: WalkResult) -> None:
    """After a GUP walk: SIGKILL pending ends the op (Killed); else the walk's page is the op's."""
    if res.status == "killed" or p.task.sigkill:
        raise Killed(res.page)
    p.page = res.page


def _populate(p: Proc, vma: VMA, a: int, b: int, write: bool, cost: float) -> Generator[Any, Any, str]:
    """`populate_vma_page_range`/`faultin_page_range`: GUP faults; status of the first failure."""
    res = yield from faultin_range(p.m, p.task, vma, PageSeq(a, b), write, CTX_GUP, cost)
    _walked(p, res)
    return res.status


# -- file ops ---------------------------------------------------------------------------------
@op("memfd_create")
def op_memfd_create(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """memfd_create(2): an unlinked shmem file, held by every task that names the fd."""
    yield _syscall(p)
    inode = memfd_mod.memfd_create(p.m, a.fd, set(a.flags))
    fd_install(p.m, p.sim.fdt, a.fd, inode, writable=True)


@op("shmget")
def op_shmget(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """shmget(2) (`newseg`): a SysV segment, named like an fd."""
    yield _syscall(p)
    inode, err = newseg(p.m, p.task, a.fd, a.size, noreserve="noreserve" in a.flags)
    if err or inode is None:
        raise OpError(err or EINVAL)
    fd_install(p.m, p.sim.fdt, a.fd, inode, writable=True)


@op("open")
def op_open(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """open(2) of a tmpfs file (O_CREAT): a linked file that outlives its fds."""
    yield _syscall(p)
    inode = do_filp_open(p.m, p.sim.dcache, a.path)
    fd_install(p.m, p.sim.fdt, a.fd, inode, writable=(a.mode == "rdwr"))


@op("close")
def op_close(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """close(2)."""
    yield _syscall(p)
    _inode(p, a.fd)
    close_fd(p.m, p.task, a.fd)


@op("ftruncate")
def op_ftruncate(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """ftruncate(2) (`shmem_setattr`): EINVAL on an fd not open for writing."""
    yield _syscall(p)
    inode = _inode(p, a.fd)
    if not file_writable(p.sim.fdt, a.fd):
        raise OpError(EINVAL)
    err = shmem_setattr(p.m, inode, a.size)
    if err:
        raise OpError(err)


@op("add_seals")
def op_add_seals(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """fcntl(F_ADD_SEALS) (`memfd_add_seals`; with the what-if `charge_at_seal`, sealing
    against writes fills the file's holes first and fails as fallocate does)."""
    yield _syscall(p)
    inode = _inode(p, a.fd)
    err, res = yield from memfd_add_seals_charged(p.m, p.task, inode, set(a.seals),
                                                  file_writable(p.sim.fdt, a.fd))
    if res is not None:
        _check_killed(p, res.page)
    if err:
        p.m.log.emit("seal_denied", task=p.task.name, detail=f"{err} {','.join(a.seals)}")
        raise OpError(err, None if res is None else res.page)


@op("read")
def op_read(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """read(2) in a loop until all is read or an error: holes are copied from ZERO_PAGE
    (nothing allocated or charged); pages in swap are swapped in (allocated and charged to
    the memcg recorded at swap-out). A failed swap-in ends one call short; the next call,
    failing at its first page, returns the error."""
    inode = _inode(p, a.fd)
    if is_disk_file(inode):
        yield from _read_disk_file(p, a, inode)
        return
    m = p.m
    first, end = _read_span(a, inode, m.page_size)
    start: int | None = first
    while start is not None:
        p.page = start
        copied, holes, swapped, err, pending = yield from shmem_file_read_iter(
            m, p.task, inode, start, end)
        m.log.emit("shmem_file_read_iter", task=p.task.name, page=start, pages=copied,
                   value=holes, detail=err or "")
        if swapped:
            m.log.emit("swapin", task=p.task.name, page=start, pages=swapped, detail=inode.name)
        yield m.env.timeout(m.costs.syscall + pending)
        start = _read_next(p, inode, start, copied, end, err)


def _read_disk_file(p: Proc, a: Any, inode: DiskInode) -> Generator[Any, Any, None]:
    """read(2) of a disk file in a loop (`filemap_read`): cached pages are copied, missing ones
    read from disk into the page cache, charged to the task's memcg."""
    m = p.m
    first, end = _read_span(a, inode, m.page_size)
    start: int | None = first
    while start is not None:
        p.page = start
        yield _syscall(p)
        copied, reads, err = yield from filemap_read(m, p.task, inode, start, end)
        m.log.emit("filemap_read", task=p.task.name, page=start, pages=copied, value=reads,
                   detail=err or "")
        start = _read_next(p, inode, start, copied, end, err)


def _read_span(a: Any, inode: ShmemInode, ps: int) -> tuple[int, int]:
    """The pages `[start, end)` a read op asks for (from `offset`, `length` or to the end)."""
    offset = _of_file(a.offset, inode)
    end = inode.size_pages(ps) if a.length is None else -(-(offset + _of_file(a.length, inode)) // ps)
    return offset // ps, end


def _read_next(p: Proc, inode: ShmemInode, start: int, copied: int, end: int,
               err: str | None) -> int | None:
    """After one read(2) call that copied `copied` pages from `start`: the next call's first
    page, or None when the read is done (all read, EOF, or nothing copied); its error, if it
    copied nothing, ends the op."""
    _check_killed(p, start + copied)
    if err:
        raise OpError(err, start)
    start += copied
    if copied == 0 or start >= min(end, inode.size_pages(p.m.page_size)):
        return None
    return start


@op("write")
def op_write(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """write(2) until done (`shmem_file_write_iter`); a F_SEAL_GROW write may be short."""
    inode = _inode(p, a.fd)
    if not file_writable(p.sim.fdt, a.fd):
        raise OpError(EBADF)
    if is_disk_file(inode):
        _, werr = yield from filemap_write(p.m, p.task, inode, _of_file(a.offset, inode),
                                           _of_file(a.length, inode))
        _check_killed(p)
        if werr:
            raise OpError(werr)
        return
    err, res = yield from shmem_file_write_iter(p.m, p.task, inode, _of_file(a.offset, inode),
                                                _of_file(a.length, inode))
    if res is None:
        raise OpError(err or EINVAL)
    _check_killed(p, res.page)
    if res.err:
        raise OpError(res.err, res.page)
    if err:
        raise OpError(err)


@op("fallocate")
def op_fallocate(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """fallocate(2) (`vfs_fallocate`): allocate works on write-sealed files; punch does not."""
    inode = _inode(p, a.fd)
    yield _syscall(p)
    if is_disk_file(inode):
        raise OpError(EOPNOTSUPP)  # the disk filesystems modelled have no fallocate
    err, res = yield from vfs_fallocate(p.m, p.task, inode, file_writable(p.sim.fdt, a.fd),
                                        _of_file(a.offset, inode), _of_file(a.length, inode),
                                        a.flags)
    if err:
        raise OpError(err)
    if res is None:  # a punched hole
        return
    _check_killed(p, res.page)
    if res.err:
        raise OpError(res.err, res.page)


# -- mappings ---------------------------------------------------------------------------------
@op("mmap")
def op_mmap(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """mmap(2) of a file; MAP_POPULATE/MAP_LOCKED prefault and ignore errors (`mm_populate`)."""
    yield _syscall(p)
    inode = _inode(p, a.fd)
    ps = p.m.page_size
    off = a.offset
    if off % ps:
        raise OpError(EINVAL)
    length = _of_file(a.length, inode) if a.length is not None else inode.size - off
    npages = -(-length // ps)
    if npages <= 0:
        raise OpError(EINVAL)
    if "read" not in a.prot and "write" not in a.prot:
        raise OpError(EINVAL)
    vma, err = do_mmap(
        p.m, p.task, a.map, inode, npages, off // ps, read="read" in a.prot,
        write="write" in a.prot, shared="shared" in a.flags, locked="locked" in a.flags,
        fd_writable=file_writable(p.sim.fdt, a.fd), noreserve="noreserve" in a.flags,
    )
    if err:
        raise OpError(err)
    assert vma is not None
    if "populate" in a.flags or "locked" in a.flags:
        write = vma.write and not vma.shared
        cost = p.m.costs.mlock if vma.locked else p.m.costs.map_populate
        yield from _populate(p, vma, 0, npages, write, cost)  # errors ignored


@op("munmap")
def op_munmap(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """munmap(2) of a whole map."""
    yield _syscall(p)
    do_munmap(p.m, p.task, _vma(p, a.map))


@op("mprotect")
def op_mprotect(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """mprotect(2) of a whole map (a write-sealed shared map cannot become writable: EACCES)."""
    yield _syscall(p)
    err = mprotect(p.m, p.task, _vma(p, a.map), "read" in a.prot, "write" in a.prot)
    if err:
        raise OpError(err)


@op("touch")
def op_touch(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """The program touches pages itself (`do_user_addr_fault`): SIGSEGV, SIGBUS, refaults."""
    vma = _vma(p, a.map)
    write = a.access == "write"
    if access_error(vma, write):
        raise Sigsegv(None)
    lo, hi = _pages_range(p, a.range, vma.npages)
    n = getattr(a, "count", None)  # touch only n pages of the range, as the pattern picks them
    if a.pattern == "sequential":
        seq = PageSeq(lo, hi if n is None else min(hi, lo + n))
    elif a.pattern == "random":
        if n is None:
            seq = PageSeq(arr=lo + p.rng.permutation(hi - lo).astype(np.int64))
        else:  # n distinct pages drawn at random, in the order drawn
            picks = p.rng.choice(hi - lo, size=min(n, hi - lo), replace=False)
            seq = PageSeq(arr=lo + picks.astype(np.int64))
    else:
        step = max(1, a.stride // p.m.page_size)
        seq = PageSeq(arr=np.arange(lo, hi, step, dtype=np.int64)[:n])

    def walked(res: WalkResult) -> None:
        p.page = res.page

    res = yield from do_user_addr_fault(p.m, p.task, vma, seq, write, walked)
    if res.status == VM_FAULT_OK:
        return
    if res.status == "killed" or p.task.sigkill:
        raise Killed(res.page)
    assert res.status == VM_FAULT_SIGBUS
    p.m.log.emit("sigbus", task=p.task.name, page=res.page if res.page is not None else -1)
    raise Sigbus(res.page)


@op("mlock")
def op_mlock(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """mlock(2) (`do_mlock`): lock, then populate; EAGAIN for VM_FAULT_OOM, ENOMEM for SIGBUS."""
    yield from _mlock(p, a, onfault=False)


@op("mlock2")
def op_mlock2(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """mlock2(2): MLOCK_ONFAULT locks without populating."""
    yield from _mlock(p, a, onfault="onfault" in a.flags)


def _mlock(p: Proc, a: Any, onfault: bool) -> Generator[Any, Any, None]:
    yield _syscall(p)
    vma = _vma(p, a.map)
    lo, hi = _pages_range(p, a.range, vma.npages)
    err = mlock_check(p.task, vma, lo, hi)
    if err:
        raise OpError(err)
    apply_vma_lock_flags(p.task, vma, True, onfault, lo, hi)
    if onfault:
        return
    status = yield from _populate(p, vma, lo, hi, vma.write and not vma.shared, p.m.costs.mlock)
    if status != VM_FAULT_OK:
        raise OpError(mlock_posix_error_return(status), p.page)


@op("munlock")
def op_munlock(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """munlock(2) of the map or a range of it: clear VM_LOCKED; pages reclaim had found
    unevictable are evictable again (`munlock_folio`)."""
    yield _syscall(p)
    vma = _vma(p, a.map)
    lo, hi = _pages_range(p, a.range, vma.npages)
    apply_vma_lock_flags(p.task, vma, False, False, lo, hi)
    munlock_putback(p.m, vma, lo, hi)


@op("madvise")
def op_madvise(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """madvise(2) (`madvise_vma_behavior`): POPULATE_READ/WRITE, WILLNEED, DONTNEED, PAGEOUT."""
    yield _syscall(p)
    vma = _vma(p, a.map)
    lo, hi = _pages_range(p, a.range, vma.npages)
    err, res = yield from madvise_vma_behavior(p.m, p.task, vma, lo, hi, a.advice)
    if res is not None:  # a populate walk ran: SIGKILL ends the op, its page is the op's
        _walked(p, res)
    if err:
        raise OpError(err, p.page if res is not None else None)


@op("alloc_anon")
def op_alloc_anon(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """Private anonymous memory, accounted at mmap and, if touched, written page by page."""
    yield _syscall(p)
    npages = -(-a.size // p.m.page_size)
    name = a.map or f"{p.task.name}.anon{p.op_index}"
    vma, err = do_mmap(p.m, p.task, name, None, npages, 0, read=True, write=True, shared=False,
                       locked=False)
    if err:
        raise OpError(err)
    assert vma is not None
    if a.touched:
        first: list[WalkResult] = []

        def walked(res: WalkResult) -> None:  # the op's page is where the first walk stopped
            if not first:
                first.append(res)
                p.page = res.page

        res = yield from do_user_addr_fault(p.m, p.task, vma, PageSeq(0, npages), True, walked)
        if res.status == "killed" or p.task.sigkill:
            raise Killed(res.page)
        if res.status == VM_FAULT_SIGBUS:
            raise Sigbus(res.page)


@op("oom_score_adj")
def op_oom_score_adj(p: Proc, value: int) -> Generator[Any, Any, None]:
    """Write /proc/self/oom_score_adj (`__set_oom_adj`)."""
    yield _syscall(p)
    err = __set_oom_adj(p.task, value)
    if err:
        raise OpError(err)


@op("memory_reclaim")
def op_memory_reclaim(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """A write of `size` to the cgroup's memory.reclaim (`user_proactive_reclaim`)."""
    yield _syscall(p)
    memcg = p.m.memcgs[a.cgroup]
    pages = nbytes(a.size, p.m.totalram * p.m.page_size) // p.m.page_size
    err = yield from user_proactive_reclaim(p.m, p.task, memcg, pages, a.swappiness)
    if err:
        raise OpError(err)


@op("sleep")
def op_sleep(p: Proc, seconds: float) -> Generator[Any, Any, None]:
    """Sleep for a duration (in seconds): idle for PSI meanwhile."""
    psi_task_running(p.m, p.task, False)
    try:
        yield p.m.env.timeout(seconds)
    finally:
        psi_task_running(p.m, p.task, True)


@op("exit")
def op_exit(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """Exit now (the remaining ops do not run)."""
    p.exit_now = True
    yield _syscall(p)
