"""Plots of recorded runs. Each takes ``ax=None``, draws, and returns the figure.

Plots read DataFrames only; they never talk to Kafka.

With ``LABKIT_RECORD_FIGURES=DIR`` in the environment, every chart call (not the calls
one chart makes to another) also pickles its function name and arguments, ``ax`` left
out, into ``DIR`` (``recorded_calls`` reads them back): the tests draw every chart of a
report run again from these recordings.

Inside ``unregistered_figures()`` the charts a thread draws make figures pyplot does not
know: the control panels draw there, since their callbacks may run on a kernel thread of
their own while pyplot draws every figure it knows from another (see its docstring). For
the same reason ``use_lab_style()`` keeps pyplot's end-of-cell hooks on the cells' thread
(``cell_hooks_on_main_thread``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import os
import pickle
import threading
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit.analysis import metrics, rates
from labkit.analysis.groups import partition_order

LAB_STYLE = {
    "figure.figsize": (8, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    # Log axes print plain numbers (0.1, 20, 5000), not "2×10¹", up to a million.
    "axes.formatter.min_exponent": 6,
}


_recording = threading.local()
_unregistered = threading.local()
_SUBPLOTS_ARGUMENTS = ("sharex", "sharey", "squeeze", "width_ratios", "height_ratios",
                       "subplot_kw", "gridspec_kw")
_record_numbers = itertools.count()


def _recorded(draw):
    """Record the outermost call of a chart function when LABKIT_RECORD_FIGURES is set."""
    signature = inspect.signature(draw)

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        folder = os.environ.get("LABKIT_RECORD_FIGURES")
        if not folder or getattr(_recording, "inside", False):
            return draw(*args, **kwargs)
        _record(Path(folder), draw.__name__, signature, args, kwargs)
        _recording.inside = True
        try:
            return draw(*args, **kwargs)
        finally:
            _recording.inside = False
    wrapper.chart = True  # what the tests draw again from recordings
    return wrapper


def _record(folder: Path, name: str, signature, args, kwargs) -> None:
    bound = signature.bind(*args, **kwargs).arguments
    bound.pop("ax", None)
    notebook = Path(os.environ.get("LABKIT_FINDINGS_FILE", "interactive")).name.split(".")[0]
    path = folder / f"{notebook}.{os.getpid()}.{next(_record_numbers):03d}.{name}.pkl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps({"notebook": notebook, "function": name,
                                       "arguments": dict(bound)}))
    except Exception as exc:  # noqa: BLE001 - a recording never breaks the chart
        warnings.warn(f"could not record {name}: {exc}", stacklevel=3)


def recorded_calls(folder: str | os.PathLike) -> list[dict]:
    """The chart calls recorded in ``folder``, in the order they were made per notebook.

    Each is ``{"notebook", "function", "arguments", "file"}``; ``draw(call)`` repeats it.
    Recordings may be gzip-compressed (``NAME.pkl.gz``, as the test corpus keeps them).
    """
    import gzip

    calls = []
    paths = [*Path(folder).glob("*.pkl"), *Path(folder).glob("*.pkl.gz")]
    for path in sorted(paths, key=lambda p: p.name):
        data = path.read_bytes()
        call = pickle.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
        calls.append({**call, "file": path.name})
    return calls


def draw(call: dict):
    """Draw a recorded chart call again, on a figure of its own; return the figure."""
    return globals()[call["function"]](**call["arguments"])


@contextlib.contextmanager
def unregistered_figures():
    """Make the figures of the charts this thread draws within the block unknown to pyplot.

    Only the caller then draws them (``subplots`` makes them).

    In JupyterLab, ipykernel (7) may handle a widget's message on a thread of its own (a
    kernel subshell) while another widget message or a cell runs on the main thread, and
    every message handled ends with IPython's ``post_execute`` event, on which pyplot draws
    every stale figure it knows and the inline backend shows them. A panel's figure that
    pyplot knew could so be drawn by two threads at once: matplotlib's renderer is not
    thread-safe, and the browser tier saw half-drawn and blank panel plots and a kernel
    error ``Done: <RendererAgg>`` (one thread's draw hitting the other's renderer probe).
    """
    before = getattr(_unregistered, "on", False)
    _unregistered.on = True
    try:
        yield
    finally:
        _unregistered.on = before


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """Return ``plt.subplots(...)``; inside ``unregistered_figures()`` its like unknown to pyplot.

    That one is a ``Figure`` with an Agg canvas (as the inline backend's), the same size
    and layout; it goes when it is dropped.
    """
    if not getattr(_unregistered, "on", False):
        return plt.subplots(nrows, ncols, **kwargs)
    grid = {k: kwargs.pop(k) for k in _SUBPLOTS_ARGUMENTS if k in kwargs}
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **grid)


def use_lab_style() -> None:
    """Apply the lab's matplotlib style (notebooks opt in; importing labkit does not).

    In an IPython kernel it also keeps pyplot's end-of-cell hooks on the cells' thread
    (``cell_hooks_on_main_thread``).
    """
    if not plt.get_fignums():
        # Load the backend now (pyplot loads it with the first figure), so that its hooks
        # are registered for cell_hooks_on_main_thread to find. With no figure open,
        # switching to the same backend closes nothing; it comes before the style, which
        # so wins over any rc settings the backend brings.
        plt.switch_backend(plt.get_backend())
    plt.rcParams.update(LAB_STYLE)
    cell_hooks_on_main_thread()


def cell_hooks_on_main_thread() -> int:
    """Make matplotlib's ``post_execute`` hooks skip events fired off the main thread.

    After every cell IPython fires ``post_execute``, on which pyplot draws the figures it
    knows (``_draw_all_if_interactive``) and the inline backend shows and closes them
    (``flush_figures``). ``comm`` fires the same event after every widget message, and
    ipykernel (7) handles a widget's messages on a kernel subshell's thread when its last
    message went out from one. Then a click on a control panel while a cell was building a
    pyplot figure showed that figure under the click, where JupyterLab draws nothing, and
    closed it: the cell ended with no figure (``test_widgets``). Cells run on the main
    thread, so the hooks now run only there. Safe to call again; outside IPython it does
    nothing.

    Returns:
        How many hooks it guarded this call.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return 0
    shell = get_ipython()
    if shell is None:
        return 0
    hooks = shell.events.callbacks["post_execute"]
    guarded = 0
    for i, hook in enumerate(hooks):
        module = getattr(hook, "__module__", None) or ""
        if (module.split(".")[0] in ("matplotlib", "matplotlib_inline")
                and not isinstance(hook, _OnMainThreadOnly)):
            hooks[i] = _OnMainThreadOnly(hook)  # in place: the hooks keep their order
            guarded += 1
    return guarded


class _OnMainThreadOnly:
    """A hook that runs only on the main thread.

    It is equal to the hook it wraps, so that matplotlib still finds that hook to
    unregister it (``%matplotlib`` with another backend) and does not register it twice.
    """

    def __init__(self, hook):
        self.hook = hook
        functools.update_wrapper(self, hook)

    def __call__(self, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            return self.hook(*args, **kwargs)
        return None

    def __eq__(self, other):
        return other is self or other is self.hook or (
            isinstance(other, _OnMainThreadOnly) and other.hook is self.hook)

    def __hash__(self):
        return hash(self.hook)


def _axes(ax):
    if ax is None:
        _, ax = subplots()
    return ax


@_recorded
def leadership_bars(counts: pd.Series, ax=None, title: str = "Partitions led per broker"):
    """Bar chart of ``labkit.analysis.timeline.leaders_per_broker`` counts.

    Args:
        counts: partitions led, indexed by broker id.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    # Each broker in its colour of leadership_timeline (brokers in id order: C0, C1, ...).
    bars = ax.bar([f"broker {b}" for b in counts.index], counts.values,
                  color=[f"C{i}" for i in range(len(counts))])
    ax.bar_label(bars, [str(v) for v in counts.values], padding=2)  # a 0 is written too
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1, int(counts.max())) * 1.15)
    ax.set_ylabel("partitions led")
    ax.set_title(title)
    return ax.figure


FAULT_COLORS = {"kill": "tab:red", "shutdown": "tab:purple", "pause": "tab:orange",
                "resume": "tab:green", "restart": "tab:green", "new leader": "darkcyan",
                "crash": "tab:red", "join": "tab:green", "leave": "tab:gray",
                "isolate": "tab:brown", "partition": "tab:brown", "delay": "tab:olive",
                "bandwidth": "tab:olive", "heal": "tab:green"}
"""One colour per kind of fault or event, on every chart (others: black)."""

_FAULT_DOWN = {"kill": ("restart",), "shutdown": ("restart",), "pause": ("resume",),
               "isolate": ("heal",), "partition": ("heal",)}


class _FaultStrip:
    """The strip above an axes where fault labels and phase numbers are written.

    Labels are laid out when the figure is drawn, once the axes' size and limits are final:
    each goes in the lowest lane where it overlaps no other label, phase numbers first. A
    hidden inset axes as tall as the lanes reserves the room, so the title and the layout
    make way for it. Labels stay texts of the axes itself (``ax.texts``).
    """

    base_pt, lane_pt, gap_pt = 6.0, 10.5, 4.0

    def __init__(self, ax):
        self.ax = ax
        self.items: list[tuple[int, float, object]] = []  # (0 phase | 1 fault, x, annotation)
        self.spacer = ax.inset_axes([0, 1, 1, 0.02])
        self.spacer.set_axis_off()
        self.spacer.set_navigate(False)
        self.spacer.set_axes_locator(self)

    @classmethod
    def of(cls, ax) -> _FaultStrip:
        strip = getattr(ax, "_lab_fault_strip", None)
        if strip is None:
            strip = ax._lab_fault_strip = cls(ax)
        return strip

    def add(self, x: float, text: str, color, phase: bool = False, **style) -> None:
        annotation = self.ax.annotate(
            text, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, self.base_pt),
            textcoords="offset points", ha="center" if phase else "left", va="bottom",
            fontsize=8, color=color, annotation_clip=False, **style)
        self.items.append((0 if phase else 1, x, annotation))

    def _layout(self, renderer) -> int:
        ax, px = self.ax, renderer.points_to_pixels
        to_pixels = ax.get_xaxis_transform()
        left_edge, right_edge = ax.bbox.x0, ax.bbox.x1
        lanes: list[list[tuple[float, float]]] = []

        def free(lane: int, span: tuple[float, float]) -> bool:
            return lane >= len(lanes) or all(span[1] + px(self.gap_pt) <= a or
                                             span[0] >= b + px(self.gap_pt)
                                             for a, b in lanes[lane])

        for kind, x, annotation in sorted(self.items, key=lambda item: (item[0], item[1])):
            at = to_pixels.transform((x, 0))[0]
            shown = bool(np.isfinite(at)) and left_edge - 1 <= at <= right_edge + 1
            annotation.set_visible(shown)
            if not shown:
                continue
            width = annotation.get_window_extent(renderer).width
            if kind == 0:
                options = [("center", (at - width / 2, at + width / 2))]
            else:  # to the right of the line, or to its left near the right edge
                options = [("left", (at, at + width)), ("right", (at - width, at))]
                if at + width > right_edge:
                    options.reverse()
            lane = 0
            while not any(free(lane, span) for _, span in options):
                lane += 1
            align, span = next(option for option in options if free(lane, option[1]))
            while len(lanes) <= lane:
                lanes.append([])
            lanes[lane].append(span)
            annotation.set_horizontalalignment(align)
            nudge = {"left": 1.5, "right": -1.5, "center": 0.0}[align]
            annotation.xyann = (nudge, self.base_pt + lane * self.lane_pt)
        return max(1, len(lanes))

    def __call__(self, spacer, renderer):
        from matplotlib.transforms import Bbox

        lanes = self._layout(renderer)
        box = self.ax.bbox
        height = renderer.points_to_pixels(self.base_pt + lanes * self.lane_pt)
        figure = self.ax.get_figure(root=False)
        return Bbox.from_bounds(box.x0, box.y1, box.width, height).transformed(
            figure.transSubfigure.inverted())


def event_markers(ax, marks, labels: bool = True) -> None:
    """Mark events at their x positions, as ``fault_markers`` marks faults.

    A dashed line through the data in the event's colour (``FAULT_COLORS``), and a label in
    the strip above the axes, in lanes so that close labels never overprint.

    Args:
        ax: the axes.
        marks: ``(x, action, who)`` triples in time order; ``who`` a broker id ("kill broker
            2") or a name ("crash member m1"). The same action within 0.3 s is one mark
            ("kill brokers 2, 3").
        labels: write the labels and the down bands in the strip above the axes (False for
            the lower panels of a stack, which get the lines only).
    """
    import matplotlib.patheffects as effects
    from matplotlib.transforms import Bbox, TransformedBbox, offset_copy

    merged: list[list] = []
    for x, action, broker in marks:
        if merged and merged[-1][1] == action and x - merged[-1][0] < 0.3:
            merged[-1][2].append(broker)
        else:
            merged.append([x, action, [broker]])
    halo = [effects.withStroke(linewidth=2.5, foreground="white")]
    for x, action, brokers in merged:
        color = FAULT_COLORS.get(action, "black")
        ax.axvline(x, color=color, ls="--", lw=1.2, zorder=2.5, path_effects=halo)
        if labels:
            numbered = all(isinstance(b, int | float | np.number) and float(b).is_integer()
                           for b in brokers)
            names = ", ".join(str(int(b)) if numbered else str(b) for b in brokers)
            if numbered:
                names = f"broker{'s' if len(brokers) > 1 else ''} {names}"
            _FaultStrip.of(ax).add(x, f"{action} {names}", color)
    if not labels:
        return
    # Jepsen-style: each broker's time down (kill/shutdown/pause to its restart/resume) is a
    # band of its fault's colour just above the axes, under the labels; bands that overlap
    # in time (two brokers down together) get rows of their own.
    rows: list[float] = []  # where each row's last band ends
    for index, (x, action, broker) in enumerate(marks):
        ends = _FAULT_DOWN.get(action)
        back = None if ends is None else next(
            (later for later, what, who in marks[index + 1:] if what in ends and who == broker),
            None)
        if back is None:
            continue
        row = next((i for i, end in enumerate(rows) if end <= x), len(rows))
        rows[row:row + 1] = [back]
        band = offset_copy(ax.get_xaxis_transform(), fig=ax.get_figure(root=False),
                           y=2.5 + 4.5 * row, units="points")
        line, = ax.plot([x, back], [1.0, 1.0], transform=band, color=FAULT_COLORS[action],
                        lw=3, alpha=0.5, solid_capstyle="butt")
        line.set_clip_path(None)  # drawn above the axes, but no wider than they are
        line.set_clip_box(TransformedBbox(Bbox.from_extents(0, 0, 1, 3), ax.transAxes))
    strip = _FaultStrip.of(ax)
    strip.base_pt = max(strip.base_pt, 6.0 + 4.5 * (len(rows) - 1))


@_recorded
def leadership_timeline(runs, brokers: list[int], ax=None):
    """Partitions led per broker and under-replicated partitions over time, across faults.

    Args:
        runs: ``labkit.cluster.faults.FaultRun`` objects in the order they were applied; their
            timelines (partition samples, t: seconds since the fault) are laid end to end
            and each fault is marked.
        brokers: broker ids to draw a band for.
        ax: axes to draw on (a new figure if None).
    """
    from labkit.analysis.timeline import fenced_after

    ax = _axes(ax)
    offset = 0.0
    frames, marks = [], []
    for run in runs:
        frames.append(run.timeline.assign(t=run.timeline.t + offset))
        marks.append((offset, run.action, run.broker))
        fenced = fenced_after(run.timeline, run.broker) if run.action in _FAULT_DOWN else np.nan
        if np.isfinite(fenced):  # until then the dead broker still leads: the session timeout
            ax.axvline(offset + fenced, color="black", ls="-.", lw=1)
            _FaultStrip.of(ax).add(offset + fenced, f"broker {run.broker} fenced, {fenced:.1f} s "
                                   "after the kill (broker.session.timeout.ms)", "black")
        offset += run.timeline.t.max() + 1.0
    event_markers(ax, marks)
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
    ax.set_xlabel("seconds since the first fault (each fault's samples follow the last's)")
    ax.set_ylabel("partitions")
    ax.set_title("Partitions led per broker, and under-replicated, through the faults")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


_LINE_LOOKS = (("-", 1.8), ("--", 1.6), ("-.", 1.6), (":", 2.2))


def _line_look(index: int) -> dict:
    """Line style of the index-th series: lines that coincide still show one another."""
    style, width = _LINE_LOOKS[index % len(_LINE_LOOKS)]
    return {"ls": style, "lw": width}


@_recorded
def throughput_over_time(series: dict[str, pd.DataFrame], ax=None, unit: str = "msgs_per_s",
                         title: str = "Delivered throughput over time"):
    """Throughput over time, one line per run (each its own dash, so equal runs show).

    Args:
        series: label -> ``labkit.analysis.metrics.throughput`` frame.
        ax: axes to draw on (a new figure if None).
        unit: "msgs_per_s" or "mb_per_s".
        title: the axes title.
    """
    ax = _axes(ax)
    for index, (label, frame) in enumerate(series.items()):
        t, rate = frame.t.to_numpy(), frame[unit].to_numpy()
        if len(t) > 1:  # the last bucket gets its width too, like the others
            t, rate = np.r_[t, 2 * t[-1] - t[-2]], np.r_[rate, rate[-1]]
        ax.plot(t, rate, label=label, drawstyle="steps-post", **_line_look(index))
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("delivered messages/s" if unit == "msgs_per_s" else "delivered MB/s")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


@_recorded
def percentile_curves(curves: dict[str, pd.DataFrame], ax=None,
                        title: str = "Delivery latency by percentile"):
    """Latency against percentile on a log-percentile axis (out to p99.9), each its own dash.

    Args:
        curves: label -> ``labkit.analysis.metrics.percentile_curve`` frame.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    for index, (label, curve) in enumerate(curves.items()):
        ax.plot(curve.one_over_tail, curve.latency_ms, label=label, **_line_look(index))
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


@_recorded
def latency_cdf(latencies: dict[str, pd.Series], ax=None, title: str = "Delivery latency CDF"):
    """Cumulative distribution of latencies (ms), one line per run, each its own dash.

    Args:
        latencies: label -> latencies in ms (NaN ignored).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    for index, (label, values) in enumerate(latencies.items()):
        v = values.dropna().sort_values().to_numpy()
        if len(v):
            ax.plot(v, (1 + np.arange(len(v))) / len(v), label=label, **_line_look(index))
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of messages")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))  # never over the curves
    return ax.figure


@_recorded
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
    for bars in ax.containers:  # an empty partition is often the lesson: it reads "0"
        ax.bar_label(bars, ["0" if v == 0 else "" for v in bars.datavalues], fontsize=8)
    ax.legend(title="topic", loc="upper left", bbox_to_anchor=(1, 1), fontsize=8,
              title_fontsize=8)
    ax.set_xlabel("partition")
    ax.set_ylabel("messages")
    ax.set_title(title)
    return ax.figure


def _ink_on(color) -> str:
    """Black or white, whichever reads better on ``color``."""
    from matplotlib.colors import to_rgb

    red, green, blue = to_rgb(color)
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


@_recorded
def partition_heatmap(table: pd.DataFrame, ax=None, title: str = "Share of messages per partition",
                      ylabel: str | None = None):
    """Heat map: one row per configuration, one column per partition, cells = share (%).

    Args:
        table: rows = configurations (index is the label), columns = partitions, values =
            message counts.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
        ylabel: what the rows are, e.g. "partitioner" (default the index's name).
    """
    ax = _axes(ax)
    share = 100 * table.div(table.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    image = ax.imshow(share.values, aspect="auto", cmap="viridis")
    ax.set_xticks(range(share.shape[1]), [str(c) for c in share.columns])
    ax.set_yticks(range(share.shape[0]), list(share.index))
    ax.set_xlabel("partition")
    ax.set_ylabel(ylabel if ylabel is not None else (table.index.name or ""))
    ax.grid(False)
    for (r, c), v in np.ndenumerate(share.values):  # dark ink on the bright cells
        ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=7,
                color=_ink_on(image.cmap(image.norm(v))))
    ax.figure.colorbar(image, ax=ax, label="% of messages")
    ax.set_title(title)
    return ax.figure


def _frontier_dodge(ax, xs, ys, radius_pt: float = 5.0) -> list[tuple[float, float]]:
    """Offsets (points) that spread markers closer than ``radius_pt`` around their centre."""
    scale = 72 / ax.figure.dpi
    where = ax.transData.transform(np.column_stack([xs, ys])) * scale
    groups: list[list[int]] = []
    for i, spot in enumerate(where):
        for group in groups:
            if np.hypot(*(where[group[0]] - spot)) < radius_pt:
                group.append(i)
                break
        else:
            groups.append([i])
    offsets = [(0.0, 0.0)] * len(where)
    for group in groups:
        if len(group) > 1:  # round a circle from the left, in order of x: left stays left
            for k, i in enumerate(sorted(group, key=lambda i: tuple(where[i]))):
                angle = np.pi - 2 * np.pi * k / len(group)
                offsets[i] = (radius_pt * np.cos(angle), radius_pt * np.sin(angle))
    return offsets


def _frontier_label_heights(wanted: list[float], gap: float) -> list[float]:
    """Heights (axes fraction, 0..1) near ``wanted`` that keep ``gap`` between neighbours."""
    order = np.argsort(wanted)
    placed = np.clip(np.asarray(wanted, dtype=float)[order], 0.0, 1.0)
    for k in range(1, len(placed)):
        placed[k] = max(placed[k], placed[k - 1] + gap)
    overflow = placed[-1] - 1.0 if len(placed) else 0.0
    if overflow > 0:
        placed -= overflow
        for k in range(len(placed) - 2, -1, -1):
            placed[k] = min(placed[k], placed[k + 1] - gap)
    heights = np.empty_like(placed)
    heights[order] = placed
    return list(heights)


@_recorded
def frontier(points: pd.DataFrame, x: str = "msgs_per_s", y: str = "p99_ms", label: str = "label",
             ax=None, title: str = "Throughput vs p99 delivery latency",
             color: str | None = None, color_title: str | None = None):
    """Scatter of configurations by throughput and tail latency, the efficient ones joined.

    A configuration is on the frontier when no other has both more throughput and lower
    latency. Only the frontier's points are named, in a column beside the chart; markers
    that would hide each other are spread a few points apart around their spot.

    Args:
        points: one row per configuration.
        x: throughput column.
        y: latency column (ms).
        label: column with each point's name (the index if there is no such column).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
        color: column whose values colour the points, one legend entry each (None: one
            colour).
        color_title: the legend's title for ``color`` (default the column name).
    """
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

    if ax is None:
        _, ax = subplots(figsize=(11, 4.6), layout="constrained")
    points = points[points[x].notna() & points[y].notna()]
    names = points[label] if label in points.columns else pd.Series(points.index, points.index)
    ax.set_yscale("log")
    if len(points):
        low, high = points[y].min(), points[y].max()
        ax.set_xlim(0, 1.06 * points[x].max())
        ax.set_ylim(low / 1.4, high * 1.4)
    groups = list(dict.fromkeys(points[color])) if color else [None]
    colors = {g: f"C{k}" for k, g in enumerate(groups)}
    dodge = _frontier_dodge(ax, points[x].to_numpy(), points[y].to_numpy())
    for (_, row), (dx, dy) in zip(points.iterrows(), dodge, strict=True):
        shift = ax.transData + ScaledTranslation(dx / 72, dy / 72, ax.figure.dpi_scale_trans)
        ax.scatter([row[x]], [row[y]], s=36, color=colors[row[color] if color else None],
                   edgecolor="white", linewidth=0.6, transform=shift, zorder=3)
    best = metrics.pareto_front(points, x, y)
    ax.plot(best[x], best[y], color="black", lw=1, zorder=2)
    for index in best.index:
        dx, dy = dodge[points.index.get_loc(index)]
        shift = ax.transData + ScaledTranslation(dx / 72, dy / 72, ax.figure.dpi_scale_trans)
        ax.plot([best.at[index, x]], [best.at[index, y]], ls="", marker="o", markersize=10.5,
                markerfacecolor="none", color="black", markeredgewidth=1.2, transform=shift,
                zorder=4)
    if len(best):
        lo, hi = (np.log(v) for v in ax.get_ylim())
        wanted = [(np.log(v) - lo) / (hi - lo) for v in best[y]]
        for index, height in zip(best.index, _frontier_label_heights(wanted, 0.16), strict=True):
            ax.annotate(f"{names[index]}\n{best.at[index, x]:,.0f} msg/s, p99 "
                        f"{best.at[index, y]:,.3g} ms", (best.at[index, x], best.at[index, y]),
                        xytext=(1.03, height), textcoords="axes fraction", va="center",
                        fontsize=8, annotation_clip=False,
                        arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6,
                                    "shrinkA": 0, "shrinkB": 6})
    handles = [Line2D([], [], ls="", marker="o", color=colors[g], label=str(g)) for g in groups
               if g is not None]
    # One frontier point is a ring with no line: the key shows what is drawn.
    handles.append(Line2D([], [], color="black", lw=1, ls="-" if len(best) > 1 else "",
                          marker="o", markerfacecolor="none", markersize=9,
                          label="frontier (named at the right): nothing else is both faster "
                                "and lower"))
    ax.legend(handles=handles, title=(color_title or color) if color else None, fontsize=8,
              title_fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=len(handles), alignment="left")
    ax.set_xlabel("delivered messages/s")
    ax.set_ylabel("p99 delivery latency (ms)")
    ax.set_title(title)
    return ax.figure


def _dashboard_name(run) -> str:
    """A run's label, in human words when it is the default ``key=value key=value`` one."""
    config = getattr(run, "config", None) or {}
    if run.label == " ".join(f"{k}={v}" for k, v in config.items()):
        return metrics.config_label(config)
    return run.label


@_recorded
def producer_dashboard(runs, warmup_s: float | None = None):
    """Draw producer runs: throughput, latency by percentile, last run's partitions.

    The batch path and the control panel both draw with this.

    Args:
        runs: ``labkit.workloads.producer.ProducerRun`` objects.
        warmup_s: warm-up left out of the percentiles (None: ``metrics.default_warmup``).
    """
    fig, (a, b, c) = subplots(1, 3, figsize=(15, 3.6 + 0.2 * len(runs)),
                              layout="constrained")
    names = {id(r): f"run {number}: {_dashboard_name(r)}" for number, r in enumerate(runs, 1)}
    throughput_over_time({names[id(r)]: metrics.throughput(r.records) for r in runs}, ax=a)
    percentile_curves({names[id(r)]: metrics.percentile_curve(r.records, warmup_s=warmup_s)
                         for r in runs if r.delivered}, ax=b)
    partition_distribution(metrics.partition_counts(runs[-1].records), ax=c,
                           title=f"Messages per partition, run {len(runs)}")
    a.set_title("Delivered throughput")
    for axis in (a, b):  # the runs are named once, under the panels
        axis.get_legend().remove()
    handles, labels = a.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=1 if len(runs) > 3 else 2,
               fontsize=8)
    return fig


_CPU_SIDES = {  # bounds.per_run column -> (colour, what a reader calls it)
    "thread_cores": ("C0", "labkit's sending thread"),
    "librdkafka_cores": ("C1", "the client's other threads (librdkafka)"),
    "broker_cores": ("C2", "the brokers and the controller"),
    "others_cores": ("0.65", "everything else on the machine"),
}


@_recorded
def flat_out_bounds(settings: pd.DataFrame, names: dict[str, str] | None = None, ax=None,
                    title: str = "What bounded each flat-out run"):
    """Each setting's flat-out rate against the bare loop's ceiling, and the CPU per side.

    Left, per setting: labkit's rate (its share of the ceiling written after it) above the
    bare loop's median rate, with a whisker over the bare rounds' range. Right: the cores
    each side used during labkit's run, stacked, against one core (all one thread can use)
    and all the machine's cores; the bound of each run (``labkit.analysis.bounds``) is named
    in a column at the right, with the measure that set it.

    Args:
        settings: ``labkit.analysis.bounds.table``'s result, one row per setting.
        names: label -> human name for the rows (default the labels).
        ax: a pair of axes (rates, CPU) sharing y to draw on (a new figure if None).
        title: the figure title.

    Returns:
        The figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    rows = np.arange(len(settings))
    if ax is None:
        fig, ax = subplots(1, 2, sharey=True, figsize=(13, 2.4 + 0.55 * len(settings)),
                           layout="constrained", gridspec_kw={"width_ratios": [3, 2]})
    rate_ax, cpu_ax = ax
    fig = rate_ax.figure
    labkit, bare = settings.msgs_per_s.fillna(0), settings.bare_msgs_per_s
    high = settings.bare_high.fillna(bare)
    rate_ax.barh(rows - 0.2, labkit, height=0.38, color="C0", label="labkit's producer")
    if bare.notna().any():
        rate_ax.barh(rows + 0.2, bare.fillna(0), height=0.38, color="0.7",
                     label="bare confluent-kafka loop, median of its rounds")
        several = (settings.bare_rounds.fillna(0) > 1).to_numpy()
        if several.any():
            low = settings.bare_low.fillna(bare)
            rate_ax.errorbar(bare[several], rows[several] + 0.2, fmt="none", ecolor="black",
                             xerr=[(bare - low)[several], (high - bare)[several]],
                             elinewidth=1, capsize=3, label="range of the bare rounds")
        for row, (rate, end) in enumerate(zip(bare, high, strict=True)):
            if np.isfinite(rate):
                rate_ax.annotate(f"{rate:,.0f}", (max(rate, end), row + 0.2), xytext=(5, 0),
                                 textcoords="offset points", va="center", fontsize=8)
    for row, (rate, ratio) in enumerate(zip(labkit, settings.ratio, strict=True)):
        share = f" ({ratio:.0%} of the bare loop)" if np.isfinite(ratio) else ""
        rate_ax.annotate(f"{rate:,.0f}{share}", (rate, row - 0.2), xytext=(3, 0),
                         textcoords="offset points", va="center", fontsize=8)
    top = float(np.nanmax([labkit.max(), high.max(), 1.0]))
    rate_ax.set_xlim(0, top * 1.55)  # room for the written rates
    rate_ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    rate_ax.xaxis.set_major_formatter(FuncFormatter(
        lambda value, _: f"{value / 1000:,.6g}k" if value else "0"))
    rate_ax.set_yticks(rows, [(names or {}).get(label, str(label)) for label in settings.index])
    rate_ax.set_ylim(len(settings) - 0.5, -0.5)
    rate_ax.grid(axis="y", visible=False)
    rate_ax.set(xlabel="delivered messages/s", title="Flat-out rate against the bare ceiling")

    left = np.zeros(len(settings))
    for column, (color, name) in _CPU_SIDES.items():
        values = settings[column].fillna(0).to_numpy(dtype=float)
        if values.sum() > 0:  # a side not measured (NaN) or idle is not drawn, nor named
            cpu_ax.barh(rows, values, left=left, height=0.6, color=color, label=name)
            left += values
    cores = float(settings.cores.max())
    cpu_ax.axvline(1, color="black", ls=":", lw=1, label="one core: all one thread can use")
    cpu_ax.axvline(cores, color="black", ls="--", lw=1, label=f"all {cores:.0f} cores")
    cpu_ax.set_xlim(0, max(cores, float(left.max())) * 1.06)
    cpu_ax.grid(axis="y", visible=False)
    cpu_ax.set(xlabel="cores busy during labkit's run", title="CPU per side")
    cpu_ax.annotate("bound (the thread's share\nof the run's time)", (1.03, 1),
                    xycoords="axes fraction", va="bottom", fontsize=8, fontweight="bold")
    for row, (_, setting) in enumerate(settings.iterrows()):
        cpu_ax.annotate(_bound_note(setting), (1.03, row), xycoords=("axes fraction", "data"),
                        va="center", fontsize=8)
    keys = [key for axis in (rate_ax, cpu_ax)  # each panel's bars first, then its lines
            for key in sorted(zip(*axis.get_legend_handles_labels(), strict=True),
                              key=lambda key: isinstance(key[0], Line2D))]
    fig.legend(*zip(*keys, strict=True), loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(title)
    return fig


def _bound_note(setting: pd.Series) -> str:
    """A run's bound and the measure that set it, e.g. ``"machine (thread waited 40%)"``.

    Shares are of the run's wall time: the sending thread running, waiting for a core, or
    blocked (neither).
    """
    what, waited = setting.bound, setting.get("thread_waiting", np.nan)
    if what == "queue":
        return f"queue (full in {setting.queue_full_share:.0%} of samples)"
    if what == "client thread":
        return f"client thread (ran {setting.thread_cores:.0%})"
    if what == "machine" and np.isfinite(waited):
        return f"machine (thread waited {waited:.0%})"
    if what == "machine":
        return f"machine ({setting.machine_busy:.0%} busy)"
    if np.isfinite(waited):
        return f"none (thread blocked {1 - setting.thread_cores - waited:.0%})"
    return str(what)


_OUTCOMES = {  # accounting.delivery_reports key -> (colour, what a reader calls it)
    "delivered": ("tab:green", "delivery report: delivered"),
    "unreported_present": ("tab:olive", "no delivery report, in the topic anyway"),
    "unreported_missing": ("tab:red", "no delivery report, not in the topic"),
    "dropped": ("tab:orange", "never accepted (produce() raised BufferError)"),
    "failed": ("black", "delivery report: failed"),
    "never_made": ("0.7", "never made: the application was held up"),
}


@_recorded
def outcome_bars(table: pd.DataFrame, ax=None, title: str = "What became of each message"):
    """Stacked bars of message outcomes per scenario, each part with its count written.

    Parts too narrow for their count are named after the bar's end; outcomes that no
    scenario had are listed under the legend as zeros instead of drawn.

    Args:
        table: rows = scenarios, columns = outcome counts (``accounting.delivery_reports`` keys).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    if ax is None:
        _, ax = subplots(figsize=(10, 0.6 * len(table) + 1.6), layout="constrained")
    cols = [c for c in _OUTCOMES if c in table.columns]
    drawn = [c for c in cols if table[c].sum() > 0]
    counts = table[cols].fillna(0).astype(int)
    span = max(1, int(counts.sum(axis=1).max()))
    lefts = counts[drawn].cumsum(axis=1) - counts[drawn]
    for col in drawn:
        color, name = _OUTCOMES[col]
        ax.barh(range(len(counts)), counts[col], left=lefts[col], height=0.6, color=color,
                label=name)
    for row, (_, values) in enumerate(counts[drawn].iterrows()):
        left, narrow = 0, []
        for col in drawn:
            value, color = int(values[col]), _OUTCOMES[col][0]
            if value and value >= 0.09 * span:
                ax.text(left + value / 2, row, f"{value:,}", ha="center", va="center",
                        fontsize=8, color=_ink_on(color))
            elif value:
                narrow.append((f"{value:,}", color))
            left += value
        for k, (text, color) in enumerate(narrow):  # one line each, beside the bar's end
            ax.annotate(text, (left, row), xytext=(4, 6 * (len(narrow) - 1) - 12 * k),
                        textcoords="offset points", va="center", fontsize=8, color=color,
                        fontweight="bold")
    ax.set_yticks(range(len(counts)), list(counts.index))
    ax.set_ylim(len(counts) - 0.5, -0.5)
    ax.set_xlim(0, span * 1.1)
    ax.set_xlabel("messages")
    ax.set_title(title)
    nothing = [_OUTCOMES[c][1] for c in cols if c not in drawn]
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8,
                       title="outcome (count written on each part)", title_fontsize=8,
                       alignment="left")
    if nothing:
        ax.annotate("0 in every scenario:\n" + "\n".join(nothing), (0, 0),
                    xycoords=legend, xytext=(0, -6), textcoords="offset points", va="top",
                    fontsize=8, color="0.3")
    return ax.figure


GROUP_EVENT_COLORS = {"join": "tab:green", "leave": "tab:gray", "crash": "tab:red",
                      "pause": "tab:orange", "stall": "tab:orange", "resume": "tab:green",
                      "lost": "tab:purple"}
"""The membership events a group chart marks, each in its colour (a crash as red as a kill)."""

_GROUP_NO_OWNER = "black"


def _group_member_colors(members) -> dict:
    """Each member's colour on every group chart: m1 is C0, m2 C1, ... whoever else is drawn."""
    import re

    colors = {}
    for index, member in enumerate(members):
        number = re.fullmatch(r"m(\d+)", str(member))
        colors[member] = plt.cm.tab10((int(number.group(1)) - 1 if number else index) % 10)
    return colors


def _group_partition_label(partition: str) -> str:
    """"order-events-1d96a154-5" -> "order-events 5": the topic without its random suffix."""
    import re

    topic, _, number = str(partition).rpartition("-")
    if not topic or not number.isdigit():
        return str(partition)
    return f"{re.sub(r'-[0-9a-f]{8}$', '', topic)} {number}"


def _group_seconds(seconds: float) -> str:
    """A short duration for a label: "17 ms", "2.4 s"."""
    return f"{seconds * 1000:.0f} ms" if seconds < 0.1 else f"{seconds:.1f} s"


def _group_event_marks(ax, events: pd.DataFrame | None, labels: bool = True) -> None:
    """Mark a group's membership events (``GROUP_EVENT_COLORS``) as faults are marked.

    A dashed line through the data in the event's colour and, if ``labels``, a label in the
    strip above the axes that ``fault_markers`` writes in; the same event of several members
    within 0.3 s is one label ("join m1, m2, m3"); a pause or stall says how long it lasted.

    Args:
        ax: the axes, whose x axis is the group's clock (seconds since it started).
        events: the group's events (``GROUP_EVENT_COLUMNS``), or None.
        labels: write the labels (False for the lower panels of a stack sharing the x axis).
    """
    import matplotlib.patheffects as effects

    if events is None or not len(events):
        return
    shown = events[events.kind.isin(list(GROUP_EVENT_COLORS))].sort_values("t", kind="stable")
    merged: list[list] = []
    for t, kind, member, detail in zip(shown.t, shown.kind, shown.member, shown.detail,
                                       strict=True):
        if merged and merged[-1][1] == kind and t - merged[-1][4] < 0.3:
            merged[-1][2].append(member)
            merged[-1][4] = t
        else:
            merged.append([t, kind, [member], detail, t])
    halo = [effects.withStroke(linewidth=2.5, foreground="white")]
    for t, kind, members, detail, _ in merged:
        color = GROUP_EVENT_COLORS[kind]
        ax.axvline(t, color=color, ls="--", lw=1.2, zorder=2.5, path_effects=halo)
        if labels:
            names = ", ".join(sorted(dict.fromkeys(members), key=lambda m: (len(m), m)))
            # "4.5 s, held=10, ..." -> "for 4.5 s": how long, not what it held
            extra = (f" for {str(detail).split(',')[0]}" if kind in ("pause", "stall") and detail
                     else "")
            _FaultStrip.of(ax).add(t, f"{kind} {names}{extra}", color)


def _group_pauses(ax, intervals: pd.DataFrame, rows: dict, labels: bool = True) -> bool:
    """Draw the stretches a partition had no owner, however short, and say how long.

    Each stretch is a black bar; one too short to see also gets a black tick of fixed
    width. Stretches that begin within 0.3 s of each other are one pause, labelled in the
    strip above the axes ("12 paused ≤ 17 ms").

    Returns:
        Whether any stretch was drawn.
    """
    gaps = metrics.ownership_gaps(intervals)
    gaps = gaps[gaps.gap_s > 0].sort_values("start", kind="stable")
    if gaps.empty:
        return False
    y = gaps.partition.map(rows).to_numpy(dtype=float)
    for (start, width), row in zip(zip(gaps.start, gaps.gap_s, strict=True), y, strict=True):
        ax.broken_barh([(start, width)], (row - 0.4, 0.8), facecolors=_GROUP_NO_OWNER,
                       zorder=2)
    row_pt = 72 * ax.figure.get_figheight() * ax.get_position().height / max(1, len(rows))
    ax.scatter(gaps.start + gaps.gap_s / 2, y, marker="|", color=_GROUP_NO_OWNER,
               s=max(3.0, 0.7 * row_pt) ** 2, linewidths=2.5, zorder=2)
    if labels:
        episode = (gaps.start.diff() > 0.3).cumsum()
        for _, pause in gaps.groupby(episode.to_numpy()):
            longest = _group_seconds(float(pause.gap_s.max()))
            _FaultStrip.of(ax).add(float(pause.start.min()),
                                   f"{pause.partition.nunique()} paused ≤ {longest}",
                                   _GROUP_NO_OWNER)
    return True


def _group_not_polling(ax, events: pd.DataFrame | None, intervals: pd.DataFrame, rows: dict,
                       end: float) -> bool:
    """Hatch what a paused or stalled member owned until it resumes (or ``end``).

    Returns:
        Whether anything was hatched.
    """
    if events is None or not len(events):
        return False
    hatched = False
    for stop in events[events.kind.isin(["pause", "stall"])].itertuples():
        back = events[(events.member == stop.member) & (events.t > stop.t)
                      & events.kind.isin(["resume", "stall-end"])].t
        until = float(back.min()) if len(back) else end
        owned = intervals[(intervals.member == stop.member) & (intervals.end > stop.t)
                          & (intervals.start < until)]
        for part, start, stop_t in zip(owned.partition, owned.start, owned.end, strict=True):
            others = intervals[(intervals.partition == part) & (intervals.member != stop.member)
                               & (intervals.start > start)].start
            # Once another member owns it, its bar is drawn: the stuck one no longer reads it.
            left, right = max(start, stop.t), min(stop_t, until, *others)
            ax.broken_barh([(left, right - left)], (rows[part] - 0.4, 0.8),
                           facecolors="none", edgecolors="0.15", hatch="//", lw=0.8,
                           zorder=2.2)
            hatched = True
    return hatched


@_recorded
def rebalance_timeline(intervals: pd.DataFrame, events: pd.DataFrame | None = None, ax=None,
                       title: str = "Who consumed which partition, when"):
    """One row per partition, a bar per ownership coloured by member, no owner in black.

    A stretch without an owner is black, however short (a tick of fixed width marks one
    too short to see), and each pause is labelled with how many partitions stopped and for
    how long at most; joins, leaves, crashes and pauses of members are marked and named in
    a strip above the axes, as faults are.

    Args:
        intervals: ``metrics.ownership`` frame.
        events: group events; crash, join, leave, pause, stall and resume are marked.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    partitions = sorted(intervals.partition.unique(), key=partition_order)
    ax = _axes(ax)
    if ax.figure.get_figheight() < 0.3 * len(partitions):
        ax.figure.set_figheight(max(3.6, 0.3 * len(partitions)))
    rows = {part: row for row, part in enumerate(partitions)}
    members = sorted(intervals.member.unique(), key=lambda m: (len(m), m))
    colors = _group_member_colors(members)
    for part, row in rows.items():
        owned = intervals[intervals.partition == part]
        ax.broken_barh(list(zip(owned.start, owned.end - owned.start, strict=True)),
                       (row - 0.4, 0.8), facecolors=[colors[m] for m in owned.member])
    paused = _group_pauses(ax, intervals, rows)
    end = float(intervals.end.max()) if len(intervals) else 0.0
    waiting = _group_not_polling(ax, events, intervals, rows, end)
    _group_event_marks(ax, events)
    ax.set_yticks(range(len(partitions)), [_group_partition_label(p) for p in partitions],
                  fontsize=7)
    ax.set_ylim(max(len(partitions), 1) - 0.5, -0.5)  # the first partition on top
    ax.set_ylabel("partition")
    ax.tick_params(labelbottom=True)  # also in a stack of panels sharing the x axis
    ax.set_xlabel("seconds since the group started")
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[m]) for m in members]
    names = list(members)
    if paused:
        handles.append(plt.Rectangle((0, 0), 1, 1, color=_GROUP_NO_OWNER))
        names.append("no owner")
    if waiting:
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="none", edgecolor="0.15",
                                     hatch="//", lw=0.8))
        names.append("not polling")
    ax.legend(handles, names, loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


@_recorded
def throughput_per_member(table: pd.DataFrame, ax=None,
                          title: str = "Messages processed per member",
                          events: pd.DataFrame | None = None):
    """Messages/s per member over time, stacked: each member a band, the top the whole group.

    Stacked, members with equal rates stay apart (lines would hide each other), and a
    member that stops is a band that vanishes; a member that processed nothing (a column
    of zeros) is named in the legend as such. The group's membership events (join, leave,
    crash, pause, stall, ...) are marked as ``rebalance_timeline`` marks them.

    Args:
        table: ``metrics.member_throughput`` frame.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
        events: the group's events (same clock: seconds since the group started), or None.
    """
    ax = _axes(ax)
    members = sorted(table.columns, key=lambda m: (len(str(m)), str(m)))
    colors = _group_member_colors(members)
    x = table.index.to_numpy(dtype=float)
    if len(x):
        width = float(np.median(np.diff(x))) if len(x) > 1 else 1.0
        xs = np.append(x, x[-1] + width)  # the last bucket drawn to its end
        base = np.zeros(len(xs))
        for member in members:
            values = table[member].fillna(0).to_numpy(dtype=float)
            top = base + np.append(values, values[-1])
            # A member with nothing processed has no band to see: its legend entry says so.
            ax.fill_between(xs, base, top, step="post", color=colors[member], lw=0,
                            label=member if values.any() else f"{member}: none processed")
            base = top
        ax.plot(xs, base, drawstyle="steps-post", color="black", lw=1, label="whole group")
    _group_event_marks(ax, events)
    ax.set_ylim(bottom=0)
    ax.tick_params(labelbottom=True)  # also in a stack of panels sharing the x axis
    ax.set_xlabel("seconds since the group started")
    ax.set_ylabel("messages/s, stacked")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


@_recorded
def lag_over_time(lag: pd.DataFrame, ax=None, title: str = "Consumer lag"):
    """Total lag (messages behind the end of the log) per member over time.

    Args:
        lag: ``ConsumerGroup.lag()`` frame.
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    ax = _axes(ax)
    members = sorted(lag.member.unique(), key=lambda m: (len(str(m)), str(m)))
    colors = _group_member_colors(members)
    last = {}
    for member, marker in zip(members, itertools.cycle("os^Dv<>p"), strict=False):
        total = lag[lag.member == member].groupby("t").lag.sum()
        # Open markers of different shapes: members at the same lag stay apart.
        ax.plot(total.index, total.values, marker=marker, ms=5, mfc="none", lw=1.2,
                color=colors[member], label=member)
        if len(total):
            last[member] = (float(total.index[-1]), float(total.iloc[-1]))
    if last:
        t_end = max(t for t, _ in last.values())
        behind = sum(v for _, v in last.values())  # each member's last sample
        ax.annotate(f"at the end ({t_end:.1f} s): {behind:,.0f} behind", (1, 1),
                    xycoords="axes fraction", xytext=(-4, -4), textcoords="offset points",
                    ha="right", va="top", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since the group started")
    ax.set_ylabel("messages behind")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    return ax.figure


# -- faults: timelines with markers, audits, loss per configuration --------------------------


def fault_markers(ax, events: pd.DataFrame | None, zero_wall: float,
                  labels: bool = True) -> None:
    """Mark each fault of a ``FaultSchedule.events`` frame: the lab's one way to draw faults.

    Each fault is a dashed line through the data in its kind's colour (``FAULT_COLORS``)
    and a label ("kill broker 2") in a strip above the axes, where labels of coinciding
    faults take separate lanes instead of overprinting; the same action on several brokers
    at once is one label ("kill brokers 2, 3"). The time each broker was down (a kill or
    shutdown to its restart, a pause to its resume) is a band of the fault's colour along
    the top of the axes.

    Args:
        ax: the axes, whose x axis is seconds since ``zero_wall``.
        events: ``FaultSchedule.events`` (its action, broker and wall columns), or None.
        zero_wall: wall-clock time (epoch seconds) that is 0 on the x axis, e.g. a
            ``ProducerRun.started_wall``.
        labels: write the labels and bands (False for the lower panels of a stack that
            shares the x axis: they get the lines only).
    """
    if events is None or not len(events):
        return
    rows = events.sort_values("wall", kind="stable")
    event_markers(ax, [(wall.timestamp() - zero_wall, action, broker)
                      for wall, action, broker in zip(rows.wall, rows.action, rows.broker,
                                                      strict=True)], labels)


def _fault_plain_log_ticks(axis) -> None:
    """Ticks of a log axis written as plain numbers (0.1, 1, 10, 1,000), not 2×10¹.

    Decades are labelled; 2 and 5 too while the axis spans less than two decades.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator

    def plain(value: float) -> str:
        return f"{value:,.0f}" if value >= 1 else f"{value:g}"

    def minor(value: float, _) -> str:
        low, high = sorted(axis.get_view_interval())
        narrow = low > 0 and np.log10(high / low) < 2
        leading = round(value / 10 ** np.floor(np.log10(value)))
        return plain(value) if narrow and leading in (2, 5) else ""

    axis.set_major_locator(LogLocator())
    axis.set_major_formatter(FuncFormatter(lambda value, _: plain(value)))
    axis.set_minor_formatter(FuncFormatter(minor))


def _fault_longest_silence(ax, times: pd.Series, bucket_s: float, what: str = "deliveries",
                           y: float = 0.45) -> None:
    """Span and name the longest stretch between ``times``, if longer than a second.

    A zero that is the lesson reads "0 deliveries for 8.9 s", over a double arrow.
    """
    from labkit.analysis import gaps

    stretches = gaps.between(np.asarray(times, dtype=float),
                             longer_than=max(1.0, 4 * bucket_s))
    if stretches.empty:
        return
    start, end = float(stretches.start.iloc[0]), float(stretches.end.iloc[0])
    ax.annotate("", (start, y), (end, y), xycoords=("data", "axes fraction"),
                arrowprops={"arrowstyle": "<->", "color": "0.3", "lw": 1})
    ax.annotate(f"0 {what} for {end - start:.1f} s", ((start + end) / 2, y + 0.05),
                xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8,
                color="0.15", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                    "alpha": 0.8})


@_recorded
def fault_timeline(runs, events: pd.DataFrame | None = None, bucket_s: float = 0.25,
                   title: str = "", points: int = 5000):
    """Throughput and delivery latency over time for producer runs, with the faults marked.

    One small panel per run counts its successful deliveries per second (by delivery time)
    and, in red crosses, its failed deliveries, on a shared scale: runs that deliver alike
    do not hide each other, and one that stops shows an empty stretch. The bottom panel
    shows each message's delivery latency against the time it was sent, on a log scale (up
    to ``points`` messages per run, evenly sampled), in the runs' colours.

    Args:
        runs: one ``ProducerRun`` or a list of them (drawn on the first run's clock).
        events: ``FaultSchedule.events`` for the markers.
        bucket_s: bucket width in seconds.
        title: figure title.
        points: the most messages per run drawn in the latency panel.

    Returns:
        The figure.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    runs = [runs] if not isinstance(runs, list | tuple) else list(runs)
    zero = runs[0].started_wall
    fig, axes = subplots(len(runs) + 1, 1, figsize=(10, 1.1 * len(runs) + 3.0),
                         sharex=True, layout="constrained",
                         gridspec_kw={"height_ratios": [1.0] * len(runs) + [2.4]})
    panels, bottom = list(axes[:-1]), axes[-1]
    for index, (run, ax) in enumerate(zip(runs, panels, strict=True)):
        color = f"C{index % 10}"
        shift = run.started_wall - zero
        rec = run.records
        ok = metrics.throughput(rec, bucket_s)
        ax.plot(ok.t + shift, ok.msgs_per_s, drawstyle="steps-post", color=color,
                label=run.label)
        ax.fill_between(ok.t + shift, ok.msgs_per_s, step="post", color=color, alpha=0.25)
        failed = rates.per_second(
            rec.t_delivered[~rec.error.isin(["", "unreported", "BufferError"])], bucket_s)
        failed = failed[failed > 0]
        if len(failed):
            ax.scatter(failed.index + shift, failed.values, marker="x", color="tab:red",
                       s=18, zorder=3, label="failed")
        _fault_longest_silence(ax, rec.t_delivered[rec.error == ""] + shift, bucket_s)
        ax.axvline(rec.t_send.max() + shift, color="0.45", ls=":", lw=1.2,
                   label="last message sent")
        ax.set_ylabel("deliveries/s", fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.tick_params(labelbottom=True, labelsize=8)  # each panel keeps its tick numbers
        ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
        sent = rec[rec.latency_ms.notna()]
        sent = sent.iloc[::max(1, len(sent) // points)]
        bottom.scatter(sent.t_send + shift, sent.latency_ms, s=2, alpha=0.5, color=color,
                       label=run.label)
    top = max(max(ax.dataLim.y1 for ax in panels), 1.0) * 1.08
    for ax in panels:  # one scale for every run, so their rates compare
        ax.set_ylim(0, top)
    panels[0].set_title("deliveries per second, by delivery time", loc="left", fontsize=9)
    bottom.set_ylabel("delivery latency (ms)")
    bottom.set_yscale("log")
    _fault_plain_log_ticks(bottom.yaxis)
    bottom.set_xlabel("seconds since the run started (latency: by send time)")
    for axis in axes:
        fault_markers(axis, events, zero, labels=axis is axes[0])
    bottom.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=4)
    if title:
        fig.suptitle(title)
    return fig


@_recorded
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
        _, ax = subplots(figsize=(10, 3))
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


_AUDIT_NAMES = {"acked": "acknowledged", "unreported": "no report",
                "lost": "lost (acknowledged, not in topic)", "reordered": "out of order",
                "failed_present": "failed, yet in topic",
                "unreported_present": "no report, yet in topic",
                "acked_elsewhere": "at another offset"}


def audit_table(table: pd.DataFrame):
    """An audit table for display, every non-zero loss, duplicate or reorder highlighted.

    Rows are runs or configurations, columns audit counts under plain names ("no report,
    yet in topic" for ``unreported_present``); a zero reads 0.

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

    names = [_AUDIT_NAMES.get(c, c.replace("_", " ")) for c in cols]
    return table[cols].style.apply(shade).format("{:,.0f}").relabel_index(names, axis="columns")


@_recorded
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
    # Numbered columns read "run 0", "run 1"; rows named by their labels ("acks=1") need
    # no axis label, numbered ones get their index's name.
    name = str(table.columns.name or "")
    ax.set_xticks(range(table.shape[1]), [f"{name} {c}" if name and isinstance(c, int | np.integer)
                                          else str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
    numbered = all(isinstance(r, int | np.integer) for r in table.index)
    ax.set_ylabel(str(table.index.name or "") if numbered else "")
    ax.tick_params(length=0)
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="messages")
    ax.set_title(title)
    return ax.figure


# -- replication under broker loss: rates, readability and partition state by phase ---------


def phase_spans(ax, starts, end: float, numbers: bool = True, key: bool = False) -> None:
    """Shade every other phase grey and number the phases in the strip above ``ax``.

    The numbers share the strip of ``fault_markers`` (phase numbers in its lowest lane,
    fault labels above), so the two never overprint.

    Args:
        ax: axes whose x axis is the phases' clock.
        starts: ``(t, name)`` pairs in time order (e.g. ``ReplicationRun.phase_starts``).
        end: end of the last phase.
        numbers: write 1, 2, ... above each phase (as in ``ReplicationRun.phases``).
        key: name the phases too, as the axes' left title ("Phases: 1 healthy · 2 ...").
    """
    import textwrap

    times = [t for t, _ in starts] + [end]
    for index in range(len(starts)):
        left, right = times[index], times[index + 1]
        if index % 2:
            ax.axvspan(left, right, color="0.92", zorder=0)
        if numbers:
            _FaultStrip.of(ax).add((left + right) / 2, str(index + 1), "0.2", phase=True,
                                   fontweight="bold")
    if key:
        # no-break spaces inside a phase's name: lines break between phases only
        names = " · ".join(f"{index + 1} {name}".replace(" ", "\u00a0")
                           for index, (_, name) in enumerate(starts))
        ax.set_title(textwrap.fill(f"Phases (every other one shaded grey): {names}", 130),
                     loc="left", fontsize=8, color="0.2")


@_recorded
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
    from matplotlib.ticker import FuncFormatter

    if state not in ("isr", "leader"):
        raise ValueError(f"state={state!r} must be 'isr' or 'leader'")
    labels = list(run.producers)
    panels = len(labels) + (run.seen is not None) + 1
    fig, axes = subplots(panels, 1, figsize=(10, 1.9 * panels + 0.6), sharex=True,
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
                        label="failed" if failed.any() else None)  # no legend for nothing
        gone = rec.msg_id.isin(run.audits[label].lost.msg_id) if label in run.audits else None
        if gone is not None and gone.any():
            lost = per_second(rec.t_delivered[gone])
            ax.fill_between(lost.index, lost, step="post", color="black", alpha=0.8,
                            label="acknowledged, then lost")
        ax.axhline(0, color="k", lw=0.5)
        _fault_longest_silence(ax, rec.t_delivered[rec.error == ""], bucket_s,
                               "acknowledged", y=0.78)
        ax.set_ylabel(f"{label}\nmessages/s")
        # failed writes are drawn below zero, but a rate is a rate: no minus signs
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):,.0f}"))
    if run.seen is not None:
        readable = axes[len(labels)]
        for index, label in enumerate(labels):
            rate = per_second(records[label].t_seen)
            readable.plot(rate.index, rate, drawstyle="steps-post", color=f"C{index}",
                          label=label)
        _fault_longest_silence(readable, pd.concat([records[label].t_seen for label in labels]),
                               bucket_s, "messages readable", y=0.5)
        readable.set_ylabel("readable/s")
    states = axes[-1]
    part = run.partitions
    topic_label = {topic: label for label, topic in run.topics.items()}
    groups = part.groupby(["topic", "partition"])
    for number, ((topic, partition), rows) in enumerate(groups):
        # Equal lines would hide each other: each is nudged a little, around its value.
        nudge = 0.08 * (number - (groups.ngroups - 1) / 2)
        if state == "isr":
            states.plot(rows.t, rows.isr.map(len) + nudge, drawstyle="steps-post", lw=1.6,
                        label=f"partition {partition}")
        else:
            states.plot(rows.t, rows.leader + nudge, drawstyle="steps-post", lw=1.6,
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
        phase_spans(ax, run.phase_starts, end, numbers=ax is axes[0], key=ax is axes[0])
        fault_markers(ax, run.events, run.started_wall, labels=ax is axes[0])
        ax.set_xlim(0, end)
        ax.tick_params(labelbottom=True)  # each panel keeps its time tick numbers
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8,
                      title="lines nudged apart" if ax is states else None, title_fontsize=7)
    what = "ISR size" if state == "isr" else "leader"
    fig.suptitle(f"Writes acknowledged and failed, {'readable, ' if run.seen is not None else ''}"
                 f"and each partition's {what}, through the faults")
    return fig


_COUNT_COLORS = {"duplicates": "tab:orange", "lost": "tab:red", "reordered": "tab:purple"}


def _log_copies_window(values: pd.Series) -> tuple[float, float]:
    """A range around ``values`` with a margin, never empty."""
    low, high = float(values.min()), float(values.max())
    pad = max((high - low) * 0.15, 1e-3 if high - low < 1 else 2.0)
    return low - pad, high + pad


@_recorded
def log_copies(result, partition: int | None = None, events: pd.DataFrame | None = None,
               started_wall: float | None = None, ax=None):
    """One partition's log: each record's offset against the time it was sent.

    First copies in order are grey, extra copies orange, reordered records purple (the
    colours of ``duplicates_and_losses``); faults are
    marked as on every lab chart (``fault_markers``). When there are extra copies or
    reordered records, an inset zooms in on them and on the first copies of the same
    messages. Kinds with no record are not drawn: the legend's title counts them as 0.
    Needs ``t_produced`` in ``result.found`` (``read_topic`` has it).

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
    from matplotlib.patches import ConnectionPatch, Rectangle

    if ax is None:
        _, ax = subplots(figsize=(8, 4.2), layout="constrained")
    table = result.per_partition[result.per_partition.partition >= 0]
    if partition is None:
        partition = int(table.sort_values("duplicates", kind="stable").partition.iloc[-1])
    log = result.found[result.found.partition == partition]
    zero = started_wall if started_wall is not None else log.t_produced.min()
    t = log.t_produced - zero
    kinds = ((log.nth_copy.eq(0) & ~log.reordered, "0.6", "first copy, in order"),
             (log.reordered, _COUNT_COLORS["reordered"], "reordered"),
             (log.nth_copy.gt(0), _COUNT_COLORS["duplicates"], "extra copies"))
    odd = log.reordered | log.nth_copy.gt(0)
    inset = None
    if odd.any():
        inset = ax.inset_axes((0.12, 0.45, 0.3, 0.42), zorder=10)
        inset.set_facecolor("white")
        mine = log.msg_id.isin(log.msg_id[odd])
        inset.set_xlim(*_log_copies_window(t[mine]))
        inset.set_ylim(*_log_copies_window(log.offset[mine]))
    for mask, color, label in kinds:
        if mask.any():
            ax.scatter(t[mask], log.offset[mask], s=4, color=color,
                       label=f"{label} ({mask.sum():,})")
            if inset is not None:
                inset.scatter(t[mask], log.offset[mask], s=9, color=color)
    ax.set(xlabel="sent at (s since the run started)", ylabel="offset in the partition",
           title=f"Partition {partition}, record by record")
    fault_markers(ax, events, zero)
    zeros = [f"0 {label}" for mask, _, label in kinds[1:] if not mask.any()]
    ax.legend(loc="lower right", markerscale=3, fontsize=8, title_fontsize=9,
              title=", ".join(zeros) or None, alignment="left")
    if inset is not None:
        inset.set_title("zoom: the copied messages" if log.nth_copy.gt(0).any()
                        else "zoom: the reordered records", fontsize=8, backgroundcolor="white")
        inset.tick_params(labelsize=7, labelbottom=False)  # its offsets; its time is the box's
        inset.grid(False)
        # The zoomed region, boxed and tied to the inset (indicate_inset_zoom would lift the
        # fault lines above the inset).
        (x0, x1), (y0, y1) = inset.get_xlim(), inset.get_ylim()
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="0.3", lw=0.8))
        for corner in ((x0, y1), (x1, y1)):
            ax.add_artist(ConnectionPatch(corner, (corner[0], y0), "data", "data", axesA=ax,
                                          axesB=inset, color="0.5", lw=0.6, zorder=4))
    return ax.figure


_COPY_COLORS = {0: "tab:red", 1: "0.82", 2: "tab:orange"}  # 3 or more: dark orange


@_recorded
def rows_around_crash(strips: dict[str, pd.DataFrame], around: int | None = None, ax=None,
                      title: str = "Rows per input message, lined up on the crash"):
    """One strip per strategy: each input message coloured by its copies in the side effect.

    Messages with other than one row are drawn at least a few points wide, so that a batch
    of 50 stays visible in a strip of 100,000 (the count beside each strip is exact); the
    crash batch is boxed and the crash marked above the strips.

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
    from matplotlib.transforms import offset_copy

    if ax is None:
        _, ax = subplots(figsize=(11, 0.7 * len(strips) + 1.9), layout="constrained")
    shown = {label: strip if around is None else strip[strip.position.abs() <= around]
             for label, strip in strips.items()}
    ends = [(s.position.min(), s.position.max()) for s in shown.values() if len(s)]
    if ends:
        ax.set_xlim(min(e[0] for e in ends) - 0.5, max(e[1] for e in ends) + 0.5)
    left, right = ax.get_xlim()
    least = 8.0 * (right - left) / max(1.0, ax.bbox.width)  # 8 pixels, in messages
    values_drawn = set()
    for row, (label, strip) in enumerate(shown.items()):
        pos, copies = strip.position.to_numpy(), strip.copies.clip(upper=3).to_numpy()
        if not len(pos):
            continue
        # One bar per run of equal copies: a strip of 100,000 messages is a few bars. The
        # runs that are the lesson (lost, duplicated) go on top, at least `least` wide.
        cuts = np.flatnonzero(np.diff(copies) != 0) + 1
        runs = sorted(zip(np.r_[0, cuts], np.r_[cuts, len(pos)], strict=True),
                      key=lambda run: copies[run[0]] != 1)
        for start, stop in runs:
            value = int(copies[start])
            width = pos[stop - 1] - pos[start] + 1
            grow = max(0.0, least - width) if value != 1 else 0.0  # away from the crash
            x0 = pos[start] - 0.5 - (grow if pos[start] < 0 else 0.0)
            ax.broken_barh([(x0, width + grow)], (row - 0.4, 0.8),
                           color=_COPY_COLORS.get(value, "saddlebrown"), linewidth=0)
            values_drawn.add(value)
            if value != 1 and grow > 0:  # too narrow to see at this scale: say what it is
                what = "lost" if value == 0 else "duplicated"
                ax.annotate(f"{width:,} {what}", (x0 + width + grow if pos[start] >= 0 else x0,
                                                   row), xytext=(16 if pos[start] >= 0 else -16, 0),
                            textcoords="offset points", ha="left" if pos[start] >= 0 else "right",
                            va="center", fontsize=8, fontweight="bold",
                            color=_COPY_COLORS.get(value, "saddlebrown"),
                            backgroundcolor="white",
                            arrowprops={"arrowstyle": "-", "color": "0.3", "lw": 0.6})
        batch = strip[strip.stage.str.startswith("crash batch")].position
        if len(batch):
            width = batch.max() - batch.min() + 1
            grow = max(0.0, 2 * least - width) / 2
            ax.add_patch(Rectangle((batch.min() - 0.5 - grow, row - 0.45), width + 2 * grow,
                                   0.9, fill=False, edgecolor="black", linewidth=0.8))
        whole = strips[label].copies
        lost, extra = int(whole.eq(0).sum()), int((whole - 1).clip(lower=0).sum())
        ink = "tab:red" if lost else "tab:orange" if extra else "0.35"
        ax.annotate(f"{lost:,} lost, {extra:,} duplicates", (1.0, row),
                    xycoords=("axes fraction", "data"), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8, color=ink)
    ax.axvline(-0.5, color="black", ls="--", lw=1)
    _FaultStrip.of(ax).add(-0.5, "crash", "black")  # above the axes, as faults are
    ax.set_yticks(range(len(strips)), list(strips))
    ax.set_ylim(len(strips) - 0.5, -0.5)
    ax.grid(False)
    ax.set_xlabel("input message, in the order the crashing worker received them "
                  "(0: first it did not process)")
    names = {0: "no row (lost)", 1: "one row", 2: "two rows (duplicate)", 3: "three or more rows"}
    handles = [Patch(color=_COPY_COLORS.get(v, "saddlebrown"), label=names[v])
               for v in sorted(values_drawn)]
    handles += [Patch(fill=False, edgecolor="black", label="crash batch"),
                Line2D([], [], color="black", ls="--", lw=1, label="crash")]
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-34, units="points")
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0),
              bbox_transform=below, ncol=len(handles), fontsize=8)
    ax.set_title(title)
    return ax.figure


def _lost_bin_counts(ax, edges, totals, tops) -> None:
    """Write the count over the fullest bins of a histogram row, a few bins apart."""
    labelled: list[int] = []
    for index in np.argsort(-totals, kind="stable"):
        if totals[index] < max(1, 0.05 * totals.sum()) or len(labelled) == 6:
            break
        if all(abs(index - other) > 4 for other in labelled):
            labelled.append(int(index))
            ax.annotate(f"{totals[index]:,}", ((edges[index] + edges[index + 1]) / 2,
                                               tops[index]),
                        xytext=(0, 1), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7)


@_recorded
def lost_when_acked(lost: pd.DataFrame, ax=None,
                    title: str = "When each lost message had been acknowledged",
                    configs=None):
    """When the lost messages had been acknowledged, relative to the kill: one row per config.

    Each row is a histogram of the lost messages' acknowledgement times, the runs stacked in
    colours, its total written at the right: every lost message counts (a batch of hundreds
    acknowledged in the same millisecond is a tall bar, not one dot), and the totals are
    the row sums of the loss heat map (written under each config's name). A config that
    lost nothing says "0 lost".

    Args:
        lost: ``labkit.analysis.audit.lost_messages`` (its config, run, victim and acked_s).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
        configs: the configs to draw, top to bottom (default: those in ``lost``); one with
            no row in ``lost`` lost nothing.

    Returns:
        The figure.
    """
    configs = list(dict.fromkeys(lost.config)) if configs is None else list(configs)
    if ax is None:
        _, ax = subplots(figsize=(9, 0.75 * max(1, len(configs)) + 1.6),
                         layout="constrained")
    from matplotlib.scale import SymmetricalLogTransform
    from matplotlib.ticker import FuncFormatter

    times = lost.acked_s.to_numpy(dtype=float)
    low, high = (min(0.0, times.min()), max(0.0, times.max())) if len(times) else (-1.0, 1.0)
    # When some were acknowledged milliseconds from the kill and others seconds from it:
    # a symmetric log scale, linear within 10 ms of the kill, bins of equal width on it.
    forward = backward = np.asarray
    near, far = (np.abs(times).min(), np.abs(times).max()) if len(times) else (1.0, 1.0)
    if far > 0.1 and far / max(near, 0.01) > 20:  # both ms and seconds from the kill
        scale = SymmetricalLogTransform(10, 0.01, 1.0)
        def forward(x):
            return scale.transform(np.reshape(x, (-1, 1))).ravel()

        def backward(x):
            return scale.inverted().transform(np.reshape(x, (-1, 1))).ravel()

        ax.set_xscale("symlog", linthresh=0.01, linscale=1.0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    left, right = forward([low, high])
    pad = 0.02 * max(right - left, 1e-3)
    edges = backward(np.linspace(left - pad, right + pad, 81))
    counts = {key: np.histogram(rows.acked_s, edges)[0]
              for key, rows in lost.groupby(["config", "run"], sort=True)}
    tallest = max([1, *(sum(c for (cfg, _), c in counts.items() if cfg == config).max()
                        for config in set(lost.config))])
    runs = sorted(set(lost.run))
    colors = {run: f"C{index % 10}" for index, run in enumerate(runs)}
    victims = lost.groupby("run").victim.first()
    for row, config in enumerate(configs):
        y = len(configs) - 1 - row
        bottom = np.zeros(len(edges) - 1)
        for run in runs:
            count = counts.get((config, run))
            if count is None:
                continue
            # Scaled to the tallest bin; a single message still shows as a sliver.
            height = np.where(count > 0, np.maximum(0.8 * count / tallest, 0.06), 0.0)
            drawn = count > 0
            ax.bar(edges[:-1][drawn], height[drawn], width=np.diff(edges)[drawn],
                   bottom=y - 0.4 + bottom[drawn], align="edge", color=colors[run],
                   linewidth=0, label=f"run {run} (broker {victims[run]} killed)")
            bottom += height
        _lost_bin_counts(ax, edges, sum((c for (cfg, _), c in counts.items() if cfg == config),
                                        np.zeros(len(edges) - 1, dtype=int)), bottom + y - 0.4)
    ax.axvline(0, color=FAULT_COLORS["kill"], ls="--", lw=1.2, zorder=0.9)  # behind bars
    _FaultStrip.of(ax).add(0.0, "kill the leader", FAULT_COLORS["kill"])
    totals = lost.config.value_counts()
    ax.set_yticks(range(len(configs)),
                  [f"{config}\n{int(totals.get(config, 0)):,} lost" for config in configs[::-1]])
    ax.set_ylim(-0.6, len(configs) - 0.4)
    ax.grid(False, axis="y")
    ax.set_xlim(edges[0], edges[-1])
    symlog = ax.get_xscale() == "symlog"
    ax.set(xlabel="acknowledged at (s, relative to the kill; negative: before it"
                  + ("; log scale beyond ±0.01 s)" if symlog else ")"), title=title)
    handles, names = ax.get_legend_handles_labels()
    shown = dict(zip(names, handles, strict=True))  # one entry per run
    if shown:
        ax.legend(shown.values(), shown.keys(), loc="upper left", bbox_to_anchor=(1.01, 1),
                  fontsize=8, title="lost in", title_fontsize=8)
    return ax.figure


@_recorded
def duplicates_and_losses(table: pd.DataFrame, title: str, ax=None,
                          columns: tuple[str, ...] = ("duplicates", "lost")):
    """Duplicates and lost messages per variant, as horizontal bars with their counts written.

    Every bar is labelled with its count and what it counts ("0 lost"), so a zero, often the
    lesson, reads as one; there is no legend to name a bar that is not there.

    Args:
        table: one row per variant (drawn top to bottom) with ``duplicates`` and ``lost``
            columns, e.g. ``consumer_faults.commit_outcomes`` or ``side_effect_outcomes``.
        title: the axes title.
        ax: axes to draw on (a new figure if None).
        columns: the count columns to draw, one bar each per variant (also e.g.
            ``"reordered"``).

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = subplots(figsize=(8, (0.25 + 0.22 * len(columns)) * len(table) + 1.4),
                         layout="constrained")
    counts = table[list(columns)].fillna(0).astype(int)
    height = 0.8 / len(columns)
    for k, column in enumerate(columns):
        color = _COUNT_COLORS.get(column, f"C{k}")
        rows = np.arange(len(counts)) - 0.4 + height * (k + 0.5)
        bars = ax.barh(rows, counts[column], height=height * 0.9, color=color)
        ax.bar_label(bars, [f"{v:,} {column}" for v in counts[column]], fontsize=8,
                     padding=3, color="black" if column not in _COUNT_COLORS else color)
    ax.set_yticks(range(len(counts)), list(counts.index))
    ax.set_ylim(len(counts) - 0.5, -0.5)
    ax.set_xlim(0, max(1, int(counts.to_numpy().max())) * 1.25)  # room for the labels
    ax.grid(axis="y", visible=False)
    ax.set(xlabel="messages", ylabel="", title=title)
    return ax.figure


@_recorded
def share_redeliveries(messages: pd.DataFrame, held: dict[str, pd.DataFrame],
                       events: pd.DataFrame, lock_s: float | None = None, ax=None,
                       title: str = "What became of the records a faulty member held"):
    """Each record a crashed or stalled share-group member held, delivery by delivery.

    One block of rows per fault, one row per held record, on the fault's clock (0 = the
    crash or stall): a circle when a member got the record (open: first delivery, filled:
    delivered again), a line on to a cross when it processed it. A dotted line marks when
    the acquisition lock of the first delivery ran out; a stalled member's stall is hatched.
    Each block's heading says how long after the fault the records were delivered again.

    Args:
        messages: ``ShareGroup.messages()``.
        held: block name (e.g. "crash m2") -> the held records (``crash_member`` or
            ``stall_member``).
        events: ``ShareGroup.events()`` (the crash, stall and resume of each member).
        lock_s: the group's ``share.record.lock.duration.ms`` in seconds (None: no line).
        ax: the axes (a new figure if None).
        title: the axes title.

    Returns:
        The figure.
    """
    from labkit.analysis import share_groups

    blocks = []
    for name, records in held.items():
        member = records.member.iloc[0] if len(records) else ""
        faults = events[(events.member == member) & events.kind.isin(["crash", "stall"])]
        if faults.empty:
            continue
        fault = faults.iloc[0]
        back = events[(events.member == member) & (events.t > fault.t)
                      & events.kind.isin(["resume", "stall-end"])].t
        rows = share_groups.deliveries(messages, records, float(fault.t))
        blocks.append((name, fault, float(back.min() - fault.t) if len(back) else None, rows))
    n_rows = sum(1 + r[["partition", "offset"]].drop_duplicates().shape[0] for *_, r in blocks)
    if ax is None:
        _, ax = subplots(figsize=(10, max(3.0, 0.22 * n_rows + 1.2)), layout="constrained")
    colors = _group_member_colors(sorted(set(messages.member), key=lambda m: (len(m), m)))
    ticks, names, y, labelled = [], [], 0, set()
    for name, fault, stalled_s, rows in blocks:
        again = rows[rows.delivery_count > 1].received_s
        delay = (f"delivered again {again.min():.2f} s after" if len(again)
                 else "not delivered again")
        ticks.append(y)
        names.append(f"{name}: {delay}")
        header = y
        records = rows[["partition", "offset"]].drop_duplicates()
        where = {(p, o): header + 1 + i for i, (p, o) in enumerate(records.itertuples(index=False))}
        ticks += list(where.values())
        names += [f"partition {p}, offset {o}" for p, o in where]
        y = header + 1 + len(where)
        row_y = [where[(p, o)] for p, o in zip(rows.partition, rows.offset, strict=True)]
        rows = rows.assign(y=row_y)
        span = (header + 0.5, y - 0.5)
        ax.plot([0, 0], span, color=GROUP_EVENT_COLORS.get(fault.kind, "black"), lw=1.5,
                ls="--", label=f"{fault.kind}" if fault.kind not in labelled else None)
        labelled.add(fault.kind)
        if stalled_s is not None:
            ax.broken_barh([(0, stalled_s)], (span[0], span[1] - span[0]), facecolors="none",
                           edgecolors="0.7", hatch="//", lw=0.8,
                           label="not polling" if "stall" not in labelled else None)
            labelled.add("stall")
        if lock_s is not None:
            first = rows[rows.delivery_count == rows.delivery_count.min()].received_s.min()
            ax.plot([first + lock_s] * 2, span, color="0.3", ls=":", lw=1.5,
                    label="lock of the first delivery runs out" if "lock" not in labelled
                    else None)
            labelled.add("lock")
        for r in rows.itertuples(index=False):
            if np.isfinite(r.processed_s):
                ax.plot([r.received_s, r.processed_s], [r.y, r.y], color=colors[r.member],
                        lw=1, zorder=2)
        for (member, count), got in rows.groupby(["member", "delivery_count"]):
            key = f"{member}, delivery {count}"
            filled = count > 1
            ax.scatter(got.received_s, got.y, s=30, zorder=3, linewidths=1.2,
                       facecolors=colors[member] if filled else "white",
                       edgecolors=colors[member], label=key if key not in labelled else None)
            labelled.add(key)
        done = rows[np.isfinite(rows.processed_s)]
        ax.scatter(done.processed_s, done.y, marker="x", s=22, zorder=3,
                   color=[colors[m] for m in done.member],
                   label="processed" if "processed" not in labelled else None)
        labelled.add("processed")
    ax.set_yticks(ticks, names, fontsize=7)
    for tick, name in zip(ax.get_yticklabels(), names, strict=True):
        if not name.startswith("partition"):
            tick.set_fontweight("bold")
            tick.set_fontsize(8)
    ax.set_ylim(y - 0.5, -0.5)
    ax.set_xlabel("seconds since the fault (crash or stall)")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
    return ax.figure


@_recorded
def offset_reset_reads(writes: dict, groups: dict[str, tuple[pd.DataFrame, float]], ax=None,
                       title: str = "Which messages each group read, and when they were written"):
    """Each group's start against the topic's history, and how many of each write it read.

    Every write is a band across the chart, where its messages were sent; each group is a
    row with a triangle where it started and, under each write, how many of its messages
    the group processed ("0" too: a write a group skipped is the lesson).

    Args:
        writes: name -> ``ProducerRun`` (its run_id, started_wall, records and delivered),
            in time order.
        groups: row name -> (the group's ``messages()``, its ``started_wall``).
        ax: the axes (a new figure if None).
        title: the axes title.

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = subplots(figsize=(10, 0.55 * len(groups) + 2.2), layout="constrained")
    zero = min(run.started_wall for run in writes.values())
    spans = {name: (float(run.records.t_send.min() + run.started_wall - zero),
                    float(run.records.t_send.max() + run.started_wall - zero))
             for name, run in writes.items()}
    starts = [started - zero for _, started in groups.values()]
    total = max([b for _, b in spans.values()] + starts) or 1.0
    for index, (name, run) in enumerate(writes.items()):
        left, right = spans[name]
        right = max(right, left + 0.01 * total)  # a quick write still shows
        ax.axvspan(left, right, color=f"C{index}", alpha=0.25, lw=0,
                   label=f"{run.delivered:,} {name}")
        for row, (messages, _) in enumerate(groups.values()):
            read = int(messages.msg_id[messages.run_id == run.run_id].nunique())
            # Above the row's line, where the group's start marker cannot be.
            ax.annotate(f"{read:,} read", ((left + right) / 2, row), ha="center", va="bottom",
                        xytext=(0, 6), textcoords="offset points", fontsize=9,
                        color=f"C{index}" if read else "0.35",
                        fontweight="bold" if read else "normal",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8})
    ax.scatter(starts, range(len(groups)), marker=">", s=70, color="black", zorder=3,
               label="group started")
    ax.set_yticks(range(len(groups)), list(groups))
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_xlim(-0.1 * total, total * 1.1)  # room for the counts beside the edges
    ax.set_xlabel("seconds since the first message was written")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=8)
    return ax.figure


# -- the lab network: what a delay between brokers and a slow client link cost ---------------

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _delay_axis(ax, delays) -> None:
    """An x axis of one-way delays in ms: symlog, so 0 and 1 show beside 5 and 20."""
    ax.set_xscale("symlog", linthresh=1, linscale=0.6)
    ax.set_xticks(delays, [f"{d:g}" for d in delays])
    ax.set_xlim(min(delays) - 0.25, max(max(delays) * 1.4, 1.5))
    ax.minorticks_off()
    ax.set_xlabel("one-way delay added between every two brokers (ms)")


@_recorded
def latency_by_delay(table: pd.DataFrame, axes=None,
                     title: str = "Delivery latency against the delay between brokers"):
    """p50 (left) and p99 (right) delivery latency of each setting against the delay.

    One line per setting, each with its own marker and dash (settings that coincide still
    show), on a log scale; dotted, the round trip a follower's fetch needs across the delay
    (2 × delay), which every ``acks=all`` delivery waits for at least.

    Args:
        table: ``labkit.analysis.network_costs.delay_table`` (index delay_ms, setting;
            columns p50_ms, p99_ms).
        axes: two axes to draw on (a new figure if None).
        title: the figure's title.
    """
    if axes is None:
        _, axes = subplots(1, 2, figsize=(12, 4.2), sharey=True, layout="constrained")
    delays = sorted(set(table.index.get_level_values("delay_ms")))
    settings = list(dict.fromkeys(table.index.get_level_values("setting")))
    positive = [d for d in delays if d > 0]
    for ax, column, name in zip(axes, ("p50_ms", "p99_ms"), ("p50", "p99"), strict=True):
        for index, setting in enumerate(settings):
            rows = table.xs(setting, level="setting")[column].dropna()
            ax.plot(rows.index, rows.to_numpy(), marker=_MARKERS[index % len(_MARKERS)],
                    ms=6, mfc="none" if index % 2 else None, label=setting, **_line_look(index))
        if positive:
            ax.plot(positive, [2 * d for d in positive], color="black", ls=":", lw=1.2,
                    marker="o", ms=3, label="2 × delay: a follower's fetch round trip")
        ax.set_yscale("log")
        _delay_axis(ax, delays)
        ax.set_ylabel(f"{name} delivery latency (ms)")
        ax.set_title(name)
    axes[0].figure.suptitle(title)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    return axes[0].figure


@_recorded
def throughput_by_delay(table: pd.DataFrame, ax=None,
                        title: str = "Delivered throughput against the delay between brokers"):
    """Delivered msg/s of each setting against the delay, beside the rate it offered.

    A setting that keeps up sits on the offered rate; one whose requests cannot cross the
    delay fast enough falls under it. Each line has its own marker and dash.

    Args:
        table: ``labkit.analysis.network_costs.delay_table`` (index delay_ms, setting;
            columns msgs_per_s, offered_per_s).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    if ax is None:
        _, ax = subplots(figsize=(10, 4), layout="constrained")
    delays = sorted(set(table.index.get_level_values("delay_ms")))
    for index, setting in enumerate(dict.fromkeys(table.index.get_level_values("setting"))):
        rows = table.xs(setting, level="setting").msgs_per_s
        ax.plot(rows.index, rows.to_numpy(), marker=_MARKERS[index % len(_MARKERS)], ms=6,
                mfc="none" if index % 2 else None, label=setting, **_line_look(index))
    offered = table.offered_per_s.max()
    ax.axhline(offered, color="0.4", ls=(0, (6, 3)), lw=1,
               label=f"offered: {offered:,.0f} msg/s")
    _delay_axis(ax, delays)
    ax.set_ylim(0, 1.12 * max(offered, table.msgs_per_s.max()))
    ax.set_ylabel("delivered messages/s")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    return ax.figure


@_recorded
def codecs_on_link(table: pd.DataFrame, ax=None,
                   title: str = "What each codec got through a rate-limited client link"):
    """Per codec: payload delivered and bytes on the wire, in Mbit/s, against the link.

    Two bars per codec, each with its value written: the messages' values delivered per
    second (what the application got across) and the bytes the network carried from the
    client per second (requests and headers included), under two lines: what the client
    offered and what its links can carry.

    Args:
        table: ``labkit.analysis.network_costs.link_table`` (index codec; columns
            payload_mbit_per_s, wire_mbit_per_s, offered_mbit_per_s, capacity_mbit).
        ax: axes to draw on (a new figure if None).
        title: the axes title.
    """
    if ax is None:
        _, ax = subplots(figsize=(10, 4), layout="constrained")
    x = np.arange(len(table))
    names = ["no compression" if c == "none" else str(c) for c in table.index]
    for shift, column, color, name in ((-0.2, "payload_mbit_per_s", "C0",
                                        "payload delivered (message values)"),
                                       (0.2, "wire_mbit_per_s", "C1",
                                        "bytes on the wire (from the network's counters)")):
        bars = ax.bar(x + shift, table[column], width=0.38, color=color, label=name)
        ax.bar_label(bars, fmt="{:.2f}", fontsize=8, label_type="center", color="white",
                     fontweight="bold")
    # The two lines pass behind the bars, so no value written in a bar sits on one.
    offered, capacity = table.offered_mbit_per_s.max(), table.capacity_mbit.max()
    ax.axhline(offered, color="0.3", ls=(0, (6, 3)), lw=1, zorder=0.8,
               label=f"payload offered: {offered:.2f} Mbit/s")
    ax.axhline(capacity, color="tab:red", ls=":", lw=1.5, zorder=0.8,
               label=f"what the client's links carry: {capacity:g} Mbit/s")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.25 * max(offered, capacity, table.payload_mbit_per_s.max(),
                               table.wire_mbit_per_s.max()))
    ax.set_ylabel("Mbit/s")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    return ax.figure


@_recorded
def size_throughput(table: pd.DataFrame, axes=None,
                    title: str = "One producer flat out at each message size"):
    """Messages/s, MB/s and bytes on the wire per message against the message size.

    Three panels on the same log size axis, each point labelled with its value: messages
    per second (log scale), value megabytes per second, and what librdkafka sent per
    message beyond its value (requests and framing), in bytes and as a share of the value.

    Args:
        table: ``labkit.analysis.message_size.size_table`` (index size_bytes; columns
            label, msgs_per_s, mb_per_s, overhead_bytes_per_msg).
        axes: three axes to draw on (a new figure if None).
        title: the figure's title.
    """
    if axes is None:
        _, axes = subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    sizes = table.index.to_numpy()
    share = 100 * table.overhead_bytes_per_msg / table.index
    notes = [f"{b:,.0f} B\n{p:.2g}%" for b, p in zip(table.overhead_bytes_per_msg, share,
                                                     strict=True)]
    panels = ((table.msgs_per_s, "messages/s", [f"{v:,.0f}" for v in table.msgs_per_s],
               "C0", "log", "Messages per second"),
              (table.mb_per_s, "MB/s (10⁶ bytes of values)", [f"{v:,.1f}" for v in table.mb_per_s],
               "C1", "linear", "Megabytes of values per second"),
              (share, "% of the value size", notes, "C2", "log",
               "Bytes sent per message beyond its value"))
    for ax, (values, label, texts, color, scale, name) in zip(axes, panels, strict=True):
        points = values.to_numpy()
        ax.plot(sizes, points, marker="o", color=color)
        for i, (x, y, text) in enumerate(zip(sizes, points, texts, strict=True)):
            # Right of the point, on the side the line to the next point leaves free.
            rising = i + 1 < len(points) and points[i + 1] > y
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, -6 if rising else 6),
                        va="top" if rising else "bottom", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.85})
        ax.set_xscale("log")
        ax.set_xticks(sizes, list(table.label))
        ax.minorticks_off()
        ax.set_xlim(sizes.min() / 2.5, sizes.max() * 4)
        ax.set_yscale(scale)
        low, high = np.nanmin(values), np.nanmax(values)
        ax.set_ylim(*((low / 2, high * 4) if scale == "log" else (0, high * 1.2)))
        ax.set_xlabel("message value size")
        ax.set_ylabel(label)
        ax.set_title(name, fontsize=10)
    axes[0].figure.suptitle(title)
    return axes[0].figure


