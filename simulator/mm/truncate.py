"""Truncating a shmem file and zapping the PTEs that map the pages it drops.

`shmem_setattr` (mm/shmem.c) checks the seals and truncates; `unmap_mapping_range`
(mm/memory.c) zaps the file's PTEs in every mapping first, as `truncate_pagecache` (mm/truncate.c)
does. `zap_zero_ptes` is the what-if `zero_page_sealed_holes` counterpart for instantiation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .memfd import check_truncate
from .pagecache import filemap_free_range, is_disk_file
from .shmem_inode import ShmemInode, shmem_free_range
from .zap import free_cow_pages, unmap_pages

if TYPE_CHECKING:
    from .machine import Machine


def unmap_mapping_range(m: Machine, inode: ShmemInode, a: int, b: int, even_cows: bool) -> None:
    """Models `unmap_mapping_range()` in mm/memory.c (v6.18): zap the file PTEs of `[a, b)`.

    In every mapping of the file; private COW copies go too only with `even_cows` (truncate
    does, punching a hole does not).
    """
    for vma in list(inode.vmas):
        lo, hi = max(a - vma.pgoff, 0), min(b - vma.pgoff, vma.npages)
        if lo < hi and vma.owner is not None:
            unmap_pages(m, vma.owner, vma, lo, hi)
            if even_cows and not vma.shared:
                free_cow_pages(m, vma.owner, vma, lo, hi)


def zap_zero_ptes(inode: ShmemInode, a: int, b: int) -> None:
    """What-if `zero_page_sealed_holes`: instantiated pages replace ZERO_PAGE PTEs.

    Pages instantiated in `[a, b)` replace the ZERO_PAGE PTEs mapped over them
    (docs/kernel-rules.md 9.6), so the next access maps the real page.
    """
    for vma in inode.vmas:
        lo, hi = max(a - vma.pgoff, 0), min(b - vma.pgoff, vma.npages)
        if lo < hi:
            vma.zero.remove(lo, hi)


def shmem_setattr(m: Machine, inode: ShmemInode, size: int) -> str | None:
    """Models `shmem_setattr()` in mm/shmem.c (v6.18) for ATTR_SIZE: ftruncate(2).

    The seals first (F_SEAL_SHRINK, F_SEAL_GROW: EPERM); shrinking unmaps the pages past the
    new size from every mapping, private COW copies included, and frees them. Returns the errno
    or None.
    """
    err = check_truncate(inode, size)
    if err:
        return err
    if size < inode.size:
        first = -(-size // m.page_size)
        unmap_mapping_range(m, inode, first, 1 << 62, even_cows=True)
        if is_disk_file(inode):
            filemap_free_range(m, inode, first, 1 << 62)
        else:
            shmem_free_range(m, inode, first, 1 << 62)
    inode.size = size
    return None
