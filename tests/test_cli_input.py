"""The command line with bad input and as a tool in a pipe (issue 13): exit 2 with one message
and nothing written; whole tables, CSV and JSON; seeds as lists and ranges; file modes; a
short start-up."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app, parse_seeds
from simulator.scenario import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "scenarios" / "sealed-holes-memcg.yaml"
runner = CliRunner()

LONG = "a-task-with-a-name-much-longer-than-eighty-columns-would-ever-allow-in-a-table-cell-x"
SMALL = f"""\
name: small
cgroups: {{/app: {{memory.max: 64MiB, memory.min: 96MiB}}}}
tasks:
  - name: {LONG}
    cgroup: /app
    ops: [{{alloc_anon: {{size: 1MiB}}}}]
expect: {{{LONG}: ok}}
"""


def one_line(text: str) -> str:
    return text.replace("\n", "")


def test_a_binary_file_exits_2_without_a_traceback(tmp_path):
    """2 MB of random bytes: one message naming the file, exit 2."""
    f = tmp_path / "random.yaml"
    f.write_bytes(os.urandom(2 << 20))
    res = runner.invoke(app, ["run", str(f)])
    assert res.exit_code == 2
    assert "not a text file" in res.output and "Traceback" not in res.output


def test_out_onto_an_existing_file_is_a_clear_error(tmp_path):
    """--out FILE: exit 2, the file untouched, nothing run."""
    f = tmp_path / "results"
    f.write_text("keep me")
    res = runner.invoke(app, ["run", str(CORE), "--out", str(f)])
    assert res.exit_code == 2, res.output
    assert "is not a directory" in one_line(res.output) and "Traceback" not in res.output
    assert f.read_text() == "keep me"


def test_a_python_tag_exits_2_naming_the_tag(tmp_path):
    """The tag is refused, named, with its line; nothing is run."""
    f = tmp_path / "evil.yaml"
    f.write_text("name: !!python/object/apply:os.system ['touch pwned']\ntasks: [{name: a}]\n")
    res = runner.invoke(app, ["run", str(f)])
    assert res.exit_code == 2
    assert f"{f}:1: the tag !!python/object/apply:os.system is not allowed" in one_line(res.output)


def test_warnings_go_to_stderr_and_into_the_json(tmp_path):
    """A setting without effect: a warning line on stderr and in `warnings` (an added field)."""
    f = tmp_path / "small.yaml"
    f.write_text(SMALL)
    res = runner.invoke(app, ["run", str(f), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["warnings"] == [f"{f}:2: cgroups./app.memory.min: memory.min 96MiB is above "
                               "memory.max 64MiB: the kernel protects at most the usage, which "
                               "memory.max caps"]
    assert "warning:" in res.stderr and "memory.min" in res.stderr
    assert set(doc) == {"scenario", "runs", "warnings"}


def test_check_goes_on_past_a_bad_file(tmp_path):
    """One malformed file is a failed row; the others run; no expect is not a pass."""
    d = tmp_path / "sc"
    d.mkdir()
    (d / "a-good.yaml").write_text(SMALL)
    (d / "b-bad.yaml").write_text("name: [\n")
    (d / "c-none.yaml").write_text(SMALL.split("expect")[0])
    res = runner.invoke(app, ["check", str(d), "--format", "json"])
    assert res.exit_code == 2, res.output
    doc = json.loads(res.stdout)
    assert [r["result"] for r in doc["rows"]] == ["pass", "bad input", "no expectation"]
    assert doc["counts"] == {"pass": 1, "FAIL": 0, "bad input": 1, "no expectation": 1}
    res = runner.invoke(app, ["check", str(d)])
    assert "1 passed, 1 failed (1 bad input), 1 with no expectation" in res.stdout
    assert f"error: {d / 'b-bad.yaml'}:" in one_line(res.stderr)


def test_piped_tables_are_whole(tmp_path):
    """Not on a terminal: no cell is cut at 80 columns."""
    f = tmp_path / "small.yaml"
    f.write_text(SMALL)
    res = runner.invoke(app, ["run", str(f)], env={"COLUMNS": ""})
    assert LONG in res.stdout and "…" not in res.stdout
    res = runner.invoke(app, ["check", str(f)], env={"COLUMNS": ""})
    assert str(f) in res.stdout and "…" not in res.stdout


def test_csv_and_json_formats(tmp_path):
    """--format csv: a header and a row per task; --format json: the same as --json."""
    res = runner.invoke(app, ["run", str(CORE), "--format", "csv", "--seed", "1,2"])
    lines = res.stdout.splitlines()
    assert lines[0].startswith("scenario,seed,kernel,task,cgroup,outcome,")
    assert len(lines) == 1 + 2 * 2 and any(",reader,/app,oom_killed," in x for x in lines)
    doc = json.loads(runner.invoke(app, ["run", str(CORE), "--format", "json"]).stdout)
    assert doc["runs"][0]["tasks"]["reader"]["outcome"] == "oom_killed"
    res = runner.invoke(app, ["compare", str(CORE), "--policy", "none", "--policy", "zero_page",
                              "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == "policy,kernel,task,outcome,runs,count,share,failed,mean_time"
    assert runner.invoke(app, ["run", str(CORE), "--format", "xml"]).exit_code == 2


@pytest.mark.parametrize(("args", "seeds"), [
    (["--seed", "1", "--seed", "3"], [1, 3]),
    (["--seed", "1,2,3"], [1, 2, 3]),
    (["--seeds", "4-6"], [4, 5, 6]),
    (["--seed", "1", "--seeds", "1-2"], [1, 2]),
])
def test_seed_lists_and_ranges(args, seeds):
    """Repeated --seed, a list, a range: every seed once, in order."""
    res = runner.invoke(app, ["run", str(CORE), "--json", *args])
    assert res.exit_code == 0, res.output
    assert [r["seed"] for r in json.loads(res.stdout)["runs"]] == seeds


@pytest.mark.parametrize("bad", ["x", "3-1", "-1", "1..3"])
def test_bad_seeds_are_input_errors(bad):
    with pytest.raises(ScenarioError):
        parse_seeds([bad])


def test_compare_takes_a_seed_range():
    """compare --seeds N is N runs per cell (as before); a range names the seeds."""
    res = runner.invoke(app, ["compare", str(CORE), "--policy", "none", "--seeds", "3-4",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["seeds"] == [3, 4] and doc["rows"][0]["runs"] == 2


def test_out_files_follow_the_umask(tmp_path):
    """Results are readable as the umask allows (0644 under 022), not mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        res = runner.invoke(app, ["run", str(CORE), "--out", str(tmp_path / "o")])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    for f in (tmp_path / "o").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


