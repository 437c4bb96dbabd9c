"""ipywidgets control panels. Each wraps the same functions the batch path calls.

The producer panel runs ``labkit.workloads.producer.run_producer`` with the chosen settings and
redraws ``labkit.viz.plots.producer_dashboard`` in place, keeping earlier runs for comparison.
The consumer panel drives a ``labkit.workloads.consumer.ConsumerGroup`` and redraws its rebalance
timeline and per-member throughput. The network panel runs
``labkit.experiments.network_latency.measure`` under the delay and link limit chosen, the
internals panel ``labkit.experiments.client_internals.run_with_stats`` (a delivery latency in
parts), the backpressure panel ``labkit.experiments.backpressure.compare_strategies``. Every
panel but the consumer's has the same shape (``_runs_panel``): controls, Run, Clear runs, and
every run so far redrawn.
"""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as w
import pandas as pd
from IPython.display import Image, display

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


def _runs_panel(columns: list[list], run, draw, attribute: str = "runs"):
    """Show a panel of controls, Run and Clear runs buttons, and every run so far.

    Run calls ``run(runs)``, which appends what it made (through ``_run_in``, so a bad
    value is told in the panel); then ``draw(runs)`` fills the output again. Clear runs
    empties the list.

    Args:
        columns: the controls, one list of widgets per column, side by side; the buttons
            go at the foot of the last column.
        run: makes a run with the controls' values and appends it to the list it is given.
        draw: displays tables and figures of the runs (a non-empty list) in the output.
        attribute: the panel attribute that holds the list (``panel.runs``).

    Returns:
        The panel widget, already displayed.
    """
    run_button = w.Button(description="Run", button_style="primary")
    clear_button = w.Button(description="Clear runs")
    out = w.Output()
    runs: list = []

    def redraw():
        out.clear_output(wait=True)
        with out, plots.unregistered_figures():
            if runs:
                draw(runs)

    def on_clear(_):
        runs.clear()
        redraw()

    run_button.on_click(lambda _: _run_in(out, run_button, lambda: run(runs), redraw))
    clear_button.on_click(on_clear)
    *first, last = columns
    panel = w.VBox([w.HBox([*(w.VBox(c) for c in first),
                            w.VBox([*last, w.HBox([run_button, clear_button])])]), out])
    setattr(panel, attribute, runs)
    display(panel)
    return panel


def _show(*figures) -> None:
    """Display figures in a panel's output as PNG images.

    The panels make their figures inside ``plots.unregistered_figures()``: a figure pyplot
    knew could be drawn by a kernel thread at the same time (see there), which made blank
    and half-drawn panel plots in the browser. Pyplot holding none of them, there is
    nothing to close.
    """
    for fig in figures:
        image = io.BytesIO()
        fig.savefig(image, format="png", bbox_inches="tight")
        display(Image(image.getvalue()))


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

    def draw(runs):
        display(pd.DataFrame([r.totals() for r in runs]))
        _show(plots.producer_dashboard(runs))

    def run(runs):
        config = producer_settings(acks.value, linger.value, batch.value, compression.value,
                                   partitioner.value)
        runs.append(run_producer(cluster, config, messages=count.value,
                                 rate=rate.value or None, size=size.value, keys=keys.value,
                                 topics=topics, progress=True))

    return _runs_panel([[acks, linger, batch, compression, partitioner],
                        [keys, size, rate, count]], run, draw)


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
            with plots.unregistered_figures():
                fig, (a, b) = plots.subplots(1, 2, figsize=(15, 4), layout="constrained")
                events = group.events()
                if not events.empty:
                    plots.rebalance_timeline(metrics.ownership(events), events, ax=a)
                joined = events.member[events.kind == "join"].unique()
                table = metrics.member_throughput(group.messages(), bucket_s=1.0,
                                                  members=joined)
                if not table.empty:
                    plots.throughput_per_member(table, ax=b)
                _show(fig)

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

    def draw(measured):
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
        _show(plots.percentile_curves(
            {f"{d:g} ms · {name}": metrics.percentile_curve(m.run.records)
             for (d, name), m in names.items()},
            title="Delivery latency by percentile, per run"))

    def run(measured):
        config = {"acks": acks.value, "linger.ms": linger.value, "batch.size": batch.value,
                  "compression.type": compression.value}
        measured.append(measure(
            cluster, config, delay_ms=delay.value, link_mbit=link.value or None,
            label=metrics.config_label(config),
            messages=max(1, round(rate.value * seconds.value)), rate=rate.value,
            topics=topics, progress=True))

    return _runs_panel([[delay, link, rate, seconds], [acks, linger, batch, compression]],
                       run, draw, "measured")


