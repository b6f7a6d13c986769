"""Userspace OOM killers (simulator/userspace): earlyoom, systemd-oomd and Meta's oomd at their
projects' defaults, each on a scenario where its rule decides, with real runs."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from simulator.policies import POLICIES, apply_policy
from simulator.results import write_results
from simulator.scenario import load_scenario
from simulator.scenario_errors import ScenarioError
from simulator.simulation import simulate

MIB = 256  # pages of 4 KiB

EARLYOOM_NO_SWAP = """
    name: earlyoom-no-swap
    duration: 30s
    machine: {nodes: [{memory: 512MiB}], swap: 0}
    userspace_oom: {earlyoom: {}}
    tasks:
      - name: big
        sigterm: SIGTERM
        ops:
          - repeat: {times: 60, ops: [{alloc_anon: {size: 8MiB}}, {sleep: 200ms}]}
          - sleep: 10s
      - name: small
        oom_score_adj: ADJ
        ops:
          - alloc_anon: {size: 64MiB}
          - sleep: 25s
"""

EARLYOOM_BIG_SWAP = """
    name: earlyoom-big-swap
    duration: 30s
    machine: {nodes: [{memory: 512MiB}], swap: 1GiB}
    userspace_oom: {earlyoom: {}}
    tasks:
      - name: big
        ops:
          - repeat: {times: 50, ops: [{alloc_anon: {size: 16MiB}}, {sleep: 100ms}]}
          - sleep: 10s
"""

PRESSURE = """
    name: pressure
    duration: 120s
    machine: {nodes: [{memory: 1GiB}]}
    mounts: [{path: /data, type: disk, files: {f: 4MiB}}]
    userspace_oom: KILLER
    cgroups:
      /app: {memory.high: 16MiB, memory.max: 128MiB}
      /other: {}
    tasks:
      - name: hog
        cgroup: /app
        ops:
          - open: {fd: f, path: /data/f}
          - alloc_anon: {size: 18MiB}
          - WORK
      - name: helper
        cgroup: /app
        ops: [{sleep: 110s}]
      - name: bystander
        cgroup: /other
        ops: [{alloc_anon: {size: 8MiB}}, {sleep: 110s}]
"""
# The hog sits over memory.high: every return to user space reclaims and sleeps a penalty (a
# full memory stall). Reading its file again between allocations gives reclaim page cache to
# scan (pgscan grows); without the reads nothing is reclaimable and pgscan stays 0.
SWAP = """
    name: swap
    duration: 30s
    machine: {nodes: [{memory: 512MiB}], swap: SWAP}
    userspace_oom: {systemd_oomd: {managed_oom_memory_pressure: []}}
    cgroups: {/a: {}, /b: {memory.max: 32MiB}}
    tasks:
      - name: swapper
        cgroup: /a
        ops:
          - repeat: {times: 90, ops: [{alloc_anon: {size: 8MiB}}, {sleep: 100ms}]}
          - sleep: 20s
      - name: other
        cgroup: /b
        ops: [{alloc_anon: {size: 64MiB}}, {sleep: 25s}]
