"""The control panels drive the same functions as the batch path, against a real broker."""

import matplotlib

from labkit.cluster import unique_name
from labkit.widgets import producer_panel

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
