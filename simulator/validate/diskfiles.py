"""A scenario's disk mount on the real kernel: real files on a disk filesystem, not cached.

`type: disk` says the files' data is on disk and none of it is in the page cache when the run
starts (model: docs/model.md, "Page cache of disk files"). Here each file is written below our
own temporary directory with O_DIRECT (so writing it charges no page cache to anyone), synced,
and then dropped from the page cache with POSIX_FADV_DONTNEED (mm/fadvise.c: clean, unmapped
folios of the range are invalidated), which leaves the file uncached whatever the filesystem
did. `fincore` reads back how much is still cached (mincore(2) of a mapping). The files go with
the temporary directory.
"""

from __future__ import annotations

import mmap
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 4 << 20  # O_DIRECT writes of 4 MiB from one page-aligned buffer


class DiskFileError(RuntimeError):
    """A disk mount's files could not be made (no room, no O_DIRECT, still cached)."""


def write_uncached(path: Path, size: int) -> None:
    """Write `size` bytes of data (not a sparse file: every block allocated on disk) without
    going through the page cache, then make sure none of it is cached."""
    buf = mmap.mmap(-1, CHUNK)  # anonymous: page-aligned, as O_DIRECT wants
    buf.write(b"oomsim\n" * (CHUNK // 7) + b"\n" * (CHUNK % 7))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError:  # a filesystem without O_DIRECT (tmpfs): written through the cache
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        done = 0
        while done < size:
            n = min(CHUNK, size - done)
            if n % mmap.PAGESIZE:  # O_DIRECT needs whole blocks: the tail written plainly
                os.close(fd)
                fd = os.open(path, os.O_WRONLY)
                os.lseek(fd, done, os.SEEK_SET)
            done += os.write(fd, memoryview(buf)[:n])
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
        buf.close()
    cached = fincore(path)
    if cached:
        raise DiskFileError(f"{path}: {cached} pages still in the page cache after "
                            "POSIX_FADV_DONTNEED")


def fincore(path: Path) -> int:
    """Pages of the file now in the page cache (mincore(2) of a shared mapping of it)."""
    import ctypes

    size = path.stat().st_size
    if size == 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    finally:
        os.close(fd)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise DiskFileError(f"mmap {path}: {os.strerror(ctypes.get_errno())}")
    try:
        vec = ctypes.create_string_buffer(-(-size // mmap.PAGESIZE))
        if libc.mincore(addr, size, vec) != 0:
            raise DiskFileError(f"mincore {path}: {os.strerror(ctypes.get_errno())}")
        return sum(b & 1 for b in vec.raw)
    finally:
        libc.munmap(addr, size)


@dataclass
class DiskMount:
    """A scenario disk mount as a directory of real, uncached files below `where`."""

    where: Path
    files: dict[str, int]
    made: list[Path] = field(default_factory=list)

    def make(self) -> DiskMount:
        """Create the directory and its files (checked for room on the filesystem first)."""
        self.where.mkdir(parents=True, exist_ok=True)
        need = sum(self.files.values())
        free = shutil.disk_usage(self.where).free
        if need > free // 2:
            raise DiskFileError(f"{self.where}: {need >> 20} MiB of files wanted, "
                                f"{free >> 20} MiB free (at most half is used)")
        for name, size in self.files.items():
            p = self.where / name
            self.made.append(p)
            write_uncached(p, size)
        return self

    def remove(self) -> None:
        """Delete the files (their page cache, and its charges, go with them)."""
        for p in self.made:
            p.unlink(missing_ok=True)
        self.made.clear()