"""
# `other`'s memcg reclaim swaps half of it out (more than the 5% of swap a candidate needs),
# less than the swapper.
RECLAIMING = "repeat: {times: 400, ops: [{read: {fd: f}}, {alloc_anon: {size: 64KiB}}]}"
NOT_RECLAIMING = "alloc_anon: {size: 25MiB}"


def earlyoom_run(scenario, sigterm="exit", adj=0):
    return simulate(scenario(EARLYOOM_NO_SWAP.replace("SIGTERM", sigterm).replace("ADJ", str(adj))))


def pressure_run(scenario, killer, work=RECLAIMING):
    return simulate(scenario(PRESSURE.replace("KILLER", killer).replace("WORK", work)))


def mem_avail_percent(reason):
    """The MemAvailable percentage earlyoom logged with an action."""
    return float(re.search(r"mem avail: \d+ of \d+ MiB \(([\d.]+)%\)", reason).group(1))


def first_event(run, kind):
    return next(e[0] for e in run.events if e[1] == kind)


class TestEarlyoom:
    """earlyoom: both MemAvailable and SwapFree at or under 10% -> SIGTERM the highest
    oom_score; at or under 5% -> SIGKILL."""

    def test_nothing_while_free_swap_above_10_percent(self, scenario):
        """800 MiB on a 512 MiB machine: memory is full and swapping, but free swap stays
        far above 10% of 1 GiB, so earlyoom never acts (nor does the kernel)."""
        r = simulate(scenario(EARLYOOM_BIG_SWAP))
        assert r.tasks["big"].outcome == "ok"
        assert r.oom_kills == []
        peak_swap = max(lv[3] for lv in r.levels if lv[1] == "swap_used")
        assert 64 * MIB < peak_swap < 1024 * MIB * 9 // 10  # swapping, free swap above 10%

    def test_sigterm_to_highest_oom_score_then_sigkill_at_half(self, scenario):
        """No swap (0% free): a task that handles SIGTERM gets it at <=10% available, runs
        on, and is SIGKILLed once available memory is at or under 5%."""
        r = earlyoom_run(scenario, sigterm="ignore")
        term, kill = r.oom_kills
        assert (term["killer"], term["signal"], term["victim"]) == ("earlyoom", "SIGTERM", "big")
        assert 5 < mem_avail_percent(term["summary_line"]) <= 10
        assert (kill["killer"], kill["signal"], kill["victim"]) == ("earlyoom", "SIGKILL", "big")
        assert mem_avail_percent(kill["summary_line"]) <= 5
        assert kill["time"] > term["time"]
        assert r.tasks["big"].outcome == "killed" and r.tasks["small"].outcome == "ok"

    def test_sigterm_ends_a_task_without_a_handler(self, scenario):
        """SIGTERM's default action is fatal: one signal, the victim exits."""
        r = earlyoom_run(scenario)
        assert [(k["signal"], k["victim"]) for k in r.oom_kills] == [("SIGTERM", "big")]
        assert r.tasks["big"].outcome == "killed"
        assert r.tasks["big"].time == pytest.approx(r.oom_kills[0]["time"], abs=1e-3)

    def test_victim_is_the_highest_oom_score(self, scenario):
        """oom_score_adj 1000 makes the small task the highest oom_score: it goes first."""
        r = earlyoom_run(scenario, adj=1000)
        assert r.oom_kills[0]["victim"] == "small"


