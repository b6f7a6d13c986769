"""The last reference to a shmem inode: `iput()` and the eviction it leads to.

Models fs/inode.c (v6.18) `iput()` -> `iput_final()` -> `evict()` for shmem inodes, and
mm/shmem.c `shmem_evict_inode()`. Kept apart from shmem.py so that the file and mapping
teardown (file.py, mmap.py) can reach it without shmem.py knowing about either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .shmem_inode import ShmemInode, shmem_free_range

if TYPE_CHECKING:
    from .machine import Machine


def iput(m: Machine, inode: ShmemInode) -> None:
    """Models `iput()`: an unlinked file with no fd and no mapping left is evicted."""
    if inode.linked or inode.holders or inode.vmas or inode.evicted:
        return
    shmem_evict_inode(m, inode)


def shmem_evict_inode(m: Machine, inode: ShmemInode) -> None:
    """Models `shmem_evict_inode()`: free every page and swap entry of the file."""
    freed = shmem_free_range(m, inode, 0, 1 << 62)
    inode.evicted = True
    m.log.emit("shmem_evict_inode", pages=freed, detail=inode.name)
