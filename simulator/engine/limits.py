"""Limits as objects: every limit a bulk step could cross, each asked how many pages fit.

A limit answers two questions. For the bulk solver's closed form, `margin`: how many more
pages of its resource it allows right now (None: it does not apply to this step). For the
slow path, `edge`: the kernel path that runs at the page where it binds (the engine does not
model that path itself: it stops the step there and the one-page kernel function runs, which
meets the limit as the kernel does: reclaim, OOM, an error).

Three resources are counted by a step: `alloc`, every page taken from the allocator; `charge`,
the pages of those charged to a memcg (all but 3.15's page tables); `acct`, the data pages
accounted to the overcommit and to the tmpfs mount. A new limit is one class here, added to
`LIMITS`: kswapd's low watermark and memsw are the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from typing_extensions import override

from ..mm.memcontrol import charge_margin, high_margin, memsw_margin
from ..mm.mempolicy import allowed_nodes
from ..mm.overcommit import guess_free_2014, vm_commit_margin
from ..mm.page_alloc import alloc_margin
from .solve import INF

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.memcontrol import MemCgroup
    from ..mm.shmem_inode import ShmemInode
    from ..mm.task import TaskStruct

ALLOC, CHARGE, ACCT = "alloc", "charge", "acct"


class Limit:
    """One limit: the resource it bounds, its margin now, and the kernel path at its edge."""

    resource: ClassVar[str]
    edge: ClassVar[str]

    def margin(self, m: Machine, task: TaskStruct, inode: ShmemInode | None,
               memcg: MemCgroup) -> int | None:
        """Pages of `resource` this limit allows a step by `task` (its folios charged to
        `memcg`, touching `inode` if any) before the slow path; None if it does not apply."""
        raise NotImplementedError


class ZoneWatermarks(Limit):
    """The free pages above the min watermark (`__zone_watermark_ok`, ALLOC_WMARK_MIN) of
    every node the step's allocations may use: the bind policy's nodes, else the cpuset's mems
    (`allowed_nodes`).

    A sum over those nodes: the zonelist's order (and interleaving) does not change a sum, and
    every allowed node is taken down to min before `__alloc_pages_slowpath` reaches the OOM
    killer; nodes outside the nodemask do not count, however free.
    """

    resource = ALLOC
    edge = "__alloc_pages_slowpath: kswapd, direct reclaim, __alloc_pages_may_oom"

    @override
    def margin(self, m: Machine, task: TaskStruct, inode: ShmemInode | None,
               memcg: MemCgroup) -> int | None:
        return alloc_margin(allowed_nodes(m, task))


class MemcgMax(Limit):
    """memory.max of the charged memcg and every ancestor (`page_counter_try_charge`)."""

    resource = CHARGE
    edge = "try_charge_memcg: try_to_free_mem_cgroup_pages, mem_cgroup_oom"

    @override
    def margin(self, m: Machine, task: TaskStruct, inode: ShmemInode | None,
               memcg: MemCgroup) -> int | None:
        return charge_margin(memcg)

    @staticmethod
    def split_margins(mine: MemCgroup, theirs: MemCgroup) -> tuple[int, int, int]:
        """For a step charging some pages to `mine` and others to `theirs` (a swap-in's page
        tables and folios): (pages only `mine` may take, only `theirs`, both together), from
        the margins of the ancestors of only the first, of only the second, and of both."""
        a, b = mine.ancestors(), theirs.ancestors()
        only_a = [c for c in a if c not in b]
        only_b = [c for c in b if c not in a]
        both = [c for c in a if c in b]
        return (min((memsw_margin(c) for c in only_a), default=INF),
                min((memsw_margin(c) for c in only_b), default=INF),
                min((memsw_margin(c) for c in both), default=INF))


class MemcgHigh(Limit):
    """memory.high of the charged memcg and every ancestor, where the charge path notices it.

    memory.high never refuses a charge; what it changes is the charge whose 64-page batch
    (`consume_stock` found the task's stock empty) finds the memcg or an ancestor over high:
    that charge adds a batch to the task's pending pages, and the reclaim and the penalty
    sleep follow after the fault (or past one batch in a system call). So the step stops
    right before it (`high_margin`), the one-page path takes that page, and the walker runs
    `mem_cgroup_handle_over_high` there. Below high a step runs up to the first batch over
    it; over high the steps are a batch long, one per high event and throttling sleep: the
    bulk engine still goes by events (throttling decisions), not by pages.
    """

    resource = CHARGE
    edge = "try_charge_memcg: memcg_nr_pages_over_high; mem_cgroup_handle_over_high"

    @override
    def margin(self, m: Machine, task: TaskStruct, inode: ShmemInode | None,
               memcg: MemCgroup) -> int | None:
        return high_margin(task, memcg)


class CommitLimit(Limit):
    """Mode 2's CommitLimit for files accounted page by page (VM_NORESERVE): the one-page
    `__vm_enough_memory` calls that pass (`vm_enough_memory`)."""

    resource = ACCT
    edge = "shmem_inode_acct_blocks: -ENOSPC (SIGBUS for a fault)"

    @override
    def margin(self, m: Machine, task: TaskStruct, inode: ShmemInode | None,
               memcg: MemCgroup) -> int | None:
        if inode is None or not inode.noreserve:
            return None
        return vm_commit_margin(m, task)


class TmpfsBlocks(Limit):
    """The tmpfs mount's size (`sbinfo->max_blocks`)."""

    resource = ACCT
    edge = "shmem_inode_acct_blocks: -ENOSPC (SIGBUS for a fault)"

    @override
    def margin(self, m: Machine, task: TaskStruct, inode: ShmemInode | None,
               memcg: MemCgroup) -> int | None:
        return None if inode is None else inode.sb.free_blocks()


LIMITS: tuple[Limit, ...] = (ZoneWatermarks(), MemcgMax(), MemcgHigh(), CommitLimit(),
                             TmpfsBlocks())


@dataclass(frozen=True)
class Caps:
    """What every limit allows right now, in pages, for one step (a snapshot).

    Attributes:
        alloc: pages the allocator hands out before the slow path.
        charge: pages the charged memcg's hierarchy takes before some ancestor's max.
        acct: data pages that can be accounted (commit and mount blocks).
        guess_2014: [2014] the v3.15 mode-0 free estimate (`guess_free_2014`); not a margin
            but a rule on each data page: one allocated as the y-th allocation of the step is
            admitted iff y <= guess_2014 - 1.
    """

    alloc: int
    charge: int
    acct: int = INF
    guess_2014: int | None = None

    @property
    def mem(self) -> int:
        """Pages that can be both allocated and charged."""
        return min(self.alloc, self.charge)


def snapshot_caps(m: Machine, task: TaskStruct, inode: ShmemInode | None,
                  memcg: MemCgroup | None = None) -> Caps:
    """Ask every limit of `LIMITS` what a step by `task` (touching `inode`, if any; charging
    `memcg`, the task's unless given) allows now."""
    charged = task.memcg if memcg is None else memcg
    alloc = charge = acct = INF  # the least margin per resource (locals: every step asks)
    for lim in LIMITS:
        v = lim.margin(m, task, inode, charged)
        if v is None:
            continue
        r = lim.resource
        if r == ALLOC:
            alloc = min(alloc, v)
        elif r == CHARGE:
            charge = min(charge, v)
        else:
            acct = min(acct, v)
    guess = guess_free_2014(m, task) if inode is not None and inode.noreserve else None
    return Caps(alloc=alloc, charge=charge, acct=acct, guess_2014=guess)
