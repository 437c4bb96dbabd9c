"""ipywidgets control panels. Each wraps the same functions the batch path calls.

The producer panel runs ``labkit.workloads.producer.run_producer`` with the chosen settings and
redraws ``labkit.viz.plots.producer_dashboard`` in place, keeping earlier runs for comparison.
The consumer panel drives a ``labkit.workloads.consumer.ConsumerGroup`` and redraws its rebalance
timeline and per-member throughput. The network panel runs
``labkit.experiments.network_latency.measure`` under the delay and link limit chosen.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from labkit.cluster import LAB_TOPICS, Cluster
from labkit.viz import plots
from labkit.workloads.producer import CHOICES, KEY_SCHEMES, run_producer


def producer_settings(acks="1", linger_ms=5, batch_size=1_000_000, compression="none",
                      partitioner="consistent_random") -> dict[str, str]:
    """The producer config the panel's controls stand for (what the batch path would pass)."""
    return {"acks": acks, "linger.ms": str(linger_ms), "batch.size": str(batch_size),
            "compression.type": compression, "partitioner": partitioner}



def _run_in(out, button, run, redraw) -> None:
    """Run a panel's ``run()`` with its button disabled; redraw, or say what value was bad.

    The error goes inside the Output: in a kernel it catches what its block raises (and
    shows a traceback), so a bad value must be told apart in there.
    """
    button.disabled = True
    try:
        with out:
            try:
                run()
            except ValueError as exc:
                print(f"error: {exc}")
                return
    finally:
        button.disabled = False
    redraw()

def producer_panel(cluster: Cluster, topics=LAB_TOPICS, messages: int = 20_000):
    """Show a producer control panel: settings, a Run button, and the dashboard.

    Args:
        cluster: where to produce.
        topics: topics to write.
        messages: initial message count.

    Returns:
        The panel widget (already displayed) and, as ``panel.runs``, the runs made.
    """
    style = {"description_width": "110px"}
    acks = w.Dropdown(options=["0", "1", "all"], value="1", description="acks", style=style)
    linger = w.IntSlider(value=5, min=0, max=100, description="linger.ms", style=style)
    batch = w.Dropdown(options=[16_384, 131_072, 1_000_000], value=1_000_000,
                       description="batch.size", style=style)
    compression = w.Dropdown(options=list(CHOICES["compression.type"]), value="none",
                             description="compression", style=style)
    partitioner = w.Dropdown(options=list(CHOICES["partitioner"]), value="consistent_random",
                             description="partitioner", style=style)
    keys = w.Dropdown(options=list(KEY_SCHEMES), value="none", description="keys", style=style)
    # Every value starts with the 24-byte lab mark (labkit.workloads.marks): 30 B at least.
    size = w.IntSlider(value=100, min=30, max=10_000, step=10, description="message bytes",
                       style=style)
    rate = w.IntText(value=0, description="rate msg/s (0=max)", style=style)
    count = w.IntText(value=messages, description="messages", style=style)
    run_button = w.Button(description="Run", button_style="primary")
    clear_button = w.Button(description="Clear runs")
    out = w.Output()
    runs: list = []

    def redraw():
        out.clear_output(wait=True)
        with out:
            if runs:
                display(pd.DataFrame([r.totals() for r in runs]))
                fig = plots.producer_dashboard(runs)
                display(fig)
                plt.close(fig)

    def run():
        config = producer_settings(acks.value, linger.value, batch.value, compression.value,
                                   partitioner.value)
        runs.append(run_producer(cluster, config, messages=count.value,
                                 rate=rate.value or None, size=size.value, keys=keys.value,
                                 topics=topics, progress=True))

    def on_run(_):
        _run_in(out, run_button, run, redraw)

    def on_clear(_):
        runs.clear()
        redraw()

    run_button.on_click(on_run)
    clear_button.on_click(on_clear)
    panel = w.VBox([
        w.HBox([w.VBox([acks, linger, batch, compression, partitioner]),
                w.VBox([keys, size, rate, count, w.HBox([run_button, clear_button])])]),
        out,
    ])
    panel.runs = runs
    display(panel)
    return panel


