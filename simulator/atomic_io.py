"""Atomic file writes: a file is either whole or absent, never half-written.

Every writer of the project's outputs (`--out`'s Parquet files and run.json, `compare --out`'s
sweep.parquet, machine profiles) goes through `atomic_write`: write a temporary file in the
same directory, then rename it over the target (a rename within a directory is atomic).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Call `write(tmp)` on a temporary file next to `path`, then rename it to `path`.

    The directory is created if needed; on any failure the temporary file is removed and the
    target is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as a Parquet file atomically."""
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def atomic_write_text(text: str, path: Path) -> None:
    """Write a text file atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
