"""Charging and taking a bulk step's pages at once.

The step's size was found within every limit (limits.py), so the charge cannot fail and the
allocator has the pages; what this adds is where they come from: the segments of the
zonelist, in allocation order, so that each page lands on the node the one-page path would
have used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mm.memcontrol import memcg_charge_done_bulk, page_counter_try_charge
from ..mm.mempolicy import step_zonelist
from ..mm.page_alloc import take_pages

if TYPE_CHECKING:
    from ..mm.machine import Machine
    from ..mm.task import TaskStruct


def charge_and_take_parts(
    m: Machine, task: TaskStruct, total: int, uncharged: int = 0
) -> list[tuple[int, int]]:
    """Take `total` pages from the zonelist the task's NUMA policy gives every allocation of
    the step (`step_zonelist`: the preferred node's, filtered by the bind nodes or the
    cpuset's mems), in order, and charge all but `uncharged` of them to its memcg."""
    if total == 0:
        return []
    over = page_counter_try_charge(task.memcg, total - uncharged)
    if over is not None:
        raise AssertionError(f"bulk charge of {total} pages refused by {over.path}")
    memcg_charge_done_bulk(task, task.memcg, total - uncharged)
    return take_pages(step_zonelist(m, task), total)
