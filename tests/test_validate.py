"""`oomsim validate`: the real kernel next to the simulator.

The rules that need no kernel are checked everywhere: which scenarios are skipped and why, the
safety refusal, what counts as a match, the worker's op lines, machine profiles, exit statuses.
The `kernel` tests run the calibration set and every scenario in scenarios/ on this machine's
kernel, when it allows (root, a writable memory controller, a C compiler); else they skip.
"""

from __future__ import annotations

import dataclasses
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.machine_profile import MachineProfile, load_profile, profile_costs, write_profile
from simulator.outcome import TaskOutcome
from simulator.scenario import ScenarioError, load_scenario, parse_scenario, scenario_files
from simulator.simulation import simulate
from simulator.validate import session
from simulator.validate.admit import (
    SMALL_TASK_BYTES,
    disk_skip_reason,
    effective_limit,
    refusal,
    skip_reason,
    task_alloc_bytes,
)
from simulator.validate.build import WorkerBuildError, find_compiler
from simulator.validate.calibrate import calibration_scenario
from simulator.validate.cgroup import Controller
from simulator.validate.compare import Row, compare, side_by_side
from simulator.validate.diskfiles import DiskMount, fincore
from simulator.validate.host import Host
from simulator.validate.order import start_barriers
from simulator.validate.program import cap_mask, scenario_programs

ROOT = Path(__file__).resolve().parent.parent
GiB, MiB = 1 << 30, 1 << 20
V1 = Controller(Path("/sys/fs/cgroup/memory"), 1)
V2 = Controller(Path("/sys/fs/cgroup"), 2)
HOST = Host(hostname="test", release="6.18.0", page_size=4096, mem_total=16 * GiB,
            mem_available=12 * GiB, swap_total=0, sysctl={"overcommit_memory": 0,
                                                          "overcommit_ratio": 50},
            controller=V1)
runner = CliRunner()


def sc(text: str):
    return parse_scenario(textwrap.dedent(text))


READER = textwrap.dedent("""
    name: reader
    cgroups: {/app: {memory.max: 64MiB}}
    tasks:
      - name: sender
        ops:
          - memfd_create: {fd: buf}
          - ftruncate: {fd: buf, size: 256MiB}
      - name: reader
        cgroup: /app
        start: {after: sender}
        ops:
          - mmap: {fd: buf, map: m, prot: [read], flags: [shared]}
          - touch: {map: m, access: read}
""")