# -- consumer lag from three sources (notebook 18) ------------------------------------------

_LAG_LOOKS = {"stats": ("tab:blue", "o", "-"), "position": ("tab:orange", "^", "-"),
              "committed": ("tab:green", "s", "-"), "stats_committed": ("tab:gray", "", ":")}


@_recorded
def lag_sources(total: pd.DataFrame, names: dict[str, str], marks=(), ax=None,
                title: str = "Consumer lag, all partitions summed, from each source"):
    """Total lag over time, one line per source, membership changes marked.

    Args:
        total: ``labkit.analysis.lag.total_lag`` (index t; a column per source).
        names: column -> the source's name for people (only these columns are drawn).
        marks: ``(t, action, who)`` triples for ``event_markers``, e.g. (12.0, "join", "m2").
        ax: the axes (a new figure if None).
        title: the axes title.
    """
    if ax is None:
        _, ax = subplots(figsize=(10, 3.8))
    for column, name in names.items():
        color, marker, style = _LAG_LOOKS.get(column, ("black", "", "-"))
        series = total[column]
        # Open markers of different shapes: sources at the same lag stay apart.
        ax.plot(series.index, series.to_numpy(), color=color, ls=style, marker=marker or None,
                ms=3.5, mfc="none", lw=1.2 if marker else 1.6, label=name)
    event_markers(ax, list(marks))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since the group started")
    ax.set_ylabel("messages behind (sum of partitions)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return ax.figure


@_recorded
def lag_agreement(agree: dict[str, pd.DataFrame], names: dict[str, str], axes=None,
                  title: str = "Each source against high watermark − position"):
    """How far each source was from high watermark − position, against what it may be.

    One panel per source: a point per comparable sample and partition, the allowance
    (messages produced plus consumed in the source's window) across, the difference up; the
    diagonal is the allowance itself, so points on or under it agree. Points above it are
    drawn in red.

    Args:
        agree: ``labkit.analysis.lag.agreement`` (source -> rows with difference, allowance,
            within).
        names: source -> its name for people, also the panels' order.
        axes: one axes per source (a new figure if None).
        title: the figure's title.
    """
    if axes is None:
        _, axes = subplots(1, len(names), figsize=(5 * len(names), 4),
                           layout="constrained")
    axes = np.atleast_1d(axes)
    for ax, (source, name) in zip(axes, names.items(), strict=True):
        rows = agree[source]
        color = _LAG_LOOKS.get(source, ("black",))[0]
        top = max(1.0, float(rows.allowance.max()) if len(rows) else 1.0,
                  float(rows.difference.abs().max()) if len(rows) else 1.0) * 1.08
        ax.plot([0, top], [0, top], color="black", lw=1, ls="--",
                label="the allowance (difference = allowance)")
        good = rows[rows.within]
        ax.scatter(good.allowance, good.difference.abs(), s=12, color=color, alpha=0.5,
                   label=f"within: {len(good)} of {len(rows)}")
        bad = rows[~rows.within]
        if len(bad):
            ax.scatter(bad.allowance, bad.difference.abs(), s=22, color="tab:red",
                       marker="x", label=f"beyond: {len(bad)}")
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="allowance (messages)",
               ylabel="|source − position lag| (messages)")
        ax.set_title(name, fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].figure.suptitle(title)
    return axes[0].figure


@_recorded
def lag_by_partition(table: pd.DataFrame, partitions: list[str], names: dict[str, str],
                     marks=(), title: str = "Consumer lag per partition, from each source"):
    """Small multiples: one panel per partition, one line per source, changes marked.

    Args:
        table: ``labkit.analysis.lag.lag_table`` (t, partition, member, lag_<source>).
        partitions: the partitions, one panel each, in this order.
        names: source -> its name for people (the ``lag_<source>`` columns drawn).
        marks: ``(t, action, who)`` triples for ``event_markers`` (labelled on the top
            panel only).
        title: the figure's title.
    """
    fig, axes = subplots(len(partitions), 1, figsize=(10, 1.7 * len(partitions) + 1),
                         sharex=True, layout="constrained")
    axes = np.atleast_1d(axes)
    for index, (ax, part) in enumerate(zip(axes, partitions, strict=True)):
        rows = table[table.partition == part].sort_values("t")
        for source, name in names.items():
            color, marker, style = _LAG_LOOKS.get(source, ("black", "", "-"))
            ax.plot(rows.t, rows[f"lag_{source}"], color=color, ls=style, lw=1.1,
                    marker=marker or None, ms=2.5, mfc="none", label=name)
        event_markers(ax, list(marks), labels=index == 0)
        owners = list(dict.fromkeys(rows.member.dropna()))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("messages")
        ax.text(0.005, 0.96, f"partition {part.rsplit('-', 1)[1]}, owned by "
                f"{', then '.join(owners) or 'nobody'}", transform=ax.transAxes,
                ha="left", va="top", fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    axes[-1].set_xlabel("seconds since the group started")
    axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.35), ncols=len(names), fontsize=8)
    fig.suptitle(title)
    return fig


# -- notebook 07: a delivery latency in parts, from librdkafka's statistics ---------------

_PART_COLORS = {"queued_ms": "C0", "outbuf_ms": "C1", "rtt_ms": "C2"}
_PART_NAMES = {"queued_ms": "queued in the client (int_latency)",
               "outbuf_ms": "in the output buffer (outbuf_latency)",
               "rtt_ms": "round trip to the broker (rtt)"}


def _parts_ceiling(heights: np.ndarray) -> float | None:
    """A y limit that keeps the bars readable beside far taller ones (None: no clipping).

    Bars over 5 times the median are cut: the limit is 1.6 times the tallest of the others.
    """
    finite = heights[np.isfinite(heights)]
    if len(finite) < 3:
        return None
    tall = finite > 5 * np.median(finite)
    if not tall.any() or tall.all():
        return None
    return float(finite[~tall].max() * 1.6)


@_recorded
def latency_parts_bars(table: pd.DataFrame, axes=None,
                       title: str = "Where a message's delivery time goes"):
    """Stacked latency parts per producer setting, the per-message measurement beside each.

    One panel per mode (fixed rate, flat out), one bar per setting: librdkafka's
    queued / output buffer / round-trip means stacked; beside it labkit's measured mean
    (black diamond) and median (open circle) of the same messages, and the band the parts'
    per-message mean must lie in (thin line). A bar far taller than the others is cut at
    the panel's top and its numbers written in it.

    Args:
        table: ``labkit.analysis.client_stats.parts_table`` (mode, acks, linger_ms, the
            parts, total_*_ms, measured_mean_ms, measured_p50_ms).
        axes: one axes per mode present (a new figure if None).
        title: the figure's title.
    """
    modes = [m for m in ("fixed", "flat", "burst") if m in set(table["mode"])]
    modes += [m for m in dict.fromkeys(table["mode"]) if m not in modes]
    if axes is None:
        _, axes = subplots(1, len(modes), figsize=(6.5 * len(modes), 4.4),
                           layout="constrained", squeeze=False)
        axes = axes[0]
    names = {"fixed": "at a fixed rate", "flat": "flat out", "burst": "with a burst"}
    for ax, mode in zip(axes, modes, strict=False):
        rows = table[table["mode"] == mode]
        x = np.arange(len(rows))
        bottom = np.zeros(len(rows))
        tops = np.fmax.reduce([rows.total_ms.fillna(0).to_numpy(),
                               rows.total_high_ms.fillna(0).to_numpy(),
                               rows.measured_mean_ms.fillna(0).to_numpy()])
        ceiling = _parts_ceiling(tops)
        for part, color in _PART_COLORS.items():
            values = rows[part].fillna(0).to_numpy()
            ax.bar(x, values, 0.55, bottom=bottom, color=color, label=_PART_NAMES[part])
            bottom += values
        beside = x + 0.4
        ax.vlines(beside, rows.total_low_ms, rows.total_high_ms, color="0.35", lw=1.2,
                  label="band of the parts' per-message mean")
        ax.plot(beside, rows.measured_mean_ms, "D", color="black", ms=6,
                label="measured per message: mean")
        ax.plot(beside, rows.measured_p50_ms, "o", mfc="white", mec="black", ms=6,
                label="measured per message: median")
        if ceiling is not None:
            ax.set_ylim(0, ceiling)
            for xi, row, top in zip(x, rows.itertuples(), tops, strict=True):
                if top > ceiling:
                    ax.text(xi, ceiling * 0.97, f"cut: parts {row.total_ms:,.0f} ms\n"
                            f"measured {row.measured_mean_ms:,.0f} ms",
                            ha="center", va="top", fontsize=7.5, color="white",
                            fontweight="bold", rotation=90)
        else:
            ax.set_ylim(0, max(tops.max(), 1) * 1.12)
        ticks = [f"linger.ms={r.linger_ms}\nacks={r.acks}" for r in rows.itertuples()]
        if mode not in names:  # runs of a panel: their own names first
            ticks = [f"{label}\n{tick}" for label, tick in zip(rows.index, ticks, strict=True)]
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_xlim(-0.5, len(rows) - 0.3)
        ax.set_ylabel("mean delivery latency (ms)")
        ax.set_title(names.get(mode, mode), fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    axes[0].figure.suptitle(title)
    return axes[0].figure


@_recorded
def latency_parts_over_time(parts: pd.DataFrame, measured: pd.DataFrame,
                            burst: tuple[float, float] | None = None, axes=None,
                            title: str = "The parts of the delivery latency through a burst"):
    """Messages batched per second, and the latency's parts, per statistics window.

    Top: messages the client put into batches per second (int_latency's count over the
    window, log scale). Bottom: the window's parts stacked (each window's means), and
    labkit's measured mean latency of the reports served in that window (black line).
    ``burst`` is shaded and named on both.

    Args:
        parts: ``client_stats.latency_parts(..., per="window")`` on the run's clock.
        measured: ``client_stats.measured_by_window`` of the same windows.
        burst: (start, end) of the flat-out stretch, seconds on the run's clock.
        axes: two axes, top and bottom (a new figure if None).
        title: the figure's title.
    """
    if axes is None:
        _, axes = subplots(2, 1, figsize=(9, 6), sharex=True, layout="constrained",
                           height_ratios=[1, 2.2])
    top, ax = axes
    edges = np.append(parts.t_start.to_numpy(), parts.t.to_numpy()[-1:])
    seconds = (parts.t - parts.t_start).to_numpy()
    per_s = parts.messages.to_numpy() / np.where(seconds > 0, seconds, np.nan)
    top.stairs(np.where(per_s > 0, per_s, np.nan), edges, color="0.3", lw=1.2)
    top.set_yscale("log")
    top.set_ylabel("messages batched\nper second")
    bottom = np.zeros(len(parts))
    for part, color in _PART_COLORS.items():
        values = parts[part].fillna(0).to_numpy()
        ax.stairs(bottom + values, edges, baseline=bottom, fill=True, color=color,
                  label=_PART_NAMES[part])
        bottom += values
    middle = ((measured.t_start + measured.t) / 2).to_numpy()
    ax.plot(middle, measured.mean_ms, "-o", color="black", ms=2.5, lw=1,
            label="measured per message: mean of the reports served in the window")
    if burst is not None:
        for each in axes:
            each.axvspan(*burst, color="C3", alpha=0.12, lw=0)
        top.text((burst[0] + burst[1]) / 2, 1.02, "flat out",
                 transform=top.get_xaxis_transform(), ha="center", va="bottom", fontsize=9,
                 color="C3")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, np.nanmax([np.nanmax(bottom), np.nanmax(measured.mean_ms)]) * 1.08)
    ax.set_xlabel("time since the first message (s)")
    ax.set_ylabel("mean delivery latency (ms)")
    handles, labels = ax.get_legend_handles_labels()
    top.figure.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
    top.figure.suptitle(title)
    return top.figure


