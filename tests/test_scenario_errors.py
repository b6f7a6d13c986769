"""Bad input: one message with file, line, key path and what was expected; nothing runs."""

import textwrap

import pytest

from simulator.scenario import ScenarioError, parse_scenario

GOOD = """\
name: t
machine: {nodes: [{memory: 1GiB}]}
cgroups:
  /app: {memory.max: 64MiB}
tasks:
  - name: sender
    ops:
      - memfd_create: {fd: buf, flags: [allow_sealing]}
      - ftruncate: {fd: buf, size: 8MiB}
  - name: reader
    cgroup: /app
    ops:
      - mmap: {fd: buf, map: m, prot: [read], flags: [shared]}
      - touch: {map: m, access: read, range: [0, 4MiB]}
"""


def error_for(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(textwrap.dedent(text), "bad.yaml")
    return e.value


def test_the_good_file_parses():
    """The base of every bad case below is itself valid."""
    assert parse_scenario(GOOD).tasks[1].name == "reader"


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "words"),
    [
        ("name: t\n", "name: t\nmachnie: {}\n", 2, "machnie", "unknown key"),
        ("size: 8MiB", "size: 8MB!", 9, "tasks[0].ops[1].ftruncate.size", "expected a size"),
        ("size: 8MiB", "size: -8MiB", 9, "tasks[0].ops[1].ftruncate.size", "non-negative"),
        ("cgroup: /app", "cgroup: /ap", 11, "tasks[1].cgroup", "no such cgroup '/ap'"),
        ("{fd: buf, map: m,", "{fd: bfu, map: m,", 13, "tasks[1].ops[0].mmap.fd", "no fd 'bfu'"),
        ("touch: {map: m,", "touch: {map: n,", 14, "tasks[1].ops[1].touch.map", "no map 'n'"),
        ("range: [0, 4MiB]", "range: [0, 16MiB]", 14, "tasks[1].ops[1].touch.range[1]",
         "past the end of the map"),
        ("access: read", "access: reed", 14, "tasks[1].ops[1].touch.access", "'read' or 'write'"),
        ("- touch:", "- tuoch:", 14, "tasks[1].ops[1]", "expected one op"),
        ("memory.max: 64MiB", "memory.max: 64EiB", 4, "cgroups./app.memory.max",
         "past any 64-bit file offset"),
    ],
)
def test_bad_input_message(old, new, line, key, words):
    """Each bad input names the file, the line, the key path and what was expected."""
    assert old in GOOD
    e = error_for(GOOD.replace(old, new, 1))
    msg = str(e)
    assert msg.startswith(f"bad.yaml:{line}: {key}: "), msg
    assert words in msg, msg


def test_malformed_yaml_names_the_line():
    """A YAML syntax error is reported with its line."""
    e = error_for("name: t\ntasks: [\n  {name: a\n")
    assert str(e).startswith("bad.yaml:") and "not valid YAML" in str(e)
    assert e.line is not None


def test_duplicate_key_is_an_error():
    """A key given twice is refused, not silently overwritten."""
    e = error_for("name: t\nname: u\ntasks: [{name: a}]\n")
    assert "not valid YAML" in str(e)


def test_missing_required_key():
    """tasks is required."""
    e = error_for("name: t\n")
    assert "tasks" in str(e) and "required" in str(e)


def test_expect_names_a_task():
    """An expectation for a task that does not exist."""
    e = error_for(GOOD + "expect: {raeder: ok}\n")
    assert "expect.raeder" in str(e) and "no task named 'raeder'" in str(e)


@pytest.mark.parametrize("path", ["/tmp/f", "/dev/shm", "/dev/shmem/f"])
def test_open_on_no_mount_is_an_input_error(path):
    """A file opened on no tmpfs mount fails at load with its line (it crashed the run)."""
    text = (f"name: t\nmounts: [{{path: /dev/shm}}]\ntasks:\n  - name: a\n    ops:\n"
            f"      - open: {{fd: f, path: {path}}}\n")
    e = error_for(text)
    assert str(e).startswith("bad.yaml:6: tasks[0].ops[0].open.path: "), str(e)
    assert "is on no mount; mounts: /dev/shm" in str(e)


@pytest.mark.parametrize(("op", "key"), [
    ("ftruncate: {fd: f, size: 25%}", "ftruncate.size"),
    ("shmget: {fd: g, size: 25%}", "shmget.size"),
    ("alloc_anon: {size: 50%}", "alloc_anon.size"),
])
def test_a_percentage_with_no_whole_is_an_input_error(op, key):
    """A percentage of nothing fails at load with its line (it crashed the load or the run)."""
    text = f"name: t\ntasks:\n  - name: a\n    ops:\n      - memfd_create: {{fd: f}}\n      - {op}\n"
    e = error_for(text)
    assert str(e).startswith(f"bad.yaml:6: tasks[0].ops[1].{key}: a percentage"), str(e)


def test_a_percentage_with_no_whole_is_found_beside_allowed_ones():
    """The loader skips the walk for percentages only when every one it read is in a place
    that allows one: a percentage of nothing is still found among allowed ones."""
    text = ("name: t\ncgroups: {/a: {memory.max: 50%}}\ntasks:\n  - name: a\n    cgroup: /a\n"
            "    ops:\n      - memfd_create: {fd: f}\n      - ftruncate: {fd: f, size: 1MiB}\n"
            "      - write: {fd: f, length: 50%}\n      - alloc_anon: {size: 10%}\n")
    e = error_for(text)
    assert str(e).startswith("bad.yaml:10: tasks[0].ops[3].alloc_anon.size: a percentage"), str(e)
    ok = text.replace("      - alloc_anon: {size: 10%}\n", "")
    assert parse_scenario(ok, "ok.yaml").cgroups["/a"].memory_max == "50%"


def test_reserved_not_below_memory_is_an_input_error():
    """A node's reserved memory must leave some to manage; refused at load with its line."""
    e = error_for("name: t\nmachine:\n  nodes: [{memory: 1GiB, reserved: 1GiB}]\ntasks: [{name: a}]\n")
    assert str(e).startswith("bad.yaml:3: machine.nodes[0].reserved: reserved is not smaller")
