"""The layering of labkit's parts: analysis and the static plots work without the Kafka client.

A real producer run and a fresh read of its topic are recorded to disk (pickled DataFrames);
a subprocess in which ``confluent_kafka`` cannot be imported then imports every module of
``labkit.analysis`` and ``labkit.viz.plots`` and works on those recordings.
"""

import ast
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import labkit
import labkit.analysis
from labkit.cluster import unique_name
from labkit.workloads.producer import run_producer
from labkit.workloads.readers import read_topic

PURE_MODULES = sorted(f"labkit.analysis.{m.name}" for m in pkgutil.iter_modules(
    labkit.analysis.__path__)) + ["labkit.viz.plots", "labkit.viz.legibility"]

WITHOUT_KAFKA = textwrap.dedent("""
    import importlib, json, sys

    class NoKafka:
        '''Refuse confluent_kafka, as on a machine that has only the analysis installed.'''
        def find_spec(self, name, path=None, target=None):
            if name == "confluent_kafka" or name.startswith("confluent_kafka."):
                raise ImportError(f"{name} is not available here")
            return None

    sys.meta_path.insert(0, NoKafka())
    modules, folder = json.loads(sys.argv[1]), sys.argv[2]
    for name in modules:
        importlib.import_module(name)

    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from labkit.analysis import audit, metrics
    from labkit.viz import plots

    records = pd.read_pickle(f"{folder}/records.pkl")
    found = pd.read_pickle(f"{folder}/found.pkl")
    result = audit.audit(records, found)
    rate = metrics.throughput(records)
    curve = metrics.percentile_curve(records)
    counts = metrics.partition_counts(records)
    plots.throughput_over_time({"run": rate})
    plots.percentile_curves({"run": curve})
    plots.partition_distribution(counts)
    loaded = sorted(m for m in sys.modules if m.startswith(("labkit", "confluent_kafka")))
    totals = {k: int(v) for k, v in result.totals.items()}
    print(json.dumps({"totals": totals, "rate_rows": len(rate),
                      "partitions": int(counts.partition.nunique()), "loaded": loaded}))
""")


def test_analysis_and_plots_work_on_recorded_runs_without_the_kafka_client(cluster3, tmp_path):
    topic = unique_name("layering")
    cluster3.create_topic(topic, 3)
    run = run_producer(cluster3, {"acks": "all"}, messages=600, rate=2000, topics=[topic])
    run.records.to_pickle(tmp_path / "records.pkl")
    read_topic(cluster3, [topic]).to_pickle(tmp_path / "found.pkl")

    done = subprocess.run([sys.executable, "-c", WITHOUT_KAFKA, json.dumps(PURE_MODULES),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["totals"]["acked"] == run.delivered == 600
    assert out["totals"]["lost"] == out["totals"]["duplicates"] == 0
    # as many partitions as the run wrote to (how the partitioner spread null keys varies)
    assert out["rate_rows"] > 0 and out["partitions"] == run.records.partition.nunique()
    assert not [m for m in out["loaded"] if m.startswith("confluent_kafka")]
    assert not [m for m in out["loaded"] if m.startswith(
        ("labkit.cluster", "labkit.workloads", "labkit.experiments"))], out["loaded"]


def test_the_pure_modules_are_found():
    """The list above is read from the package, so a new analysis module is covered at once."""
    assert {"labkit.analysis.metrics", "labkit.analysis.audit", "labkit.viz.plots"} <= set(
        PURE_MODULES)


def _public_names(path) -> list[str]:
    """The public names a module defines at its top level (functions, classes, constants)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def test_no_two_modules_define_the_same_public_name():
    """One home per concept: a public name means one thing wherever it is imported from
    (package ``__init__`` files only re-export)."""
    homes: dict[str, list[str]] = {}
    root = Path(labkit.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name not in ("__init__.py", "__main__.py"):
            for name in _public_names(path):
                homes.setdefault(name, []).append(str(path.relative_to(root.parent)))
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
