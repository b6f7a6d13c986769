"""Plots: a tidy frame and `ax=None` in, the Axes out; no file I/O (seaborn's convention).

Legends stand outside the axes (to the right), where they cover no bar and no line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb

from .frames import failure_rates

COLORS = {"ok": "#4c9f70", "oom_killed": "#c0392b", "sigbus": "#8e44ad", "error": "#e6a23c",
          "hung": "#2c7fb8", "panic": "#000000", "killed": "#7f3b08", "sigsegv": "#5e3c99",
          "running": "#9ecae1", "not_started": "#bdbdbd"}
STRUCK_ORDER = {"mitigation": 0, "parse": 1, "other": 2, "": 3}
STRUCK_HATCH = {"mitigation": "//", "parse": "", "other": "..", "": ""}
PAGE_COUNTER_MAX = 2**62  # above this a limit is "max" (unlimited)


def outcome_of(label: str) -> str:
    """`oom_killed` of `oom_killed@touch`, `error` of `error:EAGAIN@mlock`."""
    return label.split(":")[0].split("@")[0]


def shades(labels: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """A colour per label: its outcome's colour, from dark to light across the labels of one
    outcome (oom_killed@madvise, @mlock, @touch are three reds, not one)."""
    out: dict[str, tuple[float, float, float]] = {}
    by_outcome: dict[str, list[str]] = {}
    for label in labels:
        by_outcome.setdefault(outcome_of(label), []).append(label)
    for outcome, group in by_outcome.items():
        base = np.array(to_rgb(COLORS.get(outcome, "#777777")))
        for i, label in enumerate(group):
            # -0.35 (darker) .. 0.6 (lighter) across the group; one label keeps the colour
            f = 0.0 if len(group) == 1 else -0.35 + 0.95 * i / (len(group) - 1)
            c = base * (1 + f) if f < 0 else base + (1 - base) * f
            out[label] = (float(c[0]), float(c[1]), float(c[2]))
    return out


def legend_outside(ax: Axes, title: str | None = None, handles: Sequence[Any] | None = None,
                   labels: Sequence[str] | None = None) -> None:
    """The legend to the right of the axes, top-aligned, so that it covers nothing (of the
    Axes' own artists, or of `handles` with their `labels`: one legend for several Axes)."""
    args = () if handles is None else (list(handles), list(labels or []))
    ax.legend(*args, fontsize="small", title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0, frameon=False)


def plot_outcome_rates(tasks: pd.DataFrame, task: str, by: str = "policy",
                       ax: Axes | None = None) -> Axes:
    """Stacked bars: for one task, the share of runs per outcome label under each `by` value,
    a shade of the outcome's colour per label, the legend outside."""
    ax = ax or plt.gca()
    rates = failure_rates(tasks[tasks["task"] == task], by=[by])
    table = rates.pivot_table(index=by, columns="label", values="rate", fill_value=0.0)
    colors = shades(sorted(table.columns, key=lambda lab: (outcome_of(lab) != "ok", lab)))
    bottom = pd.Series(0.0, index=table.index)
    for label in table.columns:
        ax.bar(table.index.astype(str), table[label], bottom=bottom, label=label,
               color=colors[label], edgecolor="white", linewidth=0.5)
        bottom += table[label]
    ax.set_ylabel(f"share of runs ({task})")
    ax.set_ylim(0, 1)
    legend_outside(ax)
    return ax


def _positions(values: list[Any], order: Sequence[Any] | None) -> tuple[list[float], list[str] | None]:
    """Where grid values go on the x axis: themselves if they are numbers, else their place in
    `order` (the grid's own order), then labelled with the values."""
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
           for v in values):
        return [float(v) for v in values], None
    seq = list(order) if order is not None else sorted(set(values), key=str)
    return [float(seq.index(v)) for v in values], [str(v) for v in seq]


MARKERS = "osD^vP*X<>"


