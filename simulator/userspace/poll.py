"""Polling on the simulated clock without paying for polls that cannot see anything new."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..mm.machine import Machine


def quiet_polls(m: Machine, period: float) -> int:
    """How many of the next polls would read the same /proc/meminfo and decide the same
    (nothing): those before the next event anything else has scheduled, since only an event
    changes the machine (meminfo, unlike PSI averages, does not move with time alone). The
    loop skips them, so that a poll every 100 ms costs nothing while the machine is idle."""
    gap = m.env.peek() - m.env.now
    if gap == float("inf"):
        return 0
    return max(0, math.ceil(gap / period) - 2)
