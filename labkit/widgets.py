"""ipywidgets control panels. Each wraps the same functions the batch path calls.

A panel runs ``labkit.producer.run_producer`` with the chosen settings and redraws
``labkit.plots.producer_dashboard`` in place, keeping earlier runs for comparison.
"""

from __future__ import annotations

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from labkit import plots
from labkit.cluster import LAB_TOPICS, Cluster
from labkit.producer import CHOICES, KEY_SCHEMES, run_producer


def producer_settings(acks="1", linger_ms=5, batch_size=1_000_000, compression="none",
                      partitioner="consistent_random") -> dict[str, str]:
    """The producer config the panel's controls stand for (what the batch path would pass)."""
    return {"acks": acks, "linger.ms": str(linger_ms), "batch.size": str(batch_size),
            "compression.type": compression, "partitioner": partitioner}


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
    size = w.IntSlider(value=100, min=10, max=10_000, step=10, description="message bytes",
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

    def on_run(_):
        run_button.disabled = True
        try:
            with out:
                config = producer_settings(acks.value, linger.value, batch.value,
                                           compression.value, partitioner.value)
                runs.append(run_producer(cluster, config, messages=count.value,
                                         rate=rate.value or None, size=size.value,
                                         keys=keys.value, topics=topics, progress=True))
        except ValueError as exc:
            with out:
                print(f"error: {exc}")
            return
        finally:
            run_button.disabled = False
        redraw()

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
