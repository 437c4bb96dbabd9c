"""Every chart of a report run, drawn again from its recorded call, is legible (no broker).

``tests/data/figures/`` holds chart calls recorded by a smoke report run
(``LABKIT_RECORD_FIGURES``, see ``labkit.viz.plots``), gzip-compressed: per notebook and
chart function the smallest, and every small one; ``select_corpus`` below picks them from a
run's recordings. Each is drawn
in the lab style, as the notebooks draw it, and ``labkit.viz.legibility.problems`` must
find nothing to complain about.

Re-record: ``LABKIT_RECORD_FIGURES=/tmp/rec/calls python -m labkit report --profile smoke``,
then ``python tests/test_figures.py /tmp/rec/calls``.
"""

import functools
import gzip
import pickle
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

from labkit.analysis import metrics
from labkit.viz import legibility, plots

matplotlib.use("Agg")

CORPUS = Path(__file__).resolve().parent / "data" / "figures"
FILES = sorted(p.name for p in CORPUS.glob("*.pkl.gz"))
BUDGET_BYTES = 3_000_000
"""The most the committed corpus may weigh."""
SMALL_BYTES = 16_000
"""Recordings this small (compressed) are all kept, not just one per notebook and chart."""


def chart_functions() -> list[str]:
    """The public chart functions of ``plots`` whose calls are recorded (``@_recorded``)."""
    return sorted(name for name, value in vars(plots).items()
                  if callable(value) and not name.startswith("_")
                  and getattr(value, "__module__", None) == plots.__name__
                  and getattr(value, "chart", False))


@functools.cache
def corpus() -> dict[str, dict]:
    """The recorded calls of the corpus by file name."""
    return {call["file"]: call for call in plots.recorded_calls(CORPUS)}


def select_corpus(source: str | Path, target: str | Path = CORPUS,
                  budget: int = BUDGET_BYTES) -> list[str]:
    """Pick the corpus from a run's recordings and write it, gzip-compressed, to ``target``.

    Keeps every recording of at most ``SMALL_BYTES`` compressed and, for each notebook and
    chart function, its smallest recording, named ``NOTEBOOK.NNN.FUNCTION.pkl.gz`` (NNN:
    the call's number in its notebook); while the total exceeds ``budget``, drops the
    largest pick whose function another pick still covers. Recordings are kept whole: a
    smaller chart is chosen, never a thinned-out one. The producer control panel's charts
    (``producer_dashboard``, and ``partition_distribution`` inside it) are drawn by no
    notebook, so their calls are made up as the panel makes them, from the ``ProducerRun``
    objects of the smallest recording that holds some (notebook ``control_panel``).

    Args:
        source: the folder ``LABKIT_RECORD_FIGURES`` pointed at.
        target: the corpus folder; its old ``*.pkl.gz`` files are removed.
        budget: the most the corpus may weigh, in bytes.

    Returns:
        The file names written.

    Raises:
        ValueError: a recorded chart function would be left without a recording.
    """
    found: dict[str, tuple[str, bytes]] = {}  # file name -> (function, gzip bytes)
    smallest: dict[tuple[str, str], str] = {}  # (notebook, function) -> file name

    def offer(notebook: str, number: str, function: str, raw: bytes) -> None:
        name = f"{notebook}.{number}.{function}.pkl.gz"
        found[name] = (function, gzip.compress(raw, mtime=0))
        key = (notebook, function)
        if key not in smallest or len(found[name][1]) < len(found[smallest[key]][1]):
            smallest[key] = name

    runs_from = None  # (size, runs) of the smallest recording with ProducerRuns
    for path in sorted(Path(source).glob("*.pkl")):
        raw = path.read_bytes()
        call = pickle.loads(raw)
        offer(call["notebook"], path.name.split(".")[2], call["function"], raw)
        runs = call["arguments"].get("runs")
        runs = runs if isinstance(runs, list | tuple) else [runs]
        if all(hasattr(r, "records") and hasattr(r, "label") for r in runs) and (
                runs_from is None or len(raw) < runs_from[0]):
            runs_from = (len(raw), list(runs))
    if runs_from is not None:
        runs = runs_from[1]
        for number, (function, arguments) in enumerate((
                ("producer_dashboard", {"runs": runs}),
                ("partition_distribution",
                 {"counts": metrics.partition_counts(runs[-1].records),
                  "title": f"Messages per partition ({runs[-1].label})"}))):
            offer("control_panel", f"{number:03d}", function, pickle.dumps(
                {"notebook": "control_panel", "function": function, "arguments": arguments}))
    picks = {name: found[name] for name in found
             if name in smallest.values() or len(found[name][1]) <= SMALL_BYTES}
    for name in sorted(picks, key=lambda n: -len(picks[n][1])):
        if sum(len(packed) for _, packed in picks.values()) <= budget:
            break
        if sum(1 for function, _ in picks.values() if function == picks[name][0]) > 1:
            del picks[name]
    missing = set(chart_functions()) - {function for function, _ in picks.values()}
    if missing:
        raise ValueError(f"no recording of {sorted(missing)} in {source}")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.pkl.gz"):
        old.unlink()
    for name, (_, packed) in picks.items():
        (target / name).write_bytes(packed)
    return sorted(picks)


def test_the_chart_functions_are_found():
    assert {"latency_cdf", "fault_timeline", "replication_timeline"} <= set(chart_functions())
    assert "audit_table" not in chart_functions()  # a table, not a chart


def test_every_chart_function_has_a_recording():
    recorded = {call["function"] for call in corpus().values()}
    assert sorted(set(chart_functions()) - recorded) == []


def test_the_corpus_stays_small_enough_to_commit():
    assert sum((CORPUS / name).stat().st_size for name in FILES) <= BUDGET_BYTES


@pytest.mark.parametrize("name", FILES)
def test_recorded_chart_is_legible(name):
    call = corpus()[name]
    with plt.rc_context(plots.LAB_STYLE):
        fig = plots.draw(call)
        try:
            found = legibility.problems(fig)
        finally:
            plt.close(fig)
    assert found == [], f"{call['notebook']} · {call['function']}:\n" + "\n".join(found)


@functools.cache
def smallest_recordings() -> dict[str, str]:
    """Each chart function's smallest recording in the corpus (file name)."""
    smallest: dict[str, str] = {}
    for name in sorted(FILES, key=lambda n: (CORPUS / n).stat().st_size):
        smallest.setdefault(corpus()[name]["function"], name)
    return smallest


@pytest.mark.parametrize("function", chart_functions())
def test_chart_drawn_for_a_panel_is_unknown_to_pyplot_and_legible(function):
    """Inside plots.unregistered_figures() (where the control panels draw) no chart asks
    pyplot for a figure, and what it draws reads as well as pyplot's would."""
    call = corpus()[smallest_recordings()[function]]
    plt.close("all")
    with plt.rc_context(plots.LAB_STYLE):
        with plots.unregistered_figures():
            fig = plots.draw(call)
        found = legibility.problems(fig)
    assert plt.get_fignums() == [], f"{function} made a figure through pyplot"
    assert found == [], f"{call['notebook']} · {function}:\n" + "\n".join(found)


if __name__ == "__main__":
    for written in select_corpus(sys.argv[1]):
        print(written)
