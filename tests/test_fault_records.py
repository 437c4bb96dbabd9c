"""The fault-event and partition-sample schemas, their one recorder, and the plots of a
``FaultRun`` drawn from hand-made records. No broker: the recorder is handed what to do."""

import matplotlib
import pandas as pd
import pytest

from labkit.analysis.timeline import fenced_after, leaders_per_broker, partition_changes
from labkit.cluster.faults import (
    FAULT_EVENT_COLUMNS,
    PARTITION_SAMPLE_COLUMNS,
    FaultRecorder,
    FaultRun,
    partition_samples,
)
from labkit.cluster.leadership import off_preferred, with_preferred
from labkit.viz import plots

matplotlib.use("Agg")


def table(leaders, isrs):
    """A ``Cluster.partitions()`` table of topic t, replicas [1, 2, 3] each."""
    return pd.DataFrame({"topic": "t", "partition": range(len(leaders)), "leader": leaders,
                         "replicas": [[1, 2, 3]] * len(leaders), "isr": isrs,
                         "under_replicated": [len(i) < 3 for i in isrs]})


def test_the_recorder_writes_one_event_row_per_fault_in_the_one_schema():
    done = []
    recorder = FaultRecorder(cluster=None)
    row = recorder.act("kill", 2, do=lambda: done.append("kill"))
    recorder.act("restart", 2, at_s=5.0, target="last", do=lambda: done.append("restart"))
    events = recorder.events
    assert done == ["kill", "restart"] and len(recorder) == 2
    assert list(events.columns) == list(FAULT_EVENT_COLUMNS)
    assert events.step.tolist() == [0, 1] and events.target.tolist() == ["2", "last"]
    assert events.at_s.iloc[0] == row["t_s"] and events.at_s.iloc[1] == 5.0
    assert (events.done_s >= events.t_s).all()
    assert str(events.wall.dt.tz) == "UTC"
    assert events.wall.iloc[0].timestamp() == pytest.approx(row["wall"])


def test_partition_samples_take_a_partition_table_into_the_one_schema():
    sample = partition_samples(table([1, 2], [[3, 1, 2], [1, 2]]), 100.0)
    assert list(sample.columns) == list(PARTITION_SAMPLE_COLUMNS)
    assert sample.isr.tolist() == [[1, 2, 3], [1, 2]] and (sample.wall == 100.0).all()
    later = partition_samples(table([3, 2], [[2, 3], [1, 2]]), 101.0)
    changes = partition_changes(pd.concat([sample, later], ignore_index=True))
    assert changes[["partition", "was_leader", "leader"]].values.tolist() == [[0, 1, 3]]


def test_leadership_timeline_draws_fault_runs_laid_end_to_end():
    def run(action, leaders, isrs):
        samples = pd.concat([partition_samples(table(leaders[0], isrs[0]), 100.0),
                             partition_samples(table(leaders[1], isrs[1]), 101.5)],
                            ignore_index=True)
        samples["t"] = samples.wall - 100.0
        return FaultRun(action, 1, table(leaders[0], isrs[0]), table(leaders[1], isrs[1]), 1.5,
                        pd.DataFrame(columns=list(FAULT_EVENT_COLUMNS)), samples)

    killed = run("kill", [[1, 2], [2, 2]], [[[1, 2, 3], [1, 2, 3]], [[2, 3], [2, 3]]])
    back = run("restart", [[2, 2], [2, 2]], [[[2, 3], [2, 3]], [[1, 2, 3], [1, 2, 3]]])
    ax = plots.leadership_timeline([killed, back], [1, 2, 3]).axes[0]
    marks = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    assert marks == [0.0, 2.5]
    under = [line for line in ax.lines if line.get_linestyle() == ":"][0]
    assert list(under.get_ydata()) == [0, 2, 2, 0, 0]
    assert fenced_after(killed.timeline, 1) == 1.5  # broker 1 out of every ISR and leading none
    assert pd.isna(fenced_after(back.timeline, 3))


def test_with_preferred_marks_live_leaders_other_than_the_first_replica():
    marked = with_preferred(table([1, 2, -1], [[1, 2, 3]] * 3))
    assert marked.preferred.tolist() == [1, 1, 1]
    assert marked.off_preferred.tolist() == [False, True, False]  # no leader: not "another"
    assert off_preferred(table([1, 2, -1], [[1, 2, 3]] * 3)).partition.tolist() == [1, 2]
    assert plots.leadership_bars(pd.Series([2, 0], index=[1, 2])).axes[0].texts[1].get_text() \
        == "0"


def test_leaders_per_broker_counts_every_broker_leading_none_as_zero():
    counts = leaders_per_broker(table([1, 1, -1], [[1, 2, 3]] * 3), [3, 1, 2])
    assert counts.to_dict() == {1: 2, 2: 0, 3: 0}
