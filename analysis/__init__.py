"""Analysis of oomsim results: tidy pandas frames in, tables and matplotlib Axes out.

The plots (and so matplotlib) are imported when first used: `oomsim compare` needs only the
tables.
"""

from typing import Any

from .frames import failure_rates, outcome_labels

__all__ = ["failure_rates", "outcome_labels", "plot_memcg_usage", "plot_outcome_rates"]


def __getattr__(name: str) -> Any:
    if name in ("plot_memcg_usage", "plot_outcome_rates"):
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
