"""Notebook 21's Kafka-facing helpers against the session's real 3-broker cluster: choosing
a group's coordinator, and watching leaders and ISRs while a broker is paused (the whole
experiment, ``labkit.experiments.broker_pause``, runs in the notebook's smoke run).

Every test leaves the cluster whole: what it pauses it resumes, and it waits for full ISRs.
"""

import time
import uuid

import pytest

from labkit.analysis.timeline import partition_changes
from labkit.cluster import wait_until
from labkit.cluster.faults import (
    PARTITION_SAMPLE_COLUMNS,
    PartitionWatch,
    replicas_led_by,
    wait_healthy,
)
from labkit.experiments import broker_pause
from labkit.workloads.consumer import OFFSETS_TOPIC, ConsumerGroup, coordinator_of


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_coordinator_of_names_the_broker_that_will_coordinate_a_new_group(cluster3):
    topic = unique("coordinated")
    cluster3.create_topic(topic, partitions=1, replication_factor=3)
    for _ in range(2):
        group_id = unique("coordinated")
        expected = coordinator_of(cluster3, group_id)  # before the group exists
        assert expected in cluster3.brokers
        with ConsumerGroup(cluster3, [topic], members=1, group_id=group_id) as group:
            group.wait_for_stable(60)
            described = cluster3.admin().describe_consumer_groups([group_id])[group_id]
            assert described.result(10).coordinator.id == expected
    assert OFFSETS_TOPIC in cluster3.admin().list_topics(timeout=10).topics
    cluster3.delete_topic(topic)


def test_replicas_led_by_places_the_leaders(cluster3):
    topic = unique("placed")
    assignment = replicas_led_by(2, cluster3.brokers, 3)
    cluster3.create_topic(topic, 3, replica_assignment=assignment)
    assert [cluster3.leader(topic, p) for p in range(3)] == [2, 3, 1]
    assert cluster3.replicas(topic, 0) == [2, 3, 1]
    cluster3.delete_topic(topic)


def test_partition_watch_keeps_sampling_through_a_pause_and_sees_the_leader_move(cluster3):
    topic = unique("watched")
    cluster3.create_topic(topic, partitions=2, replication_factor=3)
    paused = cluster3.leader(topic, 0)
    with PartitionWatch(cluster3, [topic], interval=0.2) as watch:
        time.sleep(0.5)
        paused_at = time.time()
        cluster3.pause(paused)
        try:
            wait_until(lambda: (t := watch.timeline).size and bool(
                ((t.wall > paused_at) & (t.partition == 0) & (t.leader != paused)).any()),
                60, "the watch to see a new leader for partition 0")
        finally:
            cluster3.resume(paused)
    timeline = watch.timeline
    assert list(timeline.columns) == list(PARTITION_SAMPLE_COLUMNS)
    assert set(timeline.partition) == {0, 1}
    # It sampled while the broker was paused, not only before and after.
    assert (timeline.wall > paused_at + 1).any()
    moved = partition_changes(timeline)
    moves = moved[(moved.partition == 0) & (moved.was_leader == paused)]
    assert len(moves) >= 1 and (moves.leader != paused).all()
    assert (moves.wall > paused_at).all()
    assert all(paused not in isr for isr in moves.isr)  # fenced: out of the ISR too
    wait_healthy(cluster3, [topic], timeout=90)
    cluster3.delete_topic(topic)


def test_pause_coordinator_refuses_bad_producer_configs_before_anything_starts():
    common = {"rate": 10, "members": 1, "group_config": {}, "before_s": 1, "pause_s": 1,
              "after_s": 1}
    with pytest.raises(ValueError, match="at least one producer config"):
        broker_pause.pause_coordinator(None, None, {}, **common)
    with pytest.raises(ValueError, match="acks='sometimes'"):
        broker_pause.pause_coordinator(None, None, {"p": {"acks": "sometimes"}}, **common)
