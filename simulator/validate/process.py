"""A task's worker process: started inside its cgroup, its progress page, its errnos.

The worker (worker.c) reports through a SOCK_SEQPACKET socket (messages, and fds with
SCM_RIGHTS) and through a shared progress page, which needs no allocation and so survives a
memcg at its limit; see the comment at the top of worker.c for the protocol.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .cgroup import MemoryCgroup
from .program import TaskProgram

SHM_MAX = 32
PROGRESS = struct.Struct(f"qqqqq{SHM_MAX}q")  # worker.c `struct progress`
IPC_RMID = 0
KERNEL_ERRNO_NAMES = {errno.EOPNOTSUPP: "EOPNOTSUPP"}  # Python calls 95 ENOTSUP


def errno_name(err: int) -> str:
    """The kernel's name of an errno (EAGAIN, EOPNOTSUPP, ...)."""
    return KERNEL_ERRNO_NAMES.get(err) or errno.errorcode.get(err, str(err))


@dataclass(eq=False)
class Worker:
    """A task's worker process and what it has told us."""

    prog: TaskProgram
    cgroup: str
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    progress: mmap.mmap
    stderr: IO[bytes]
    ready: bool = False
    released: float | None = None
    op: int | None = None
    op_times: dict[int, float] = field(default_factory=dict)
    error: tuple[int, int, float] | None = None  # op, errno, when
    done: float | None = None
    ended: float | None = None
    killed_by_us: bool = False
    hole_before: int | None = None  # first hole of the map's file when its populating op began
    populated: int | None = None

    def read_progress(self) -> tuple[int, int, int, int]:
        """(op, page, errno, done) from the shared progress page."""
        op, page, err, done, *_ = PROGRESS.unpack_from(self.progress, 0)
        return op, page, err, done

    def shm_ids(self) -> list[int]:
        """The SysV segments the worker created (from the progress page)."""
        fields = PROGRESS.unpack_from(self.progress, 0)
        return list(fields[5:5 + min(fields[4], SHM_MAX)])

    def stderr_text(self) -> str:
        """What the worker wrote on stderr."""
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""


def remove_shm(shmid: int) -> None:
    """shmctl(IPC_RMID) of a SysV segment a worker created (they outlive their creators)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(IPC_RMID), None)


def proc_footprint(pid: int) -> dict[str, int]:
    """A process's own memory from /proc/PID/status, in KiB: RssAnon and VmPTE (page tables)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "VmPTE"):
                out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def spawn_worker(exe: Path, prog: TaskProgram, cgroup: MemoryCgroup, page_size: int) -> Worker:
    """Start a task's worker: it joins `cgroup`, sets itself up, says R and waits for G."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pfd = os.memfd_create("oomsim-progress", os.MFD_CLOEXEC)
    try:
        os.ftruncate(pfd, page_size)
        progress = mmap.mmap(pfd, page_size)
        PROGRESS.pack_into(progress, 0, -1, -1, 0, 0, 0, *[0] * SHM_MAX)  # charged here
        err = tempfile.TemporaryFile(prefix="oomsim-worker-")
        argv = [str(exe), "--enter", str(cgroup.procs_file()), prog.name[:15],
                str(child.fileno()), str(pfd), str(prog.memlock), str(prog.oom_score_adj),
                hex(prog.caps)]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=err, pass_fds=(child.fileno(), pfd))
    finally:
        child.close()
        os.close(pfd)
    try:
        assert proc.stdin is not None
        proc.stdin.write(prog.stdin)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it died already: its stderr says why
    return Worker(prog=prog, cgroup=prog.cgroup, proc=proc, sock=parent, progress=progress,
                  stderr=err)