def policy_color(i: int, n: int) -> Any:
    """The i-th of n lines' colour: the default cycle up to 10 lines, then tab20's dark
    shades before its light ones, so that no two of up to 20 policies share a colour."""
    if n <= 10:
        return f"C{i % 10}"
    cmap = plt.get_cmap("tab20")
    return cmap((2 * i) % 20 + (i // 10) % 2)


def plot_failure_rate_vs(failures: pd.DataFrame, param: str, task: str | None = None,
                         order: Sequence[Any] | None = None, ax: Axes | None = None) -> Axes:
    """Failure rate against one grid parameter: a line per policy with its Wilson 95% band.

    `failures` is `summary.failure_frame` (its `runs` and `failed` counts); rows of other grid
    parameters' values are pooled (the rate over all of them at each value of `param`).
    `order` places values that are not numbers (`64MiB`) in the grid's order. Policies are
    dodged sideways a little, each with its own marker, so that equal lines stay visible.
    """
    from .summary import with_wilson

    ax = ax or plt.gca()
    df = failures if task is None else failures[failures["task"] == task]
    pooled = df.groupby(["policy", param], sort=False)[["runs", "failed"]].sum().reset_index()
    pooled = with_wilson(pooled, "failed", "runs")
    policies = sorted(set(pooled["policy"]), key=str)
    xs_all, ticks = _positions(list(pooled[param]), order)
    span = (max(xs_all) - min(xs_all)) if len(set(xs_all)) > 1 else 1.0
    step = span / max(1, len(set(xs_all)) - 1)
    for i, policy in enumerate(policies):
        g = pooled[pooled["policy"] == policy]
        xs, _ = _positions(list(g[param]), order)
        idx = np.argsort(xs)
        dodge = (i - (len(policies) - 1) / 2) * 0.12 * step / max(1, len(policies) - 1)
        x = np.asarray(xs)[idx] + dodge
        line, = ax.plot(x, g["rate"].to_numpy()[idx], marker=MARKERS[i % len(MARKERS)],
                        color=policy_color(i, len(policies)), label=str(policy))
        ax.fill_between(x, g["ci_low"].to_numpy()[idx], g["ci_high"].to_numpy()[idx],
                        color=line.get_color(), alpha=min(0.12, 0.6 / len(policies)), linewidth=0)
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlabel(param)
    ax.set_ylabel(f"failure rate{f' of {task}' if task else ''} (95% CI)")
    ax.set_ylim(-0.02, 1.02)
    legend_outside(ax, title="policy")
    return ax


def share_names(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The (outcome label, struck, legend name) of every segment `plot_outcome_shares` draws
    for these rows, in stacking order: `ok` first, then by outcome and where it struck."""
    struck = summary["struck"].fillna("") if "struck" in summary else pd.Series(
        "", index=summary.index)
    keys = sorted(set(zip(summary["outcome"], struck, strict=True)),
                  key=lambda k: (outcome_of(k[0]) != "ok", outcome_of(k[0]),
                                 STRUCK_ORDER.get(k[1], 9), k[0]))
    where = {"": "", "mitigation": " (in the mitigation)", "parse": " (in the parse)",
             "other": " (elsewhere)"}
    return [(o, s, f"{o}{where.get(s, f' ({s})')}") for o, s in keys]


def plot_outcome_shares(summary: pd.DataFrame, task: str, by: str = "policy",
                        palette: dict[str, Any] | None = None, ax: Axes | None = None) -> Axes:
    """Stacked bars, one per `by` value (policy): the share of runs of each outcome label,
    coloured by outcome, a shade per label, hatched by where it struck (`//` in the
    mitigation's own call, `..` elsewhere than the parse), the legend outside.

    `summary` is `summary.summary_frame`; rows of several cells or kernels are pooled.
    `palette` (legend name -> colour, e.g. `shades` of a wider frame's `share_names`) keeps
    the colours of several Axes the same.
    """
    ax = ax or plt.gca()
    df = summary[summary["task"] == task]
    struck = df["struck"] if "struck" in df else pd.Series("", index=df.index)
    df = df.assign(struck=struck.fillna(""))
    counts = df.groupby([by, "outcome", "struck"], sort=False)["count"].sum().reset_index()
    totals = counts.groupby(by)["count"].sum()
    counts["share"] = counts["count"] / counts[by].map(totals)
    keys = share_names(df)
    colors = palette or shades([name for _, _, name in keys])
    bars = [str(b) for b in sorted(totals.index, key=str)]
    bottom = np.zeros(len(bars))
    for outcome, where, name in keys:
        sel = counts[(counts["outcome"] == outcome) & (counts["struck"] == where)]
        share = sel.set_index(sel[by].astype(str))["share"].reindex(bars).fillna(0.0).to_numpy()
        ax.bar(bars, share, bottom=bottom, label=name, color=colors[name],
               hatch=STRUCK_HATCH.get(where, ""), edgecolor="white", linewidth=0.5)
        bottom += share
    ax.set_xlabel(by)
    ax.set_ylabel(f"share of runs ({task})")
    ax.set_ylim(0, 1)
    legend_outside(ax, title="outcome@op (where)")
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


def plot_memcg_timeline(levels: pd.DataFrame, limits: dict[str, int], page_size: int = 4096,
                        oom_kills: pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
    """Usage of every memcg of one run over simulated time, its memory.max as a dashed line of
    the same colour, and each OOM kill marked on the line of the victim's own memcg (at that
    memcg's usage when it was killed), nowhere else. The root memcg is drawn only when it is
    the only one."""
    ax = ax or plt.gca()
    mib = page_size / 2**20
    keys = sorted(set(levels.loc[levels["kind"] == "memcg_usage", "key"]))
    if len(keys) > 1:
        keys = [k for k in keys if k != "/"]
    colors: dict[str, Any] = {}
    for key in keys:
        xs, ys = level_line(levels, "memcg_usage", key)
        line, = ax.plot([x * 1e3 for x in xs], [y * mib for y in ys], label=key)
        colors[key] = line.get_color()
        limit = limits.get(key)
        if limit is not None and limit < PAGE_COUNTER_MAX:
            ax.axhline(limit * mib, color=line.get_color(), linestyle="--", linewidth=1,
                       label=f"{key} memory.max")
    if oom_kills is not None and len(oom_kills):
        for kill in oom_kills.itertuples():
            own = kill.task_memcg
            if own not in colors:
                continue
            xs, ys = level_line(levels, "memcg_usage", own)
            at = float(np.interp(kill.time, xs, ys)) if xs else 0.0
            ax.plot([kill.time * 1e3], [at * mib], marker="X", markersize=9, linestyle="none",
                    color=colors[own], markeredgecolor="black", label=f"OOM kill: {kill.victim}")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("memcg usage (MiB)")
    legend_outside(ax)
    return ax


def plot_node_timeline(levels: pd.DataFrame, managed: dict[str, int], page_size: int = 4096,
                       ax: Axes | None = None) -> Axes:
    """Pages in use on each NUMA node of one run (managed less free) over simulated time, the
    node's managed pages as a dashed line of the same colour."""
    ax = ax or plt.gca()
    mib = page_size / 2**20
    for key in sorted(set(levels.loc[levels["kind"] == "node_free", "key"]), key=str):
        xs, ys = level_line(levels, "node_free", key)
        total = managed.get(str(key), 0)
        line, = ax.plot([x * 1e3 for x in xs], [(total - y) * mib for y in ys],
                        label=f"node {key} in use")
        if total:
            ax.axhline(total * mib, color=line.get_color(), linestyle="--", linewidth=1,
                       label=f"node {key} managed")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("node memory in use (MiB)")
    legend_outside(ax)
    return ax
