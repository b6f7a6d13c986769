"""The fault rule is stated once: `fault_plan`, and its array and range forms agree with it.

`handle_mm_fault` dispatches on `fault_plan`; the bulk engine uses `fault_plans` over arrays of
pages and `range_payload` over ranges. On any state of a mapping and its file (PTEs mapped,
copied, zero-mapped or in swap; file pages present, in swap or holes; any i_size, seals and
what-if), the three must say the same for every page.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.mm.memory import (
    PRESENT,
    FaultPlan,
    fault_plan,
    fault_plans,
    range_payload,
    range_walkable,
    zero_mode,
)
from simulator.mm.mm_types import VMA
from simulator.mm.shmem_inode import ShmemInode, ShmemSb
from simulator.scenario import parse_scenario
from simulator.simulation import Run

MACHINE = """
name: rule
machine: {nodes: [{memory: 64MiB}]}
tasks: [{name: t, ops: [{sleep: 1s}]}]
"""
N = 24  # pages of the mapping


@st.composite
def states(draw):  # type: ignore[no-untyped-def]
    """A mapping of N pages over a file (or anonymous), in a consistent random state."""
    anonymous = draw(st.booleans())
    shared = False if anonymous else draw(st.booleans())
    pgoff = 0 if anonymous else draw(st.integers(0, 4))
    file_pages = draw(st.lists(st.sampled_from("hps"), min_size=N + 4, max_size=N + 4))
    size_pages = draw(st.integers(0, N + 4))
    ptes = []
    for i in range(N):
        f = "h" if anonymous else file_pages[pgoff + i]
        options = ["none", "zero"]
        if not shared:
            options += ["cow", "swap"]
        if f == "p" and not anonymous:
            options.append("mapped")
        ptes.append(draw(st.sampled_from(options)))
    return {
        "anonymous": anonymous, "shared": shared, "pgoff": pgoff, "file": file_pages,
        "size_pages": size_pages, "ptes": ptes, "sealed": draw(st.booleans()),
        "zero_page": draw(st.booleans()),
    }


def build(state):  # type: ignore[no-untyped-def]
    """A real machine, and the VMA the state describes."""
    m = Run(parse_scenario(MACHINE, "rule.yaml")).m
    m.what_if = dataclasses.replace(m.what_if, zero_page_sealed_holes=state["zero_page"])
    inode = None
    if not state["anonymous"]:
        inode = ShmemInode(ino=1, name="f", sb=ShmemSb(path="/f"),
                           size=state["size_pages"] * m.page_size)
        if state["sealed"]:
            inode.seals.add("write")
        for i, f in enumerate(state["file"]):
            if f == "p":
                inode.pages.fill(i, i + 1, 0)
            elif f == "s":
                inode.swap.fill(i, i + 1, 0)
    vma = VMA(name="v", start=1 << 20, npages=N, file=inode, pgoff=state["pgoff"],
              shared=state["shared"], write=True)
    for i, p in enumerate(state["ptes"]):
        if p != "none":
            getattr(vma, p).fill(i, i + 1, 0)
    return m, vma


def as_masks(plan: FaultPlan) -> tuple[bool, ...]:
    """A plan as the array form's masks say it."""
    h = plan.handler
    return (plan is PRESENT, h == "sigbus", bool(plan.swapin), bool(plan.anon),
            bool(plan.data), h in ("zero_page",) or (h == "do_anonymous_page" and not plan.anon),
            h == "do_fault")


class TestFaultPlan:
    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(states(), st.booleans())
    def test_array_form_agrees_page_by_page(self, state, write):
        """`fault_plans` says for each page what `fault_plan` says for it alone."""
        m, vma = build(state)
        idx = np.arange(N, dtype=np.int64)
        plans = fault_plans(m, vma, idx, write)
        for i in range(N):
            got = (bool(plans.present[i]), bool(plans.sigbus[i]), bool(plans.swapin[i]),
                   bool(plans.anon[i]), bool(plans.data[i]), bool(plans.zero[i]),
                   bool(plans.map_file[i]))
            assert got == as_masks(fault_plan(m, vma, i, write)), (i, state)

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(states(), st.booleans(), st.integers(0, N - 1))
    def test_range_form_counts_the_same_pages(self, state, write, a):
        """Over a walkable range up to the first swap-in or SIGBUS, `range_payload` is the
        sum of the plans' anonymous pages and folios."""
        m, vma = build(state)
        if not range_walkable(m, vma, write):
            return
        zmode = zero_mode(m, vma, write)
        total = 0
        for x in range(N - a + 1):
            assert range_payload(m, vma, a, x, write, zmode) == total, (a, x, state)
            if a + x == N:
                break
            plan = fault_plan(m, vma, a + x, write)
            if plan.swapin or plan.handler == "sigbus":
                break
            total += plan.anon + plan.data

    def test_a_read_of_a_hole_instantiates_a_folio(self):
        """The trap itself: a read fault on a hole of a shared mapping adds a folio."""
        m, vma = build({"anonymous": False, "shared": True, "pgoff": 0, "file": ["h"] * (N + 4),
                        "size_pages": N, "ptes": ["none"] * N, "sealed": True,
                        "zero_page": False})
        assert fault_plan(m, vma, 0, False) == FaultPlan("do_fault", data=1)

    def test_the_what_if_maps_zero_page_instead(self):
        """With `zero_page_sealed_holes`, the same read maps ZERO_PAGE and takes nothing."""
        m, vma = build({"anonymous": False, "shared": True, "pgoff": 0, "file": ["h"] * (N + 4),
                        "size_pages": N, "ptes": ["none"] * N, "sealed": True,
                        "zero_page": True})
        assert fault_plan(m, vma, 0, False) == FaultPlan("zero_page")

    def test_past_i_size_is_sigbus(self):
        """A fault past i_size is SIGBUS, whatever the file holds there."""
        m, vma = build({"anonymous": False, "shared": True, "pgoff": 0, "file": ["p"] * (N + 4),
                        "size_pages": 3, "ptes": ["none"] * N, "sealed": False,
                        "zero_page": False})
        assert fault_plan(m, vma, 3, False).handler == "sigbus"
        assert fault_plan(m, vma, 2, False) == FaultPlan("do_fault")
