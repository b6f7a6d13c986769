"""The docs stand alone and say what the outputs hold (issue 13)."""

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from simulator.results import events_frame, levels_frame, oom_kills_frame, tasks_frame
from simulator.scenario import load_scenario
from simulator.simulation import simulate
from simulator.sweep import sweep, sweep_frame

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DOC = (ROOT / "docs" / "output.md").read_text()


def tracked_files() -> list[Path]:
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return [ROOT / f for f in r.stdout.splitlines() if (ROOT / f).is_file()]


def test_nothing_points_outside_the_repository():
    """No file cites the sibling `shared` directory: every fact is in docs/."""
    needle = "../" + "shared"
    bad = [str(f.relative_to(ROOT)) for f in tracked_files()
           if f.suffix in (".md", ".py", ".yaml", ".ipynb", ".toml", ".c", ".txt", "")
           and needle in f.read_text(errors="replace")]
    assert bad == []


@pytest.mark.parametrize("doc", ["README.md", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_resolve(doc):
    """Every relative Markdown link of the README and docs/ names a file of the repository."""
    text = (ROOT / doc).read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert ((ROOT / doc).parent / target).exists(), f"{doc}: {target}"


def test_the_kernel_docs_exist_with_their_rows():
    """docs/kernel-outcomes.md has rows 1-18 (one scenario each); docs/kernel-rules.md cites
    kernel functions and files."""
    outcomes = (ROOT / "docs" / "kernel-outcomes.md").read_text()
    for n in range(1, 19):
        assert re.search(rf"^\| {n} \|", outcomes, re.M), n
        assert list((ROOT / "scenarios").glob(f"row{n:02d}-*.yaml")), n
    rules = (ROOT / "docs" / "kernel-rules.md").read_text()
    for cite in ("`try_charge_memcg`", "mm/memcontrol.c", "`shmem_fault`", "mm/shmem.c",
                 "`oom_badness`", "mm/oom_kill.c", "`__vm_enough_memory`", "mm/util.c"):
        assert cite in rules, cite


def documented_columns(section: str) -> set[str]:
    """The backquoted names in the first cell of the rows of a section's first table."""
    part = OUTPUT_DOC.split(f"## {section}")[1].split("\n## ")[0]
    table = part[part.index("| column |"):].split("\n\n")[0]
    cols: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            cols.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return cols


@pytest.fixture(scope="module")
def run():
    sc = load_scenario(ROOT / "scenarios" / "sealed-holes-memcg.yaml")
    return sc, simulate(sc)


@pytest.mark.parametrize(("section", "frame"), [
    ("tasks.parquet", tasks_frame), ("events.parquet", events_frame),
    ("oom_kills.parquet", oom_kills_frame), ("levels.parquet", levels_frame)])
def test_every_output_column_is_documented(run, section, frame):
    sc, r = run
    df = frame(sc.name, [r])
    assert set(df.columns) == documented_columns(section)
    assert {"scenario", "seed", "kernel"} <= set(df.columns)


def test_tasks_op_and_page_are_nullable_integers(run):
    """Not float64 with NaN: Int64, <NA> where there is none."""
    sc, r = run
    df = tasks_frame(sc.name, [r]).set_index("task")
    assert str(df["op"].dtype) == "Int64" and str(df["page"].dtype) == "Int64"
    assert df.loc["reader", "page"] == 16269 and pd.isna(df.loc["sender", "page"])
    sw = sweep_frame(sc, sweep(sc, ["none"], ["6.18"], [1]))
    assert str(sw["page"].dtype) == "Int64"


def test_every_event_kind_is_documented():
    """Each kind the model logs has its row in output.md."""
    kinds = set()
    for f in (ROOT / "simulator").rglob("*.py"):
        kinds.update(re.findall(r'emit\(\s*"([a-z_]+)"', f.read_text()))
    kinds.update(f"memcg_{e}" for e in ("max", "oom", "oom_kill", "oom_group_kill"))
    documented = {k for line in OUTPUT_DOC.split("## events.parquet")[1].split("\n## ")[0].splitlines()
                  if line.startswith("| `") for k in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert kinds - documented == set()
