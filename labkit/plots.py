"""Plots of recorded runs. Each takes ``ax=None``, draws, and returns the figure.

Plots read DataFrames only; they never talk to Kafka.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

LAB_STYLE = {
    "figure.figsize": (8, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def use_lab_style() -> None:
    """Apply the lab's matplotlib style (notebooks opt in; importing labkit does not)."""
    plt.rcParams.update(LAB_STYLE)


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots()
    return ax


def leaders_per_broker(counts: pd.Series, ax=None, title: str = "Partitions led per broker"):
    """Bar chart of ``labkit.faults.leaders_per_broker`` counts.

    Args:
        counts: partitions led, indexed by broker id.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    ax.bar([f"broker {b}" for b in counts.index], counts.values, color="tab:blue")
    for x, v in enumerate(counts.values):
        ax.annotate(str(v), (x, v), ha="center", va="bottom")
    ax.set_ylabel("partitions led")
    ax.set_title(title)
    return ax.figure


def leadership_timeline(runs, brokers: list[int], ax=None):
    """Partitions led per broker and under-replicated partitions over time, across faults.

    Args:
        runs: ``labkit.faults.FaultRun`` objects in the order they were applied; their
            timelines are laid end to end and each fault is marked.
        brokers: broker ids to draw a band for.
        ax: axes to draw on (a new figure if None).
    """
    ax = _axes(ax)
    offset = 0.0
    frames = []
    for run in runs:
        frames.append(run.timeline.assign(t=run.timeline.t + offset))
        ax.axvline(offset, color="tab:red", ls="--", lw=1)
        ax.annotate(f"{run.action} {run.broker}", (offset, 1), xycoords=("data", "axes fraction"),
                    color="tab:red", ha="left", va="top", rotation=90, fontsize=8)
        offset += run.timeline.t.max() + 1.0
    data = pd.concat(frames, ignore_index=True)
    times = sorted(data.t.unique())
    led = (data[data.leader >= 0].groupby(["t", "leader"]).size().unstack(fill_value=0)
           .reindex(index=times, columns=brokers, fill_value=0))
    # Hold the last sample a moment so the settled state is visible.
    times = [*times, times[-1] + 0.5]
    led = pd.concat([led, led.iloc[[-1]]])
    ax.stackplot(times, led.T.values, step="post", alpha=0.8,
                 labels=[f"led by broker {b}" for b in brokers])
    under = data.assign(u=data.isr_size < data.replicas).groupby("t").u.sum()
    under = pd.concat([under, under.iloc[[-1]]])
    ax.step(times, under.values, where="post", color="black", ls=":", lw=2,
            label="under-replicated")
    ax.set_xlabel("seconds (faults laid end to end)")
    ax.set_ylabel("partitions")
    ax.set_title("Leadership and ISR through the faults")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure
