"""Path lookup on tmpfs mounts: open(2) with O_CREAT, from fs/namei.c (v6.18)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pagecache import DiskInode
from .shmem_inode import ShmemInode

if TYPE_CHECKING:
    from .machine import Machine


def lookup_mnt(m: Machine, path: str) -> str:
    """Models the mount lookup of a path walk: the longest mount path `path` is below.

    The loader (validify) has refused a file on no mount, so there always is one.
    """
    return max((mp for mp in m.mounts if path.startswith(mp.rstrip("/") + "/")), key=len)


def do_filp_open(m: Machine, dcache: dict[str, ShmemInode], path: str) -> ShmemInode:
    """Models `do_filp_open()` in fs/namei.c (v6.18) with O_CREAT on tmpfs.

    The file at `path` (`dcache`: path -> inode of the files created so far), or a new empty
    file linked on its mount (`shmem_mknod`), which outlives the fds that name it.
    """
    found = dcache.get(path)
    if found is not None:
        return found
    sb = m.mounts[lookup_mnt(m, path)]
    if sb.disk:  # a file on disk (or a new, empty one: O_CREAT), none of it cached yet
        size = sb.disk_files.get(path[len(sb.path.rstrip("/")) + 1:], 0)
        inode: ShmemInode = DiskInode(ino=m.next_ino, name=path, sb=sb, size=size, linked=True,
                                      noreserve=False)
    else:
        inode = ShmemInode(ino=m.next_ino, name=path, sb=sb, linked=True)
    m.next_ino += 1
    dcache[path] = inode
    return inode