# -- backpressure: a producer faster than its link (notebook 08) ------------------------------


@_recorded
def backpressure_costs(table: pd.DataFrame, capacity_msgs: float | None = None,
                       title: str = "What each way of living with a full queue costs"):
    """Per strategy: delivered msg/s, latency, and the message bytes held at the peak.

    Three panels sharing the strategies' names: delivered messages a second (beside what
    the link carries, if given); p50 bars and p99 whiskers of the delivery latency
    (``produce()`` to report) and of the time from the application's wish to the report;
    the peak bytes held, librdkafka's own (``msg_size``) and the application queue's.

    Args:
        table: ``labkit.analysis.backpressure.strategy_table`` (index: strategy names).
        capacity_msgs: messages a second the link carries (a line), or None: its Mbit/s
            over the bytes each message took on the wire.
        title: the figure's title.
    """
    fig, axes = subplots(1, 3, figsize=(13, 1.0 + 0.75 * max(len(table), 3)), sharey=True,
                         layout="constrained")
    y = np.arange(len(table))
    colors = [f"C{i % 10}" for i in range(len(table))]
    ax = axes[0]
    bars = ax.barh(y, table.msgs_per_s.astype(float), color=colors, height=0.6)
    # Written inside the bars: the link's line passes just beyond their ends.
    ax.bar_label(bars, fmt="{:,.0f}", fontsize=8, label_type="center", color="white",
                 fontweight="bold")
    top = float(table.msgs_per_s.max())
    if capacity_msgs:
        ax.axvline(capacity_msgs, color="tab:red", ls=":", lw=1.5,
                   label=f"what the link carries: {capacity_msgs:,.0f} msg/s")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8)
        top = max(top, capacity_msgs)
    ax.set_xlim(0, 1.3 * top)
    ax.set_xlabel("delivered messages/s")
    ax.set_yticks(y, list(table.index))
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_title("throughput", fontsize=10)
    ax = axes[1]
    for shift, prefix, color, name in ((-0.17, "delivery_ms", "C0",
                                        "delivery: produce() to report"),
                                       (0.17, "total_ms", "C3",
                                        "from the application's wish to report")):
        p50, p99 = table[f"{prefix}_p50"].astype(float), table[f"{prefix}_p99"].astype(float)
        ax.barh(y + shift, p50, height=0.32, color=color, alpha=0.8,
                label=f"{name} (bar p50, whisker to p99)")
        ax.hlines(y + shift, p50, p99, color="black", lw=1)
        ax.plot(p99, y + shift, "|", color="black", ms=8)
        for yy, value, far in zip(y + shift, p50, p99, strict=True):
            ax.annotate(f"{value:,.0f}", (max(far, value), yy), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
    ax.set_xlim(0, 1.25 * float(np.nanmax(table[["delivery_ms_p99", "total_ms_p99"]]
                                          .to_numpy(dtype=float))))
    ax.set_xlabel("latency (ms): p50 written")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8)
    ax.set_title("latency", fontsize=10)
    ax = axes[2]
    client = table.peak_client_bytes.astype(float) / 1024
    app = table.peak_app_bytes.astype(float) / 1024
    ax.barh(y, client, height=0.6, color="C0", alpha=0.8,
            label="librdkafka (its msg_size statistic)")
    ax.barh(y, app, left=client, height=0.6, color="C1", alpha=0.8,
            label="the application queue (messages × value bytes)")
    for yy, a, b in zip(y, client, app, strict=True):
        ax.annotate(f"{a + b:,.0f} KiB", (a + b, yy), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_xlim(0, 1.35 * float((client + app).max()))
    ax.set_xlabel("message bytes held at the peak (KiB)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8)
    ax.set_title("memory: bytes held, not the process's RSS", fontsize=10)
    fig.suptitle(title)
    return fig


@_recorded
def backpressure_held(held: dict[str, pd.DataFrame], queues: dict[str, pd.DataFrame],
                      limit: int, title: str = "Where the messages waited, over time"):
    """Per strategy (columns): the messages held, and how far behind the application fell.

    Top row: the messages the producer held, counted from labkit's per-message times (a
    line) and as librdkafka's ``msg_cnt`` statistic says (dots), the application queue's
    messages, and ``queue.buffering.max.messages`` (dotted). Bottom row: how late the
    application's latest hand-off was against its fixed-rate schedule.

    Args:
        held: strategy name -> ``labkit.analysis.backpressure.held_over_time``.
        queues: strategy name -> ``labkit.analysis.client_stats.client_queue``.
        limit: ``queue.buffering.max.messages``.
        title: the figure's title.
    """
    fig, axes = subplots(2, len(held), figsize=(4.2 * len(held) + 1, 5.2), sharey="row",
                         squeeze=False, layout="constrained",
                         gridspec_kw={"height_ratios": [2, 1]})
    for column, (name, frame) in enumerate(held.items()):
        top, bottom = axes[0][column], axes[1][column]
        top.plot(frame.t, frame.client_msgs, color="C0", lw=1.5,
                 label="held by the producer (labkit's count)")
        queue = queues.get(name)
        if queue is not None and len(queue):
            top.plot(queue.t, queue.msg_cnt, "o", color="black", ms=3,
                     label="librdkafka's msg_cnt statistic")
        if frame.app_msgs.max() > 0:
            top.plot(frame.t, frame.app_msgs, color="C1", lw=1.5, ls="--",
                     label="in the application queue")
        top.axhline(limit, color="tab:red", ls=":", lw=1.2,
                    label=f"queue.buffering.max.messages={limit:,}")
        top.set_title(name, fontsize=9)
        bottom.plot(frame.t, frame.behind_s, color="C2", lw=1.5)
        bottom.fill_between(frame.t, frame.behind_s, color="C2", alpha=0.2)
        bottom.set_xlabel("seconds since the run started")
        top.sharex(bottom)
    # Limits once everything is drawn: a shared axis fixed early would clip the others.
    highest = max([limit, *(max(f.client_msgs.max(), f.app_msgs.max()) for f in held.values())])
    axes[0][0].set_ylim(0, 1.08 * highest)
    behind = max([0.0, *(f.behind_s.max() for f in held.values())])
    axes[1][0].set_ylim(0, 1.1 * behind if behind > 0 else 1.0)
    axes[0][0].set_ylabel("messages held")
    axes[1][0].set_ylabel("application behind\nits schedule (s)")
    handles = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=min(4, len(handles)), fontsize=8)
    fig.suptitle(title)
    return fig


@_recorded
def timeout_timeline(records: pd.DataFrame, leaders: pd.DataFrame, events: pd.DataFrame,
                     zero_wall: float, message_timeout_ms: float, bucket_s: float = 0.25,
                     title: str = "A partition whose only replica is down"):
    """Delivery reports through a leaderless stretch, against ``message.timeout.ms``.

    Top: acknowledgements and ``_MSG_TIMED_OUT`` reports per second, by the time the
    report came. Bottom: each message's wait from ``produce()`` to its report, by the time it
    was sent (log scale), with ``message.timeout.ms`` dashed. Shaded: while the metadata
    still named the dead broker as leader, and while it named no leader; the kill and the
    restart are marked as every fault is.

    Args:
        records: the producer's records, t_send and t_delivered on the run's clock.
        leaders: the partition's leader samples (t, leader; -1: none).
        events: the fault events (kill, restart).
        zero_wall: epoch seconds at t = 0.
        message_timeout_ms: the producer's ``message.timeout.ms``.
        bucket_s: bucket width of the top panel (s).
        title: the figure's title.
    """
    from labkit.analysis.backpressure import no_leader

    fig, (top, bottom) = subplots(2, 1, figsize=(10, 5.6), sharex=True,
                                  layout="constrained",
                                  gridspec_kw={"height_ratios": [1, 2.2]})
    killed = float(events.t_s[events.action == "kill"].min()) if len(events) else 0.0
    gone, back = no_leader(leaders, killed)
    end = float(np.nanmax([records.t_delivered.max(), records.t_send.max()]))
    spans = [(killed, gone if np.isfinite(gone) else end, "0.85",
              "the metadata still names the dead broker as leader")]
    if np.isfinite(gone):
        spans.append((gone, back if np.isfinite(back) else end, "#f4c7c3",
                      "the metadata names no leader"))
    for ax in (top, bottom):
        for start, stop, color, name in spans:
            ax.axvspan(start, stop, color=color, alpha=0.6, lw=0,
                       label=name if ax is bottom else None)
    ok = records[records.error == ""]
    timed = records[records.error == "_MSG_TIMED_OUT"]
    other = records[~records.error.isin(["", "_MSG_TIMED_OUT", "unreported", "BufferError"])]
    # (A label starting with "_" is left out of a legend: the error is named in words first.)
    for rows, color, name in ((ok, "tab:green", "acknowledged"),
                              (timed, "tab:red", "timed out (_MSG_TIMED_OUT)"),
                              (other, "black", "other errors")):
        if rows.empty:
            continue
        counts = rates.per_second(rows.t_delivered, bucket_s)
        top.step(counts.index, counts.to_numpy(), where="post", color=color, label=name)
    _fault_longest_silence(top, records.t_delivered.dropna(), bucket_s, what="reports")
    top.set_ylabel("reports/s")
    top.set_ylim(bottom=0)
    top.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    bottom.scatter(ok.t_send, ok.t_delivered - ok.t_send, s=4, color="tab:green",
                   label="acknowledged")
    if len(timed):
        bottom.scatter(timed.t_send, timed.t_delivered - timed.t_send, s=10, marker="x",
                       lw=0.8, color="tab:red", label="timed out (_MSG_TIMED_OUT)")
    if len(other):
        bottom.scatter(other.t_send, other.t_delivered - other.t_send, s=10, marker="+",
                       color="black", label="other errors")
    bottom.axhline(message_timeout_ms / 1000, color="black", ls="--", lw=1,
                   label=f"message.timeout.ms={message_timeout_ms:,.0f}")
    bottom.set_yscale("log")
    _fault_plain_log_ticks(bottom.yaxis)
    bottom.set_ylabel("produce() to report (s)")
    bottom.set_xlabel("seconds since the run started (bottom: by the time each message was sent)")
    bottom.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=2)
    for ax in (top, bottom):
        fault_markers(ax, events, zero_wall, labels=ax is top)
    fig.suptitle(title)
    return fig
