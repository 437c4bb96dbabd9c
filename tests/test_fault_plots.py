"""The fault plots and audit tables draw what their frames hold (no broker)."""

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from labkit.analysis import metrics
from labkit.analysis.audit import audit, totals_table
from labkit.viz import plots

matplotlib.use("Agg")


def events(*rows):
    """FaultSchedule-like events from (action, broker, wall seconds) tuples."""
    frame = pd.DataFrame(rows, columns=["action", "broker", "wall"])
    frame["wall"] = pd.to_datetime(frame.wall, unit="s", utc=True)
    return frame


def producer_run(started_wall, label="p"):
    """A ProducerRun-like object: 8 delivered messages, one failed, one slow."""
    records = pd.DataFrame({
        "msg_id": range(10), "size": 100,
        "t_send": np.arange(10) * 0.1,
        "t_delivered": np.arange(10) * 0.1 + 0.01,
        "latency_ms": [10.0] * 5 + [900.0] + [10.0] * 4,
        "error": [""] * 7 + ["NOT_ENOUGH_REPLICAS"] + ["", ""],
    })
    return type("Run", (), {"records": records, "started_wall": started_wall, "label": label})()


def test_fault_timeline_marks_each_fault_at_its_time_on_the_run_clock():
    fig = plots.fault_timeline([producer_run(1000.0), producer_run(1000.5, "q")],
                               events(("kill", 2, 1000.3), ("restart", 2, 1000.8)))
    top, second, bottom = fig.axes  # a deliveries panel per run, then the latencies
    marks = [line.get_xdata()[0] for line in top.lines if line.get_linestyle() == "--"]
    assert marks == pytest.approx([0.3, 0.8])
    assert [t.get_text() for t in top.texts] == ["kill broker 2", "restart broker 2"]
    assert not second.texts and not bottom.texts  # lower panels: the lines, no labels
    # The second run is drawn on the first run's clock, shifted by 0.5 s.
    assert second.lines[0].get_xdata()[0] == pytest.approx(top.lines[0].get_xdata()[0] + 0.5)
    assert bottom.get_yscale() == "log"
    assert max(bottom.collections[0].get_offsets()[:, 1]) == 900.0
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["p", "failed",
                                                                   "last message sent"]


def test_loss_heatmap_writes_each_count_in_its_cell():
    table = pd.DataFrame({0: [0, 12], 1: [0, 3]}, index=["acks=all", "acks=1"])
    fig = plots.loss_heatmap(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["0", "0", "12", "3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["acks=all", "acks=1"]


def test_audit_table_highlights_losses_only_where_there_are_some():
    sent = pd.DataFrame({"msg_id": [0, 1], "topic": pd.Categorical(["t", "t"]),
                         "partition": [0, 0], "offset": [0, 1], "error": ["", ""]})
    found = pd.DataFrame({"topic": ["t"], "partition": [0], "offset": [0], "msg_id": [0]})
    table = totals_table({("a", 0): audit(sent, found), ("b", 0): audit(sent, found.iloc[:0])},
                         names=["config", "run"])
    assert table.lost.tolist() == [1, 2] and table.index.names == ["config", "run"]
    css = plots.audit_table(table).to_html().split("</style>")[0]  # the shaded cells' rules
    lost = list(plots.AUDIT_COLUMNS).index("lost")
    assert sorted(re.findall(r"row(\d+)_col(\d+)", css)) == [("0", str(lost)), ("1", str(lost))]
    clean = totals_table({"a": audit(sent.iloc[:1], found)})
    assert "background-color" not in plots.audit_table(clean).to_html()


def test_group_timeline_draws_the_rate_member_events_and_faults_on_the_run_clock():
    messages = pd.DataFrame({"t_consumed": [1001.0, 1001.1, 1001.2, 1009.0]})
    events = pd.DataFrame([(0.5, "m1", "assign", ["t-0"], ""), (5.0, "m1", "lost", ["t-0"], ""),
                           (8.5, "m1", "assign", ["t-0"], "")],
                          columns=["t", "member", "kind", "partitions", "detail"])
    faults = pd.DataFrame({"action": ["pause"], "broker": [3],
                           "wall": pd.to_datetime([1002.0], unit="s", utc=True)})
    fig = plots.group_timeline(messages, events, started_wall=1000.5, zero_wall=1000.0,
                               faults=faults, bucket_s=0.5)
    ax = fig.axes[0]
    rate = ax.lines[0]
    assert rate.get_xdata()[0] == 1.0 and rate.get_ydata()[0] == 6.0
    assert [t.get_text() for t in ax.texts] == ["pause broker 3"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["processed/s", "lost (1)", "assign (2)"]
    lost = ax.collections[0].get_offsets()
    assert lost[0][0] == pytest.approx(5.5)  # group clock + 0.5 s = run clock


def test_fault_labels_take_lanes_above_the_axes_instead_of_overprinting():
    _, ax = matplotlib.pyplot.subplots()
    ax.plot([0, 10], [0, 1])
    plots.fault_markers(ax, events(("kill", 2, 1003.0), ("kill", 3, 1003.1),
                                   ("new leader", 1, 1003.2), ("restart", 2, 1008.0)), 1000.0)
    ax.figure.canvas.draw()
    texts = ax.texts
    assert [t.get_text() for t in texts] == ["kill brokers 2, 3", "new leader broker 1",
                                             "restart broker 2"]
    boxes = [t.get_window_extent() for t in texts]
    assert all(box.y0 >= ax.bbox.y1 for box in boxes)  # in the strip, not on the data
    assert not boxes[0].overlaps(boxes[1])  # coinciding faults: separate lanes
    matplotlib.pyplot.close(ax.figure)


def test_rebalance_timeline_shows_a_pause_too_short_to_see_and_says_how_long():
    part = "orders-1a2b3c4d-0"
    events = pd.DataFrame([(0.0, "m1", "join", [], ""), (0.1, "m1", "assign", [part], ""),
                           (5.0, "m1", "revoke", [part], ""), (5.01, "m2", "assign", [part], ""),
                           (9.0, "m2", "revoke", [part], "")],
                          columns=["t", "member", "kind", "partitions", "detail"])
    fig = plots.rebalance_timeline(metrics.ownership(events), events)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["orders 0"]  # no random suffix
    texts = [t.get_text() for t in ax.texts]
    assert "join m1" in texts and "1 paused ≤ 10 ms" in texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["m1", "m2", "no owner"]
