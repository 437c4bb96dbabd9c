"""Plots of recorded runs. Each takes ``ax=None``, draws, and returns the figure.

Plots read DataFrames only; they never talk to Kafka.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from labkit.analysis import metrics, rates

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


def leadership_bars(counts: pd.Series, ax=None, title: str = "Partitions led per broker"):
    """Bar chart of ``labkit.analysis.timeline.leaders_per_broker`` counts.

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
        runs: ``labkit.cluster.faults.FaultRun`` objects in the order they were applied; their
            timelines (partition samples, t: seconds since the fault) are laid end to end
            and each fault is marked.
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
    under = data.assign(u=data.isr.map(len) < data.replicas.map(len)).groupby("t").u.sum()
    under = pd.concat([under, under.iloc[[-1]]])
    ax.step(times, under.values, where="post", color="black", ls=":", lw=2,
            label="under-replicated")
    ax.set_xlabel("seconds (faults laid end to end)")
    ax.set_ylabel("partitions")
    ax.set_title("Leadership and ISR through the faults")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


def throughput_over_time(series: dict[str, pd.DataFrame], ax=None, unit: str = "msgs_per_s"):
    """Throughput over time, one line per run.

    Args:
        series: label -> ``labkit.analysis.metrics.throughput`` frame.
        ax: axes to draw on (a new figure if None).
        unit: "msgs_per_s" or "mb_per_s".
    """
    ax = _axes(ax)
    for label, frame in series.items():
        ax.plot(frame.t, frame[unit], label=label, drawstyle="steps-post")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("messages/s" if unit == "msgs_per_s" else "MB/s")
    ax.set_title("Delivered throughput over time")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