# -- which scenarios run here ------------------------------------------------------------------
class TestSkipReason:
    def test_a_plain_memcg_scenario_runs(self):
        """A single-node 6.18 scenario inside memcgs has nothing to skip."""
        assert skip_reason(sc(READER), HOST) is None

    def test_another_kernel_is_skipped(self):
        """kernel 3.15 is a model of another kernel, not this one."""
        assert "kernel 3.15" in skip_reason(sc(READER + 'kernel: "3.15"\n'), HOST)

    def test_what_if_is_skipped(self):
        """A what-if switch is behaviour no kernel has."""
        why = skip_reason(sc(READER + "what_if: {zero_page_sealed_holes: true}\n"), HOST)
        assert "zero_page_sealed_holes" in why

    def test_a_sampled_touch_is_skipped(self):
        """touch with count samples pages; the worker touches every page of its range."""
        sampled = READER.replace("touch: {map: m, access: read}",
                                 "touch: {map: m, access: read, pattern: random, count: 10}")
        assert "touch count" in skip_reason(sc(sampled), HOST)

    def test_disk_mounts_run_on_a_disk_filesystem(self, tmp_path):
        """A disk mount's files are written below the temporary directory: on a disk
        filesystem the scenario runs; on tmpfs (whose files would be shmem) it is skipped."""
        disk = sc(READER + "mounts: [{path: /data, type: disk, files: {f: 1MiB}}]\n")
        info = tmp_path / "mountinfo"
        info.write_text(f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                        f"30 22 0:5 / {tmp_path}/shm rw - tmpfs tmpfs rw\n")
        assert disk_skip_reason(disk, str(tmp_path), str(info)) is None
        why = disk_skip_reason(disk, str(tmp_path / "shm" / "x"), str(info))
        assert why is not None and "tmpfs, not a disk filesystem" in why

    def test_disk_mount_files_must_fit_in_half_the_free_space(self, tmp_path):
        huge = sc(READER + "mounts: [{path: /data, type: disk, files: {f: 1000TiB}}]\n")
        why = disk_skip_reason(huge, str(tmp_path))
        assert why is not None and "MiB free" in why

    def test_disk_files_are_on_disk_and_not_cached(self, tmp_path):
        """Written with O_DIRECT and dropped with POSIX_FADV_DONTNEED: every block allocated,
        no page of it in the page cache (mincore), until someone reads it."""
        d = DiskMount(tmp_path / "data", {"f": 8 * MiB, "odd": 12345}).make()
        f = tmp_path / "data" / "f"
        assert f.stat().st_size == 8 * MiB and f.stat().st_blocks * 512 >= 8 * MiB
        assert fincore(f) == 0 and fincore(tmp_path / "data" / "odd") == 0
        f.open("rb").read(MiB)
        assert fincore(f) >= 256
        d.remove()
        assert not f.exists()

    def test_several_nodes_are_skipped(self):
        """Only single-node scenarios run for real."""
        two = READER + "machine: {nodes: [{memory: 1GiB}, {memory: 1GiB}]}\n"
        assert "2 NUMA nodes" in skip_reason(sc(two), HOST)

    def test_swap_on_a_machine_without_swap_is_skipped(self):
        """swap > 0 needs swap here."""
        assert "swap" in skip_reason(sc(READER + "machine: {swap: 1GiB}\n"), HOST)

    def test_swap_in_scenarios_are_skipped_without_swap(self):
        """The swap-in scenarios say why they cannot run here: this machine has no swap."""
        root = Path(__file__).parent.parent / "scenarios"
        for name in ("swapin-sealed-read-oom", "swapin-read-kills-producer"):
            why = skip_reason(load_scenario(root / f"{name}.yaml"), HOST)
            assert why is not None and why.startswith("swap 1024 MiB (this machine has no swap")

    def test_a_machine_larger_than_this_one_is_skipped(self):
        """The scenario's RAM must fit in this machine's."""
        assert "machine memory" in skip_reason(sc(READER + "machine: {nodes: [{memory: 64GiB}]}\n"),
                                               HOST)

    def test_a_sysctl_this_machine_has_otherwise_is_skipped(self):
        """A sysctl is never changed: a scenario that needs another value does not run."""
        why = skip_reason(sc(READER + "sysctl: {overcommit_memory: 2}\n"), HOST)
        assert "vm.overcommit_memory=2" in why and "never changed" in why

    def test_a_sysctl_left_at_its_default_is_not_compared(self):
        """Only the sysctls a scenario sets (and overcommit_memory) must agree."""
        host = dataclasses.replace(HOST, sysctl={**HOST.sysctl, "min_free_kbytes": 67584,
                                                 "overcommit_ratio": 80})
        assert skip_reason(sc(READER), host) is None

    def test_oom_group_needs_v2(self):
        """memory.oom.group has no v1 counterpart."""
        text = READER.replace("{memory.max: 64MiB}", "{memory.max: 64MiB, memory.oom.group: 1}")
        assert "memory.oom.group needs cgroup v2" in skip_reason(sc(text), HOST)

    def test_oom_kill_disable_needs_v1(self):
        """memory.oom_kill_disable exists only in v1."""
        text = READER.replace("{memory.max: 64MiB}", "{memory.max: 64MiB, memory.oom_kill_disable: 1}")
        assert skip_reason(sc(text), HOST) is None
        assert "needs cgroup v1" in skip_reason(sc(text), dataclasses.replace(HOST, controller=V2))

    def test_tasks_in_a_cgroup_with_children_need_v1(self):
        """cgroup v2 allows no processes in a cgroup whose children use the controller."""
        text = READER.replace("{/app: {memory.max: 64MiB}}", "{/app: {memory.max: 64MiB}, /app/sub: {}}")
        assert skip_reason(sc(text), HOST) is None
        assert "v2 does not allow" in skip_reason(sc(text), dataclasses.replace(HOST, controller=V2))

    def test_a_capability_this_process_lacks_is_skipped(self):
        """A task keeps only capabilities we have: CAP_SYS_RESOURCE for a negative adj."""
        host = dataclasses.replace(HOST, capabilities=HOST.capabilities & ~(1 << 24))
        text = READER.replace("cgroup: /app\n", "cgroup: /app\n    oom_score_adj: -1000\n")
        assert "CAP_SYS_RESOURCE" in skip_reason(sc(text), host)
        assert skip_reason(sc(text), HOST) is None

    def test_a_memlock_limit_above_the_hard_limit_needs_sys_resource(self):
        """RLIMIT_MEMLOCK can be raised past the hard limit only with CAP_SYS_RESOURCE."""
        host = dataclasses.replace(HOST, capabilities=HOST.capabilities & ~(1 << 24),
                                   memlock_max=8 * MiB)
        text = READER.replace("cgroup: /app\n", "cgroup: /app\n    rlimits: {memlock: max}\n")
        assert "RLIMIT_MEMLOCK" in skip_reason(sc(text), host)

    def test_shmem_huge_pages_are_skipped(self):
        """memfds with huge pages would charge 512 pages at a time: the model has none."""
        assert "shmem_enabled" in skip_reason(sc(READER), dataclasses.replace(HOST, shmem_thp="always"))


