"""A broker pause under load: the group coordinator, leading partition 0, frozen (notebook 21).

Two steps, for a local cluster of 3 brokers:

- ``prepare``: make the cluster look fresh (full ISRs, preferred leaders for the offsets
  topic), pick the broker that will coordinate a new group, and create a topic whose
  partition 0 that broker leads (``faults.replicas_led_by``), warmed up;
- ``pause_coordinator``: a consumer group reads the topic while producers write to it; a
  ``FaultSchedule`` pauses the leader of partition 0 (SIGSTOP) and resumes it (SIGCONT) while a
  ``PartitionWatch`` samples leaders and ISRs; the group then reads everything the producers
  wrote, and the cluster is left whole.

They return records (``PauseSetup``, ``PauseRun``); the measures are in
``labkit.analysis.recovery`` (``fault_times`` finds when the pause began, took hold and ended).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labkit.cluster import Cluster, unique_name
from labkit.cluster.faults import (
    FaultSchedule,
    PartitionWatch,
    leader_fault,
    replicas_led_by,
    wait_healthy,
)
from labkit.cluster.leadership import elect_preferred
from labkit.workloads import client_logs
from labkit.workloads.consumer import OFFSETS_TOPIC, ConsumerGroup, coordinator_of
from labkit.workloads.producer import Background, ProducerRun, run_producer, validate_config


@dataclass
class PauseSetup:
    """What ``prepare`` made.

    Attributes:
        topic: the new topic (min.insync.replicas=2, replication factor 3).
        group_id: the group that will read it.
        frozen: the broker that coordinates the group and leads partition 0.
        given_back: partitions of the offsets topic a preferred-leader election moved back
            (``leadership.elect_preferred``).
        warm_up: the ``ProducerRun`` that wrote to every partition first.
    """

    topic: str
    group_id: str
    frozen: int
    given_back: pd.DataFrame
    warm_up: ProducerRun


def prepare(cluster: Cluster, partitions: int, timeout: float = 120) -> PauseSetup:
    """Make the cluster look fresh and create the topic the coordinator leads partition 0 of.

    Args:
        cluster: a local cluster of 3 brokers.
        partitions: partitions of the new topic.
        timeout: seconds each wait for a whole cluster may take.
    """
    topic, group_id = unique_name("pause"), unique_name("pause-group")
    coordinator_of(cluster, group_id)  # creates the offsets topic on a fresh cluster
    wait_healthy(cluster, [OFFSETS_TOPIC], timeout=timeout)
    given_back = elect_preferred(cluster, [OFFSETS_TOPIC])
    frozen = coordinator_of(cluster, group_id)
    cluster.create_topic(topic, partitions, config={"min.insync.replicas": "2"},
                         replica_assignment=replicas_led_by(frozen, cluster.brokers, partitions))
    wait_healthy(cluster, [topic], timeout=timeout)
    warm_up = run_producer(cluster, {"acks": "all"}, messages=100 * partitions, topics=[topic],
                           label="warm-up")
    return PauseSetup(topic, group_id, frozen, given_back, warm_up)


@dataclass
class PauseRun:
    """What ``pause_coordinator`` did and saw.

    Attributes:
        producers: one ``ProducerRun`` per config, in the order given.
        events: the pause and the resume (``FaultSchedule.events``).
        partitions: the ``PartitionWatch`` samples of the topic and the offsets topic.
        missed: samples the watch lost to a request the frozen broker never answered.
        messages: what the group processed (``ConsumerGroup.messages()``).
        group_events: the group's events (``ConsumerGroup.events()``).
        group_started_wall: epoch seconds at the group's t = 0.
    """

    producers: list[ProducerRun]
    events: pd.DataFrame
    partitions: pd.DataFrame
    missed: int
    messages: pd.DataFrame
    group_events: pd.DataFrame
    group_started_wall: float


def pause_coordinator(cluster: Cluster, setup: PauseSetup, configs: dict[str, dict[str, Any]],
                      rate: float, members: int, group_config: dict[str, Any], before_s: float,
                      pause_s: float, after_s: float,
                      client_log_dir: str | os.PathLike | None = None,
                      timeout: float = 180) -> PauseRun:
    """Freeze the group's coordinator, the leader of partition 0, under producers and a group.

    The group joins and settles; then every producer writes at ``rate`` for ``before_s +
    pause_s + after_s`` seconds (with librdkafka statistics every second), the leader of
    partition 0 is paused ``before_s`` in and resumed ``pause_s`` later; the group then
    reads every message the producers wrote, and the cluster is left whole.

    Args:
        cluster: the cluster ``prepare`` set up.
        setup: what ``prepare`` made.
        configs: label -> producer config, one producer each.
        rate: messages per second each producer offers.
        members: consumers in the group.
        group_config: the consumers' config (session and heartbeat timeouts).
        before_s: seconds of traffic before the pause.
        pause_s: how long the leader stays frozen.
        after_s: seconds the producers keep sending after the resume.
        client_log_dir: capture each producer's librdkafka debug log to a file in this
            directory (``client_logs.file_for``); None captures nothing.
        timeout: seconds the group may take to read everything, and the cluster to heal.

    Raises:
        ValueError: a bad producer config, or no config, before anything starts.
    """
    if not configs:
        raise ValueError("pause_coordinator needs at least one producer config")
    for config in configs.values():
        validate_config(dict(config))
    topic = setup.topic
    labels = list(configs)
    steps = leader_fault("pause", topic, 0, at=before_s, length=pause_s)
    common = {"rate": rate, "topics": [topic], "stats_interval_ms": 1000}

    def log_file(label: str) -> str | None:
        return client_logs.file_for(client_log_dir, label) if client_log_dir else None

    with ConsumerGroup(cluster, [topic], members, setup.group_id, config=group_config) as group:
        group.wait_for_stable(60)
        with PartitionWatch(cluster, [topic, OFFSETS_TOPIC]) as watch, \
                FaultSchedule(cluster, steps) as schedule, contextlib.ExitStack() as running:
            streams = [running.enter_context(
                Background(cluster, configs[label], label=label,
                           client_log_file=log_file(label), **common))
                for label in labels[:-1]]
            last = run_producer(cluster, configs[labels[-1]],
                                duration=before_s + pause_s + after_s, label=labels[-1],
                                client_log_file=log_file(labels[-1]), **common)
        producers = [*(stream.run for stream in streams), last]
        for run in producers:
            group.wait_for_run(run, timeout=timeout)
    wait_healthy(cluster, [topic, OFFSETS_TOPIC], timeout=timeout)
    return PauseRun(producers=producers, events=schedule.events, partitions=watch.timeline,
                    missed=watch.missed, messages=group.messages(),
                    group_events=group.events(), group_started_wall=group.started_wall)
