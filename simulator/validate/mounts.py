"""Private tmpfs mounts of a scenario's size, under a temporary directory of our own.

Each is mounted `-t tmpfs -o size=N,huge=never,mode=0700` with the source name `oomsim` (so a
leftover is easy to find), made private (no propagation), and unmounted again, lazily if a
process still holds it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

MOUNT_TIMEOUT = 10.0
SOURCE = "oomsim"


class MountError(RuntimeError):
    """mount(8) or umount(8) failed."""


def _run(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=MOUNT_TIMEOUT, check=False)
    if r.returncode != 0:
        raise MountError(f"{' '.join(argv)}: {r.stderr.strip() or f'exit status {r.returncode}'}")


@dataclass
class TmpfsMount:
    """A tmpfs we mounted at `where` (size in bytes; 0 is unlimited, as tmpfs has it)."""

    where: Path
    size: int
    mounted: bool = False

    def mount(self) -> TmpfsMount:
        """Create the mount point and mount a private tmpfs there."""
        self.where.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", f"size={self.size},huge=never,mode=0700", SOURCE,
              str(self.where)])
        self.mounted = True
        _run(["mount", "--make-private", str(self.where)])
        return self

    def umount(self) -> None:
        """Unmount (lazily if still busy); its files, and their memcg charges, go with it."""
        if not self.mounted:
            return
        try:
            _run(["umount", str(self.where)])
        except (MountError, subprocess.TimeoutExpired):
            _run(["umount", "-l", str(self.where)])
        self.mounted = False


def our_mounts(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    """Mount points of tmpfs mounts named `oomsim` (leftovers, if any)."""
    out = []
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = right.split()
        if len(fields) >= 2 and fields[0] == "tmpfs" and fields[1] == SOURCE:
            out.append(left.split()[4])
    return out