class TestRefusal:
    def test_a_big_task_inside_a_small_memcg_may_run(self):
        """256 MiB touched inside a 64 MiB memcg is safe."""
        assert refusal(sc(READER), HOST) is None

    def test_a_big_task_without_a_limit_is_refused(self):
        """A task that may allocate more than 16 MiB outside any limited memcg is refused."""
        text = READER.replace("    cgroup: /app\n", "")
        why = refusal(sc(text), HOST)
        assert "task reader may allocate 256 MiB" in why and "no memory.max" in why

    def test_a_limit_not_below_the_free_memory_is_refused(self):
        """The memcg limit must be below the machine's free memory."""
        host = dataclasses.replace(HOST, mem_available=32 * MiB)
        assert "not below the free memory" in refusal(sc(READER), host)

    def test_a_small_task_needs_no_limit(self):
        """16 MiB or less may run anywhere: sender only truncates; a 16 MiB reader is small."""
        text = READER.replace("size: 256MiB", "size: 16MiB").replace("    cgroup: /app\n", "")
        assert refusal(sc(text), HOST) is None

    def test_what_a_task_may_allocate(self):
        """Maps (of the file's largest size), fallocate, write and alloc_anon all count."""
        s = sc("""
            name: sizes
            tasks:
              - name: t
                ops:
                  - memfd_create: {fd: f}
                  - ftruncate: {fd: f, size: 8MiB}
                  - mmap: {fd: f, map: m, prot: [read], flags: [shared]}
                  - mmap: {fd: f, map: n, prot: [read], flags: [shared], length: 1MiB}
                  - fallocate: {fd: f, length: 2MiB}
                  - fallocate: {fd: f, length: 2MiB, flags: [punch_hole, keep_size]}
                  - write: {fd: f, length: 4MiB}
                  - alloc_anon: {size: 16MiB}
                  - read: {fd: f}
            """)
        assert task_alloc_bytes(s, s.tasks[0]) == (8 + 1 + 2 + 4 + 16) * MiB
        assert SMALL_TASK_BYTES == 16 * MiB

    def test_the_lowest_limit_on_the_path_counts(self):
        """A child without a limit is bounded by its parent's."""
        s = sc("""
            name: nested
            cgroups: {/a: {memory.max: 64MiB}, /a/b: {}}
            tasks: [{name: t, cgroup: /a/b}]
            """)
        assert effective_limit(s, "/a/b") == 64 * MiB
        assert effective_limit(s, "/") is None

    def test_a_refused_scenario_never_runs(self, monkeypatch):
        """validate_scenario refuses before it creates anything."""
        def must_not_run(*a, **k):
            raise AssertionError("ran a refused scenario")
        monkeypatch.setattr(session, "run_on_kernel", must_not_run)
        f = ROOT / "scenarios" / "global-oom-shared-memfd.yaml"
        v = session.validate_scenario(f, HOST, Path("/nonexistent"))
        assert v.status == "refused" and "no memory.max" in v.reason


