"""Fault-around's closed forms say, for a whole step, what `do_fault_around` does fault by fault.

On random states of a mapping and its file (PTEs mapped, copied, zero-mapped or in swap; file
pages present, fallocated and not yet uptodate, in swap or holes; any i_size and alignment),
a read walk's faults are first taken one by one, each running `do_fault_around` before its
own page as `handle_mm_fault` does; then the same walk from the same state as a bulk step
does it: its own pages by their plans, then the step's fault-around from
`do_fault_around_range` (sequential) or `do_fault_around_array` (any order). Both must end
with the same PTEs and the same number of faults.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fault_rule import N, build, states

from simulator.engine.fault_around import (
    do_fault_around_array,
    do_fault_around_range,
    filemap_map_windows,
)
from simulator.mm.memory import (
    PRESENT,
    do_fault_around,
    fault_plan,
    fault_plans,
    range_walkable,
    should_fault_around,
)


@st.composite
def walks(draw):  # type: ignore[no-untyped-def]
    """A file mapping's state (some present pages fallocated, !uptodate), its VMA's start
    (any alignment to the 16-page windows) and a walk: (state, start, fallocated, order)."""
    state = draw(states().filter(lambda s: not s["anonymous"]))
    if draw(st.booleans()):  # often only mapped PTEs: a walk the range form can take
        state["ptes"] = [p if p == "mapped" else "none" for p in state["ptes"]]
    start = (1 << 20) + draw(st.integers(0, 15))
    falloc = [i for i, f in enumerate(state["file"]) if f == "p" and draw(st.booleans())]
    a = draw(st.integers(0, N - 1))
    b = draw(st.integers(a + 1, N))
    order = list(range(a, b))
    if draw(st.booleans()):
        order = draw(st.permutations(order))
        order = order[:draw(st.integers(1, len(order)))]
    return state, start, falloc, order


def setup(state, start, falloc):  # type: ignore[no-untyped-def]
    m, vma = build(state)
    vma.start = start
    for i in falloc:
        if not vma.mapped.has(i - vma.pgoff):  # a mapped folio is uptodate
            vma.file.falloc.fill(i, i + 1, 0)
    return m, vma, m.tasks[0]


def fault_own_page(vma, p, plan):  # type: ignore[no-untyped-def]
    """A read fault's own page, after its fault-around: a ZERO_PAGE PTE in the what-if, else
    the folio (a hole's new one; a fallocated one cleared: uptodate) mapped."""
    inode = vma.file
    if plan.handler == "zero_page":
        vma.zero.fill(p, p + 1, 0)
        return
    inode.pages.fill(vma.pgoff + p, vma.pgoff + p + 1, 0)
    inode.falloc.remove(vma.pgoff + p, vma.pgoff + p + 1)
    vma.mapped.fill(p, p + 1, 0)


def the_step(order, m, vma):  # type: ignore[no-untyped-def]
    """The walk up to its first page that takes the one-page path (SIGBUS, a swap-in)."""
    out = []
    for p in order:
        plan = fault_plan(m, vma, p, False)
        if plan.handler == "sigbus" or plan.swapin:
            break
        out.append(p)
    return out


def ptes(vma):  # type: ignore[no-untyped-def]
    """The mapped and ZERO_PAGE PTEs, as runs."""
    return [[(s, e) for s, e, _ in em.runs(0, 1 << 30)] for em in (vma.mapped, vma.zero)]


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(walks())
def test_a_step_maps_and_faults_as_its_faults_one_by_one(walk):
    state, start, falloc, order = walk
    m, vma, task = setup(state, start, falloc)
    step = the_step(order, m, vma)
    if not step:
        return
    faults = 0
    for p in step:  # the reference: fault by fault
        plan = fault_plan(m, vma, p, False)
        if plan is PRESENT:
            continue
        faults += 1
        if should_fault_around(vma):
            do_fault_around(m, task, vma, p)
            if vma.mapped.has(p):
                continue
        fault_own_page(vma, p, plan)
    expected = (ptes(vma), faults)

    sequential = step == list(range(step[0], step[-1] + 1)) and range_walkable(m, vma, False)
    for closed_form in ("array", "range") if sequential else ("array",):
        m, vma, task = setup(state, start, falloc)
        idx = np.array(step, dtype=np.int64)
        plans = fault_plans(m, vma, idx, False)
        if closed_form == "range":
            around = do_fault_around_range(m, vma, step[0], len(step), False)
        else:
            around = do_fault_around_array(m, vma, idx, plans, False)
        faults = 0
        for p in step:
            plan = fault_plan(m, vma, p, False)
            if plan is not PRESENT:
                faults += 1
                fault_own_page(vma, p, plan)
        filemap_map_windows(m, task, vma, around)
        faults -= around.covered if around else 0
        assert (ptes(vma), faults) == expected, (closed_form, walk)


def test_the_rule_is_there():
    """Without fault-around a read of a cached page would map only that page."""
    state = {"anonymous": False, "shared": True, "pgoff": 0, "file": ["p"] * (N + 4),
             "size_pages": N, "ptes": ["none"] * N, "sealed": False, "zero_page": False}
    m, vma, task = setup(state, 1 << 20, [])
    assert do_fault_around(m, task, vma, 0) == 16
