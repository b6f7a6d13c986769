"""The C worker: compiled on demand with `cc -O2`, cached by a hash of its source.

A C worker keeps the real task's footprint close to a small program's: Python's interpreter
would add some 10 MiB of charged memory and move the page at which a task dies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("worker.c")
CFLAGS = ("-O2", "-Wall")
COMPILE_TIMEOUT = 120.0


class WorkerBuildError(RuntimeError):
    """No C compiler, or the worker does not compile."""


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/oomsim` (default `~/.cache/oomsim`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oomsim"


def find_compiler() -> str:
    """`$CC`, else cc, gcc or clang on PATH."""
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise WorkerBuildError(
        "no C compiler found (tried $CC, cc, gcc, clang): `oomsim validate` runs each task as a "
        "small C program; install gcc or clang, or set CC")


def worker_path() -> Path:
    """The compiled worker, built now if the cache has none for this source."""
    src = SOURCE.read_bytes()
    key = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:16]
    exe = cache_dir() / f"worker-{key}"
    if exe.exists():
        return exe
    cc = find_compiler()
    exe.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="worker-", dir=exe.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True,
                           text=True, timeout=COMPILE_TIMEOUT, check=False)
        if r.returncode != 0:
            raise WorkerBuildError(f"{cc} could not build {SOURCE}:\n{r.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)  # atomic: concurrent builds never see half a binary
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe
