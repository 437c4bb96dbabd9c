"""The legibility checker flags what a reader trips over, and passes good charts (no broker)."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from labkit.viz.legibility import problems

matplotlib.use("Agg")


@pytest.fixture
def figure():
    """A fresh 8 x 3.6 in figure with one axes, closed after the test."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    yield fig, ax
    plt.close(fig)


BESIDE = {"loc": "center left", "bbox_to_anchor": (1, 0.5)}
"""A legend beside the axes, as the lab's charts place it."""


def labelled_line(ax, title="Throughput"):
    ax.plot([0, 1, 2], [10, 20, 15], label="acks=all")
    ax.set(xlabel="seconds since the run started", ylabel="messages/s", title=title)


# -- what must be flagged ----------------------------------------------------------------


def test_two_annotations_on_top_of_each_other(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.annotate("kill 2", (1, 15))
    ax.annotate("restart 2", (1, 15))
    assert problems(fig) == [
        "In axes 'Throughput', the annotation 'kill 2' overlaps the annotation 'restart 2'."]


def test_rotated_fault_labels_a_moment_apart_overlap(figure):
    fig, ax = figure
    labelled_line(ax)
    for at, text in ((0.1, "kill 1"), (0.11, "kill 2")):
        ax.annotate(text, (at, 1), xycoords=("data", "axes fraction"), rotation=90, va="top")
    assert problems(fig) == [
        "In axes 'Throughput', the annotation 'kill 1' overlaps the annotation 'kill 2'."]


def test_crowded_tick_labels_make_one_sentence_per_axis(figure):
    fig, ax = figure
    names = [f"linger.ms={n}, batch.size=16 KiB" for n in range(8)]
    ax.bar(names, np.arange(1, 9))
    ax.set(ylabel="messages/s", title="Batching")
    assert problems(fig) == [
        "In axes 'Batching', 8 x tick labels overlap each other "
        "(first 'linger.ms=0, batch.size=16 KiB' and 'linger.ms=1, batch.size=16 KiB')."]


def test_tilted_tick_labels_are_measured_as_tilted_boxes(figure):
    """At 45 degrees the upright boxes of neighbours overlap, the labels themselves do not."""
    fig, ax = figure
    ax.plot(range(10), range(10))
    ax.set_xticks(range(10), [f"label {i}" for i in range(10)], rotation=45, ha="right")
    ax.set(xlabel="run", ylabel="messages")
    assert problems(fig) == []
    ax.set_xticks(np.arange(10) * 0.15, [f"label {i}" for i in range(10)], rotation=45,
                  ha="right")
    assert problems(fig)[0].startswith("In the axes, 10 x tick labels overlap each other")


def test_text_past_the_edge_of_the_saved_figure_is_cut_off(figure):
    fig, ax = figure
    labelled_line(ax)
    fig.subplots_adjust(bottom=0.2)
    ax.text(1.02, 0.5, "a long note to the right of the axes", transform=ax.transAxes)
    assert problems(fig) == []  # the tight box Jupyter shows grows to hold it
    assert problems(fig, canvas="figure") == [
        "The text 'a long note to the right of the axes' of axes 'Throughput' is cut off at "
        "the right edge of the figure."]


def test_a_legend_naming_a_line_outside_the_limits(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.plot([5, 6], [100, 120], label="acks=0")
    ax.set(xlim=(0, 2), ylim=(0, 25))
    ax.legend()
    assert problems(fig) == [
        "In axes 'Throughput', the legend names 'acks=0', but its line has no point inside "
        "the axes' limits."]


def test_a_legend_naming_a_line_that_only_crosses_the_view_is_fine(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.plot([-1, 3], [12, 12], label="target")
    ax.set(xlim=(0, 2))
    ax.legend()
    assert problems(fig) == []


def test_a_legend_naming_an_all_zero_bar_series(figure):
    fig, ax = figure
    x = np.arange(3)
    ax.bar(x - 0.2, [5, 7, 2], width=0.4, label="duplicates")
    ax.bar(x + 0.2, [0, 0, 0], width=0.4, label="lost")
    ax.set_xticks(x, ["acks=0", "acks=1", "acks=all"])
    ax.set(ylabel="messages", title="Outcomes")
    ax.legend()
    assert problems(fig) == [
        "In axes 'Outcomes', the legend names 'lost', but all its bars are zero.",
        "In axes 'Outcomes', 3 bars of 'lost' are zero with no '0' written there "
        "(at 'acks=0', 'acks=1', 'acks=all')."]


def test_a_legend_naming_an_empty_scatter(figure):
    fig, ax = figure
    ax.scatter([0, 1], [3, 4], s=4, label="in order (2)")
    ax.scatter([], [], s=4, label="extra copy (0)")
    ax.set(xlabel="sent at (s)", ylabel="offset", title="Partition 0: the log")
    ax.legend()
    assert problems(fig) == [
        "In axes 'Partition 0: the log', the legend names 'extra copy (0)', but it has no data."]


def test_a_legend_naming_an_all_zero_band_of_a_stackplot(figure):
    fig, ax = figure
    ax.stackplot([0, 1, 2], [[3, 3, 3], [0, 0, 0]], labels=["led by broker 1", "led by broker 2"])
    ax.set(xlabel="seconds", ylabel="partitions", title="Leadership")
    ax.legend(**BESIDE)
    assert problems(fig) == [
        "In axes 'Leadership', the legend names 'led by broker 2', but it has no area inside "
        "the axes' limits."]


def test_a_proxy_key_whose_colour_is_drawn_nowhere(figure):
    fig, ax = figure
    ax.broken_barh([(0, 4)], (-0.4, 0.8), facecolors="tab:blue")
    ax.set_yticks([0], ["partition 0"])
    ax.set(xlabel="seconds since the group started", title="Ownership")
    ax.legend(handles=[Patch(color="tab:blue", label="member 1"),
                       Patch(color="tab:orange", label="member 2"),
                       Line2D([], [], color="black", ls="--", label="crash")], **BESIDE)
    assert problems(fig) == [
        "In axes 'Ownership', the legend names 'member 2', but no artist drawn in the axes has "
        "that label or the colour of its key.",
        "In axes 'Ownership', the legend names 'crash', but no artist drawn in the axes has "
        "that label or the colour of its key."]


def test_a_legend_drawn_over_the_bars(figure):
    fig, ax = figure
    ax.bar([0, 1, 2], [2100, 2600, 2150], label="orders")
    ax.set(xlabel="partition", ylabel="messages", title="Messages per partition")
    ax.legend(loc="upper center")
    assert problems(fig) == [
        "In axes 'Messages per partition', the legend is drawn over the bars 'orders'."]


def test_a_legend_drawn_over_markers_and_a_filled_area(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.scatter(np.linspace(0, 0.5, 30), [19.5] * 30, label="failed")
    ax.fill_between([0, 2], [18, 18], [21, 21], color="0.8")
    ax.set_ylim(10, 21)
    ax.legend(loc="upper left")
    assert problems(fig) == [
        "In axes 'Throughput', the legend is drawn over the markers 'failed', the area."]


def test_fault_lines_and_phase_shading_under_a_legend_are_not_data(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.axvline(0.1, color="tab:red", ls="--")
    ax.axvspan(0, 0.5, color="0.92")
    ax.legend(loc="upper left")
    assert problems(fig) == []


def test_a_fault_label_rotated_onto_the_data(figure):
    fig, ax = figure
    ax.plot([0, 1, 2], [10, 20, 15], label="acks=all")
    ax.scatter([0.9, 0.95, 1.0], [19, 19.5, 20], label="slow")
    ax.set(xlabel="seconds since the run started", ylabel="messages/s", title="Throughput")
    ax.axvline(1.0, color="tab:red", ls="--")
    ax.annotate("kill 1", (1.0, 1), xycoords=("data", "axes fraction"), rotation=90, va="top",
                ha="right")
    assert problems(fig) == [
        "In axes 'Throughput', the annotation 'kill 1' is written across the line 'acks=all', "
        "the markers 'slow'."]


def test_counts_written_in_bars_and_labels_above_the_axes_are_fine(figure):
    fig, ax = figure
    bars = ax.bar(["acks=0", "acks=1"], [4000, 2000], label="delivered")
    ax.bar_label(bars, label_type="center")
    ax.annotate("kill 1", (0, 1), xycoords=("data", "axes fraction"), va="bottom")
    ax.set(ylabel="messages", title="Outcomes")
    assert problems(fig) == []


def test_an_axes_with_no_y_label(figure):
    fig, ax = figure
    ax.plot([0, 1, 2], [10, 20, 15])
    ax.set(xlabel="seconds", title="Throughput")
    assert problems(fig) == [
        "Axes 'Throughput' draws data but its y axis has no label (ticks '10', '12', '14'...)."]


def test_a_panel_that_dropped_its_tick_numbers(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.tick_params(labelbottom=False)
    assert problems(fig) == [
        "Axes 'Throughput' draws data but shows no x tick labels (and shares its x axis with "
        "no axes that does)."]


def test_a_heat_map_with_numbered_columns_and_no_label(figure):
    fig, ax = figure
    image = ax.imshow([[1, 2, 3], [4, 5, 6]])
    ax.set_xticks(range(3), ["0", "1", "2"])
    ax.set_yticks(range(2), ["acks=1", "acks=all"])
    fig.colorbar(image, ax=ax, label="% of messages")
    assert problems(fig) == [
        "The axes draws data but its x axis has no label (ticks '0', '1', '2'...)."]


# -- what must pass ----------------------------------------------------------------------


def test_a_labelled_line_chart_with_a_legend(figure):
    fig, ax = figure
    labelled_line(ax)
    ax.plot([0, 1, 2], [8, 9, 30], label="acks=1")
    ax.set_yscale("log")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    assert problems(fig) == []


def test_stacked_panels_numbered_and_labelled_at_the_bottom_only():
    fig, (top, middle, bottom) = plt.subplots(3, 1, sharex=True, layout="constrained")
    try:
        for ax, unit in ((top, "acknowledged/s"), (middle, "readable/s"), (bottom, "ISR size")):
            ax.plot([0, 5, 10], [1, 3, 2])
            ax.set_ylabel(unit)
        bottom.set_xlabel("seconds since the run started")
        assert problems(fig) == []
    finally:
        plt.close(fig)


def test_a_labelled_bar_chart_with_its_zero_written(figure):
    fig, ax = figure
    bars = ax.bar(["acks=0", "acks=1", "acks=all"], [12, 3, 0], label="lost")
    ax.bar_label(bars)
    ax.set(ylabel="messages lost", title="Lost on a broker crash")
    ax.legend()
    assert problems(fig) == []


def test_zero_segments_of_stacked_bars_need_no_zero_written(figure):
    fig, ax = figure
    ax.barh(["flush", "no flush"], [6000, 0], label="delivered")
    ax.barh(["flush", "no flush"], [0, 6000], left=[6000, 0], label="unreported")
    ax.set(xlabel="messages", title="What became of each message")
    ax.legend(**BESIDE)
    assert problems(fig) == []


def test_a_proxy_legend_matched_by_colour(figure):
    fig, ax = figure
    ax.broken_barh([(0, 4), (5, 2)], (-0.4, 0.8), facecolors=["tab:blue", "tab:orange"])
    ax.axvline(4.5, color="black", ls="--")
    ax.set_yticks([0], ["partition 0"])
    ax.set(xlabel="seconds since the group started", title="Ownership")
    ax.legend(handles=[Patch(color="tab:blue", label="member 1"),
                       Patch(color="tab:orange", label="member 2"),
                       Line2D([], [], color="black", ls="--", label="crash")], **BESIDE)
    assert problems(fig) == []


def test_a_hollow_ring_key_is_matched_by_its_edge_colour(figure):
    fig, ax = figure
    ax.plot([0, 1, 2], [3, 2, 1], ls="", marker="o", color="tab:blue")
    ax.plot([2], [1], ls="", marker="o", markersize=10, markerfacecolor="none", color="black")
    ax.set(xlabel="messages/s", ylabel="p99 latency (ms)", title="Frontier")
    ring = {"ls": "", "marker": "o", "markerfacecolor": "none"}
    ax.legend(handles=[Line2D([], [], color="black", label="frontier", **ring),
                       Line2D([], [], color="tab:red", label="dominated", **ring)], **BESIDE)
    assert problems(fig) == [
        "In axes 'Frontier', the legend names 'dominated', but no artist drawn in the axes has "
        "that label or the colour of its key."]


def test_categorical_scatter_needs_no_axis_label_for_its_categories(figure):
    fig, ax = figure
    ax.scatter([-0.5, -0.2, 0.1], ["acks=1 · run 0", "acks=1 · run 1", "acks=1 · run 1"])
    ax.set(xlabel="acknowledged at (s, relative to the kill)", title="Lost messages")
    assert problems(fig) == []


def test_an_unknown_canvas_is_refused(figure):
    with pytest.raises(ValueError, match="canvas='page' must be 'tight' or 'figure'"):
        problems(figure[0], canvas="page")
