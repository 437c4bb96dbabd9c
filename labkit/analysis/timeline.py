"""Fault timelines: what changed in the partitions a watcher sampled.

Pure: works on partition samples (``labkit.cluster.faults.PARTITION_SAMPLE_COLUMNS``: wall,
topic, partition, leader, isr, replicas), as a ``PartitionWatch`` or a ``FaultRun`` records
them, and on partition tables (``Cluster.partitions()``).
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


def leaders_after(before: pd.DataFrame, after: pd.DataFrame, broker: int) -> pd.DataFrame:
    """Who leads, in a later partition table, the partitions ``broker`` led in an earlier one.

    Args:
        before: a partition table (topic, partition, leader), e.g. ``FaultRun.before``.
        after: a later one, e.g. ``FaultRun.after``.
        broker: the broker whose leaderships are followed.

    Returns:
        One row per partition ``broker`` led before: topic, partition, leader (in ``after``;
        -1: none, or the partition is missing), moved (a live broker other than ``broker``
        leads it now).
    """
    led = before.loc[before.leader == broker, ["topic", "partition"]]
    now = after.set_index(["topic", "partition"]).leader
    keys = list(zip(led.topic, led.partition, strict=True))
    leader = [int(now.get(key, -1)) for key in keys]
    out = led.reset_index(drop=True).assign(leader=leader)
    out["moved"] = (out.leader >= 0) & (out.leader != broker)
    return out


def leaders_per_broker(table: pd.DataFrame, brokers: list[int]) -> pd.Series:
    """Count partitions led by each broker (brokers leading none included, as 0).

    Args:
        table: a partition table (a leader column), e.g. ``Cluster.partitions()``.
        brokers: the brokers to count for.
    """
    counts = table[table.leader >= 0].leader.value_counts()
    return counts.reindex(sorted(brokers), fill_value=0).rename("partitions led")


def fenced_after(timeline: pd.DataFrame, broker: int) -> float:
    """Seconds from a fault until the first sample in which ``broker`` leads nothing, in no ISR.

    After a kill, that is when the controller fenced it (``broker.session.timeout.ms``).

    Args:
        timeline: a ``FaultRun.timeline`` (partition samples, t: seconds since the fault).
        broker: the broker the fault hit.

    Returns:
        Seconds; NaN if no sample after the fault shows it gone.
    """
    after = timeline[timeline.t >= 0]
    holds = (after.leader == broker) | after.isr.map(lambda isr: broker in isr)
    gone = ~holds.groupby(after.t).any()
    return float(gone.index[gone.to_numpy()].min()) if gone.any() else float("nan")
