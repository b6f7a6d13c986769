"""Atomic file writes: a file is either whole or absent, never half-written.

Every writer of the project's outputs (`--out`'s Parquet files and run.json, `compare --out`'s
sweep.parquet, machine profiles) goes through `atomic_write`: write a temporary file in the
same directory, then rename it over the target (a rename within a directory is atomic). The
file gets the mode a newly created file would have (0666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by the writers that need it, not at start-up
    import pandas as pd


def umask_mode(base: int = 0o666) -> int:
    """The mode `open()` would give a new file: `base` less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


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
        # mkstemp makes the file 0600; the result is as readable as any new file (the umask).
        os.chmod(tmp, umask_mode())
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