def internals_panel(cluster: Cluster, topic: str):
    """Show a control panel for notebook 07: a producer's latency in parts, per setting.

    Each Run calls ``labkit.experiments.client_internals.run_with_stats`` (the function notebook
    07's sweep runs for every setting) with the chosen linger.ms, acks and rate (0: flat
    out), and redraws ``plots.latency_parts_bars`` of every run so far, from
    ``client_stats.parts_table``.

    Args:
        cluster: where to produce.
        topic: the topic to write (``client_internals.prepare_topic``).

    Returns:
        The panel widget (already displayed); ``panel.measured`` holds the runs made.
    """
    from labkit.analysis import client_stats
    from labkit.experiments.client_internals import run_with_stats

    style = {"description_width": "130px"}
    linger = w.Dropdown(options=[0, 5, 50, 100], value=5, description="linger.ms", style=style)
    acks = w.Dropdown(options=["0", "1", "all"], value="all", description="acks", style=style)
    rate = w.IntText(value=1_000, description="rate msg/s (0=max)", style=style)
    seconds = w.FloatText(value=2, description="seconds (at a rate)", style=style)
    count = w.IntText(value=100_000, description="messages (flat out)", style=style)

    def draw(measured):
        table = client_stats.parts_table(measured)
        table.index = [m.run.label for m in measured]  # "#2 flat out": the panel's own names
        table["mode"] = "runs so far"
        display(table[["queued_ms", "outbuf_ms", "rtt_ms", "total_ms", "measured_mean_ms",
                       "msgs_per_request"]].round(2))
        _show(plots.latency_parts_bars(table, title="Delivery latency in parts, per run"))

    def run(measured):
        config = {"acks": acks.value, "linger.ms": linger.value}
        flat = rate.value == 0
        measured.append(run_with_stats(
            cluster, config, topic, rate=None if flat else rate.value,
            messages=count.value if flat else None, duration=None if flat else seconds.value,
            label=f"#{len(measured) + 1} " + ("flat out" if flat else f"{rate.value:,} msg/s")))

    return _runs_panel([[linger, acks], [rate, seconds, count]], run, draw, "measured")


def backpressure_panel(cluster: Cluster, topic: str, mbit: float = 2.0,
                       queue_max_messages: int = 500, rate: int = 4000, app_queue: int = 1000,
                       size: int = 200):
    """Show a control panel for notebook 08: a producer faster than its link.

    Each Run calls ``labkit.experiments.backpressure.compare_strategies`` (the function the
    notebook runs) with the chosen link limit, producer queue, application queue, rate and
    strategy (or all three), and redraws ``plots.backpressure_costs`` and
    ``plots.backpressure_held`` of every run so far.

    Args:
        cluster: a local cluster behind the lab network (``labkit.connect(network=True)``).
        topic: the topic to write (``backpressure.make_topic``).
        mbit: initial rate limit of the producer's link (Mbit/s).
        queue_max_messages: initial ``queue.buffering.max.messages``.
        rate: initial msg/s the application wants to send.
        app_queue: initial application queue capacity (messages).
        size: value bytes per message.

    Returns:
        The panel widget (already displayed); ``panel.runs`` holds the runs made.
    """
    from labkit.analysis import backpressure as pressure
    from labkit.analysis import client_stats
    from labkit.experiments import backpressure

    style = {"description_width": "170px"}
    link = w.FloatText(value=mbit, description="link Mbit/s (each way)", style=style)
    queue_max = w.IntText(value=queue_max_messages, description="queue.buffering.max.messages",
                          style=style)
    ways = backpressure.ON_FULL_STRATEGIES
    strategy = w.Dropdown(options=[("all three", "all"), *[(name, key) for key, name
                                                           in ways.items()]],
                          value="all", description="strategy", style=style)
    wanted = w.IntText(value=rate, description="msg/s wanted", style=style)
    seconds = w.FloatText(value=2.0, description="seconds", style=style)
    app = w.IntText(value=app_queue, description="application queue (msgs)", style=style)

    def draw(runs):
        named = {f"#{k + 1} {r.label}, {r.mbit:g} Mbit/s, queue "
                 f"{r.config['queue.buffering.max.messages']}": r for k, r in enumerate(runs)}
        table = pressure.strategy_table(named)
        display(table[["made", "dropped", "delivered", "msgs_per_s", "delivery_ms_p50",
                       "total_ms_p50", "blocked_s", "peak_held_bytes"]].round(1))
        latest = list(named.items())[-3:]
        _show(plots.backpressure_costs(table),
              plots.backpressure_held(
                  {name: pressure.held_over_time(pressure.journeys(r.wanted, r.run.records))
                   for name, r in latest},
                  {name: client_stats.client_queue(r.run.stats, r.zero) for name, r in latest},
                  limit=int(runs[-1].config["queue.buffering.max.messages"])))

    def run(runs):
        chosen = list(ways) if strategy.value == "all" else [strategy.value]
        config = backpressure.queue_settings(queue_max.value, 1024, **{"linger.ms": 5})
        runs.extend(backpressure.compare_strategies(
            cluster, topic, chosen, config, link.value, rate=wanted.value,
            seconds=seconds.value, size=size, app_queue=app.value).values())

    return _runs_panel([[link, queue_max, strategy], [wanted, seconds, app]], run, draw)
