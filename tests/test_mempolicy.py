"""NUMA policies and cpusets: where pages come from, and who the OOM killer may choose.

Each rule of mm/mempolicy.c, cpuset.c and oom_kill.c's `constrained_alloc`/`oom_cpuset_eligible`
(v6.18) as the model states it, on both engines where a run is involved.
"""

import textwrap

import pytest

from simulator.mm.mempolicy import (
    Mempolicy,
    cpuset_effective_mems,
    interleave_nid,
    mempolicy_in_oom_domain,
    mpol_set_nodemask,
    next_node_in,
)
from simulator.scenario import ScenarioError, parse_scenario
from simulator.simulation import simulate

TWO_NODES = """
name: n
duration: 10s
machine: {{nodes: [{{memory: 64MiB}}, {{memory: 64MiB}}]}}
cgroups: {cgroups}
tasks:
  - name: hog
    node: {hog_node}
    {hog_policy}
    ops:
      - alloc_anon: {{size: {hog_size}}}
      - sleep: 5s
  - name: grower
    start: 1s
    cgroup: {grower_cgroup}
    {grower_policy}
    ops:
      - alloc_anon: {{size: {grower_size}}}
      - sleep: 1s
"""


def two_nodes(reference=False, cgroups="{}", hog_node=1, hog_policy="", hog_size="40MiB",
              grower_cgroup="/", grower_policy="", grower_size="80MiB"):
    text = TWO_NODES.format(cgroups=cgroups, hog_node=hog_node, hog_policy=hog_policy,
                            hog_size=hog_size, grower_cgroup=grower_cgroup,
                            grower_policy=grower_policy, grower_size=grower_size)
    return simulate(parse_scenario(textwrap.dedent(text)), reference=reference)


# -- the policy rules -------------------------------------------------------------------------
def test_interleave_nid_is_the_index_modulo_the_nodes():
    pol = Mempolicy("interleave", (1, 3))
    assert [interleave_nid(pol, i) for i in range(5)] == [1, 3, 1, 3, 1]


def test_interleave_nodes_round_robin_wraps():
    assert [next_node_in(p, (0, 2)) for p in (-1, 0, 1, 2)] == [0, 2, 2, 0]


def test_policy_nodes_are_cut_to_the_cpuset_and_preferred_keeps_one():
    assert mpol_set_nodemask("bind", (0, 1, 2), (1, 2)).nodes == (1, 2)
    assert mpol_set_nodemask("preferred", (2,), None).nodes == (2,)
    assert mpol_set_nodemask("local", (), (0,)) == Mempolicy("local")


def test_effective_mems_intersect_along_the_ancestry_or_inherit():
    assert cpuset_effective_mems([None, (0, 1), (1, 2)], (0, 1, 2, 3)) == (1,)
    assert cpuset_effective_mems([(0,), (1,)], (0, 1)) == (0,)  # empty: the parent's
    assert cpuset_effective_mems([None], (0, 1)) == (0, 1)


def test_only_a_bind_policy_can_leave_a_task_out_of_a_policy_oom():
    class T:
        mempolicy = Mempolicy("bind", (1,))

    assert not mempolicy_in_oom_domain(T(), (0,))  # type: ignore[arg-type]
    T.mempolicy = Mempolicy("interleave", (1,))
    assert mempolicy_in_oom_domain(T(), (0,))  # type: ignore[arg-type]


# -- allocations ------------------------------------------------------------------------------
@pytest.mark.parametrize("reference", [False, True])
def test_default_policy_spills_to_the_other_node(reference):
    """80 MiB on a 64 MiB node: the rest comes from node 1 (zonelist by distance), no OOM."""
    r = two_nodes(reference, hog_size="4MiB")
    assert r.tasks["grower"].outcome == "ok" and not r.oom_kills
    assert r.counters["nodes"][1]["peak_anon"] > 1024 + 3000  # the hog has 1024 there


@pytest.mark.parametrize("reference", [False, True])
def test_bind_never_falls_back_and_its_oom_is_confined(reference):
    """Bound to node 0, 80 MiB does not fit: CONSTRAINT_MEMORY_POLICY, totalpages = node 0's
    present pages, and the bigger hog bound to node 1 is not a candidate."""
    r = two_nodes(reference, hog_policy="mempolicy: {mode: bind, nodes: [1]}", hog_size="50MiB",
                  grower_policy="mempolicy: {mode: bind, nodes: [0]}")
    assert r.tasks["grower"].outcome == "oom_killed" and r.tasks["hog"].outcome == "ok"
    (k,) = r.oom_kills
    assert (k["oom_constraint"], k["nodemask"], k["totalpages"]) == (
        "CONSTRAINT_MEMORY_POLICY", [0], 64 << 8)
    assert "constraint=CONSTRAINT_MEMORY_POLICY,nodemask=0," in k["summary_line"]
    assert r.counters["nodes"][1]["peak_anon"] < 51 << 8  # the hog's and footprints only


