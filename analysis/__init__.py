"""Analysis of oomsim results: tidy pandas frames in, tables and matplotlib Axes out.

The plots (and so matplotlib) are imported when first used: `oomsim compare` needs only the
tables. `stats` holds the intervals and tests, `summary` the tables of a sweep's report.
"""

from typing import Any

from .frames import failure_rates, outcome_labels
from .summary import failure_frame, paired_frame, summary_frame

PLOTS = ("plot_memcg_usage", "plot_outcome_rates", "plot_failure_rate_vs", "plot_outcome_shares",
         "plot_memcg_timeline", "plot_node_timeline")

__all__ = ["failure_frame", "failure_rates", "outcome_labels", "paired_frame", "summary_frame",
           *PLOTS]


def __getattr__(name: str) -> Any:
    if name in PLOTS:
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