class TestSystemdOomd:
    """systemd-oomd: full avg10 above 60% for 30 s, with reclaim, kills the candidate cgroup
    with the most reclaim, whole."""

    def test_kills_the_whole_cgroup(self, scenario):
        r = pressure_run(scenario, "{systemd_oomd: {}}")
        assert {k["victim"] for k in r.oom_kills} == {"hog", "helper"}
        assert {(k["killer"], k["memcg"], k["signal"]) for k in r.oom_kills} == {
            ("systemd_oomd", "/app", "SIGKILL")}
        assert r.tasks["helper"].outcome == "killed" and r.tasks["bystander"].outcome == "ok"

    def test_never_before_the_duration_of_pressure(self, scenario):
        """The kill comes 30 s after the stall started at the earliest, and a 60 s duration
        moves it 30 s later: the pressure it sees is the same until then."""
        r30 = pressure_run(scenario, "{systemd_oomd: {}}")
        r60 = pressure_run(scenario, "{systemd_oomd: {default_memory_pressure_duration: 60s}}")
        t30, t60 = r30.oom_kills[0]["time"], r60.oom_kills[0]["time"]
        assert t30 >= first_event(r30, "memcg_high_throttle") + 30
        assert t60 - t30 == pytest.approx(30, abs=1)

    def test_no_kill_without_reclaim(self, scenario):
        """Pressure alone is not enough: with nothing reclaimed in 30 s, killing won't help."""
        r = pressure_run(scenario, "{systemd_oomd: {}}", NOT_RECLAIMING)
        assert r.oom_kills == []
        assert r.counters["memcg"]["/app"]["pressure"]["full_avg10"] > 60

    def test_swap_used_over_90_percent_kills_the_largest_swap_user(self, scenario):
        """ManagedOOMSwap=kill on /: with MemAvailable and free swap both under 10%, the
        cgroup using the most swap goes, whole; the other stays."""
        r = simulate(scenario(SWAP.replace("SWAP", "256MiB")))
        (k,) = r.oom_kills
        assert (k["killer"], k["memcg"], k["victim"]) == ("systemd_oomd", "/a", "swapper")
        used, total = map(int, re.search(r"swap used \((\d+)\) / total \((\d+)\)",
                                         k["summary_line"]).groups())
        assert used > total * 9 // 10
        assert r.tasks["other"].outcome == "ok"
        swap = dict(re.findall(r"Path: (/\w*) Swap Usage: (\d+)", k["summary_line"]))
        assert int(swap["/a"]) > int(swap["/b"]) > 0.05 * total  # both candidates

    def test_no_swap_kill_while_swap_is_under_90_percent(self, scenario):
        """The same 720 MiB with 1 GiB of swap: swap stays under 90% used, no kill."""
        r = simulate(scenario(SWAP.replace("SWAP", "1GiB")))
        assert r.oom_kills == [] and r.tasks["swapper"].outcome == "ok"


class TestOomd:
    """oomd: pressure_above 60 for 30 s and memory_reclaim within 10 s ->
    kill_by_memory_size_or_growth among the top-level cgroups."""

    def test_kills_the_largest_cgroup_after_pressure_and_reclaim(self, scenario):
        r = pressure_run(scenario, "{oomd: {}}")
        assert {k["victim"] for k in r.oom_kills} == {"hog", "helper"}
        assert {(k["killer"], k["memcg"]) for k in r.oom_kills} == {("oomd", "/app")}
        assert r.oom_kills[0]["time"] >= first_event(r, "memcg_high_throttle") + 30

    def test_no_kill_without_reclaim(self, scenario):
        r = pressure_run(scenario, "{oomd: {}}", NOT_RECLAIMING)
        assert r.oom_kills == []
        assert r.counters["pressure"]["full_avg10"] > 60


class TestRecords:
    """Kill records, policies, input, determinism."""

    def test_kernel_kills_say_kernel(self):
        r = simulate(load_scenario("scenarios/sealed-holes-memcg.yaml"))
        assert [(k["killer"], k["signal"]) for k in r.oom_kills] == [("kernel", "SIGKILL")]

    def test_parquet_has_killer(self, scenario, tmp_path):
        r = earlyoom_run(scenario)
        write_results(tmp_path, "earlyoom-no-swap", [r])
        df = pd.read_parquet(tmp_path / "oom_kills.parquet")
        assert list(df["killer"]) == ["earlyoom"] and list(df["signal"]) == ["SIGTERM"]
        ev = pd.read_parquet(tmp_path / "events.parquet")
        assert (ev["kind"] == "userspace_kill").sum() == 1

    def test_same_seed_same_run(self, scenario):
        a = pressure_run(scenario, "{systemd_oomd: {}, oomd: {}, earlyoom: {}}")
        b = pressure_run(scenario, "{systemd_oomd: {}, oomd: {}, earlyoom: {}}")
        assert a.events == b.events and a.oom_kills == b.oom_kills

    @pytest.mark.parametrize("name", ["earlyoom", "systemd_oomd", "oomd"])
    def test_policy_adds_the_killer(self, scenario, name):
        sc = POLICIES[name](scenario(EARLYOOM_BIG_SWAP.replace("userspace_oom: {earlyoom: {}}", "")))
        assert getattr(sc.userspace_oom, name) is not None

    def test_policy_parameter_overrides_one_setting_and_keeps_the_rest(self, scenario):
        sc = scenario(EARLYOOM_BIG_SWAP.replace("userspace_oom: {earlyoom: {}}",
                                                "userspace_oom: {earlyoom: {sort_by_rss: true}}"))
        out = apply_policy("earlyoom:mem_term_percent=20", sc)
        assert out.userspace_oom.earlyoom.mem_term_percent == 20
        assert out.userspace_oom.earlyoom.sort_by_rss
        assert apply_policy("earlyoom", sc).userspace_oom.earlyoom.mem_term_percent == 10

    def test_policy_parameter_out_of_range_is_bad_input(self, scenario):
        sc = scenario(EARLYOOM_BIG_SWAP)
        with pytest.raises(ScenarioError, match="policy 'oomd' made a scenario that does not load"):
            apply_policy("oomd:threshold=150", sc)

    def test_unknown_cgroup_is_bad_input(self, scenario):
        with pytest.raises(ScenarioError, match="no such cgroup '/nope'") as e:
            scenario(PRESSURE.replace("KILLER", "{systemd_oomd: {managed_oom_swap: [/nope]}}")
                     .replace("WORK", NOT_RECLAIMING))
        assert "userspace_oom.systemd_oomd.managed_oom_swap[0]" in str(e.value)