def test_a_task_not_bound_is_a_candidate_of_a_policy_oom():
    """The hog on node 1 has the default policy: `mempolicy_in_oom_domain` keeps it in, and
    with oom_score_adj 1000 it scores highest, so it dies although its pages are on the other
    node (and the grower's OOM repeats)."""
    r = two_nodes(hog_size="20MiB", grower_size="70MiB", hog_policy="oom_score_adj: 1000",
                  grower_policy="mempolicy: {mode: bind, nodes: [0]}")
    assert [k["victim"] for k in r.oom_kills][0] == "hog"


@pytest.mark.parametrize("reference", [False, True])
def test_preferred_starts_on_its_node_and_falls_back(reference):
    r = two_nodes(reference, hog_size="4MiB", grower_size="80MiB",
                  grower_policy="mempolicy: {mode: preferred, nodes: [1]}")
    assert r.tasks["grower"].outcome == "ok"
    nodes = r.counters["nodes"]
    assert nodes[1]["peak_free"] <= nodes[1]["low"] and nodes[0]["peak_anon"] > 0


@pytest.mark.parametrize("reference", [False, True])
def test_a_cpuset_confines_allocations_and_names_the_oom_a_policy_one(reference):
    """A task in a cpuset of node 0 allocates with its mems as the nodemask
    (`prepare_alloc_pages`), so its OOM is CONSTRAINT_MEMORY_POLICY in the kernel's terms."""
    r = two_nodes(reference, cgroups="{/c: {cpuset.mems: [0]}}", grower_cgroup="/c")
    (k,) = r.oom_kills
    assert (k["oom_constraint"], k["nodemask"], k["victim"]) == (
        "CONSTRAINT_MEMORY_POLICY", [0], "grower")
    assert r.counters["nodes"][1]["peak_anon"] < 41 << 8


@pytest.mark.parametrize("reference", [False, True])
def test_interleave_splits_by_index_and_falls_back_from_a_full_node(reference):
    """Interleaved over both nodes with node 1 nearly full: half the pages go to node 0 by
    index, the other half too once node 1 is at its low watermark."""
    r = two_nodes(reference, hog_size="60MiB", grower_size="40MiB",
                  grower_policy="mempolicy: {mode: interleave, nodes: [0, 1]}")
    assert r.tasks["grower"].outcome == "ok" and not r.oom_kills
    nodes = r.counters["nodes"]
    assert nodes[0]["peak_anon"] > 35 << 8


def test_interleave_on_free_nodes_is_even():
    r = two_nodes(hog_size="4MiB", grower_size="40MiB",
                  grower_policy="mempolicy: {mode: interleave, nodes: [0, 1]}")
    a0, a1 = (n["peak_anon"] for n in r.counters["nodes"])
    assert abs((a0 - 28) - (a1 - (1 << 10) - 28)) <= 2  # the hog's 4 MiB and footprints aside


def test_a_global_oom_without_cpusets_or_bind_is_unconstrained():
    r = two_nodes(hog_size="60MiB", grower_size="80MiB")
    assert r.oom_kills[0]["oom_constraint"] == "CONSTRAINT_NONE"
    assert r.oom_kills[0]["nodemask"] is None


# -- input ------------------------------------------------------------------------------------
def error_for(policy: str, cgroups: str = "{}") -> str:
    text = TWO_NODES.format(cgroups=cgroups, hog_node=0, hog_policy="", hog_size="1MiB",
                            grower_cgroup="/c" if cgroups != "{}" else "/",
                            grower_policy=policy, grower_size="1MiB")
    with pytest.raises(ScenarioError) as e:
        parse_scenario(textwrap.dedent(text), "bad.yaml")
    return str(e.value)


@pytest.mark.parametrize("policy,key,words", [
    ("mempolicy: {mode: bind}", "tasks[1].mempolicy", "needs nodes"),
    ("mempolicy: {mode: bind, nodes: [2]}", "tasks[1].mempolicy.nodes[0]", "no node 2"),
    ("mempolicy: {mode: preferred, nodes: [0, 1]}", "tasks[1].mempolicy.nodes", "one node"),
    ("mempolicy: {mode: local, nodes: [0]}", "tasks[1].mempolicy.nodes", "takes no nodes"),
    ("mempolicy: {mode: weighted}", "tasks[1].mempolicy.mode", "Input should be"),
])
def test_bad_policies_name_the_line_and_key(policy, key, words):
    msg = error_for(policy)
    assert msg.startswith(f"bad.yaml:16: {key}: ") and words in msg, msg


def test_a_policy_outside_the_cpuset_is_refused():
    msg = error_for("mempolicy: {mode: bind, nodes: [1]}", "{/c: {cpuset.mems: [0]}}")
    assert "bad.yaml:16: tasks[1].mempolicy.nodes: " in msg and "EINVAL" in msg


def test_cpuset_mems_name_nodes_of_the_machine():
    msg = error_for("", "{/c: {cpuset.mems: [0, 5]}}")
    assert msg.startswith("bad.yaml:5: cgroups./c.cpuset.mems[1]: no node 5"), msg
