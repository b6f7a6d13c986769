"""The mitigation policies (simulator/policies.py, simulator/mitigations/): their specs, and
each one's effect on a scenario where that effect is certain, run for real.

Every effect test runs the scenario under `none` too and asserts that the outcome differs, so
a policy that changed nothing would fail it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.experiment.plan import Chunk, plan_sweep
from simulator.outcome import RunResult
from simulator.policies import (
    POLICIES,
    Param,
    apply_policy,
    check_policies,
    default_specs,
    parse_policy,
)
from simulator.scenario import Scenario, parse_scenario
from simulator.scenario_errors import ScenarioError
from simulator.simulation import simulate

MiB = 256  # pages


CORE = """\
name: core
machine: {{nodes: [{{memory: 4GiB}}], swap: {swap}}}
sysctl: {{overcommit_memory: {overcommit}}}
cgroups:
  /app: {{memory.max: 64MiB}}
  /small: {{memory.max: 16MiB}}
{cgroups}
tasks:
  - name: sender
    cgroup: {sender_cgroup}
    oom_score_adj: {sender_adj}
    ops:
      - memfd_create: {{fd: buf, flags: [allow_sealing]}}
      - ftruncate: {{fd: buf, size: {size}}}
      - add_seals: {{fd: buf, seals: [write, shrink, grow]}}
  - name: reader
    cgroup: {reader_cgroup}
    start: {{after: sender}}
    rlimits: {{memlock: {memlock}}}
    ops:
      - mmap: {{fd: buf, map: m, prot: [read], flags: [shared]}}
      - touch: {{map: m, access: read}}
{extra}
"""


def core(sender_cgroup: str = "/", sender_adj: int = 0, swap: str = "0", overcommit: int = 0,
         size: str = "256MiB", cgroups: str = "", extra: str = "", reader_cgroup: str = "/app",
         memlock: str = "8MiB") -> Scenario:
    """The core scenario (scenarios/sealed-holes-memcg.yaml), with what a test varies."""
    return parse_scenario(CORE.format(**locals()))


BYSTANDER = """\
  - name: bystander
    cgroup: /app
    ops:
      - alloc_anon: {size: 8MiB}
      - sleep: 30s
