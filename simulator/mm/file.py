"""The scenario's named file descriptors and a task's open files: fs/file.c (v6.18).

A scenario names an fd (`fd: buf`) instead of passing numbers around: every task whose ops
name it holds it from its creation on, as if it had been inherited or passed over a socket.
`FdTable` is that state; `fd_install` and `file_writable` are what the ops call. `close_fd()`
and `exit_files()` (-> `close_files()`) drop a task's references with the `fput()` whose last
one evicts an unlinked shmem file (`iput`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .inode import iput

if TYPE_CHECKING:
    from .machine import Machine
    from .shmem_inode import ShmemInode
    from .task import TaskStruct


@dataclass
class FdTable:
    """Who holds each named fd, and whether it was opened for writing.

    Attributes:
        tasks: every task of the run, in the scenario's order.
        users: for each fd name, the tasks whose ops name it.
        fmode_write: for each installed fd, whether its file has FMODE_WRITE.
    """

    tasks: list[TaskStruct]
    users: dict[str, tuple[TaskStruct, ...]]
    fmode_write: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, tasks: Iterable[TaskStruct], users: dict[str, frozenset[str]]) -> FdTable:
        """The table of a run: `users` names the tasks of each fd."""
        tasks = list(tasks)
        by_name = {t.name: t for t in tasks}
        return cls(tasks, {fd: tuple(by_name[n] for n in names) for fd, names in users.items()})


def fd_install(m: Machine, fdt: FdTable, fd: str, inode: ShmemInode, writable: bool) -> None:
    """Models `fd_install()` in fs/file.c (v6.18): a new file under the fd's name.

    Every live task that names the fd holds it from now on; a file the name held before is
    put by every task first (`fput`, which may evict an unlinked file).
    """
    if m.files.get(fd) is not None:
        for t in fdt.tasks:
            close_fd(m, t, fd)
    m.files[fd] = inode
    m.fd_numbers.setdefault(fd, len(m.fd_numbers))  # numbered at its first install
    fdt.fmode_write[fd] = writable
    for t in fdt.users.get(fd, ()):
        if not t.exited:
            t.fds.add(fd)
            inode.holders.add(t.pid)


def file_writable(fdt: FdTable, fd: str) -> bool:
    """Whether the fd's file was opened for writing (`file->f_mode & FMODE_WRITE`)."""
    return fdt.fmode_write.get(fd, False)


def close_fd(m: Machine, task: TaskStruct, fd: str) -> None:
    """Models `close_fd()` -> `fput()`: the task's reference to the file goes."""
    task.fds.discard(fd)
    inode = m.files.get(fd)
    if inode is not None:
        inode.holders.discard(task.pid)
        iput(m, inode)


def exit_files(m: Machine, task: TaskStruct) -> None:
    """Models `exit_files()`: every fd the task still holds is closed, in fd order.

    `close_files()` walks the fd table from 0; fds are numbered as they are first installed
    (`Machine.fd_numbers`). (`task.fds` is a set of names: its order changes with the string
    hash seed, and with it the order of the evictions the closes cause.)
    """
    number = m.fd_numbers
    for fd in sorted(task.fds, key=lambda fd: number.get(fd, len(number))):
        close_fd(m, task, fd)
