"""NUMA memory policies and cpuset mems: which nodes a page may come from, and in what order.

Models mm/mempolicy.c (v6.18): `get_task_policy`, `policy_nodemask`, `interleave_nid`,
`interleave_nodes`, `alloc_pages_mpol`'s choice of zonelist and nodemask, `mpol_set_nodemask`'s
contextualisation by the cpuset, and `mempolicy_in_oom_domain`; and of kernel/cgroup/cpuset.c
`update_nodemasks_hier` (effective mems), `cpuset_mems_allowed_intersects`; and of
mm/page_alloc.c `prepare_alloc_pages`' nodemask (a task in a cpuset allocates with its mems).

A node set is a sorted tuple of node ids (`nodemask_t`); None means "no mask" (every node).

Simplifications:
    No MPOL_PREFERRED_MANY, MPOL_WEIGHTED_INTERLEAVE, mode flags (static/relative nodes) or
    home nodes; no shared (mbind) policies on files or VMA policies, so every allocation uses
    the task's policy (`shmem_get_pgoff_policy` falls back to the task's, `get_vma_policy`
    likewise); policies and cpusets are fixed for a task's life (no rebinding). A task runs on
    its `node` (`numa_node_id()`), which may be outside its cpuset's mems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .machine import Machine
    from .mm_types import VMA
    from .page_alloc import Node
    from .shmem import ShmemInode
    from .task import TaskStruct

MPOL_DEFAULT, MPOL_LOCAL, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE = (
    "default", "local", "preferred", "bind", "interleave")
MPOL_MODES = (MPOL_DEFAULT, MPOL_LOCAL, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE)
MODES_WITH_NODES = (MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE)
NO_INTERLEAVE_INDEX = None  # the kernel's NO_INTERLEAVE_INDEX: an allocation without an index

Nodemask = tuple[int, ...]


@dataclass(frozen=True)
class Mempolicy:
    """Models `struct mempolicy`: the mode and its nodes (already intersected with the
    task's cpuset mems, as `mpol_set_nodemask` stores them)."""

    mode: str = MPOL_DEFAULT
    nodes: Nodemask = ()


def cpuset_effective_mems(chain: list[Nodemask | None], all_nodes: Nodemask) -> Nodemask:
    """Models `update_nodemasks_hier()` (cgroup v2): a cpuset's effective mems are its
    `cpuset.mems` intersected with its parent's effective mems; an empty result (or no
    `cpuset.mems` written) inherits the parent's. `chain` is the root-to-leaf list of the
    cgroups' `cpuset.mems` (None: not written)."""
    eff = all_nodes
    for mems in chain:
        if mems is None:
            continue
        own = tuple(n for n in eff if n in mems)
        if own:
            eff = own
    return eff


def mpol_set_nodemask(mode: str, nodes: Nodemask, mems_allowed: Nodemask | None) -> Mempolicy:
    """Models `mpol_set_nodemask()` + `mpol_new_*()`: the policy's nodes intersected with the
    cpuset's mems (the loader has checked the intersection is not empty, which the kernel's
    set_mempolicy(2) refuses with EINVAL); a preferred policy keeps its first node."""
    if mode in (MPOL_DEFAULT, MPOL_LOCAL):
        return Mempolicy(mode)
    kept = tuple(n for n in sorted(set(nodes)) if mems_allowed is None or n in mems_allowed)
    assert kept, "validify checks that a policy's nodes meet the cpuset's mems"
    return Mempolicy(mode, kept[:1] if mode == MPOL_PREFERRED else kept)


def get_task_policy(task: TaskStruct) -> Mempolicy:
    """Models `get_task_policy()`: the task's policy, else the default (local) policy."""
    return task.mempolicy


def next_node_in(prev: int, nodes: Nodemask) -> int:
    """Models `next_node_in()`: the first node of `nodes` after `prev`, wrapping around."""
    for n in nodes:
        if n > prev:
            return n
    return nodes[0]


def interleave_nodes(task: TaskStruct, pol: Mempolicy) -> int:
    """Models `interleave_nodes()`: an allocation without an interleave index (page tables,
    kernel and slab pages) takes the next node after `current->il_prev`, round robin."""
    nid = next_node_in(task.il_prev, pol.nodes)
    task.il_prev = nid
    return nid


def interleave_nid(pol: Mempolicy, ilx: int) -> int:
    """Models `interleave_nid()`: the (ilx mod n)-th node of the policy's n nodes."""
    return pol.nodes[ilx % len(pol.nodes)]


def get_vma_policy_ilx(vma: VMA, idx: int) -> int:
    """Models the interleave index `get_vma_policy()` gives a folio at VMA page `idx`: the
    page's offset in the file plus the inode number for a shmem mapping (`shmem_get_policy`),
    its virtual page number for an anonymous one (`vm_pgoff` is `vm_start` there)."""
    if vma.file is not None:
        return shmem_ilx(vma.file, vma.pgoff + idx)
    return vma.start + idx


def shmem_ilx(inode: ShmemInode, index: int) -> int:
    """Models `shmem_get_pgoff_policy()`'s interleave index: inode number + index (order 0)."""
    return inode.ino + index


def cpuset_current_mems_allowed(m: Machine, task: TaskStruct) -> Nodemask | None:
    """The nodemask `prepare_alloc_pages()` gives an allocation without a policy nodemask:
    `cpuset_current_mems_allowed` once any cpuset exists (`cpusets_enabled()`), else none."""
    return task.mems_allowed if m.cpusets_enabled else None


def policy_nodemask(m: Machine, task: TaskStruct, pol: Mempolicy,
                    ilx: int | None) -> tuple[int, Nodemask | None]:
    """Models `policy_nodemask()` then `prepare_alloc_pages()`: the preferred node (whose
    zonelist is walked) and the nodemask of one allocation.

    default/local: the local node, no mask; preferred: its node, no mask; bind: the local node
    and the policy's nodes; interleave: the node of the index (`interleave_nid`) or the next
    one round robin (`interleave_nodes`), no mask. With no policy mask, a task in a cpuset
    allocates within the cpuset's mems (`prepare_alloc_pages`).
    """
    nid = task.node
    mask: Nodemask | None = None
    if pol.mode == MPOL_PREFERRED:
        nid = pol.nodes[0]
    elif pol.mode == MPOL_BIND:
        mask = pol.nodes
    elif pol.mode == MPOL_INTERLEAVE:
        nid = interleave_nodes(task, pol) if ilx is None else interleave_nid(pol, ilx)
    if mask is None:
        mask = cpuset_current_mems_allowed(m, task)
    return nid, mask


def allowed_zonelist(m: Machine, nid: int, mask: Nodemask | None) -> list[Node]:
    """The zones `get_page_from_freelist` may try: node `nid`'s zonelist (`build_zonelists`)
    filtered by the nodemask (`for_each_zone_zonelist_nodemask`)."""
    zl = m.zonelist(nid)
    return zl if mask is None else [n for n in zl if n.nid in mask]


def alloc_pages_mpol(m: Machine, task: TaskStruct, ilx: int | None = NO_INTERLEAVE_INDEX) -> list[Node]:
    """Models `alloc_pages_mpol()`'s choice for one allocation by `task` under its policy
    (`alloc_pages_noprof` for page tables and kernel pages: no interleave index; a shmem folio:
    inode number + index; an anonymous page: its page offset in the address space): the nodes
    it may come from, in the order they are tried."""
    nid, mask = policy_nodemask(m, task, get_task_policy(task), ilx)
    return allowed_zonelist(m, nid, mask)


def step_zonelist(m: Machine, task: TaskStruct) -> list[Node]:
    """The zonelist every allocation of a bulk step by `task` uses, when one does: any policy
    but interleave (whose allocations each have their own node: `interleaved`)."""
    assert not interleaved(task)
    return alloc_pages_mpol(m, task)


def interleaved(task: TaskStruct) -> bool:
    """Whether the task's allocations are spread by the interleave policy."""
    return task.mempolicy.mode == MPOL_INTERLEAVE


def allowed_nodes(m: Machine, task: TaskStruct) -> list[Node]:
    """Every node some allocation by `task` may come from (the union over its allocations'
    zonelists): the policy's nodes for bind, else the cpuset's mems. Their free pages above
    min are what the slow path has to spend before it reaches the OOM killer."""
    pol = get_task_policy(task)
    mask = pol.nodes if pol.mode == MPOL_BIND else cpuset_current_mems_allowed(m, task)
    return m.nodes if mask is None else [n for n in m.nodes if n.nid in mask]


def oom_nodemask(m: Machine, task: TaskStruct) -> Nodemask | None:
    """The nodemask an allocation by `task` hands to `out_of_memory` (`ac->nodemask`): the
    bind policy's nodes, else the cpuset's mems when cpusets are enabled, else none."""
    pol = get_task_policy(task)
    return pol.nodes if pol.mode == MPOL_BIND else cpuset_current_mems_allowed(m, task)


def mempolicy_in_oom_domain(task: TaskStruct, mask: Nodemask | None) -> bool:
    """Models `mempolicy_in_oom_domain()`: in a mempolicy-constrained OOM only a task bound
    (MPOL_BIND) to nodes all outside the OOM's nodemask is out of the domain."""
    if mask is None:
        return True
    pol = task.mempolicy
    if pol.mode == MPOL_BIND:
        return any(n in mask for n in pol.nodes)
    return True


def cpuset_mems_allowed_intersects(a: TaskStruct, b: TaskStruct) -> bool:
    """Models `cpuset_mems_allowed_intersects()`: whether two tasks' cpuset mems meet (None:
    the root cpuset, every node)."""
    if a.mems_allowed is None or b.mems_allowed is None:
        return True
    return any(n in b.mems_allowed for n in a.mems_allowed)