# -- what counts as a match --------------------------------------------------------------------
class TestCompare:
    def test_outcome_errno_and_op_name_must_match(self):
        """The same outcome, errno and op name is a match, whatever the pages."""
        row = Row("reader", TaskOutcome("oom_killed", None, 1, "touch", 16271),
                  TaskOutcome("oom_killed", None, 1, "touch", 16306))
        assert row.match and row.page_delta == -35

    @pytest.mark.parametrize("real", [
        TaskOutcome("ok"),
        TaskOutcome("oom_killed", None, 2, "mlock", 16306),
        TaskOutcome("error", "ENOMEM", 1, "touch"),
    ])
    def test_any_other_difference_is_a_mismatch(self, real):
        """A different outcome, op or errno is a mismatch, and says which field differs."""
        row = Row("reader", real, TaskOutcome("oom_killed", None, 1, "touch", 16306))
        assert not row.match and row.differences

    def test_a_missing_outcome_is_a_mismatch(self):
        """A task only one side has an outcome for does not match."""
        assert Row("t", None, TaskOutcome("ok")).differences == ["no real outcome"]
        assert Row("t", TaskOutcome("ok"), None).differences == ["no simulated outcome"]

    def test_rows_follow_the_scenario_order_and_render(self):
        """One row per task in the scenario's order; the table shows both sides and Δpage."""
        real = {"b": TaskOutcome("sigbus", None, 2, "touch", 4096), "a": TaskOutcome("ok")}
        sim = {"a": TaskOutcome("ok"), "b": TaskOutcome("sigbus", None, 2, "touch", 4090)}
        rows = compare(real, sim, ["a", "b"])
        assert [r.task for r in rows] == ["a", "b"] and all(r.match for r in rows)
        from rich.console import Console

        con = Console(width=200, record=True)
        con.print(side_by_side("t", rows))
        text = con.export_text()
        assert "sigbus touch p4096" in text and "sigbus touch p4090" in text and "+6" in text


