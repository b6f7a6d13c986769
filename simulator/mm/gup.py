"""Faulting in a range of a mapping: the entry points of mm/gup.c, and the walk's types.

Models `__get_user_pages` -> `faultin_page` -> `handle_mm_fault` as used by
`populate_vma_page_range` (mlock, MAP_POPULATE, MAP_LOCKED) and `faultin_page_range`
(MADV_POPULATE_READ/WRITE), and the same walk for a program touching pages itself. The walk
itself, page by page or in exact bulk steps, and the time it takes, is the stepping engine's
(`Machine.engine`, simulator/engine/walk.py): each page gets the kernel's one-page path
(`handle_mm_fault`) or a step the engine has shown to be the same.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA
    from .task import TaskStruct


@dataclass(frozen=True)
class PageSeq:
    """The order pages of a VMA are visited in: a range `[start, stop)` or an explicit array."""

    start: int = 0
    stop: int = 0
    arr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arr) if self.arr is not None else self.stop - self.start

    def at(self, pos: int) -> int:
        """The VMA page index visited at position pos."""
        return int(self.arr[pos]) if self.arr is not None else self.start + pos

    def chunk(self, pos: int, n: int) -> np.ndarray:
        """Page indices for positions [pos, pos + n)."""
        if self.arr is not None:
            return self.arr[pos:pos + n]
        return np.arange(self.start + pos, self.start + pos + n, dtype=np.int64)


@dataclass
class WalkResult:
    """How a walk ended: status (`VM_FAULT_*`, or "killed"), pages done, and where it stopped."""

    status: str
    done: int
    page: int | None = None


def faultin_range(
    m: Machine, task: TaskStruct, vma: VMA, seq: PageSeq, write: bool, ctx: str, cost: float
) -> Generator[Any, Any, WalkResult]:
    """Models the `__get_user_pages` loop over the pages of `seq`, in order, each costing
    `cost`: stops at the first fault that fails (VM_FAULT_OOM, VM_FAULT_SIGBUS) or when the
    task is killed. Returns a WalkResult; its page is the VMA page index where it stopped."""
    return (yield from m.engine.faultin_range(m, task, vma, seq, write, ctx, cost))
