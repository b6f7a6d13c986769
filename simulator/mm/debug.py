"""Consistency checks of the kernel model's state: its VM_BUG_ONs, under a debug switch.

Models the role of mm/debug.c and CONFIG_DEBUG_VM: `check_invariants` fails loudly when pages
are not conserved per node, a counter is negative or over its limit, or swap and xarray
bookkeeping disagree. `vm_debug_check` is the cheap call for hot paths: it does nothing unless
`Machine.debug_vm` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .xarray import XA_NODE_BYTES

if TYPE_CHECKING:
    from .machine import Machine

# Pages one task can hold between allocating and booking them: a COW copy, the file folio it
# copies, and a slab page for that folio's xarray node.
MAX_UNBOOKED = 3


def vm_debug_check(m: Machine) -> None:
    """`check_invariants` if CONFIG_DEBUG_VM is on (`m.debug_vm`); else nothing."""
    if m.debug_vm:
        check_invariants(m)


def check_xa_charges(m: Machine) -> None:
    """Every file's xarray nodes are those its entries need, and every memcg's slab pages
    hold exactly its nodes' bytes and its byte stock."""
    nodes: dict[int, int] = {}
    seen: set[int] = set()
    for inode in m.files.values():
        if id(inode) in seen:
            continue
        seen.add(id(inode))
        for tag, n in inode.xa.charged(inode.max_index()).items():
            nodes[tag] = nodes.get(tag, 0) + n
        if m.profile.kmem_charged and not inode.sb.disk:  # no xarray nodes for disk files
            runs = [(s, e) for s, e, _ in inode.pages.runs(0, 1 << 62)]
            runs += [(s, e) for s, e, _ in inode.swap.runs(0, 1 << 62)]
            if not inode.xa.matches(runs, inode.max_index()):
                raise AssertionError(f"{inode.name}: xarray nodes differ from its entries'")
    tags = {id(c): tag for tag, c in enumerate(m.tagged_memcgs)}
    for c in m.memcgs.values():
        held = nodes.get(tags.get(id(c), -1), 0) * XA_NODE_BYTES
        if c.obj_stock < 0 or c.stat["slab"] * m.page_size != held + c.obj_stock:
            raise AssertionError(
                f"memcg {c.path}: {c.stat['slab']} slab pages != {held} bytes of xarray "
                f"nodes + {c.obj_stock} bytes of stock"
            )


def unbooked_slack(m: Machine) -> int:
    """Pages that may be allocated (or charged) but not yet booked to an owner.

    A fault allocates a page, then charges it, then books it (rss, page cache, page table,
    slab); a task asleep in the kernel in between (waiting for an OOM victim) holds up to
    `MAX_UNBOOKED` such pages, and so does the task whose allocation panicked the machine,
    since a panic unwinds nothing.
    """
    tasks = sum(1 for t in m.tasks if t.kernel_wait is not None) + (m.panic is not None)
    return MAX_UNBOOKED * tasks


