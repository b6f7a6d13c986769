"""Plots: a tidy frame and `ax=None` in, the Axes out; no file I/O (seaborn's convention)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from .frames import failure_rates

COLORS = {"ok": "#4c9f70", "oom_killed": "#c0392b", "sigbus": "#8e44ad", "error": "#e6a23c",
          "hung": "#2c7fb8", "panic": "#000000"}


def plot_outcome_rates(tasks: pd.DataFrame, task: str, by: str = "policy",
                       ax: Axes | None = None) -> Axes:
    """Stacked bars: for one task, the share of runs per outcome under each `by` value."""
    ax = ax or plt.gca()
    rates = failure_rates(tasks[tasks["task"] == task], by=[by])
    table = rates.pivot_table(index=by, columns="label", values="rate", fill_value=0.0)
    bottom = pd.Series(0.0, index=table.index)
    for label in table.columns:
        color = COLORS.get(label.split(":")[0].split("@")[0])
        ax.bar(table.index.astype(str), table[label], bottom=bottom, label=label, color=color)
        bottom += table[label]
    ax.set_ylabel(f"share of runs ({task})")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_memcg_usage(events: pd.DataFrame, memcg: str, page_size: int = 4096,
                     ax: Axes | None = None) -> Axes:
    """Usage of one memcg over simulated time, from the faulting tasks' level records."""
    ax = ax or plt.gca()
    e = events[events["kind"].isin(["fault_bulk", "fault_slice"]) & (events["memcg"] == memcg)]
    for task, g in e.groupby("task"):
        ax.step(g["time"] * 1e3, g["value"] * page_size / 2**20, where="post", label=str(task))
    kills = events[events["kind"] == "oom_kill"]
    for t in kills["time"]:
        ax.axvline(t * 1e3, color=COLORS["oom_killed"], linestyle=":", linewidth=1)
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel(f"{memcg} usage (MiB)")
    ax.legend(fontsize="small")
    return ax
