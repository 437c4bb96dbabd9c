"""Put partition leaderships back where their replica assignments want them.

Faults move leaders: a killed or paused broker's partitions get other leaders, and they
stay there after it returns. Kafka moves them back only when the controller's periodic
check finds a broker too imbalanced (``auto.leader.rebalance.enable``, every
``leader.imbalance.check.interval.seconds``, 300 s by default), which may happen in the
middle of a later experiment. An experiment that must know who leads what (the broker it
will break leads partition 0, coordinates its group) first asks for a preferred leader
election itself, so that a shared cluster that earlier notebooks broke looks like a fresh
one, and nothing is left for the controller to move during the run.

``with_preferred`` and ``off_preferred`` are pure; ``elect_preferred`` talks to the cluster.
"""

from __future__ import annotations

import pandas as pd
from confluent_kafka import ElectionType, KafkaException, TopicPartition

from labkit.cluster import Cluster, wait_until


def with_preferred(table: pd.DataFrame) -> pd.DataFrame:
    """Each partition's preferred replica, and whether another broker leads it.

    Args:
        table: ``Cluster.partitions()`` (topic, partition, leader, replicas, isr).

    Returns:
        ``table`` with the columns preferred (the first assigned replica, -1 if none) and
        off_preferred (a live leader other than the preferred replica leads).
    """
    preferred = table.replicas.map(lambda replicas: replicas[0] if len(replicas) else -1)
    return table.assign(preferred=preferred,
                        off_preferred=(table.leader >= 0) & (table.leader != preferred))


def off_preferred(table: pd.DataFrame) -> pd.DataFrame:
    """The partitions whose leader is not their preferred replica (the first assigned).

    Args:
        table: ``Cluster.partitions()`` (topic, partition, leader, replicas, isr).

    Returns:
        Those rows, with a column ``preferred`` (see ``with_preferred``); a partition with no
        leader is included, and so is one whose preferred replica is not in its ISR (an
        election cannot move it until that replica catches up).
    """
    marked = with_preferred(table).drop(columns="off_preferred")
    return marked[marked.leader != marked.preferred].reset_index(drop=True)


def elect_preferred(cluster: Cluster, topics, timeout: float = 60) -> pd.DataFrame:
    """Give every partition of ``topics`` its preferred leader; return what moved.

    Only the partitions led by another broker are asked for, and the call returns once the
    metadata shows each of them led by its preferred replica.

    Args:
        cluster: the cluster.
        topics: topic names, e.g. ``[OFFSETS_TOPIC, topic]``.
        timeout: seconds allowed for the elections to show in the metadata.

    Returns:
        One row per moved partition: topic, partition, was_leader, leader.

    Raises:
        TimeoutError: a partition did not get its preferred leader in time (e.g. that
            replica is out of its ISR: ``faults.wait_healthy`` first).
    """
    topics = [topics] if isinstance(topics, str) else list(topics)
    moving = off_preferred(cluster.partitions(topics))
    if moving.empty:
        return pd.DataFrame(columns=["topic", "partition", "was_leader", "leader"])
    wanted = [TopicPartition(t, int(p)) for t, p in zip(moving.topic, moving.partition,
                                                        strict=True)]

    def elected() -> bool:
        try:
            # No timeout arguments: confluent-kafka 2.16's elect_leaders raises SystemError
            # for either of them.
            cluster.admin().elect_leaders(ElectionType.PREFERRED, wanted).result(30)
        except KafkaException:
            return False  # e.g. the preferred replica is not in the ISR yet: ask again
        now = cluster.partitions(sorted(set(moving.topic))).set_index(["topic", "partition"])
        return all(now.leader[(t, p)] == b for t, p, b in
                   zip(moving.topic, moving.partition, moving.preferred, strict=True))

    # The result may name per-partition errors (ELECTION_NOT_NEEDED when another election
    # got there first); only the metadata says whether the leaders are where they belong.
    wait_until(elected, timeout, f"the preferred leaders of {len(wanted)} partitions of "
               f"{', '.join(sorted(set(moving.topic)))}", interval=1.0)
    return pd.DataFrame({"topic": moving.topic, "partition": moving.partition,
                         "was_leader": moving.leader, "leader": moving.preferred})
