"""Atomic writes: a file is either whole or absent; a failed write leaves the old one."""

from __future__ import annotations

import pandas as pd
import pytest

from simulator.atomic_io import atomic_write, atomic_write_parquet, atomic_write_text


def test_text_and_parquet_are_written_whole(tmp_path):
    """Both writers create the directory and leave no temporary file."""
    atomic_write_text("hello\n", tmp_path / "d" / "a.txt")
    atomic_write_parquet(pd.DataFrame({"x": [1, 2]}), tmp_path / "d" / "b.parquet")
    assert (tmp_path / "d" / "a.txt").read_text() == "hello\n"
    assert list(pd.read_parquet(tmp_path / "d" / "b.parquet")["x"]) == [1, 2]
    assert not list((tmp_path / "d").glob(".*"))


def test_a_failed_write_keeps_the_old_file(tmp_path):
    """The target is replaced only by a complete file; the temporary file is removed."""
    target = tmp_path / "a.txt"
    target.write_text("old")

    def half(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