def percentile_curves(curves: dict[str, pd.DataFrame], ax=None,
                        title: str = "Delivery latency by percentile"):
    """Latency against percentile on a log-percentile axis (out to p99.9).

    Args:
        curves: label -> ``labkit.analysis.metrics.percentile_curve`` frame.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    for label, curve in curves.items():
        ax.plot(curve.one_over_tail, curve.latency_ms, label=label)
    ax.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000]
    ax.set_xticks(ticks, ["p0", "p50", "p90", "p99", "p99.9"])
    ax.set_xlim(1, curves and max(c.one_over_tail.max() for c in curves.values()) or 1000)
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


def latency_cdf(latencies: dict[str, pd.Series], ax=None, title: str = "Delivery latency CDF"):
    """Cumulative distribution of latencies (ms), one line per run.

    Args:
        latencies: label -> latencies in ms (NaN ignored).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    for label, values in latencies.items():
        v = values.dropna().sort_values().to_numpy()
        if len(v):
            ax.plot(v, (1 + np.arange(len(v))) / len(v), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of messages")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return ax.figure


def partition_distribution(counts: pd.DataFrame, ax=None, title: str = "Messages per partition"):
    """Bars of messages per partition, grouped by topic.

    Args:
        counts: ``labkit.analysis.metrics.partition_counts`` frame (topic, partition, messages).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    table = counts.pivot(index="partition", columns="topic", values="messages").fillna(0)
    table.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("messages")
    ax.set_title(title)
    return ax.figure


def partition_heatmap(table: pd.DataFrame, ax=None, title: str = "Share of messages per partition"):
    """Heat map: one row per configuration, one column per partition, cells = share (%).

    Args:
        table: rows = configurations (index is the label), columns = partitions, values =
            message counts.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    share = 100 * table.div(table.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    image = ax.imshow(share.values, aspect="auto", cmap="viridis")
    ax.set_xticks(range(share.shape[1]), [str(c) for c in share.columns])
    ax.set_yticks(range(share.shape[0]), list(share.index))
    ax.set_xlabel("partition")
    ax.grid(False)
    for (r, c), v in np.ndenumerate(share.values):
        ax.text(c, r, f"{v:.0f}", ha="center", va="center", color="w", fontsize=7)
    ax.figure.colorbar(image, ax=ax, label="% of messages")
    ax.set_title(title)
    return ax.figure


def frontier(points: pd.DataFrame, x: str = "msgs_per_s", y: str = "p99_ms", label: str = "label",
             ax=None, title: str = "Throughput vs p99 delivery latency"):
    """Scatter of configurations by throughput and tail latency, the efficient ones joined.

    A configuration is on the frontier when no other has both more throughput and lower
    latency.

    Args:
        points: one row per configuration.
        x: throughput column.
        y: latency column (ms).
        label: column with each point's name.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    ax.scatter(points[x], points[y], color="tab:blue")
    for _, row in points.iterrows():
        ax.annotate(str(row[label]), (row[x], row[y]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    best = metrics.pareto_front(points, x, y)
    ax.plot(best[x], best[y], color="tab:red", lw=1, label="frontier")
    ax.set_xlabel("delivered messages/s")
    ax.set_ylabel("p99 delivery latency (ms)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    return ax.figure


def producer_dashboard(runs, warmup_s: float | None = None):
    """Draw producer runs: throughput, latency by percentile, last run's partitions.

    The batch path and the control panel both draw with this.

    Args:
        runs: ``labkit.workloads.producer.ProducerRun`` objects.
        warmup_s: warm-up left out of the percentiles (None: ``metrics.default_warmup``).
    """
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 3.6), layout="constrained")
    throughput_over_time({r.label: metrics.throughput(r.records) for r in runs}, ax=a)
    percentile_curves({r.label: metrics.percentile_curve(r.records, warmup_s=warmup_s)
                         for r in runs if r.delivered}, ax=b)
    partition_distribution(metrics.partition_counts(runs[-1].records), ax=c,
                           title=f"Messages per partition ({runs[-1].label})")
    for axis in (a, b):
        axis.legend(fontsize=7, loc="best")
    return fig


def outcome_bars(table: pd.DataFrame, ax=None, title: str = "What became of each message"):
    """Stacked bars of message outcomes per scenario.

    Args:
        table: rows = scenarios, columns = outcome counts (``accounting.delivery_reports`` keys).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    colors = {"delivered": "tab:green", "unreported_present": "tab:olive",
              "unreported_missing": "tab:red", "dropped": "tab:orange", "failed": "black"}
    cols = [c for c in colors if c in table.columns]
    table[cols].plot.barh(stacked=True, ax=ax, color=[colors[c] for c in cols])
    ax.set_xlabel("messages")
    ax.invert_yaxis()
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


def rebalance_timeline(intervals: pd.DataFrame, events: pd.DataFrame | None = None, ax=None,
                       title: str = "Who consumed which partition, when"):
    """One row per partition, a bar per ownership coloured by member; gaps stay blank.

    Args:
        intervals: ``metrics.ownership`` frame.
        events: group events; crash, join, leave and pause are marked with lines.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    partitions = sorted(intervals.partition.unique())
    ax = _axes(ax)
    if ax.figure.get_figheight() < 0.3 * len(partitions):
        ax.figure.set_figheight(max(3.6, 0.3 * len(partitions)))
    members = sorted(intervals.member.unique(), key=lambda m: (len(m), m))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(members)}
    for row, part in enumerate(partitions):
        owned = intervals[intervals.partition == part]
        ax.broken_barh(list(zip(owned.start, owned.end - owned.start, strict=True)),
                       (row - 0.4, 0.8), facecolors=[colors[m] for m in owned.member])
    if events is not None:
        marks = {"crash": "tab:red", "join": "tab:green", "leave": "tab:gray",
                 "pause": "tab:orange"}
        for ev in events[events.kind.isin(list(marks))].itertuples():
            ax.axvline(ev.t, color=marks[ev.kind], ls="--", lw=1)
            ax.annotate(f"{ev.kind} {ev.member}", (ev.t, 1), xycoords=("data", "axes fraction"),
                        rotation=90, fontsize=7, va="top", color=marks[ev.kind])
    ax.set_yticks(range(len(partitions)), partitions, fontsize=7)
    ax.set_xlabel("seconds since the group started")
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[m]) for m in members]
    ax.legend(handles, members, loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


def throughput_per_member(table: pd.DataFrame, ax=None,
                          title: str = "Messages processed per member"):
    """Lines of ``metrics.member_throughput``: messages/s per member over time.

    Args:
        table: ``metrics.member_throughput`` frame.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    for member in table.columns:
        ax.plot(table.index, table[member], drawstyle="steps-post", label=member)
    ax.set_xlabel("seconds since the group started")
    ax.set_ylabel("messages/s")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


def lag_over_time(lag: pd.DataFrame, ax=None, title: str = "Consumer lag"):
    """Total lag (messages behind the end of the log) per member over time.

    Args:
        lag: ``ConsumerGroup.lag()`` frame.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    for member, rows in lag.groupby("member"):
        total = rows.groupby("t").lag.sum()
        ax.plot(total.index, total.values, marker=".", label=member)
    ax.set_xlabel("seconds since the group started")
    ax.set_ylabel("messages behind")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


# -- faults: timelines with markers, audits, loss per configuration --------------------------


def fault_markers(ax, events: pd.DataFrame | None, zero_wall: float) -> None:
    """Mark each fault of a ``FaultSchedule.events`` frame with a dashed line and a label.

    Args:
        ax: the axes, whose x axis is seconds since ``zero_wall``.
        events: ``FaultSchedule.events`` (its action, broker and wall columns), or None.
        zero_wall: wall-clock time (epoch seconds) that is 0 on the x axis, e.g. a
            ``ProducerRun.started_wall``.
    """
    if events is None:
        return
    colors = {"kill": "tab:red", "shutdown": "tab:purple", "pause": "tab:orange",
              "resume": "tab:green", "restart": "tab:green"}
    previous, stack = None, 0
    for row in events.itertuples():
        at = row.wall.timestamp() - zero_wall
        # Faults a moment apart (two brokers killed together) get their labels side by side.
        stack = stack + 1 if previous is not None and at - previous < 0.2 else 0
        previous = at
        color = colors.get(row.action, "black")
        ax.axvline(at, color=color, ls="--", lw=1)
        ax.annotate(f"{row.action} {row.broker}", (at, 1), xycoords=("data", "axes fraction"),
                    xytext=(-10 * stack, 0), textcoords="offset points",
                    rotation=90, va="top", ha="right", fontsize=8, color=color)


def fault_timeline(runs, events: pd.DataFrame | None = None, bucket_s: float = 0.25,
                   title: str = "", points: int = 5000):
    """Throughput and delivery latency over time for producer runs, with the faults marked.

    The top panel counts successful deliveries per second (by delivery time) and, in red
    crosses, failed deliveries; the bottom panel shows each message's delivery latency
    against the time it was sent, on a log scale (up to ``points`` messages per run, evenly
    sampled).

    Args:
        runs: one ``ProducerRun`` or a list of them (drawn on the first run's clock).
        events: ``FaultSchedule.events`` for the markers.
        bucket_s: bucket width in seconds.
        title: figure title.
        points: the most messages per run drawn in the latency panel.

    Returns:
        The figure.
    """
    runs = [runs] if not isinstance(runs, list | tuple) else list(runs)
    zero = runs[0].started_wall
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True,
                                      layout="constrained")
    for run in runs:
        shift = run.started_wall - zero
        rec = run.records
        ok = metrics.throughput(rec, bucket_s)
        top.plot(ok.t + shift, ok.msgs_per_s, drawstyle="steps-post", label=run.label)
        failed = rates.per_second(
            rec.t_delivered[~rec.error.isin(["", "unreported", "BufferError"])], bucket_s)
        failed = failed[failed > 0]
        if len(failed):
            top.scatter(failed.index + shift, failed.values, marker="x", color="tab:red",
                        s=18, label=f"{run.label}: failed")
        sent = rec[rec.latency_ms.notna()]
        sent = sent.iloc[::max(1, len(sent) // points)]
        bottom.scatter(sent.t_send + shift, sent.latency_ms, s=2, alpha=0.5, label=run.label)
    top.set_ylabel("deliveries/s")
    bottom.set_ylabel("delivery latency (ms)")
    bottom.set_yscale("log")
    bottom.set_xlabel("seconds since the run started (latency: by send time)")
    for axis in (top, bottom):
        fault_markers(axis, events, zero)
    top.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    bottom.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=4)
    if title:
        fig.suptitle(title)
    return fig


def group_timeline(messages: pd.DataFrame, events: pd.DataFrame, started_wall: float,
                   zero_wall: float, faults: pd.DataFrame | None = None, bucket_s: float = 0.5,
                   ax=None, title: str = "The consumer group"):
    """Messages a group processed per second, its members' lost and regained partitions marked.

    The faults are marked too, as ``fault_timeline`` marks them.

    Args:
        messages: ``ConsumerGroup.messages()``.
        events: ``ConsumerGroup.events()``.
        started_wall: the group's ``started_wall``.
        zero_wall: wall time drawn as 0 on the x axis, e.g. a ``ProducerRun.started_wall``.
        faults: ``FaultSchedule.events`` (and any extra rows with action, broker, wall).
        bucket_s: bucket width in seconds.
        ax: the axes (a new figure if None).
        title: the axes title.

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3))
    rate = rates.per_second(messages.t_consumed - zero_wall, bucket_s)
    ax.plot(rate.index, rate.values, drawstyle="steps-post", color="tab:blue",
            label="processed/s")
    shown = events[events.kind.isin(["lost", "assign", "error"])]
    at = shown.t + started_wall - zero_wall
    style = {"lost": ("v", "tab:red"), "assign": ("^", "tab:green"), "error": ("x", "black")}
    top = max(float(rate.max()) if len(rate) else 1.0, 1.0)
    for kind, (marker, color) in style.items():
        mask = (shown.kind == kind).to_numpy()
        if mask.any():
            ax.scatter(at[mask], np.full(mask.sum(), top * 1.05), marker=marker, color=color,
                       label=f"{kind} ({int(mask.sum())})", zorder=3)
    fault_markers(ax, faults, zero_wall)
    ax.set(xlabel="seconds since the run started", ylabel="messages/s", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    return ax.figure


AUDIT_COLUMNS = ("sent", "acked", "failed", "unreported", "lost", "duplicates", "reordered",
                 "failed_present", "unreported_present", "acked_elsewhere")
"""The audit counts an audit table shows, producer view first, then what the topic holds."""


def audit_table(table: pd.DataFrame):
    """An audit table for display, every non-zero loss, duplicate or reorder highlighted.

    Rows are runs or configurations, columns audit counts.

    Args:
        table: rows of ``AuditResult.totals`` (e.g. ``labkit.analysis.audit.totals_table``).

    Returns:
        A pandas ``Styler`` (display it in a notebook).
    """
    cols = [c for c in AUDIT_COLUMNS if c in table.columns]
    bad = {"lost": "#f4a6a6", "duplicates": "#f9d49b", "reordered": "#f9d49b",
           "failed_present": "#f9e79b", "unreported_present": "#f9e79b"}

    def shade(column: pd.Series) -> list[str]:
        color = bad.get(column.name)
        return [f"background-color: {color}" if color and v > 0 else "" for v in column]

    return table[cols].style.apply(shade).format("{:,.0f}")


def loss_heatmap(table: pd.DataFrame, ax=None, title: str = "Acknowledged messages lost",
                 cmap: str = "Reds"):
    """A heat map of a count per configuration (rows) and run or setting (columns).

    Args:
        table: a 2-D frame of counts, e.g. ``totals.pivot(index="config", columns="run",
            values="lost")``.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
        cmap: matplotlib colour map.
    """
    ax = _axes(ax)
    values = table.to_numpy(dtype=float)
    top = max(1.0, float(np.nanmax(values))) if values.size else 1.0
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=top, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.annotate("" if np.isnan(v) else f"{v:,.0f}", (j, i), ha="center", va="center",
                    color="white" if v > 0.6 * top else "black")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
    ax.set_xlabel(str(table.columns.name or ""))
    ax.set_ylabel(str(table.index.name or ""))
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return ax.figure


# -- replication under broker loss: rates, readability and partition state by phase ---------


def phase_spans(ax, starts, end: float, numbers: bool = True) -> None:
    """Shade every other phase and number the phases at the top of ``ax``.

    Args:
        ax: axes whose x axis is the phases' clock.
        starts: ``(t, name)`` pairs in time order (e.g. ``ReplicationRun.phase_starts``).
        end: end of the last phase.
        numbers: write 1, 2, ... at the top of each phase (as in ``ReplicationRun.phases``).
    """
    times = [t for t, _ in starts] + [end]
    for index in range(len(starts)):
        left, right = times[index], times[index + 1]
        if index % 2:
            ax.axvspan(left, right, color="0.92", zorder=0)
        if numbers:
            ax.annotate(str(index + 1), ((left + right) / 2, 1.0),
                        xycoords=("data", "axes fraction"), ha="center", va="bottom",
                        fontsize=8, color="0.3")


def replication_timeline(run, state: str = "isr", bucket_s: float = 0.5):
    """A replication experiment over time: acknowledgements, readability, partition state.

    Panels on the run's clock, phases shaded and numbered, faults marked: one per producer
    with its acknowledged messages per second above zero (black: those the audit did not
    find afterwards) and its failed deliveries below (by delivery time); if the run had a
    live reader, messages becoming readable per second; then the partitions' state: ISR
    size of every partition (``state="isr"``, with min.insync.replicas dotted) or each
    topic's leader (``state="leader"``).

    Args:
        run: a ``labkit.experiments.replication.ReplicationRun``.
        state: "isr" or "leader".
        bucket_s: width of the rate buckets in seconds.

    Returns:
        The figure.

    Raises:
        ValueError: an unknown ``state``.
    """
    if state not in ("isr", "leader"):
        raise ValueError(f"state={state!r} must be 'isr' or 'leader'")
    labels = list(run.producers)
    panels = len(labels) + (run.seen is not None) + 1
    fig, axes = plt.subplots(panels, 1, figsize=(10, 1.9 * panels + 0.6), sharex=True,
                             layout="constrained")
    end = run.ended_s + 2.0
    records = {label: run.records(label) for label in labels}
    def per_second(times: pd.Series) -> pd.Series:
        return rates.per_second(times, bucket_s, start=0.0, end=end)

    for ax, label in zip(axes, labels, strict=False):
        rec = records[label]
        acked = per_second(rec.t_delivered[rec.error == ""])
        failed = per_second(rec.t_delivered[~rec.error.isin(["", "unreported", "BufferError"])])
        ax.fill_between(acked.index, acked, step="post", color="tab:green", alpha=0.6,
                        label="acknowledged")
        ax.fill_between(failed.index, -failed, step="post", color="tab:red", alpha=0.6,
                        label="failed")
        gone = rec.msg_id.isin(run.audits[label].lost.msg_id) if label in run.audits else None
        if gone is not None and gone.any():
            lost = per_second(rec.t_delivered[gone])
            ax.fill_between(lost.index, lost, step="post", color="black", alpha=0.8,
                            label="acknowledged, then lost")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel(f"{label}\nmessages/s")
    if run.seen is not None:
        readable = axes[len(labels)]
        for index, label in enumerate(labels):
            rate = per_second(records[label].t_seen)
            readable.plot(rate.index, rate, drawstyle="steps-post", color=f"C{index}",
                          label=label)
        readable.set_ylabel("readable/s")
    states = axes[-1]
    part = run.partitions
    topic_label = {topic: label for label, topic in run.topics.items()}
    for number, ((topic, partition), rows) in enumerate(part.groupby(["topic", "partition"])):
        if state == "isr":
            states.plot(rows.t, rows.isr.map(len) + 0.04 * number, drawstyle="steps-post",
                        label=f"partition {partition}")
        else:
            states.plot(rows.t, rows.leader + 0.06 * number, drawstyle="steps-post",
                        label=topic_label.get(topic, topic))
    if state == "isr":
        states.axhline(run.min_insync, color="k", ls=":", lw=1, label="min.insync.replicas")
        states.set_ylabel("ISR size")
        states.set_ylim(-0.2, max(3, int(part.isr.map(len).max())) + 0.5)
    else:
        brokers = sorted({int(b) for b in part.leader if b >= 0})
        states.set_yticks([-1, *brokers], ["none", *map(str, brokers)])
        states.set_ylabel("leader")
    states.set_xlabel("seconds since the run started")
    for ax in axes:
        phase_spans(ax, run.phase_starts, end, numbers=ax is axes[0])
        fault_markers(ax, run.events, run.started_wall)
        ax.set_xlim(0, end)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    return fig


def log_copies(result, partition: int | None = None, events: pd.DataFrame | None = None,
               started_wall: float | None = None, ax=None):
    """One partition's log: each record's offset against the time it was sent.

    First copies in order are grey, extra copies red, reordered records orange; vertical
    lines mark faults. Needs ``t_produced`` in ``result.found`` (``read_topic`` has it).

    Args:
        result: a ``labkit.analysis.audit.audit`` result.
        partition: the partition to draw; default the one with the most duplicates.
        events: ``FaultSchedule.events`` (its action, broker and wall columns).
        started_wall: wall-clock time (epoch seconds) that is 0 on the x axis, e.g.
            ``FaultSchedule.started_wall``; default the first send.
        ax: matplotlib axes to draw on (default a new figure).

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = plt.subplots()
    table = result.per_partition[result.per_partition.partition >= 0]
    if partition is None:
        partition = int(table.sort_values("duplicates", kind="stable").partition.iloc[-1])
    log = result.found[result.found.partition == partition]
    zero = started_wall if started_wall is not None else log.t_produced.min()
    t = log.t_produced - zero
    for mask, color, label in ((log.nth_copy.eq(0) & ~log.reordered, "0.6", "in order"),
                               (log.reordered, "tab:orange", "reordered"),
                               (log.nth_copy.gt(0), "tab:red", "extra copy")):
        ax.scatter(t[mask], log.offset[mask], s=4, color=color,
                   label=f"{label} ({int(mask.sum())})")
    for row in (events.itertuples() if events is not None else ()):
        at = row.wall.timestamp() - zero
        ax.axvline(at, color="k", lw=0.8, ls="--")
        ax.annotate(f"{row.action} {row.broker}", (at, 1), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=8)
    ax.set(xlabel="sent at (s)", ylabel="offset", title=f"Partition {partition}: the log")
    ax.legend(loc="lower right", markerscale=3)
    return ax.figure


_COPY_COLORS = {0: "tab:red", 1: "0.82", 2: "tab:orange"}  # 3 or more: dark orange


def rows_around_crash(strips: dict[str, pd.DataFrame], around: int | None = None, ax=None,
                      title: str = "Rows per input message, lined up on the crash"):
    """One strip per strategy: each input message coloured by its copies in the side effect.

    Args:
        strips: ``labkit.analysis.consumer_faults.around_crash`` frames by label, drawn top
            to bottom.
        around: show positions -around .. around only (None: all).
        ax: axes to draw on (a new figure if None).
        title: the axes title.

    Returns:
        The figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.7 * len(strips) + 1.4), layout="constrained")
    for row, strip in enumerate(strips.values()):
        if around is not None:
            strip = strip[strip.position.abs() <= around]
        pos, copies = strip.position.to_numpy(), strip.copies.clip(upper=3).to_numpy()
        if not len(pos):
            continue
        # One bar per run of equal copies: a strip of 100,000 messages is a few bars.
        cuts = np.flatnonzero(np.diff(copies) != 0) + 1
        for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(pos)], strict=True):
            value = int(copies[start])
            ax.broken_barh([(pos[start] - 0.5, pos[stop - 1] - pos[start] + 1)],
                           (row - 0.4, 0.8),
                           color=_COPY_COLORS.get(value, "saddlebrown"), linewidth=0)
        batch = strip[strip.stage.str.startswith("crash batch")].position
        if len(batch):
            ax.add_patch(Rectangle((batch.min() - 0.5, row - 0.45), batch.max() - batch.min() + 1,
                                   0.9, fill=False, edgecolor="black", linewidth=0.8))
    ax.axvline(-0.5, color="black", ls="--", lw=1)
    ax.set_yticks(range(len(strips)), list(strips))
    ax.set_ylim(len(strips) - 0.5, -0.5)
    ax.grid(False)
    ax.set_xlabel("input message, in the order the crashing worker received them "
                  "(0: first it did not process)")
    ax.legend(handles=[Patch(color=_COPY_COLORS[0], label="no row (lost)"),
                       Patch(color=_COPY_COLORS[1], label="one row"),
                       Patch(color=_COPY_COLORS[2], label="two rows (duplicate)"),
                       Patch(fill=False, edgecolor="black", label="crash batch"),
                       Line2D([], [], color="black", ls="--", lw=1, label="crash")],
              loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title(title)
    return ax.figure


def lost_when_acked(lost: pd.DataFrame, ax=None, title: str = "Lost messages"):
    """When each lost message had been acknowledged, relative to the kill: one row per run.

    Args:
        lost: ``labkit.analysis.audit.lost_messages`` (its config, run and acked_s).
        ax: axes to draw on (a new figure if None).
        title: the axes title.

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * max(1, lost.groupby(["config", "run"]).ngroups)
                                      + 1.8), layout="constrained")
    for (config, run), rows in lost.groupby(["config", "run"], sort=False):
        ax.scatter(rows.acked_s, [f"{config} · run {run}"] * len(rows), s=6)
    ax.axvline(0, color="tab:red", ls="--", lw=1)
    ax.annotate("kill", (0, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                textcoords="offset points", va="top", color="tab:red", fontsize=8)
    ax.set(xlabel="acknowledged at (s, relative to the kill)", title=title)
    return ax.figure


def duplicates_and_losses(table: pd.DataFrame, title: str, ax=None):
    """Duplicates and lost messages per variant, as horizontal bars with their counts written.

    Args:
        table: one row per variant (drawn top to bottom) with ``duplicates`` and ``lost``
            columns, e.g. ``consumer_faults.commit_outcomes`` or ``side_effect_outcomes``.
        title: the axes title.
        ax: axes to draw on (a new figure if None).

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.6), layout="constrained")
    table[["duplicates", "lost"]].astype(int).plot.barh(ax=ax, color=["tab:orange", "tab:red"])
    for bars in ax.containers:  # a zero is the lesson too: write it
        ax.bar_label(bars, fmt="{:,.0f}", fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set(xlabel="messages", ylabel="", title=title)
    return ax.figure
