"""Bad input and the format's promises (issue 13): every case is one message naming the file,
the line and the key, at load; the format accepts what its documentation says."""

import os
import textwrap

import pytest

from simulator.scenario import ScenarioError, load_scenario, parse_scenario
from simulator.simulation import simulate
from simulator.units import UnitError, parse_bytes

BASE = """\
name: t
machine: {nodes: [{memory: 1GiB}]}
cgroups:
  /app: {memory.max: 64MiB}
tasks:
  - name: a
    ops:
      - memfd_create: {fd: f}
      - ftruncate: {fd: f, size: 8MiB}
"""


def error_for(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(textwrap.dedent(text), "bad.yaml")
    return e.value


def test_a_binary_file_is_an_input_error(tmp_path):
    """Random bytes are not a scenario: one message, no UnicodeDecodeError."""
    f = tmp_path / "random.yaml"
    f.write_bytes(os.urandom(2 << 20))
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert str(e.value).startswith(f"{f}:") and "not a text file" in str(e.value)


def test_text_with_control_characters_is_an_input_error():
    """Valid UTF-8 that YAML refuses (a NUL) is a YAML error, not a crash."""
    e = error_for("name: t\x00\ntasks: [{name: a}]\n")
    assert "not valid YAML" in str(e)


@pytest.mark.parametrize("size", ["99999999999999999999999999999", "8EiB", "9223372036854775808"])
def test_a_size_past_any_file_offset_is_refused_at_load(size):
    """A loff_t cannot hold it (EFBIG): an input error with the line, not a run or a crash."""
    e = error_for(BASE.replace("size: 8MiB", f"size: {size}"))
    assert str(e).startswith("bad.yaml:9: tasks[0].ops[1].ftruncate.size: "), str(e)
    assert "EFBIG" in str(e)


def test_the_largest_file_offset_is_a_size():
    """2^63-1 bytes is the largest size there is."""
    assert parse_bytes(2**63 - 1) == 2**63 - 1
    with pytest.raises(UnitError):
        parse_bytes(2**63)


def test_a_python_tag_is_named_and_refused():
    """`!!python/object/apply:os.system` is not run, and the message names the tag."""
    e = error_for(BASE.replace("name: a", "name: !!python/object/apply:os.system ['echo hi']"))
    assert str(e).startswith("bad.yaml:6: ") and "!!python/object/apply:os.system" in str(e)
    assert "not allowed" in str(e)


@pytest.mark.parametrize("tag", ["!!binary aGk=", "!!set {a}", "!custom x", "!!timestamp 2001-12-14"])
def test_other_tags_are_refused(tag):
    """Only plain YAML: the tag is named."""
    e = error_for(f"name: t\ndescription: {tag}\ntasks: [{{name: a}}]\n")
    assert "not allowed" in str(e) and tag.split()[0] in str(e)


def test_plain_tags_and_anchors_still_work():
    """`!!str`, aliases and merge keys are plain YAML."""
    sc = parse_scenario("name: !!str 1\ntasks:\n  - name: a\n    footprint: &fp {anon: 4KiB}\n"
                        "  - name: b\n    footprint: *fp\n"
                        "  - {name: c, footprint: {<<: *fp, kernel: 8KiB}}\n")
    assert sc.name == "1" and sc.tasks[1].footprint.anon == "4KiB"
    assert sc.tasks[2].footprint.kernel == "8KiB" and sc.tasks[2].footprint.anon == "4KiB"


def test_yaml_12_scalars():
    """As the round-trip parser read them: `yes` is a string, `0755` decimal, 1e3 a float."""
    sc = parse_scenario("name: yes\nseed: 0755\ntasks: [{name: no}]\n")
    assert sc.name == "yes" and sc.seed == 755 and sc.tasks[0].name == "no"


def test_a_start_after_cycle_is_detected_at_load():
    """a after b, b after a: neither could ever start."""
    e = error_for("name: t\ntasks:\n  - {name: a, start: {after: b}}\n  - {name: b, start: {after: c}}\n"
                  "  - {name: c, start: {after: a}}\n")
    assert str(e).startswith("bad.yaml:3: tasks[0].start.after: start-after cycle: a after b after c after a")


def test_a_chain_that_ends_is_no_cycle():
    """c after b after a, a at a time: fine."""
    parse_scenario("name: t\ntasks:\n  - {name: a}\n  - {name: b, start: {after: a}}\n"
                   "  - {name: c, start: {after: b}}\n")


def test_memory_max_larger_than_the_machine_is_accepted():
    """The kernel takes it: no limit in practice."""
    sc = parse_scenario(BASE.replace("memory.max: 64MiB", "memory.max: 1TiB"))
    assert sc.cgroups["/app"].memory_max == "1TiB"
    assert simulate(sc).tasks["a"].outcome == "ok"


@pytest.mark.parametrize(("old", "new", "line", "key", "words"), [
    ("{memory.max: 64MiB}", "{memory.max: 64MiB, memory.min: 128MiB}", 4, "cgroups./app.memory.min",
     "above memory.max"),
    ("      - ftruncate: {fd: f, size: 8MiB}\n",
     "      - ftruncate: {fd: f, size: 8MiB}\n      - mmap: {fd: f, map: m, flags: [shared]}\n"
     "      - touch: {map: m, access: read, stride: 8KiB}\n", 11, "tasks[0].ops[3].touch.stride",
     "stride is ignored"),
])
def test_ignored_settings_warn(old, new, line, key, words):
    """A setting that changes nothing is accepted with a warning naming its line and key."""
    sc = parse_scenario(BASE.replace(old, new), "w.yaml")
    assert any(w.startswith(f"w.yaml:{line}: {key}: ") and words in w for w in sc.warnings), sc.warnings


def test_memory_low_is_modelled_and_not_warned_about():
    """memory.low protects from reclaim now: no warning."""
    sc = parse_scenario(BASE.replace("{memory.max: 64MiB}", "{memory.max: 64MiB, memory.low: 32MiB}"))
    assert not sc.warnings, sc.warnings


def test_memory_high_is_modelled_and_not_warned_about():
    """memory.high throttles now: it is a setting with an effect, so no warning."""
    sc = parse_scenario(BASE.replace("{memory.max: 64MiB}", "{memory.max: 64MiB, memory.high: 32MiB}"))
    assert not sc.warnings, sc.warnings


def test_a_plain_scenario_has_no_warnings():
    """No warning without a reason."""
    assert parse_scenario(BASE).warnings == ()


@pytest.mark.parametrize("outcome", ["sigsegv", "killed", "sigbus", "hung", "panic"])
def test_expect_takes_every_outcome(outcome):
    """Every outcome a task can end with can be expected."""
    sc = parse_scenario(BASE + f"expect: {{a: {outcome}}}\n")
    assert sc.expect["a"] == outcome


@pytest.mark.parametrize(("text", "nbytes"), [
    ("1KiB", 1024), ("1K", 1024), ("1kB", 1000), ("1KB", 1000), ("1MiB", 2**20), ("1MB", 10**6),
    ("1GiB", 2**30), ("1GB", 10**9), ("1TiB", 2**40), ("1TB", 10**12), ("1PiB", 2**50),
    ("1PB", 10**15), ("1EiB", 2**60), ("1EB", 10**18), ("1024PiB", 2**60), ("64M", 64 << 20),
])
def test_every_iec_and_si_unit(text, nbytes):
    """IEC units are powers of 1024, SI units powers of 1000, up to exa."""
    assert parse_bytes(text) == nbytes


def test_the_format_reference_documents_the_units():
    """docs/scenario-format.md has the table of size and time units."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md").read_text()
    for unit in ("EiB", "EB", "PB", "kB", "min", "ns", "| h |"):
        assert unit in doc, unit


PCT = """\
name: t
mounts: [{path: /dev/shm, size: 0}]
tasks:
  - name: a
    ops:
      - open: {fd: f, path: /dev/shm/x}
      - ftruncate: {fd: f, size: 4MiB}
      - OP
"""


@pytest.mark.parametrize(("op", "shmem_pages"), [
    ("write: {fd: f, length: 50%}", 512),
    ("write: {fd: f, offset: 75%, length: 25%}", 256),
    ("fallocate: {fd: f, offset: 25%, length: 50%}", 512),
    ("fallocate: {fd: f, length: 10%}", 103),
])
def test_percentages_of_the_file(op, shmem_pages):
    """Offsets and lengths of write and fallocate are shares of the file's size when they run."""
    r = simulate(parse_scenario(PCT.replace("OP", op)))
    assert r.tasks["a"].outcome == "ok", r.tasks["a"]
    assert r.counters["memcg"]["/"]["shmem"] == shmem_pages


def test_read_and_mmap_percentages():
    """A read of 50% and a map of 50% of the file: the map is half the file."""
    text = PCT.replace("      - OP\n", "      - read: {fd: f, offset: 50%, length: 50%}\n"
                       "      - mmap: {fd: f, map: m, length: 50%, prot: [read, write], flags: [shared]}\n"
                       "      - touch: {map: m, access: write}\n")
    r = simulate(parse_scenario(text))
    assert r.tasks["a"].outcome == "ok"
    assert r.counters["memcg"]["/"]["shmem"] == 512


def test_a_task_still_running_at_the_end_is_not_a_failure():
    """A sleeper cut off by `duration` is `hung` with the reason "the duration ran out", which
    failure_rates labels `running`, not a failure; a refault-loop hang stays a failure."""
    import pandas as pd

    from analysis.frames import failure_rates
    from simulator.results import tasks_frame

    sc = parse_scenario("name: t\nduration: 1s\ntasks:\n  - {name: s, ops: [{sleep: 5s}]}\n"
                        "  - {name: late, start: 2s}\n")
    r = simulate(sc)
    assert (r.tasks["s"].outcome, r.tasks["s"].reason) == ("hung", "the duration ran out")
    assert r.tasks["late"].reason == "waiting for its start time"
    rates = failure_rates(tasks_frame(sc.name, [r]))
    assert dict(zip(rates["label"], rates["failed"], strict=True)) == {
        "running@sleep": False, "not_started": False}
    stuck = pd.DataFrame([{"task": "x", "outcome": "hung", "reason": "refault loop", "errno": None,
                           "op_name": "touch"}])
    assert failure_rates(stuck)["failed"].tolist() == [True]


def test_aliases_that_multiply_are_refused():
    """A "billion laughs" file is refused at load, not expanded by validation."""
    lines = ["name: t", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    e = error_for("\n".join([*lines, "tasks: [{name: a}]", ""]))
    assert "counting what aliases repeat" in str(e) and e.line is not None


def test_the_format_reference_states_the_rules():
    """The rules that lived only in docs/validate.md are in docs/scenario-format.md."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md").read_text()
    for rule in ("Fds are shared by name", "has run all its ops", "`pattern: random`",
                 "exactly once, in a random order", "the duration ran out", "Warnings"):
        assert rule in doc, rule


@pytest.mark.parametrize(("expect", "words"), [
    ("{memcg: {/app: {pressure: {some_avg5: 1}}}}", "expected one of some_total"),
    ("{memcg: {/app: {pressure: {some_total: 5 parsecs}}}}", "expected a duration"),
    ("{memcg: {/app: {pressure: {full_avg10: {min: 150}}}}}", "percentage"),
    ("{memcg: {/app: {events: {hihg: 1}}}}", "expected one of low, high"),
    ("{memcg: {/app: {events: {high: {min: -1}}}}}", "expected a count"),
])
def test_bad_pressure_and_events_expectations_name_the_key(expect, words):
    """expect.memcg: unknown pressure or event names and bad values are refused at load."""
    e = error_for(BASE + f"expect: {expect}\n")
    assert words in str(e), str(e)


def test_pressure_and_event_ranges_are_checked():
    """Exact values and {min, max} ranges: met, and not met with a message saying which."""
    from simulator.expect import mismatches

    text = BASE.replace("ops:", "cgroup: /app\n    ops:") + (
        "expect:\n  memcg:\n    /app:\n"
        "      events: {high: 0, max: {max: 0}}\n"
        "      pressure: {some_total: 0s, full_avg10: {max: 1}}\n")
    sc = parse_scenario(text)
    assert mismatches(sc, simulate(sc)) == []
    bad = parse_scenario(text.replace("high: 0", "high: {min: 1}").replace("some_total: 0s",
                                                                          "some_total: {min: 1s}"))
    assert mismatches(bad, simulate(bad)) == [
        "memcg /app: expected events high at least 1, got 0",
        "memcg /app: expected pressure some_total at least 1s, got 0s"]