# -- the worker's program ----------------------------------------------------------------------
class TestProgram:
    def test_ops_become_worker_lines(self, tmp_path):
        """Sizes in bytes, names as slots, flags as the kernel's bits, paths below the root."""
        s = sc("""
            name: lines
            mounts: [{path: /mnt/t, size: 4MiB}]
            tasks:
              - name: t
                capabilities: [ipc_lock]
                ops:
                  - memfd_create: {fd: buf, flags: [allow_sealing]}
                  - open: {fd: f, path: /mnt/t/data, mode: rdonly}
                  - ftruncate: {fd: buf, size: 1MiB}
                  - add_seals: {fd: buf, seals: [write, shrink, grow]}
                  - mmap: {fd: buf, map: m, prot: [read], flags: [shared, populate]}
                  - touch: {map: m, access: write, range: [0, 50%]}
                  - fallocate: {fd: buf, length: 64KiB, flags: [punch_hole, keep_size]}
                  - mlock2: {map: m, flags: [onfault]}
                  - sleep: 2ms
            """)
        (prog,), slots = scenario_programs(s, tmp_path)
        assert prog.lines == [
            "memfd_create 0 2", f"open 1 1 {tmp_path}/mnt/t/data", "ftruncate 0 1048576",
            "add_seals 0 14", "mmap 0 0 1 32769 0 -1", "touch 0 1 0 0 5 0 p50",
            "fallocate 0 3 0 65536", "mlock2 0 - - 1", "sleep 2000000"]
        assert prog.caps == cap_mask(["ipc_lock"]) == 1 << 14
        assert prog.populating.keys() == {4}  # MAP_POPULATE; mlock2 onfault populates nothing
        assert slots.fds == {"buf": 0, "f": 1}

    def test_memory_reclaim_writes_the_cgroups_own_file(self, tmp_path):
        """memory_reclaim is a write of the size (and swappiness=) to the memory.reclaim of
        the real cgroup that stands for the scenario's."""
        s = sc("""
            name: reclaim
            cgroups: {/app: {memory.max: 64MiB}}
            tasks:
              - name: t
                cgroup: /app
                ops:
                  - memory_reclaim: {cgroup: /app, size: 1MiB}
                  - memory_reclaim: {cgroup: /app, size: 2MiB, swappiness: 0}
            """)
        (prog,), _ = scenario_programs(s, tmp_path, {"/app": tmp_path / "cg"})
        assert prog.lines == [f"memory_reclaim 1048576 -1 {tmp_path}/cg/memory.reclaim",
                              f"memory_reclaim 2097152 0 {tmp_path}/cg/memory.reclaim"]
        assert "needs cgroup v2" in skip_reason(s, HOST)


class TestStartOrder:
    def test_a_task_starting_later_waits_for_what_the_simulation_had_begun(self):
        """A reader starting at 1 ms is released once the sender has begun the op it was in
        at 1 ms in the simulation (its sleep: the memfd exists, truncated and sealed)."""
        s = load_scenario(ROOT / "scenarios" / "row17-tmpfs-128m-memcg-64m.yaml")
        assert start_barriers(s, simulate(s)) == {"reader": {"creator": 2}}

    def test_tasks_that_start_after_another_need_no_barrier(self):
        """`start: {after: X}` already waits for X's ops."""
        s = load_scenario(ROOT / "scenarios" / "sealed-holes-memcg.yaml")
        assert start_barriers(s, simulate(s)) == {}


# -- machine profiles --------------------------------------------------------------------------
PROFILE = MachineProfile(host="box", kernel="6.18.0", costs={"fault": "3000ns", "read": "200ns"})


class TestMachineProfile:
    def test_a_scenario_takes_costs_from_its_profile(self, tmp_path):
        """machine.profile is read relative to the scenario file; machine.costs wins."""
        write_profile(tmp_path / "profiles" / "box.yaml", PROFILE)
        f = tmp_path / "s.yaml"
        f.write_text(textwrap.dedent("""
            name: p
            machine: {profile: profiles/box.yaml, costs: {read: 100ns}}
            tasks: [{name: t, ops: [{sleep: 1ms}]}]
            """))
        s = load_scenario(f)
        assert s.machine.profile == str(tmp_path / "profiles" / "box.yaml")
        from simulator.simulation import Run

        costs = Run(s).m.costs
        assert costs.fault == pytest.approx(3e-6) and costs.read == pytest.approx(1e-7)
        assert simulate(s).tasks["t"].outcome == "ok"

    def test_a_missing_profile_is_a_scenario_error_at_its_line(self, tmp_path):
        """A profile that cannot be read fails when the scenario loads, naming the key."""
        f = tmp_path / "s.yaml"
        f.write_text("name: p\nmachine:\n  profile: nope.yaml\ntasks: [{name: t}]\n")
        with pytest.raises(ScenarioError) as e:
            load_scenario(f)
        assert e.value.line == 3 and "machine.profile" in str(e.value) and "nope.yaml" in str(e.value)

    def test_profiles_round_trip(self, tmp_path):
        """What write_profile writes, load_profile reads back; costs in seconds."""
        write_profile(tmp_path / "p.yaml", PROFILE)
        assert load_profile(tmp_path / "p.yaml") == PROFILE
        assert profile_costs(tmp_path / "p.yaml") == {"fault": pytest.approx(3e-6),
                                                      "read": pytest.approx(2e-7)}

    def test_a_bad_cost_key_is_refused(self, tmp_path):
        """Profile costs use the keys of machine.costs."""
        (tmp_path / "p.yaml").write_text("costs: {faults: 1us}\n")
        with pytest.raises(ValueError, match="costs.faults"):
            load_profile(tmp_path / "p.yaml")

    def test_the_calibration_is_a_valid_scenario(self):
        """One task per method and repeat, each after the previous, in a limited memcg."""
        s = calibration_scenario(64 * MiB, 2, HOST)
        names = [t.name for t in s.tasks]
        assert names[:2] == ["fault0", "read0"] and names[-1] == "syscall"
        assert refusal(s, HOST) is None and skip_reason(s, HOST) is None
        assert all(t.start.after == p for t, p in zip(s.tasks[1:], names, strict=False))


