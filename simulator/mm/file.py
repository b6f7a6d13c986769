"""A task's open files: closing an fd, and closing them all at exit.

Models fs/file.c (v6.18) `close_fd()` and `exit_files()` (-> `close_files()`), with the `fput()`
that drops the file's reference: the last one evicts an unlinked shmem file (`iput`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .inode import iput

if TYPE_CHECKING:
    from .machine import Machine
    from .task import TaskStruct


def close_fd(m: Machine, task: TaskStruct, fd: str) -> None:
    """Models `close_fd()` -> `fput()`: the task's reference to the file goes."""
    task.fds.discard(fd)
    inode = m.files.get(fd)
    if inode is not None:
        inode.holders.discard(task.pid)
        iput(m, inode)


def exit_files(m: Machine, task: TaskStruct) -> None:
    """Models `exit_files()`: every fd the task still holds is closed, in fd order.

    `close_files()` walks the fd table from 0; fds are numbered as they are installed, which is
    the order of `m.files`. (`task.fds` is a set of names: its order changes with the string
    hash seed, and with it the order of the evictions the closes cause.)
    """
    number = {fd: i for i, fd in enumerate(m.files)}
    for fd in sorted(task.fds, key=lambda fd: number.get(fd, len(number))):
        close_fd(m, task, fd)
