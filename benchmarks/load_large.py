"""How long a large scenario file takes to load: the many-tasks scenario (10,000 tasks) written
as block-style YAML, then `load_scenario` on it (parse, line marks, validation, cross-checks).

Not part of `make bench`'s figures or of the tests; run it by hand:
`python -m benchmarks.load_large [NTASKS] [FILE]`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from simulator.scenario import load_scenario

from .many_tasks import busy_host


def write_file(path: Path, ntasks: int = 10_000) -> Path:
    """The many-tasks scenario as a block-style YAML file."""
    d = busy_host(ntasks)
    d.setdefault("name", "many-tasks")
    path.write_text(yaml.safe_dump(d, default_flow_style=False, sort_keys=False))
    return path


def main() -> None:
    """Write the file (unless it exists), load it, print its size and the seconds taken."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(f"/tmp/oomsim-many-{n}.yaml")
    if not path.exists():
        write_file(path, n)
    start = time.perf_counter()
    sc = load_scenario(path)
    took = time.perf_counter() - start
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, {len(sc.tasks)} tasks, loaded in {took:.2f} s")


if __name__ == "__main__":
    main()