class TestPolling:
    """A poll only reads what the machine publishes; the polls that cannot see a change (no
    event since the last one) are skipped, which changes no decision."""

    def test_skipped_polls_change_nothing(self, scenario, monkeypatch):
        runs = [earlyoom_run(scenario, sigterm="ignore"),
                simulate(scenario(SWAP.replace("SWAP", "256MiB")))]
        import simulator.userspace.earlyoom as eo
        import simulator.userspace.systemd_oomd as so
        monkeypatch.setattr(eo, "quiet_polls", lambda m, period: 0)
        monkeypatch.setattr(so, "quiet_polls", lambda m, period: 0)
        every = [earlyoom_run(scenario, sigterm="ignore"),
                 simulate(scenario(SWAP.replace("SWAP", "256MiB")))]
        for a, b in zip(runs, every, strict=True):
            assert [(k["victim"], k["signal"], k["line"]) for k in a.oom_kills] == [
                (k["victim"], k["signal"], k["line"]) for k in b.oom_kills]
            assert [k["time"] for k in a.oom_kills] == pytest.approx(
                [k["time"] for k in b.oom_kills], abs=1e-6)

    @pytest.mark.parametrize("killer", ["{systemd_oomd: {}}", "{oomd: {}}"])
    def test_both_engines_agree(self, scenario, killer):
        """The per-page reference engine sees the same machine at each poll: same kills."""
        sc = scenario(PRESSURE.replace("KILLER", killer).replace("WORK", RECLAIMING))
        bulk, ref = simulate(sc), simulate(sc, reference=True)
        assert [(k["victim"], k["time"]) for k in bulk.oom_kills] == [
            (k["victim"], k["time"]) for k in ref.oom_kills]
        assert bulk.oom_kills

    def test_an_idle_hour_costs_few_polls(self, scenario, monkeypatch):
        """earlyoom polls every 100 ms on a small machine; an hour of sleeping tasks is read
        a handful of times, not 36,000."""
        import simulator.userspace.earlyoom as eo
        calls = []
        real = eo.parse_meminfo
        monkeypatch.setattr(eo, "parse_meminfo", lambda m: calls.append(1) or real(m))
        r = simulate(scenario("""
            name: idle
            duration: 3600s
            machine: {nodes: [{memory: 512MiB}]}
            userspace_oom: {earlyoom: {}}
            tasks: [{name: t, ops: [{alloc_anon: {size: 300MiB}}, {sleep: 3590s}]}]
        """))
        assert r.tasks["t"].outcome == "ok" and len(calls) < 20
