"""One function per scenario op, each a SimPy generator calling the kernel model.

An op either returns (success) or raises: `OpError` (a syscall returned an errno), `Sigbus`
(a user access got SIGBUS), `Killed` (the task got SIGKILL while in the op). The task runner
(simulator/tasks.py) turns those into outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from .mm import memfd as memfd_mod
from .mm.errno import EACCES, EBADF, EFAULT, EINVAL, ENOMEM, EOPNOTSUPP
from .mm.file import close_fd
from .mm.gup import PageSeq, faultin_range
from .mm.madvise import madvise_pageout
from .mm.memcontrol import CTX_FAULT, CTX_GUP
from .mm.memory import VM_FAULT_OK, VM_FAULT_OOM, VM_FAULT_SIGBUS, free_cow_pages, unmap_pages
from .mm.mlock import apply_vma_lock_flags, mlock_check, mlock_posix_error_return
from .mm.mmap import do_mmap, do_munmap, mprotect
from .mm.oom_kill import pagefault_out_of_memory
from .mm.overcommit import OVERCOMMIT_NEVER
from .mm.shmem import (
    ShmemInode,
    shmem_acct_size,
    shmem_file_read_iter,
    shmem_free_range,
)
from .mm.shmem_io import shmem_fallocate, shmem_fill_range
from .mm.task import CAP_SYS_RESOURCE
from .registry import Registry
from .units import parse_bytes, parse_seconds

if TYPE_CHECKING:
    from .mm.memory import VMA
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


def _pages_range(p: Proc, rng: list[Any] | None, npages: int) -> tuple[int, int]:
    """VMA-relative pages [start, end) of a range written in bytes or % of the map."""
    if rng is None:
        return 0, npages
    ps = p.m.page_size
    whole = npages * ps
    a = parse_bytes(rng[0], whole) // ps
    b = -(-parse_bytes(rng[1], whole) // ps)
    if b > npages:
        raise OpError(EFAULT)
    return a, b


def _check_killed(p: Proc, page: int | None = None) -> None:
    if p.task.sigkill:
        raise Killed(page)


def _populate(p: Proc, vma: VMA, a: int, b: int, write: bool, cost: float) -> Generator[Any, Any, str]:
    """`populate_vma_page_range`/`faultin_page_range`: GUP faults; status of the first failure."""
    res = yield from faultin_range(p.m, p.task, vma, PageSeq(a, b), write, CTX_GUP, cost)
    if res.status == "killed" or p.task.sigkill:
        raise Killed(res.page)
    p.page = res.page
    return res.status


# -- file ops ---------------------------------------------------------------------------------
@op("memfd_create")
def op_memfd_create(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """memfd_create(2): an unlinked shmem file, held by every task that names the fd."""
    yield _syscall(p)
    inode = memfd_mod.memfd_create(p.m, a.fd, set(a.flags))
    p.sim.install_fd(a.fd, inode, writable=True)


@op("shmget")
def op_shmget(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """shmget(2) (`newseg`): VM_NORESERVE only with SHM_NORESERVE outside mode 2; otherwise the
    whole size is accounted now (ENOMEM in mode 2 when it does not fit). The segment lives on
    the internal mount and outlives its creator (no IPC_RMID here)."""
    yield _syscall(p)
    size = parse_bytes(a.size)
    npages = -(-size // p.m.page_size)
    inode = ShmemInode(ino=p.m.next_ino, name=f"SYSV:{a.fd}", sb=p.m.internal_mount, size=size,
                       linked=True)
    inode.noreserve = "noreserve" in a.flags and p.m.overcommit.mode != OVERCOMMIT_NEVER
    p.m.next_ino += 1
    err = shmem_acct_size(p.m, p.task, inode, npages)
    if err:
        raise OpError(err)
    p.sim.install_fd(a.fd, inode, writable=True)


@op("open")
def op_open(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """open(2) of a tmpfs file (O_CREAT): a linked file that outlives its fds."""
    yield _syscall(p)
    inode = p.sim.tmpfs_lookup(a.path)
    p.sim.install_fd(a.fd, inode, writable=(a.mode == "rdwr"))


@op("close")
def op_close(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """close(2)."""
    yield _syscall(p)
    _inode(p, a.fd)
    close_fd(p.m, p.task, a.fd)


@op("ftruncate")
def op_ftruncate(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """ftruncate(2) (`shmem_setattr`): seals, then free pages past the new size."""
    yield _syscall(p)
    inode = _inode(p, a.fd)
    if not p.sim.fd_writable(a.fd):
        raise OpError(EINVAL)
    size = parse_bytes(a.size)
    err = memfd_mod.check_truncate(inode, size)
    if err:
        raise OpError(err)
    if size < inode.size:
        first = -(-size // p.m.page_size)
        unmap_mapping_range(p, inode, first, 1 << 62, even_cows=True)
        shmem_free_range(p.m, inode, first, 1 << 62)
    inode.size = size


def unmap_mapping_range(p: Proc, inode: ShmemInode, a: int, b: int, even_cows: bool) -> None:
    """Models `unmap_mapping_range()`: zap the file PTEs of `[a, b)` in every mapping of the
    file; private COW copies go too only with `even_cows` (truncate does, punching does not)."""
    for vma in list(inode.vmas):
        lo, hi = max(a - vma.pgoff, 0), min(b - vma.pgoff, vma.npages)
        if lo < hi and vma.owner is not None:
            unmap_pages(p.m, vma.owner, vma, lo, hi)
            if even_cows and not vma.shared:
                free_cow_pages(p.m, vma.owner, vma, lo, hi)


def zap_zero_ptes(inode: ShmemInode, a: int, b: int) -> None:
    """What-if `zero_page_sealed_holes`: pages instantiated in `[a, b)` replace the ZERO_PAGE
    PTEs mapped over them (kernel-model.md 9.6), so the next access maps the real page."""
    for vma in inode.vmas:
        lo, hi = max(a - vma.pgoff, 0), min(b - vma.pgoff, vma.npages)
        if lo < hi:
            vma.zero.remove(lo, hi)


@op("add_seals")
def op_add_seals(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """fcntl(F_ADD_SEALS) (`memfd_add_seals`)."""
    yield _syscall(p)
    inode = _inode(p, a.fd)
    err = memfd_mod.memfd_add_seals(inode, set(a.seals), p.sim.fd_writable(a.fd))
    if err:
        p.m.log.emit("seal_denied", task=p.task.name, detail=f"{err} {','.join(a.seals)}")
        raise OpError(err)


@op("read")
def op_read(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """read(2) in a loop until all is read or an error: holes are copied from ZERO_PAGE
    (nothing allocated or charged); pages in swap are swapped in (allocated and charged to
    the memcg recorded at swap-out). A failed swap-in ends one call short; the next call,
    failing at its first page, returns the error."""
    inode = _inode(p, a.fd)
    m, ps = p.m, p.m.page_size
    start = parse_bytes(a.offset) // ps
    if a.length is None:
        end = inode.size_pages(ps)
    else:
        end = -(-(parse_bytes(a.offset) + parse_bytes(a.length)) // ps)
    while True:
        p.page = start
        copied, holes, swapped, err, pending = yield from shmem_file_read_iter(
            m, p.task, inode, start, end)
        m.log.emit("shmem_file_read_iter", task=p.task.name, page=start, pages=copied,
                   value=holes, detail=err or "")
        if swapped:
            m.log.emit("swapin", task=p.task.name, page=start, pages=swapped, detail=inode.name)
        yield m.env.timeout(m.costs.syscall + pending)
        _check_killed(p, start + copied)
        if err:
            raise OpError(err, start)
        start += copied
        if copied == 0 or start >= min(end, inode.size_pages(ps)):
            return


@op("write")
def op_write(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """write(2) until done (`shmem_write_begin` per page: allocate, charge, account)."""
    inode = _inode(p, a.fd)
    if not p.sim.fd_writable(a.fd):
        raise OpError(EBADF)
    ps = p.m.page_size
    off, length = parse_bytes(a.offset), parse_bytes(a.length)
    end = off + length
    err = memfd_mod.check_write(inode, end)
    if err and not (err == "EPERM" and not inode.write_sealed() and off < inode.size):
        raise OpError(err)
    if err:
        end = inode.size  # F_SEAL_GROW: a short write up to i_size, then EPERM
    yield _syscall(p)
    res = yield from shmem_fill_range(p.m, p.task, inode, off // ps, -(-end // ps),
                                      p.m.costs.write)
    zap_zero_ptes(inode, off // ps, -(-end // ps))
    written_end = end if res.err is None else max(off, (res.page or 0) * ps)
    inode.size = max(inode.size, written_end)
    _check_killed(p, res.page)
    if res.err:
        raise OpError(res.err, res.page)
    if err:
        raise OpError(err)


@op("fallocate")
def op_fallocate(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """fallocate(2) (`shmem_fallocate`): allocate works on write-sealed files; punch does not."""
    inode = _inode(p, a.fd)
    yield _syscall(p)
    if not p.sim.fd_writable(a.fd):
        raise OpError(EBADF)
    ps = p.m.page_size
    off, length = parse_bytes(a.offset), parse_bytes(a.length)
    punch = "punch_hole" in a.flags
    if punch and "keep_size" not in a.flags:
        raise OpError(EOPNOTSUPP)  # vfs_fallocate: PUNCH_HOLE must come with KEEP_SIZE
    err = memfd_mod.check_fallocate(inode, off + length, punch)
    if err:
        raise OpError(err)
    if punch:
        first, last = -(-off // ps), (off + length) // ps
        unmap_mapping_range(p, inode, first, last, even_cows=False)
        shmem_free_range(p.m, inode, first, last)
        return
    res = yield from shmem_fallocate(p.m, p.task, inode, off // ps, -(-(off + length) // ps),
                                     keep_size="keep_size" in a.flags)
    zap_zero_ptes(inode, off // ps, -(-(off + length) // ps))
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
    off = parse_bytes(a.offset)
    if off % ps:
        raise OpError(EINVAL)
    length = parse_bytes(a.length) if a.length is not None else inode.size - off
    npages = -(-length // ps)
    if npages <= 0:
        raise OpError(EINVAL)
    if "read" not in a.prot and "write" not in a.prot:
        raise OpError(EINVAL)
    vma, err = do_mmap(
        p.m, p.task, a.map, inode, npages, off // ps, read="read" in a.prot,
        write="write" in a.prot, shared="shared" in a.flags, locked="locked" in a.flags,
        fd_writable=p.sim.fd_writable(a.fd), noreserve="noreserve" in a.flags,
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
    """The program touches pages itself: user faults, SIGBUS, VM_FAULT_OOM refaults."""
    vma = _vma(p, a.map)
    write = a.access == "write"
    if (write and not vma.write) or (not write and not vma.read):
        raise Sigsegv(None)
    lo, hi = _pages_range(p, a.range, vma.npages)
    if a.pattern == "sequential":
        seq = PageSeq(lo, hi)
    elif a.pattern == "random":
        seq = PageSeq(arr=lo + p.rng.permutation(hi - lo).astype(np.int64))
    else:
        step = max(1, parse_bytes(a.stride) // p.m.page_size)
        seq = PageSeq(arr=np.arange(lo, hi, step, dtype=np.int64))
    m, task = p.m, p.task
    while True:
        res = yield from faultin_range(m, task, vma, seq, write, CTX_FAULT, m.costs.fault)
        p.page = res.page
        if res.status == VM_FAULT_OK:
            return
        if res.status == "killed" or task.sigkill:
            raise Killed(res.page)
        if res.status == VM_FAULT_SIGBUS:
            m.log.emit("sigbus", task=task.name, page=res.page if res.page is not None else -1)
            raise Sigbus(res.page)
        assert res.status == VM_FAULT_OOM
        yield from pagefault_out_of_memory(m, task)
        _check_killed(p, res.page)
        seq = PageSeq(seq.start + res.done, seq.stop) if seq.arr is None else PageSeq(arr=seq.arr[res.done:])


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
    err = mlock_check(p.task, vma, hi - lo)
    if err:
        raise OpError(err)
    apply_vma_lock_flags(p.task, vma, True, onfault)
    if onfault:
        return
    status = yield from _populate(p, vma, lo, hi, vma.write and not vma.shared, p.m.costs.mlock)
    if status != VM_FAULT_OK:
        raise OpError(mlock_posix_error_return(status), p.page)


@op("munlock")
def op_munlock(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """munlock(2): clear VM_LOCKED."""
    yield _syscall(p)
    apply_vma_lock_flags(p.task, _vma(p, a.map), False)


@op("madvise")
def op_madvise(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """madvise(2): POPULATE_READ/WRITE (`madvise_populate`), WILLNEED, DONTNEED."""
    yield _syscall(p)
    vma = _vma(p, a.map)
    lo, hi = _pages_range(p, a.range, vma.npages)
    if a.advice in ("populate_read", "populate_write"):
        if not p.m.profile.madv_populate:
            raise OpError(EINVAL)
        write = a.advice == "populate_write"
        if write and not vma.write:
            raise OpError(EINVAL)
        status = yield from _populate(p, vma, lo, hi, write, p.m.costs.populate)
        if status == VM_FAULT_OOM:
            raise OpError(ENOMEM, p.page)
        if status == VM_FAULT_SIGBUS:
            raise OpError(EFAULT, p.page)
    elif a.advice == "dontneed":
        if vma.locked:
            raise OpError(EINVAL)
        unmap_pages(p.m, p.task, vma, lo, hi)
        free_cow_pages(p.m, p.task, vma, lo, hi)
    elif a.advice == "pageout":
        if not p.m.profile.madv_pageout:
            raise OpError(EINVAL)
        err, done = madvise_pageout(p.m, p.task, vma, lo, hi)
        p.m.log.emit("madvise_pageout", task=p.task.name, memcg=p.task.memcg.path, page=lo,
                     pages=done, value=p.m.swap.inuse, detail=err or "")
        yield p.m.env.timeout(done * p.m.costs.pageout)
        if err:
            raise OpError(err)
    # willneed: shmem has no readahead of holes. Of pages in swap, `shmem_willneed` ->
    # `shmem_swapin_range` would start reading them into the swap cache, and
    # `madvise_willneed` of anonymous memory likewise; not modelled (it returns 0 and
    # changes nothing here).


@op("alloc_anon")
def op_alloc_anon(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """Private anonymous memory, accounted at mmap and, if touched, written page by page."""
    yield _syscall(p)
    npages = -(-parse_bytes(a.size) // p.m.page_size)
    name = a.map or f"{p.task.name}.anon{p.op_index}"
    vma, err = do_mmap(p.m, p.task, name, None, npages, 0, read=True, write=True, shared=False,
                       locked=False)
    if err:
        raise OpError(err)
    assert vma is not None
    if a.touched:
        res = yield from faultin_range(p.m, p.task, vma, PageSeq(0, npages), True, CTX_FAULT,
                                       p.m.costs.fault)
        p.page = res.page
        if res.status == "killed" or p.task.sigkill:
            raise Killed(res.page)
        while res.status == VM_FAULT_OOM:
            yield from pagefault_out_of_memory(p.m, p.task)
            _check_killed(p, res.page)
            start = res.page or 0
            res = yield from faultin_range(p.m, p.task, vma, PageSeq(start, npages), True,
                                           CTX_FAULT, p.m.costs.fault)
            if res.status == "killed" or p.task.sigkill:
                raise Killed(res.page)
        if res.status == VM_FAULT_SIGBUS:
            raise Sigbus(res.page)


@op("oom_score_adj")
def op_oom_score_adj(p: Proc, value: int) -> Generator[Any, Any, None]:
    """Write /proc/self/oom_score_adj (`__set_oom_adj`): lowering below the minimum a
    privileged writer set (initially 0) needs CAP_SYS_RESOURCE (EACCES)."""
    yield _syscall(p)
    t = p.task
    if value < t.oom_score_adj_min and not t.capable(CAP_SYS_RESOURCE):
        raise OpError(EACCES)
    t.oom_score_adj = value
    if t.capable(CAP_SYS_RESOURCE):
        t.oom_score_adj_min = value


@op("sleep")
def op_sleep(p: Proc, duration: Any) -> Generator[Any, Any, None]:
    """Sleep for a duration."""
    yield p.m.env.timeout(parse_seconds(duration))


@op("exit")
def op_exit(p: Proc, a: Any) -> Generator[Any, Any, None]:
    """Exit now (the remaining ops do not run)."""
    p.exit_now = True
    yield _syscall(p)
