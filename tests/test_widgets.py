"""The control panels drive the same functions as the batch path, against a real broker."""

import matplotlib
import pandas as pd

from labkit.cluster import unique_name
from labkit.viz.widgets import network_panel, producer_panel

matplotlib.use("Agg")


def find(widget, description):
    if getattr(widget, "description", None) == description:
        return widget
    for child in getattr(widget, "children", ()):
        found = find(child, description)
        if found is not None:
            return found
    return None


def test_producer_panel_runs_and_keeps_runs_for_comparison(cluster1, capsys):
    topic = unique_name("panel")
    cluster1.create_topic(topic, partitions=3)
    panel = producer_panel(cluster1, [topic], messages=500)
    find(panel, "acks").value = "all"
    find(panel, "compression").value = "zstd"
    find(panel, "keys").value = "uniform"
    find(panel, "Run").click()
    find(panel, "acks").value = "0"
    find(panel, "Run").click()
    assert [r.label for r in panel.runs] == [
        "acks=all linger.ms=5 batch.size=1000000 compression.type=zstd "
        "partitioner=consistent_random",
        "acks=0 linger.ms=5 batch.size=1000000 compression.type=zstd "
        "partitioner=consistent_random",
    ]
    assert all(r.delivered == 500 for r in panel.runs)
    assert panel.runs[0].workload["keys"] == "uniform"
    capsys.readouterr()
    find(panel, "messages").value = -5  # bad input: one clear message, no new run
    find(panel, "Run").click()
    assert len(panel.runs) == 2
    # (Outside a kernel the Output widget does not capture, so the message reaches stdout.)
    assert "error: messages=-5 must be a positive integer" in capsys.readouterr().out
    find(panel, "Clear runs").click()
    assert panel.runs == []


def test_consumer_panel_drives_a_group(cluster1):
    from labkit.viz.widgets import consumer_panel

    topic = unique_name("cpanel")
    cluster1.create_topic(topic, partitions=2)
    panel = consumer_panel(cluster1, [topic])
    find(panel, "members").value = 2
    find(panel, "strategy / protocol").value = "cooperative-sticky (classic)"
    find(panel, "messages to feed").value = 300
    try:
        find(panel, "Start").click()
        group = panel.group
        assert group.config["partition.assignment.strategy"] == "cooperative-sticky"
        group.wait_for_stable(60)
        find(panel, "Feed").click()
        group.wait_for_messages(300, 60)
        find(panel, "Add member").click()
        assert len(group.members) == 3
        find(panel, "Crash member").click()
        assert len(group.members) == 2
        assert "crash" in set(group.events().kind)
    finally:
        find(panel, "Stop").click()
    assert not group.members


def test_network_panel_runs_measure_and_keeps_runs(cluster3net, capsys):
    topic = unique_name("net-panel")
    cluster3net.create_topic(topic, partitions=3, replication_factor=3)
    panel = network_panel(cluster3net, [topic])
    find(panel, "broker delay ms (one way)").value = 5
    find(panel, "acks").value = "all"
    find(panel, "rate msg/s").value = 200
    find(panel, "seconds").value = 0.5
    find(panel, "Run").click()
    find(panel, "client link Mbit/s (0=none)").value = 0.5
    find(panel, "compression").value = "zstd"
    find(panel, "Run").click()
    first, second = panel.measured
    assert first.delay_ms == 5 and first.link_mbit is None and first.run.delivered == 100
    assert second.link_mbit == 0.5 and second.run.config["compression.type"] == "zstd"
    assert cluster3net.network.links().empty
    capsys.readouterr()
    find(panel, "client link Mbit/s (0=none)").value = -1  # bad input: one sentence, no run
    find(panel, "Run").click()
    assert len(panel.measured) == 2
    assert "error: link_mbit=-1.0 must be a number >= 0.001" in capsys.readouterr().out
    find(panel, "Clear runs").click()
    assert panel.measured == []


def test_panel_figures_are_unknown_to_pyplot_and_drawn_as_in_it():
    """Inside plots.unregistered_figures() a chart's figure is not pyplot's (no kernel thread
    can draw it behind the panel's back) and saves the same picture as pyplot's would."""
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    import PIL.Image

    from labkit.viz import plots

    def pixels(fig) -> np.ndarray:
        image = io.BytesIO()
        fig.savefig(image, format="png", bbox_inches="tight")
        return np.asarray(PIL.Image.open(io.BytesIO(image.getvalue())))

    table = pd.DataFrame({"m1": [10.0, 30.0, 20.0], "m2": [5.0, 15.0, 25.0]},
                         index=[0.0, 1.0, 2.0])
    plt.close("all")
    known = plots.throughput_per_member(table)
    assert plt.get_fignums() == [known.number]
    with plots.unregistered_figures():
        unknown = plots.throughput_per_member(table)
        fig, axes = plots.subplots(1, 2, sharey=True, figsize=(6, 2), layout="constrained")
    assert plt.get_fignums() == [known.number], "a panel figure reached pyplot"
    assert unknown not in map(plt.figure, plt.get_fignums())
    assert fig.get_layout_engine() is not None and axes[0].get_shared_y_axes().joined(*axes)
    np.testing.assert_array_equal(pixels(unknown), pixels(known))
    plt.close("all")


def test_the_producer_panel_never_asks_pyplot_for_a_figure(cluster1, monkeypatch):
    import matplotlib.pyplot as plt

    made = []
    figure = plt.figure
    monkeypatch.setattr(plt, "figure", lambda *a, **k: made.append(a) or figure(*a, **k))
    topic = unique_name("panel")
    cluster1.create_topic(topic, partitions=3)
    panel = producer_panel(cluster1, [topic], messages=200)
    find(panel, "Run").click()
    assert len(panel.runs) == 1 and made == []