@pytest.mark.parametrize(("argv", "unused"), [
    (["--help"], ("pandas", "matplotlib", "pyarrow", "numpy", "simpy", "simulator.simulation",
                  "simulator.scenario_model", "simulator.validate.session", "ruamel.yaml")),
    (["run", "--json", str(CORE)], ("pandas", "matplotlib", "pyarrow", "simulator.validate.session",
                                    "ruamel.yaml")),
])
def test_start_up_imports_only_what_is_used(argv, unused):
    """`oomsim --help` imports no part of the simulator; `oomsim run --json` neither pandas nor
    matplotlib."""
    code = ("import sys\nfrom simulator.cli import app\nsys.argv = ['oomsim', *sys.argv[1:]]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            f"heavy = [m for m in {unused!r} if m in sys.modules]\n"
            "sys.stderr.write('HEAVY=' + ','.join(heavy))\n")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       cwd=ROOT, check=False)
    assert "HEAVY=" in r.stderr and r.stderr.split("HEAVY=")[1] == "", r.stderr


def test_validate_takes_the_same_formats():
    """`oomsim validate --format` is checked before anything else (no kernel needed)."""
    res = runner.invoke(app, ["validate", str(CORE), "--format", "xml"])
    assert res.exit_code == 2 and "expected table, csv or json" in one_line(res.output)
    assert "--format" in runner.invoke(app, ["validate", "--help"], env={"COLUMNS": "200"}).stdout