"""


def run(sc: Scenario, spec: str = "none") -> RunResult:
    """The scenario under a policy, simulated."""
    return simulate(apply_policy(spec, sc))


def peak(r: RunResult, memcg: str, item: str) -> int:
    """The peak of a memory.stat item of a memcg, in pages."""
    return int(r.counters["memcg"][memcg][f"peak_{item}"])


def ended(r: RunResult, task: str = "reader") -> tuple[Any, ...]:
    """(outcome, errno, op name) of a task."""
    o = r.tasks[task]
    return o.outcome, o.errno, o.op_name


class TestPolicySpecs:
    def test_a_bare_name(self):
        """`mlock` names the policy, no parameters, no target."""
        s = parse_policy("mlock")
        assert (s.name, s.params, s.target) == ("mlock", {}, None)

    def test_parameters_take_units(self):
        """`name:key=value` reads a size with the scenario files' units."""
        assert parse_policy("memcg_headroom:size=64MiB").params == {"size": 64 << 20}
        assert parse_policy("swap:size=1GiB").params == {"size": 1 << 30}

    def test_parameter_kinds_for_other_policies(self):
        """Durations, integers and numbers parse too (for policies such as userspace killers)."""
        assert Param("interval", "duration").parse("100ms") == pytest.approx(0.1)
        assert Param("n", "int").parse("3") == 3 and Param("x", "float").parse("0.5") == 0.5
        with pytest.raises(ValueError, match="expected an integer, got 'x'"):
            Param("n", "int").parse("x")

    def test_a_target_and_parameters(self):
        """`name:key=v@task` names a parameter and a task."""
        s = parse_policy("memcg_headroom:size=4MiB@reader")
        assert (s.params, s.target) == ({"size": 4 << 20}, "reader")
        assert parse_policy("mlock@reader").target == "reader"

    @pytest.mark.parametrize("spec, message", [
        ("nosuch", "no policy 'nosuch'; known: none, mlock"),
        ("memcg_headroom", "missing parameter 'size' (e.g. memcg_headroom:size=256MiB)"),
        ("memcg_headroom:sise=4MiB", "memcg_headroom has no parameter 'sise'; it takes: size"),
        ("memcg_headroom:size=lots", "size: expected a size such as 4KiB"),
        ("memcg_headroom:size=-4MiB", "size: expected a non-negative size"),
        ("memcg_headroom:size=1MiB,size=2MiB", "parameter 'size' given twice"),
        ("memcg_headroom:size", "expected key=value, got 'size'"),
        ("mlock:window=8MiB", "mlock has no parameter 'window'; it takes: none"),
        ("swap:size=1GiB@reader", "swap applies to the whole machine, not to a task"),
        ("mlock@", "expected a task name after @"),
        ("ml ock", "expected name[:key=value[,key=value]][@task]"),
    ])
    def test_bad_specs_say_what_is_wrong(self, spec, message):
        """Each mistake in a spec is one message that names it."""
        with pytest.raises(ScenarioError, match=None) as e:
            parse_policy(spec)
        assert message in str(e.value)

    def test_an_unknown_task_is_refused(self):
        """`name@task` must name a task of the scenario."""
        with pytest.raises(ScenarioError, match="no task named 'writer'; tasks: sender, reader"):
            check_policies(["mlock@writer"], core())
        with pytest.raises(ScenarioError, match="no task named 'writer'"):
            apply_policy("protect_reader@writer", core())

    def test_a_target_that_cannot_apply_is_refused(self):
        """A reader-side policy aimed at a task that maps nothing, an admin one at the root."""
        with pytest.raises(ScenarioError, match="task 'sender' maps no write-sealed file shared"):
            apply_policy("mlock@sender", core())
        with pytest.raises(ScenarioError, match="'sender' is in the root cgroup"):
            apply_policy("oom_group@sender", core())
        with pytest.raises(ScenarioError, match="task 'reader' seals no file"):
            apply_policy("fallocate_before_seal@reader", core())

    def test_every_policy_has_a_runnable_example(self):
        """`compare` without --policy runs each policy's example: all of them parse and apply."""
        sc = core()
        assert [parse_policy(s).name for s in default_specs()] == list(POLICIES)
        for spec in default_specs():
            apply_policy(spec, sc)

    def test_the_old_call_still_works(self):
        """`POLICIES[name](scenario)` applies a policy with its defaults, as before."""
        assert POLICIES["zero_page"](core()).what_if.zero_page_sealed_holes

    def test_oomsim_policies_lists_each_with_its_parameters(self):
        """`oomsim policies`: a line per policy, its description, parameters and default target."""
        res = CliRunner().invoke(app, ["policies"])
        assert res.exit_code == 0
        lines = res.stdout.splitlines()
        assert [ln.split()[0] for ln in lines] == list(POLICIES)
        (headroom,) = [ln for ln in lines if ln.startswith("memcg_headroom ")]
        assert "[size=SIZE (added to memory.max)]" in headroom
        assert "(default target: the readers' cgroups)" in headroom

    def test_compare_takes_specs(self):
        """`oomsim compare --policy name:key=v@task` runs it; a bad spec is bad input (2)."""
        runner = CliRunner()
        res = runner.invoke(app, ["compare", "scenarios/sealed-holes-memcg.yaml", "--policy",
                                  "memcg_headroom:size=256MiB@reader", "--format", "csv"])
        assert res.exit_code == 0, res.output
        assert "memcg_headroom:size=256MiB@reader,6.18,reader,ok," in res.stdout
        res = runner.invoke(app, ["compare", "scenarios/sealed-holes-memcg.yaml", "--policy",
                                  "memcg_headroom"])
        assert res.exit_code == 2
        assert "missing parameter 'size'" in res.output

    def test_a_sweep_checks_its_specs_and_keeps_them_apart(self):
        """The sweep plan refuses a bad spec at its place; specs make distinct chunk files."""
        raw = {"name": "x", "tasks": [{"name": "reader"}],
               "sweep": {"policies": ["none", "swap:size=1GiB", "swap:size=2GiB", "nope"]}}
        with pytest.raises(ScenarioError) as e:
            plan_sweep(raw)
        assert e.value.path == ("sweep", "policies", 3)
        raw["sweep"]["policies"] = ["none", "swap:size=1GiB", "swap:size=2GiB", "mlock@reader"]
        keys = {c.key for c in plan_sweep(raw).chunks}
        assert len(keys) == 4 and "c0000-none-6.18-r0000000-0000001" in keys
        assert all(set(k) <= set("abcdefghijklmnopqrstuvwxyz0123456789_=.-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                   for k in keys)
        raw["sweep"]["policies"] = ["mlock@writer"]
        with pytest.raises(ScenarioError, match="no task named 'writer'"):
            plan_sweep(raw)
        assert Chunk(0, "mlock", "6.18", 0, 1).key == "c0000-mlock-6.18-r0000000-0000001"


class TestReaderSide:
    def test_none_the_reader_is_killed_in_its_parse(self):
        """The baseline: the core reader is OOM-killed in the touch, at page 16,269."""
        r = run(core())
        assert ended(r) == ("oom_killed", None, "touch")
        assert r.tasks["reader"].page == 16269

    def test_mlock_moves_the_kill_into_the_mlock_call(self):
        """mlock populates first: the kill is in mlock, before any parse."""
        assert ended(run(core(), "mlock")) == ("oom_killed", None, "mlock")

    def test_populate_moves_the_kill_into_madvise(self):
        """MADV_POPULATE_READ populates first: the kill is in madvise."""
        assert ended(run(core(), "populate")) == ("oom_killed", None, "madvise")

    def test_map_populate_moves_the_kill_into_mmap(self):
        """MAP_POPULATE populates in mmap, and its OOM kill is there."""
        r = run(core(), "map_populate")
        assert ended(r) == ("oom_killed", None, "mmap") and r.tasks["reader"].op == 0

    def test_mlock_chunked_locks_windows_of_rlimit_memlock(self):
        """Windows of RLIMIT_MEMLOCK (8 MiB = 2,048 pages): the kill is in the mlock of the
        window holding page 16,269, the eighth (ops: mmap, then mlock/touch/munlock each)."""
        base, r = run(core()), run(core(), "mlock_chunked")
        assert ended(r) == ("oom_killed", None, "mlock")
        assert r.tasks["reader"].op == 1 + 3 * (16269 // (8 * MiB))
        assert ended(base) != ended(r)
        r2 = run(core(memlock="16MiB"), "mlock_chunked")
        assert r2.tasks["reader"].op == 1 + 3 * (16269 // (16 * MiB))
        big = run(core(), "mlock_chunked:window=32MiB")  # past RLIMIT_MEMLOCK: `do_mlock` refuses
        assert (ended(big), big.tasks["reader"].op) == (("error", "ENOMEM", "mlock"), 1)

    def test_mlock_chunked_survives_with_swap_where_mlock_dies(self):
        """With swap, a window munlocked is evictable again: reclaim drops its clean holes, and
        the reader survives; the whole mapping mlocked is unevictable and is OOM-killed."""
        sc = core(swap="1GiB")
        assert ended(run(sc, "mlock")) == ("oom_killed", None, "mlock")
        r = run(sc, "mlock_chunked")
        assert ended(r) == ("ok", None, None)
        assert r.counters["memcg"]["/app"]["pgsteal"] > 0

    def test_read_syscall_charges_the_buffer_not_the_holes(self):
        """read(2) copies holes from ZERO_PAGE: the file stays empty; the private buffer
        (256 MiB of anonymous memory in a 64 MiB memcg) is what kills the reader."""
        base, r = run(core()), run(core(), "read_syscall")
        assert peak(base, "/app", "shmem") > 16000
        assert peak(r, "/app", "shmem") == 0 and peak(r, "/", "shmem") == 0
        assert ended(r) == ("oom_killed", None, "alloc_anon")
        small = run(core(size="32MiB"), "read_syscall")
        assert ended(small) == ("ok", None, None)
        assert peak(small, "/app", "anon") >= 32 * MiB and peak(small, "/app", "shmem") == 0

    def test_prefault_helper_charges_the_senders_side(self):
        """A helper in the sender's cgroup populates the file before the reader starts: the
        holes are charged to the root, and the reader only maps pages."""
        base, r = run(core()), run(core(), "prefault_helper")
        assert ended(base)[0] == "oom_killed"
        assert ended(r) == ("ok", None, None)
        assert ended(r, "prefault_buf") == ("ok", None, None)
        assert peak(r, "/", "shmem") == 256 * MiB and peak(r, "/app", "shmem") == 0
        sc = apply_policy("prefault_helper", core(sender_cgroup="/small"))
        helper = next(t for t in sc.tasks if t.name == "prefault_buf")
        assert helper.cgroup == "/small" and helper.start.after == "sender"
        assert next(t for t in sc.tasks if t.name == "reader").start.after == "prefault_buf"


class TestSenderSide:
    def test_fallocate_before_seal_passes_no_holes(self):
        """The sender fills the file before sealing: the reader maps pages and survives."""
        r = run(core(), "fallocate_before_seal")
        assert ended(r) == ("ok", None, None)
        assert peak(r, "/", "shmem") == 256 * MiB and peak(r, "/app", "shmem") == 0

    def test_a_sender_in_a_small_memcg_fails_before_sealing(self):
        """In a 16 MiB memcg the sender cannot fill 256 MiB: it fails in fallocate (ENOMEM,
        unkillable) before the seal, and the reader, which starts after it, never starts."""
        r = run(core(sender_cgroup="/small", sender_adj=-1000), "fallocate_before_seal")
        assert ended(r, "sender") == ("error", "ENOMEM", "fallocate")
        assert r.tasks["reader"].outcome == "hung" and r.tasks["reader"].op is None


class TestKernelWhatIfs:
    def test_zero_page_makes_the_reader_ok(self):
        """ZERO_PAGE for read faults on sealed holes: the reader survives, the file stays empty."""
        r = run(core(), "zero_page")
        assert ended(r) == ("ok", None, None)
        assert peak(r, "/app", "shmem") == 0

    def test_charge_at_seal_fills_the_file_at_the_seal(self):
        """The seal instantiates and charges every hole to the sealing task: the reader then
        only maps pages and survives."""
        r = run(core(), "charge_at_seal")
        assert ended(r) == ("ok", None, None)
        assert peak(r, "/", "shmem") == 256 * MiB and peak(r, "/app", "shmem") == 0
        assert r.what_if["charge_at_seal"] is True

    def test_charge_at_seal_fails_the_seal_with_enomem(self):
        """A sender in a 16 MiB memcg (unkillable) cannot be charged 256 MiB: F_ADD_SEALS fails
        with ENOMEM, no seal is added, the pages it filled are freed, and the reader never
        faults (it starts after the sender's ops, which did not all succeed)."""
        base = run(core(sender_cgroup="/small", sender_adj=-1000))
        assert ended(base, "sender") == ("ok", None, None)
        r = run(core(sender_cgroup="/small", sender_adj=-1000), "charge_at_seal")
        assert ended(r, "sender") == ("error", "ENOMEM", "add_seals")
        assert "write" not in r.counters["files"]["buf"]["seals"]
        undo = [e for e in r.events if e[1] == "shmem_fallocate_undo"]
        assert [(e[2], e[5], e[7]) for e in undo] == [("sender", peak(r, "/small", "shmem"), "ENOMEM")]
        assert r.tasks["reader"].op is None
        assert r.counters["memcg"]["/app"]["max_usage_pages"] < 64  # its footprint only

    def test_charge_at_seal_fails_the_seal_with_enospc_under_strict_overcommit(self):
        """Mode 2: each folio's `shmem_acct_blocks` is refused past CommitLimit: ENOSPC."""
        sc = core(overcommit=2, size="4GiB")
        r = run(sc, "charge_at_seal")
        assert ended(r, "sender") == ("error", "ENOSPC", "add_seals")
        assert "write" not in r.counters["files"]["buf"]["seals"]
        assert ended(run(sc), "sender") == ("ok", None, None)

    def test_the_what_if_is_an_option_of_run(self):
        """`oomsim run --what-if charge_at_seal=true` is the same switch as the policy."""
        res = CliRunner().invoke(app, ["run", "scenarios/sealed-holes-memcg.yaml", "--json",
                                       "--what-if", "charge_at_seal=true"])
        assert res.exit_code == 0, res.output
        run0 = json.loads(res.stdout)["runs"][0]
        assert run0["what_if"]["charge_at_seal"] is True
        assert run0["tasks"]["reader"]["outcome"] == "ok"

    def test_charge_at_seal_kills_a_killable_sender_in_the_seal(self):
        """A killable sender in a small memcg is the memcg OOM victim, inside F_ADD_SEALS."""
        r = run(core(sender_cgroup="/small"), "charge_at_seal")
        assert ended(r, "sender") == ("oom_killed", None, "add_seals")
        assert "write" not in r.counters["files"]["buf"]["seals"]


class TestAdministrator:
    def test_memcg_headroom_raises_memory_max(self):
        """256 MiB more makes room for the whole file; 64 MiB more moves the kill twice as far."""
        assert ended(run(core(), "memcg_headroom:size=256MiB")) == ("ok", None, None)
        r = run(core(), "memcg_headroom:size=64MiB")
        assert ended(r) == ("oom_killed", None, "touch")
        assert r.tasks["reader"].page > 2 * 16000

    def test_oom_group_kills_the_whole_cgroup(self):
        """memory.oom.group: the bystander in the reader's cgroup dies with it."""
        sc = core(extra=BYSTANDER)
        assert run(sc).tasks["bystander"].outcome == "ok"
        r = run(sc, "oom_group")
        assert ended(r)[0] == "oom_killed" and r.tasks["bystander"].outcome == "oom_killed"

    def test_protect_reader_makes_another_task_the_victim(self):
        """oom_score_adj -1000 on the reader: the bystander is killed instead; then no task is
        left to kill and the reader refaults until the run ends (`hung`)."""
        sc = core(extra=BYSTANDER)
        assert [k["victim"] for k in run(sc).oom_kills] == ["reader"]
        r = run(sc, "protect_reader")
        assert [k["victim"] for k in r.oom_kills] == ["bystander"]
        assert r.tasks["reader"].outcome == "hung"

    def test_memory_min_protects_a_cgroup_from_its_siblings_reclaim(self):
        """Two children of a 64 MiB parent, with swap: the reader's faults reclaim the other
        child's clean pages; memory.min on the other child leaves them alone."""
        other = """\
  - name: other
    cgroup: /p/o
    start: {after: sender}
    ops:
      - mmap: {fd: buf, map: o, prot: [read], flags: [shared], length: 16MiB}
      - touch: {map: o, access: read}
      - sleep: 30s
"""
        sc = core(swap="1GiB", reader_cgroup="/p/r", extra=other, cgroups=(
            "  /p: {memory.max: 64MiB}\n  /p/r: {}\n  /p/o: {}"))
        base = run(sc)
        r = run(sc, "memory_min:size=32MiB@other")
        assert base.counters["memcg"]["/p/o"]["pgsteal"] > 0
        assert r.counters["memcg"]["/p/o"]["pgsteal"] == 0

    def test_swap_lets_the_reader_survive_with_swap_empty(self):
        """A swap device: clean holes are dropped and refaulted, never written out."""
        r = run(core(), "swap:size=1GiB")
        assert ended(r) == ("ok", None, None)
        assert r.counters["swap"]["total_pages"] == 1024 * MiB
        assert r.counters["swap"]["pswpout"] == 0
