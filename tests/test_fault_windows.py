"""``recovery.fault_times`` and ``recovery.isr_at`` on hand-made events and timelines."""

import pandas as pd
import pytest

from labkit.analysis import recovery


def events(*rows):
    """FaultSchedule events from (action, broker, t_s, done_s, wall epoch seconds)."""
    frame = pd.DataFrame(rows, columns=["action", "broker", "t_s", "done_s", "wall"])
    frame["wall"] = pd.to_datetime(frame.wall, unit="s", utc=True)
    return frame


def test_fault_times_start_the_fault_when_its_action_returned():
    steps = events(("pause", 2, 3.0, 3.25, 1003.0), ("resume", 2, 23.0, 23.01, 1023.0))
    began, took_hold, undone = recovery.fault_times(steps, "pause", "resume")
    assert (began, took_hold, undone) == (1003.0, 1003.25, 1023.0)


def test_fault_times_without_an_undo_and_without_the_fault():
    steps = events(("kill", 1, 1.0, 1.5, 1001.0))
    began, took_hold, undone = recovery.fault_times(steps, "kill", "restart")
    assert (began, took_hold) == (1001.0, 1001.5) and undone != undone
    with pytest.raises(ValueError, match="no 'pause' step among the events \\(kill\\)"):
        recovery.fault_times(steps, "pause", "resume")


def test_isr_at_takes_each_partitions_last_sample_before_the_moment():
    timeline = pd.DataFrame({
        "wall": [99.8, 99.8, 100.0, 100.0, 100.2],
        "topic": ["t"] * 5, "partition": [0, 1, 0, 1, 0],
        "leader": [2, 3, 2, 3, 3],
        "isr": [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 3], [1, 3]]})
    table = recovery.isr_at(timeline, 100.1, broker=2)
    assert table.partition.tolist() == [0, 1]
    assert table.leader.tolist() == [2, 3] and table.isr.tolist() == [[1, 2, 3], [1, 3]]
    assert table.has_broker.tolist() == [True, False]
    assert table.sampled_s.round(3).tolist() == [-0.1, -0.1]
    assert "has_broker" not in recovery.isr_at(timeline, 100.1).columns