def check_invariants(m: Machine) -> None:
    """Fail loudly: pages conserved per node, counters never negative or over limits.

    Works at any point where no task is inside a kernel path except asleep (between ops, bulk
    steps, after an exit or a kill) and after a panic: pages and charges held unbooked by a
    sleeping or panicked task are allowed for (`unbooked_slack`).
    """
    slack = unbooked_slack(m)
    per_node_used = [0] * len(m.nodes)
    for t in m.tasks:
        for src in (t.mm.pt_nodes, t.mm.anon_nodes, t.mm.kernel_nodes):
            for nid, n in src.items():
                per_node_used[nid] += n
    for inode in {id(i): i for i in [*m.files.values(), *m.dcache.values()]}.values():
        for tag, n in inode.pages.by_owner().items():
            per_node_used[m.owners[tag][1]] += n
    for c in m.memcgs.values():
        for nid, n in [*c.slab_nodes.items(), *c.rcu_pgtables.items()]:
            per_node_used[nid] += n
    for node in m.nodes:
        if not 0 <= node.managed - node.free - per_node_used[node.nid] <= slack:
            raise AssertionError(
                f"node {node.nid}: free {node.free} + used {per_node_used[node.nid]} "
                f"!= managed {node.managed}" + (f" (less up to {slack} unbooked)" if slack else "")
            )
    for c in m.memcgs.values():
        if c.usage < 0:
            raise AssertionError(f"memcg {c.path}: negative usage")
        # Only a forced charge (a task's footprint at fork) passes max; no try_charge adds to it.
        if not c.is_root() and c.usage > max(c.max, c.forced_peak):
            raise AssertionError(f"memcg {c.path}: usage {c.usage} over max {c.max}")
        # `file` counts shmem and the page cache of disk files (NR_FILE_PAGES)
        local = sum(c.stat[k] for k in ("anon", "file", "kernel", "pagetables", "slab"))
        local += m.kmem_charge(sum(c.rcu_pgtables.values()))
        if any(n < 0 for n in c.rcu_pgtables.values()):
            raise AssertionError(f"memcg {c.path}: negative page tables awaiting RCU")
        below = sum(ch.usage for ch in c.children)
        if not 0 <= c.usage - (local + below) <= slack:
            raise AssertionError(
                f"memcg {c.path}: usage {c.usage} != own pages {local} + children {below}"
                + (f" (plus up to {slack} unbooked)" if slack else "")
            )
    check_swap_invariants(m)
    check_xa_charges(m)
    if m.overcommit.committed_as < 0:
        raise AssertionError("Committed_AS negative")
    for sb in [m.internal_mount, *m.mounts.values()]:
        if sb.used_blocks < 0 or (sb.max_blocks and sb.used_blocks > sb.max_blocks):
            raise AssertionError(f"mount {sb.path}: used_blocks {sb.used_blocks} out of range")

def check_swap_invariants(m: Machine) -> None:
    """Swap slots, swap charges and MM_SWAPENTS add up; a swapped page is not also a folio."""
    used = 0
    swap_local: dict[int, int] = {}
    for inode in m.files.values():
        for tag, n in inode.swap.by_owner().items():
            swap_local[tag] = swap_local.get(tag, 0) + n
            used += n
        for s, e, _ in inode.swap.runs(0, 1 << 62):
            if inode.pages.count(s, e):
                raise AssertionError(f"file {inode.name}: pages {s}..{e} both swapped and present")
        for what, em in (("dirty", inode.dirty), ("not uptodate", inode.falloc)):
            for s, e, _ in em.runs(0, 1 << 62):
                if inode.pages.count(s, e) != e - s:
                    raise AssertionError(f"file {inode.name}: pages {s}..{e} {what} but absent")
        for vma in inode.vmas:
            for s, e, _ in inode.swap.runs(vma.pgoff, vma.pgoff + vma.npages):
                if vma.mapped.count(s - vma.pgoff, e - vma.pgoff):
                    raise AssertionError(f"file {inode.name}: a swapped page is mapped")
    for t in m.tasks:
        ents = 0
        for vma in t.mm.vmas.values():
            for tag, n in vma.swap.by_owner().items():
                swap_local[tag] = swap_local.get(tag, 0) + n
                used += n
                ents += n
            for s, e, _ in vma.swap.runs(0, vma.npages):
                if vma.cow.count(s, e) or vma.mapped.count(s, e) or vma.zero.count(s, e):
                    raise AssertionError(f"{t.name}: a swap PTE is also present")
        if not t.exited and ents != t.mm.swapents:
            raise AssertionError(f"{t.name}: MM_SWAPENTS {t.mm.swapents} != swap PTEs {ents}")
    if used != m.swap.inuse or m.swap.inuse > m.swap.pages:
        raise AssertionError(f"swap: {m.swap.inuse} slots in use of {m.swap.pages}, "
                             f"entries {used}")
    local = {id(c): 0 for c in m.memcgs.values()}
    for tag, n in swap_local.items():
        local[id(m.tagged_memcgs[tag])] += n
    for c in m.memcgs.values():
        if c.stat["swap"] != local[id(c)]:
            raise AssertionError(f"memcg {c.path}: swap stat {c.stat['swap']} != entries "
                                 f"{local[id(c)]}")
        below = sum(ch.swap_usage for ch in c.children)
        if c.swap_usage != local[id(c)] + below:
            raise AssertionError(f"memcg {c.path}: swap usage {c.swap_usage} != own "
                                 f"{local[id(c)]} + children {below}")
        if not c.is_root() and c.swap_usage > c.swap_max:
            raise AssertionError(f"memcg {c.path}: swap usage over swap.max")
