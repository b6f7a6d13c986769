"""The command line: the contracts other tools depend on (JSON shape, files written, exit codes)."""

import json
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from simulator.cli import app

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "scenarios" / "sealed-holes-memcg.yaml"
runner = CliRunner()


def test_run_prints_the_outcome_table():
    """`oomsim run FILE` prints each task's outcome and the kernel's kill line."""
    res = runner.invoke(app, ["run", str(CORE)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "oom_killed" in res.output and "Memory cgroup out of memory: Killed process" in res.output


def test_run_json_has_the_documented_shape():
    """--json: {"scenario", "runs": [{"seed", "tasks": {...}, "oom_kills": [...]}]}."""
    res = runner.invoke(app, ["run", str(CORE), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["scenario"] == "sealed-holes-memcg"
    (r,) = doc["runs"]
    assert r["seed"] == 1
    reader = r["tasks"]["reader"]
    assert set(reader) >= {"outcome", "errno", "op", "op_name", "page", "time", "reason"}
    assert (reader["outcome"], reader["op"], reader["op_name"]) == ("oom_killed", 1, "touch")
    (kill,) = r["oom_kills"]
    assert set(kill) >= {"victim", "constraint", "memcg", "points", "time"}
    assert (kill["victim"], kill["constraint"], kill["memcg"]) == ("reader", "memcg", "/app")


def test_run_several_seeds_and_what_if():
    """--seed may repeat; --what-if switches the 2014 proposal on."""
    res = runner.invoke(app, ["run", str(CORE), "--json", "--seed", "1", "--seed", "2",
                              "--what-if", "zero_page_sealed_holes=true"])
    doc = json.loads(res.stdout)
    assert [r["seed"] for r in doc["runs"]] == [1, 2]
    assert all(r["tasks"]["reader"]["outcome"] == "ok" for r in doc["runs"])


def test_out_writes_parquet_that_reads_back(tmp_path):
    """--out writes tasks.parquet and events.parquet (and oom_kills, run.json)."""
    out = tmp_path / "res"
    res = runner.invoke(app, ["run", str(CORE), "--out", str(out)])
    assert res.exit_code == 0, res.output
    tasks = pd.read_parquet(out / "tasks.parquet")
    events = pd.read_parquet(out / "events.parquet")
    assert tasks.set_index("task").loc["reader", "outcome"] == "oom_killed"
    assert "oom_kill" in set(events["kind"])
    levels = pd.read_parquet(out / "levels.parquet")  # kept for --out (not for the table alone)
    assert {"memcg_usage", "node_free"} <= set(levels["kind"])
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path):
    """A bad file: one message on stderr, exit 2, no output directory."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(CORE.read_text().replace("access: read", "acess: read"))
    out = tmp_path / "res"
    res = runner.invoke(app, ["run", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert f"{bad}:26: tasks[1].ops[1].touch.acess: unknown key" in res.output.replace("\n", "")
    assert not out.exists()


def test_check_fails_on_a_mismatch(tmp_path):
    """`oomsim check` exits 1 when an expectation is not met."""
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(CORE.read_text().replace("reader: oom_killed", "reader: ok"))
    res = runner.invoke(app, ["check", str(wrong)], env={"COLUMNS": "200"})
    assert res.exit_code == 1
    assert "expected outcome 'ok', got 'oom_killed'" in res.output


def test_check_passes_a_directory(tmp_path):
    """`oomsim check DIR` runs every scenario below it."""
    d = tmp_path / "s"
    d.mkdir()
    shutil.copy(CORE, d / "a.yaml")
    res = runner.invoke(app, ["check", str(d)])
    assert res.exit_code == 0 and "1 passed, 0 failed" in res.output


def test_schema_is_generated_from_the_models():
    """`oomsim schema` prints a JSON Schema with every op."""
    res = runner.invoke(app, ["schema"])
    schema = json.loads(res.stdout)
    assert "touch" in json.dumps(schema) and schema["title"] == "Scenario"


def test_format_reference_is_current():
    """docs/scenario-format.md is what `python -m simulator.formatdoc` renders from the models."""
    from simulator.formatdoc import render

    assert (ROOT / "docs" / "scenario-format.md").read_text() == render()