PANEL_STRATEGIES = {
    "range (classic)": {"partition.assignment.strategy": "range"},
    "roundrobin (classic)": {"partition.assignment.strategy": "roundrobin"},
    "cooperative-sticky (classic)": {"partition.assignment.strategy": "cooperative-sticky"},
    "KIP-848 consumer protocol": {"group.protocol": "consumer"},
}


def consumer_settings(strategy: str, max_poll_interval_ms: int,
                      session_timeout_ms: int) -> dict[str, Any]:
    """The group config the consumer panel's controls stand for."""
    config = dict(PANEL_STRATEGIES[strategy], **{"max.poll.interval.ms": max_poll_interval_ms})
    if "group.protocol" not in config:  # KIP-848: the broker owns session timing
        config["session.timeout.ms"] = session_timeout_ms
    return config


def consumer_panel(cluster: Cluster, topics=LAB_TOPICS):
    """Show a consumer-group control panel.

    Start a group with the chosen strategy / protocol, commit mode, processing time and
    max.poll.interval.ms; feed it messages; add, remove or crash members; the rebalance
    timeline and per-member throughput redraw after every action (and on Refresh).

    Args:
        cluster: where the group consumes.
        topics: topics the group subscribes to and the feed writes.

    Returns:
        The panel widget (already displayed); ``panel.group`` is the running group.
    """
    from labkit.analysis import metrics
    from labkit.workloads.consumer import COMMIT_MODES, ConsumerGroup

    style = {"description_width": "140px"}
    members = w.IntSlider(value=3, min=1, max=8, description="members", style=style)
    strategy = w.Dropdown(options=list(PANEL_STRATEGIES), description="strategy / protocol",
                          style=style)
    commit = w.Dropdown(options=list(COMMIT_MODES), description="commit", style=style)
    processing = w.FloatLogSlider(value=0.1, base=10, min=-2, max=3,
                                  description="processing ms/msg", style=style)
    max_poll = w.IntText(value=300_000, description="max.poll.interval.ms", style=style)
    session = w.IntText(value=10_000, description="session.timeout.ms", style=style)
    feed = w.IntText(value=20_000, description="messages to feed", style=style)
    buttons = {name: w.Button(description=name) for name in
               ("Start", "Feed", "Add member", "Remove member", "Crash member", "Refresh",
                "Stop")}
    out = w.Output()
    panel = w.VBox([w.HBox([w.VBox([members, strategy, commit, processing]),
                            w.VBox([max_poll, session, feed])]),
                    w.HBox(list(buttons.values())), out])
    panel.group = None

    def redraw(note: str = ""):
        out.clear_output(wait=True)
        with out:
            if note:
                print(note)
            group = panel.group
            if group is None:
                return
            display(metrics.assignment_table(group.assignment()))
            fig, (a, b) = plt.subplots(1, 2, figsize=(15, 4), layout="constrained")
            events = group.events()
            if not events.empty:
                plots.rebalance_timeline(metrics.ownership(events), events, ax=a)
            table = metrics.member_throughput(group.messages(), bucket_s=1.0)
            if not table.empty:
                plots.throughput_per_member(table, ax=b)
            display(fig)
            plt.close(fig)

    def act(name):
        def handler(_):
            group = panel.group
            try:
                if name == "Start":
                    if group is not None:
                        group.stop()
                    config = consumer_settings(strategy.value, max_poll.value, session.value)
                    panel.group = ConsumerGroup(cluster, topics, members=members.value,
                                                config=config, commit=commit.value,
                                                processing=processing.value / 1000).start()
                elif group is None:
                    raise ValueError("start a group first")
                elif name == "Feed":
                    run_producer(cluster, {}, messages=feed.value, topics=topics)
                elif name == "Add member":
                    group.add_member()
                elif name in ("Remove member", "Crash member"):
                    if not group.members:
                        raise ValueError("the group has no member left")
                    victim = sorted(group.members)[0]
                    (group.remove_member if name == "Remove member" else group.crash_member)(
                        victim)
                elif name == "Stop":
                    group.stop()
                redraw(f"{name}: done")
            except ValueError as exc:
                redraw(f"error: {exc}")
        return handler

    for name, button in buttons.items():
        button.on_click(act(name))
    display(panel)
    return panel


