import re
from pathlib import Path

import pytest

from simulator.mm.memcontrol import MemCgroup
from simulator.mm.mm_types import MM
from simulator.mm.oom_kill import (
    OomControl,
    kill_report,
    oom_badness,
    oom_evaluate_task,
)
from simulator.mm.task import TaskStruct
from simulator.scenario import parse_scenario
from simulator.simulation import Run

ROOT = Path(__file__).resolve().parent.parent


def task(pid, name, rss=0, shmem=0, pt=0, adj=0, memcg=None):
    mm = MM()
    mm.rss["anon"], mm.rss["shmem"] = rss, shmem
    mm.pt_nodes[0] = pt
    mm.total_vm = 1000
    return TaskStruct(pid=pid, name=name, memcg=memcg or MemCgroup(path="/"), mm=mm,
                      oom_score_adj=adj)


class TestOomBadness:
    def test_rss_plus_page_tables(self):
        """Points are rss (anon + file + shmem mapped) + swap entries + page-table pages."""
        assert oom_badness(task(1 + 1, "t", rss=100, shmem=50, pt=7), 100_000) == 157

    def test_adj_scales_by_totalpages_over_1000_first(self):
        """adj x (totalpages // 1000), the integer division first; the result can be negative."""
        assert oom_badness(task(2, "t", rss=100, adj=500), 16_384) == 100 + 500 * 16
        assert oom_badness(task(2, "t", rss=100, adj=-300), 16_384) == 100 - 300 * 16

    def test_adj_has_no_effect_below_1000_pages(self):
        """A tiny memcg (under ~4 MB) makes totalpages // 1000 zero."""
        assert oom_badness(task(2, "t", rss=100, adj=1000), 999) == 100

    def test_never_chosen(self):
        """adj -1000 and an already reaped mm are never chosen."""
        assert oom_badness(task(2, "t", rss=10**6, adj=-1000), 10**6) is None
        t = task(3, "t", rss=10)
        t.mm.mmf_oom_skip = True
        assert oom_badness(t, 10**6) is None


class TestOomEvaluateTask:
    def test_ties_go_to_the_later_scanned_task(self):
        """Equal points: the later task in the scan replaces the earlier."""
        oc = OomControl(totalpages=10**6)
        a, b = task(2, "a", rss=10), task(3, "b", rss=10)
        for t in (a, b):
            oom_evaluate_task(oc, t)
        assert oc.chosen is b

    def test_an_exiting_victim_aborts_the_scan(self):
        """A victim whose mm is not yet reaped stops the scan: no new kill."""
        oc = OomControl(totalpages=10**6)
        v = task(2, "v", rss=1)
        v.oom_victim = True
        assert oom_evaluate_task(oc, v) is False and oc.abort is v


class TestKillReport:
    def test_the_kernels_own_line(self):
        """`__oom_kill_process`'s format, field by field, in kB."""
        t = task(4242, "a-very-long-process-name", rss=2, shmem=3, pt=4, adj=-5)
        line = kill_report(t, "Memory cgroup out of memory", 4)
        assert re.fullmatch(
            r"Memory cgroup out of memory: Killed process 4242 \(a-very-long-pro\) "
            r"total-vm:4000kB, anon-rss:8kB, file-rss:0kB, shmem-rss:12kB, UID:0 "
            r"pgtables:16kB oom_score_adj:-5", line)


@pytest.mark.parametrize("adj", [0, 1000])
def test_badness_monotone_in_rss(adj):
    """More rss never lowers the score."""
    scores = [oom_badness(task(2, "t", rss=r, adj=adj), 50_000) for r in range(0, 500, 50)]
    assert scores == sorted(scores)


def kill_line_kb(line):
    """The kB figures of a kill line, by name."""
    return {k: int(v) for k, v in re.findall(r"([a-z-]+):(\d+)kB", line)}


@pytest.mark.parametrize("page_size, page_kb", [("4KiB", 4), ("16KiB", 16)])
def test_kill_line_sizes_use_the_machines_page_size(page_size, page_kb):
    """The kill line's kB are pages x the machine's page size: with 16 KiB pages, a reader
    killed at a 64 MiB limit shows about 64 MiB of shmem-rss, not a quarter of it."""
    text = (ROOT / "scenarios" / "sealed-holes-memcg.yaml").read_text()
    sc = parse_scenario(text.replace("page_size: 4KiB", f"page_size: {page_size}"))
    run = Run(sc)
    r = run.run()
    kill = r.oom_kills[0]
    mm = next(t for t in run.m.tasks if t.name == kill["victim"]).mm
    kb = kill_line_kb(kill["line"])
    assert kb["anon-rss"] + kb["file-rss"] + kb["shmem-rss"] == kill["rss_pages"] * page_kb
    assert kb["pgtables"] == kill["pgtables_pages"] * page_kb
    assert kb["total-vm"] == mm.total_vm * page_kb
    assert 60 * 1024 < kb["shmem-rss"] <= 64 * 1024
    assert int(kill["task_line"].split()[-4]) == kill["pgtables_pages"] * page_kb * 1024
