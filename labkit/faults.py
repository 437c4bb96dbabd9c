"""Break a broker and watch the cluster heal: leadership and ISR sampled over time.

Each function applies one fault to a ``LocalCluster``, then samples the partition table of
the given topics until the cluster has settled, and returns a ``FaultRun`` whose
``timeline`` DataFrame (columns: t, topic, partition, leader, isr_size, replicas) plots
directly. ``t`` is seconds since the fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from labkit.cluster import Cluster


@dataclass
class FaultRun:
    """What one fault did.

    Attributes:
        action: "kill", "restart", "pause" or "resume".
        broker: the broker acted on.
        before: partition table just before the fault (see ``Cluster.partitions``).
        after: partition table once settled.
        settled_after_s: seconds from the fault until the settle condition held.
        timeline: one row per partition per sample.
    """

    action: str
    broker: int
    before: pd.DataFrame
    after: pd.DataFrame
    settled_after_s: float
    timeline: pd.DataFrame


def _watch(cluster: Cluster, topics, action: str, broker: int, do: Callable[[], None],
           settled: Callable[[pd.DataFrame], bool], timeout: float,
           interval: float = 0.25) -> FaultRun:
    before = cluster.partitions(topics)
    samples = [before.assign(t=0.0, isr_size=before.isr.map(len),
                             replicas=before.replicas.map(len))]
    t0 = time.monotonic()
    do()
    while True:
        t = time.monotonic() - t0
        try:
            table = cluster.partitions(topics)
        except Exception:  # noqa: BLE001 - metadata can be briefly unavailable mid-fault
            table = None
        if table is not None:
            samples.append(table.assign(t=t, isr_size=table.isr.map(len),
                                        replicas=table.replicas.map(len)))
            if settled(table):
                break
        if t > timeout:
            raise TimeoutError(f"cluster did not settle within {timeout:g} s after {action} "
                               f"of broker {broker}")
        time.sleep(interval)
    timeline = pd.concat(samples, ignore_index=True)[
        ["t", "topic", "partition", "leader", "isr_size", "replicas"]]
    return FaultRun(action, broker, before, table, t, timeline)


def kill(cluster: Cluster, broker: int, topics, timeout: float = 60) -> FaultRun:
    """SIGKILL ``broker``; settled when every partition has a leader other than it."""
    return _watch(
        cluster, topics, "kill", broker, lambda: cluster.kill(broker),
        lambda t: bool((t.leader >= 0).all() and (t.leader != broker).all()
                       and not t.isr.map(lambda isr: broker in isr).any()),
        timeout,
    )


def restart(cluster: Cluster, broker: int, topics, timeout: float = 120) -> FaultRun:
    """Restart ``broker`` on its data; settled when every ISR is full again."""
    return _watch(
        cluster, topics, "restart", broker, lambda: cluster.restart(broker, timeout=timeout),
        lambda t: bool((t.isr.map(len) == t.replicas.map(len)).all()),
        timeout,
    )


def leaders_per_broker(table: pd.DataFrame, brokers: list[int]) -> pd.Series:
    """Count partitions led by each broker (brokers leading none included, as 0)."""
    counts = table[table.leader >= 0].leader.value_counts()
    return counts.reindex(sorted(brokers), fill_value=0).rename("partitions led")
