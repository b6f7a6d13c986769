"""memory.min and memory.low: the protection reclaim gives a memcg, spread over siblings.

Models mm/page_counter.c (v6.18) `page_counter_calculate_protection` and
`effective_protection`, and mm/memcontrol.c `mem_cgroup_calculate_protection`,
`mem_cgroup_below_min`, `mem_cgroup_below_low` and `mem_cgroup_protection`, without
memory_recursiveprot (a cgroup2 mount option, off by default).

A memcg's effective protection is min(usage, setting) relative to the memcg reclaim is
aimed at (`target`): a direct child of the target gets its setting as it is, a deeper memcg
its protected usage scaled down when its siblings' protected usage together exceeds its
parent's effective protection. The target itself (the memcg whose limit was hit) and the root
are never protected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .memcontrol import MemCgroup


def effective_protection(usage: int, setting: int, parent_effective: int,
                         siblings_protected: int) -> int:
    """`effective_protection()` without recursive protection: the protected usage, scaled by
    parent_effective / siblings_protected when the siblings claim more than the parent has."""
    protected = min(usage, setting)
    if siblings_protected > parent_effective:
        return protected * parent_effective // siblings_protected
    return protected


def children_protected_usage(parent: MemCgroup, which: str) -> int:
    """`children_min_usage` / `children_low_usage`: the children's min(usage, setting)."""
    return sum(min(c.usage, getattr(c, which)) for c in parent.children)


def mem_cgroup_calculate_protection(target: MemCgroup, memcg: MemCgroup) -> None:
    """`mem_cgroup_calculate_protection()`: set `memcg.emin` and `memcg.elow` for a reclaim
    aimed at `target` (the parent's must be set already: reclaim walks the tree in pre-order)."""
    if memcg is target or memcg.is_root():
        memcg.emin = memcg.elow = 0
        return
    if not memcg.usage:
        memcg.emin = memcg.elow = 0
        return
    parent = memcg.parent
    assert parent is not None
    if parent is target:
        memcg.emin, memcg.elow = memcg.min, memcg.low
        return
    memcg.emin = effective_protection(memcg.usage, memcg.min, parent.emin,
                                      children_protected_usage(parent, "min"))
    memcg.elow = effective_protection(memcg.usage, memcg.low, parent.elow,
                                      children_protected_usage(parent, "low"))


def mem_cgroup_unprotected(target: MemCgroup, memcg: MemCgroup) -> bool:
    """`mem_cgroup_unprotected()`: the reclaim target and the root have no protection."""
    return memcg is target or memcg.is_root()


def mem_cgroup_below_min(target: MemCgroup, memcg: MemCgroup) -> bool:
    """`mem_cgroup_below_min()`: hard protection: reclaim skips the memcg altogether."""
    return not mem_cgroup_unprotected(target, memcg) and memcg.emin >= memcg.usage


def mem_cgroup_below_low(target: MemCgroup, memcg: MemCgroup) -> bool:
    """`mem_cgroup_below_low()`: best-effort protection: skipped until a pass reclaims
    nothing, then reclaimed with a `low` event."""
    return not mem_cgroup_unprotected(target, memcg) and memcg.elow >= memcg.usage


def mem_cgroup_protection(target: MemCgroup, memcg: MemCgroup) -> tuple[int, int]:
    """`mem_cgroup_protection()`: (emin, elow) for `get_scan_count`'s proportional scan."""
    if mem_cgroup_unprotected(target, memcg):
        return 0, 0
    return memcg.emin, memcg.elow