# -- the command -------------------------------------------------------------------------------
class TestCommand:
    def test_without_a_memory_controller_it_says_so_and_exits_3(self, monkeypatch):
        """No root or no writable controller: a clear message and exit status 3."""
        from simulator.validate import cli as vcli

        monkeypatch.setattr(vcli, "probe_host", lambda: dataclasses.replace(
            HOST, controller=None, unavailable="not running as root"))
        res = runner.invoke(app, ["validate", str(ROOT / "scenarios")])
        assert res.exit_code == 3 and "not running as root" in res.output

    def test_without_a_compiler_it_says_so_and_exits_4(self, monkeypatch):
        """No C compiler: a clear message and exit status 4."""
        from simulator.validate import build
        from simulator.validate import cli as vcli

        monkeypatch.setattr(vcli, "probe_host", lambda: HOST)
        monkeypatch.setattr(build.shutil, "which", lambda name: None)
        monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent-oomsim-cache")
        with pytest.raises(WorkerBuildError, match="no C compiler"):
            find_compiler()
        res = runner.invoke(app, ["validate", str(ROOT / "scenarios")])
        assert res.exit_code == 4 and "no C compiler" in res.output


# -- on the real kernel ------------------------------------------------------------------------
def kernel_unavailable() -> str | None:
    """Why this machine cannot run the kernel tests, or None."""
    from simulator.validate.build import worker_path
    from simulator.validate.host import probe_host

    host = probe_host()
    if host.controller is None:
        return host.unavailable
    try:
        worker_path()
    except WorkerBuildError as e:
        return str(e)
    return None


KERNEL_FILES = scenario_files(ROOT / "scenarios")  # the calibration set and every scenario
WHY_NOT = kernel_unavailable()
needs_kernel = pytest.mark.skipif(WHY_NOT is not None, reason=f"no real-kernel runs: {WHY_NOT}")


@pytest.fixture(scope="module", autouse=True)
def own_tmp(tmp_path_factory):
    """This module's runs make their temporary directories (and so their tmpfs mount points)
    under a directory of their own, so that leftovers count only what they created, not the
    mounts of another test run or `oomsim validate` sharing the machine."""
    base = tmp_path_factory.mktemp("kernel-runs")
    saved, tempfile.tempdir = tempfile.tempdir, str(base)
    yield base
    tempfile.tempdir = saved


@pytest.fixture(scope="module")
def validations():
    """Every scenario file validated once, in parallel (each in its own cgroups)."""
    from simulator.validate.build import worker_path
    from simulator.validate.host import probe_host

    start = time.monotonic()
    out = session.validate_files(KERNEL_FILES, probe_host(), worker_path(), jobs=10)
    assert time.monotonic() - start < 90
    return {v.file: v for v in out}


