"""Analysis of oomsim results: tidy pandas frames in, tables and matplotlib Axes out."""

from .frames import failure_rates, outcome_labels
from .plots import plot_memcg_usage, plot_outcome_rates

__all__ = ["failure_rates", "outcome_labels", "plot_memcg_usage", "plot_outcome_rates"]
