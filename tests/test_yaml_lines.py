"""A scenario written as one line of JSON is read by the json module, to the same values and
lines as the YAML path gives it (simulator/yaml_lines.py)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest

from simulator import yaml_lines
from simulator.scenario import parse_scenario
from simulator.scenario_errors import ScenarioError
from simulator.yaml_lines import YamlError, load_yaml


def by_yaml(text: str) -> Any:
    """The YAML path's reading of `text`."""
    with mock.patch.object(yaml_lines, "load_json_line", side_effect=yaml_lines._NotPlainJson):
        return load_yaml(text)


def same(a: Any, b: Any) -> bool:
    """Equal values, types and lines, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return (a.keys() == b.keys() and a.line == b.line and a.key_lines == b.key_lines
                and all(same(a[k], b[k]) for k in a))
    if isinstance(a, list):
        return (len(a) == len(b) and a.line == b.line and a.item_lines == b.item_lines
                and all(same(x, y) for x, y in zip(a, b, strict=True)))
    return bool(a == b)


SCENARIO = {"name": "j", "machine": {"nodes": [{"memory": "64MiB"}] * 2},
            "cgroups": {"/a": {"memory.max": "8MiB", "memory.oom.group": True}},
            "tasks": [{"name": "t", "cgroup": "/a", "start": "1ms",
                       "ops": [{"alloc_anon": {"size": "16MiB"}}, {"sleep": 0.5}]}]}


class TestLoadJsonLine:
    @pytest.mark.parametrize("text", [
        json.dumps(SCENARIO),
        '[1, [2, [3]], {"x": 1e400, "y": -0, "z": "\\u00e9\\/", "w": 1.0}]',
        '{"a": true, "b": null, "c": "yes", "d": "0755", "e": 0}',
        '{"a": NaN, "b": Infinity}',
        '{"<<": {"b": 1}, "c": 2}',
    ])
    def test_reads_as_the_yaml_path_does(self, text: str) -> None:
        """Values, their types and their lines are the YAML path's."""
        assert same(load_yaml(text), by_yaml(text))

    def test_takes_one_line_json(self) -> None:
        """The json module reads it (not the YAML parser)."""
        with mock.patch.object(yaml_lines, "_Builder", side_effect=AssertionError):
            assert load_yaml(json.dumps(SCENARIO))["name"] == "j"

    def test_a_repeated_key_is_refused_as_in_yaml(self) -> None:
        """A duplicate key is the YAML path's error, on line 1."""
        with pytest.raises(YamlError) as e:
            load_yaml('{"a": 1, "a": 2}')
        assert "duplicate key 'a'" in e.value.message and e.value.line == 1

    def test_errors_point_at_line_one(self) -> None:
        """A scenario error in one-line JSON is on line 1, with its key path."""
        bad = {**SCENARIO, "tasks": [{**SCENARIO["tasks"][0], "cgroup": "/nope"}]}
        with pytest.raises(ScenarioError, match=r"^s\.json:1: tasks\[0\]\.cgroup: "):
            parse_scenario(json.dumps(bad), "s.json")
