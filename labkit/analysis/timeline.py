"""Fault timelines: what changed in the partitions a watcher sampled.

Pure: works on the samples ``labkit.cluster.faults.PartitionWatch`` records (columns wall,
topic, partition, leader, isr).
"""

from __future__ import annotations

import pandas as pd


def partition_changes(timeline: pd.DataFrame) -> pd.DataFrame:
    """The samples of a ``PartitionWatch`` timeline where a partition's leader or ISR changed.

    Returns:
        Columns wall, topic, partition, leader, isr, was_leader, was_isr: the first sample
        showing each new state, and the state before it (the first sample of each partition
        is the starting state, not a change).
    """
    frame = timeline.sort_values("wall", kind="stable").copy()
    frame["isr"] = frame.isr.map(tuple)
    by_partition = frame.groupby(["topic", "partition"], sort=False)
    frame["was_leader"] = by_partition.leader.shift()
    frame["was_isr"] = by_partition.isr.shift()
    changed = frame.was_isr.notna() & ((frame.leader != frame.was_leader)
                                       | (frame.isr != frame.was_isr))
    out = frame[changed].reset_index(drop=True)
    out["was_leader"] = out.was_leader.astype(int)
    out["isr"], out["was_isr"] = out.isr.map(list), out.was_isr.map(list)
    return out[["wall", "topic", "partition", "leader", "isr", "was_leader", "was_isr"]]