def leftovers() -> tuple[list[str], list[str]]:
    """This test run's cgroups (named with its pid) and tmpfs mounts (below its own temporary
    directory) still present: none should be. Others' are not counted."""
    import os

    from simulator.validate.host import probe_host
    from simulator.validate.mounts import our_mounts

    ctl = probe_host().controller
    cgroups = sorted(p.name for p in ctl.root.glob(f"oomsim-{os.getpid()}-*")) if ctl else []
    base = tempfile.gettempdir().rstrip("/") + "/"
    return cgroups, [m for m in our_mounts() if m.startswith(base)]


@pytest.mark.kernel
@needs_kernel
@pytest.mark.parametrize("path", KERNEL_FILES,
                         ids=[str(p.relative_to(ROOT / "scenarios")) for p in KERNEL_FILES])
def test_the_real_kernel_agrees_with_the_simulator(path, validations):
    """Each scenario this machine can run ends the same way on the kernel and in the model."""
    v = validations[path]
    if v.status in ("skipped", "refused"):
        pytest.skip(f"{v.status}: {v.reason}")
    assert v.status == "match", "; ".join(
        f"{r.task}: {', '.join(r.differences)}" for r in v.rows if not r.match) or v.reason


@pytest.mark.kernel
@needs_kernel
def test_the_calibration_set_covers_every_op_and_outcome(validations):
    """scenarios/validation/ runs every op and ends tasks in every outcome, on both sides."""
    from simulator.scenario import OP_ARGS, op_name

    files = [p for p in KERNEL_FILES if p.parent.name == "validation"]
    ops = {op_name(o) for p in files for t in load_scenario(p).tasks for o in t.ops}
    assert ops == set(OP_ARGS)
    outcomes = {(r.real.outcome, r.real.errno) for p in files for r in validations[p].rows}
    kinds = {o for o, _ in outcomes}
    assert kinds >= {"ok", "error", "sigbus", "oom_killed", "hung"}
    assert len({e for o, e in outcomes if o == "error"}) >= 5


@pytest.mark.kernel
@needs_kernel
def test_nothing_is_left_behind(validations):
    """After the runs, no cgroup or tmpfs mount of ours remains."""
    assert leftovers() == ([], [])


@pytest.mark.kernel
@needs_kernel
def test_an_interrupted_run_removes_everything(tmp_path):
    """Ctrl-C (the abort event) stops a run mid-sleep and removes what it created."""
    from simulator.validate.build import worker_path
    from simulator.validate.host import probe_host

    f = tmp_path / "sleepy.yaml"
    f.write_text(textwrap.dedent("""
        name: sleepy
        duration: 20s
        mounts: [{path: /mnt/t, size: 1MiB}]
        cgroups: {/app: {memory.max: 16MiB}}
        tasks:
          - {name: sleeper, cgroup: /app, ops: [{open: {fd: f, path: /mnt/t/x}}, {sleep: 20s}]}
        """))
    abort = threading.Event()
    threading.Timer(0.5, abort.set).start()
    start = time.monotonic()
    with pytest.raises(session.Aborted):
        session.validate_files([f], probe_host(), worker_path(), 1, abort)
    assert time.monotonic() - start < 10
    assert leftovers() == ([], [])


def test_the_default_run_leaves_the_kernel_alone():
    """`make test` (pytest's default options) collects no real-kernel experiment; `make
    test-kernel` collects only them."""
    import subprocess
    import sys

    def collected(*args: str) -> list[str]:
        r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", *args,
                            "tests/test_validate.py"], cwd=ROOT, capture_output=True, text=True,
                           check=False)
        return [line.split("::")[-1] for line in r.stdout.splitlines() if "::" in line]

    default = collected()
    assert default and not any("real_kernel" in t or "left_behind" in t for t in default)
    only = collected("-m", "kernel")
    assert only and all(t.split("[")[0] in KERNEL_TESTS for t in only)


KERNEL_TESTS = {"test_the_real_kernel_agrees_with_the_simulator",
                "test_the_calibration_set_covers_every_op_and_outcome",
                "test_nothing_is_left_behind", "test_an_interrupted_run_removes_everything"}