def network_panel(cluster: Cluster, topics=LAB_TOPICS):
    """Show a control panel for the lab network: delay, link limit and producer settings.

    Each Run calls ``labkit.experiments.network_latency.measure`` (the function notebook 06's
    sweeps run for every point) with the chosen one-way delay between every two brokers,
    rate limit of every client link and producer settings, heals the network afterwards,
    and redraws a table of every run so far (``network_costs.delay_table``, with the bytes
    on the wire per message) and their delivery latency by percentile.

    Args:
        cluster: a cluster with the lab network (``labkit.connect(network=True)``).
        topics: topics to write.

    Returns:
        The panel widget (already displayed); ``panel.measured`` holds the runs made.
    """
    from labkit.analysis import metrics, network_costs
    from labkit.experiments.network_latency import measure

    style = {"description_width": "150px"}
    delay = w.IntSlider(value=5, min=0, max=50, description="broker delay ms (one way)",
                        style=style)
    link = w.FloatText(value=0, description="client link Mbit/s (0=none)", style=style)
    acks = w.Dropdown(options=["0", "1", "all"], value="all", description="acks", style=style)
    linger = w.IntSlider(value=5, min=0, max=100, description="linger.ms", style=style)
    batch = w.Dropdown(options=[2_048, 16_384, 1_000_000], value=1_000_000,
                       description="batch.size", style=style)
    compression = w.Dropdown(options=list(CHOICES["compression.type"]), value="none",
                             description="compression", style=style)
    rate = w.IntText(value=1_000, description="rate msg/s", style=style)
    seconds = w.FloatText(value=2, description="seconds", style=style)
    run_button = w.Button(description="Run", button_style="primary")
    clear_button = w.Button(description="Clear runs")
    out = w.Output()
    measured: list = []

    def redraw():
        out.clear_output(wait=True)
        with out:
            if not measured:
                return
            names = {}
            for m in measured:
                limit = f", link {m.link_mbit:g} Mbit/s" if m.link_mbit else ""
                names[(m.delay_ms, f"{m.run.label}{limit} #{len(names) + 1}")] = m
            table = network_costs.delay_table({key: m.run for key, m in names.items()})
            table["wire_bytes_per_msg"] = [
                network_costs.wire_bytes(m.connections).sum() / max(m.run.delivered, 1)
                for m in names.values()]
            display(table[["msgs_per_s", "share_of_offered", "p50_ms", "p99_ms",
                           "msgs_per_request", "wire_bytes_per_msg"]].round(2))
            fig = plots.percentile_curves(
                {f"{d:g} ms · {name}": metrics.percentile_curve(m.run.records)
                 for (d, name), m in names.items()},
                title="Delivery latency by percentile, per run")
            display(fig)
            plt.close(fig)

    def run():
        config = {"acks": acks.value, "linger.ms": linger.value, "batch.size": batch.value,
                  "compression.type": compression.value}
        measured.append(measure(
            cluster, config, delay_ms=delay.value, link_mbit=link.value or None,
            label=metrics.config_label(config),
            messages=max(1, round(rate.value * seconds.value)), rate=rate.value,
            topics=topics, progress=True))

    def on_run(_):
        _run_in(out, run_button, run, redraw)

    def on_clear(_):
        measured.clear()
        redraw()

    run_button.on_click(on_run)
    clear_button.on_click(on_clear)
    panel = w.VBox([
        w.HBox([w.VBox([delay, link, rate, seconds]),
                w.VBox([acks, linger, batch, compression,
                        w.HBox([run_button, clear_button])])]),
        out,
    ])
    panel.measured = measured
    display(panel)
    return panel
