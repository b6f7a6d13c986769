from hypothesis import given
from hypothesis import strategies as st

from simulator.mm.memcontrol import (
    MemCgroup,
    charge_margin,
    mem_cgroup_get_oom_group,
    page_counter_try_charge,
    page_counter_uncharge,
)
from simulator.simulation import Run, simulate


def tree():
    root = MemCgroup(path="/")
    a = MemCgroup(path="/a", parent=root, max=100)
    b = MemCgroup(path="/a/b", parent=a, max=80)
    c = MemCgroup(path="/a/c", parent=a)
    root.children.append(a)
    a.children += [b, c]
    return root, a, b, c


class TestPageCounterTryCharge:
    def test_charges_every_ancestor(self):
        """A charge to a leaf counts in the leaf, its parents and the root."""
        root, a, b, _ = tree()
        assert page_counter_try_charge(b, 10) is None
        assert (b.usage, a.usage, root.usage) == (10, 10, 10)

    def test_the_lowest_limit_up_the_tree_refuses(self):
        """memory.max is hierarchical: a sibling's usage counts against the parent's max."""
        _, a, b, c = tree()
        assert page_counter_try_charge(c, 50) is None
        assert page_counter_try_charge(b, 51) is a
        assert page_counter_try_charge(b, 81) is b
        assert b.usage == 0 and a.usage == 50

    def test_margin_is_the_smallest_over_ancestors(self):
        """What the hierarchy still takes."""
        _, a, b, c = tree()
        page_counter_try_charge(c, 50)
        assert charge_margin(b) == 50 and charge_margin(c) == 50

    @given(st.lists(st.tuples(st.sampled_from(["b", "c"]), st.integers(1, 40), st.booleans()),
                    max_size=50))
    def test_usage_is_the_sum_of_live_charges(self, seq):
        """Any sequence of charges and uncharges leaves usage equal to the live charges, in
        every memcg, and never above a limit."""
        _, a, b, c = tree()
        live = {"b": [], "c": []}
        cg = {"b": b, "c": c}

        class M:  # page_counter_uncharge only needs somewhere to wake waiters
            pass

        for which, n, uncharge in seq:
            if uncharge and live[which]:
                page_counter_uncharge(M(), cg[which], live[which].pop())
            elif page_counter_try_charge(cg[which], n) is None:
                live[which].append(n)
            assert b.usage == sum(live["b"]) and c.usage == sum(live["c"])
            assert a.usage == b.usage + c.usage <= a.max
            assert b.usage <= b.max


class TestOomGroup:
    def test_highest_ancestor_with_oom_group_up_to_the_oom_domain(self):
        """mem_cgroup_get_oom_group walks from the victim's memcg up to the OOMing memcg."""
        root, a, b, _ = tree()
        a.oom_group = b.oom_group = True

        class T:
            memcg = b

        assert mem_cgroup_get_oom_group(T, a) is a
        assert mem_cgroup_get_oom_group(T, b) is b
        a.oom_group = False
        assert mem_cgroup_get_oom_group(T, root) is b


class TestOomKillDisableInherited:
    """v1: `mem_cgroup_css_alloc` copies the parent's oom_kill_disable into a new memcg."""

    TEXT = """
    name: t
    machine: {nodes: [{memory: 256MiB}]}
    cgroups:
      /p: {memory.max: 32MiB, memory.oom_kill_disable: 1}
      /p/child: {memory.max: 8MiB}
      /p/off: {memory.max: 8MiB, memory.oom_kill_disable: 0}
      /p/deep/leaf: {memory.max: 8MiB}
    tasks:
      - name: stuck
        cgroup: /p/child
        ops: [{alloc_anon: {size: 16MiB}}]
      - name: victim
        cgroup: /p/off
        ops: [{alloc_anon: {size: 16MiB}}]
    duration: 1s
    """

    def test_a_child_not_written_inherits_and_one_written_keeps_its_value(self, scenario):
        """Unwritten children (named or made on the way, like mkdir -p) copy the parent's flag."""
        m = Run(scenario(self.TEXT)).m
        assert m.memcgs["/p/child"].oom_kill_disable
        assert m.memcgs["/p/deep"].oom_kill_disable and m.memcgs["/p/deep/leaf"].oom_kill_disable
        assert not m.memcgs["/p/off"].oom_kill_disable

    def test_the_child_of_a_disabled_parent_hangs_at_its_own_limit(self, scenario):
        """No kill in a memcg that inherited the flag: the task sleeps; its sibling that wrote 0
        is killed at its limit."""
        out = simulate(scenario(self.TEXT)).tasks
        assert out["stuck"].outcome == "hung"
        assert out["victim"].outcome == "oom_killed"
