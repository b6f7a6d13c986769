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


def level_line(levels: pd.DataFrame, kind: str, key: str) -> tuple[list[float], list[float]]:
    """The (time, value) points that draw one counter truthfully as a line: a step at each
    instant change, a straight segment through each bulk step (`ramp`)."""
    g = levels[(levels["kind"] == kind) & (levels["key"] == key)]
    xs: list[float] = []
    ys: list[float] = []
    for t, v, ramp in zip(g["time"], g["value"], g["ramp"], strict=True):
        if xs and not ramp:
            xs.append(t)
            ys.append(ys[-1])
        xs.append(t)
        ys.append(v)
    return xs, ys


def plot_memcg_usage(levels: pd.DataFrame, memcg: str, page_size: int = 4096,
                     oom_kills: pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
    """Usage of one memcg over simulated time (the levels frame of one run), with its limit's
    OOM kills marked when `oom_kills` is given (only kills in this memcg or below it)."""
    ax = ax or plt.gca()
    xs, ys = level_line(levels, "memcg_usage", memcg)
    ax.plot([x * 1e3 for x in xs], [y * page_size / 2**20 for y in ys], label=memcg)
    if oom_kills is not None and len(oom_kills):
        mine = oom_kills[oom_kills["memcg"].map(lambda c: c == memcg or
                                                 str(c).startswith(memcg.rstrip("/") + "/"))]
        for t in mine["time"]:
            ax.axvline(t * 1e3, color=COLORS["oom_killed"], linestyle=":", linewidth=1,
                       label="OOM kill")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel(f"{memcg} usage (MiB)")
    ax.legend(fontsize="small")
    return ax
