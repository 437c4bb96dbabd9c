"""Producer durability under a broker crash: several configs, one fault, an audit each.

``through_leader_fault`` is the single run: one producer, one leader fault, one audit.

``crash_runs`` repeats an experiment: fresh topics (one per producer config, replication
factor 3, placed alike so that one broker leads the same partitions of every topic), a
producer per config streaming to its topic at the same time, and one ``FaultSchedule``
that SIGKILLs that broker mid-stream and starts it again a moment later. Every config sees
the same crash at the same instant. Each topic is then read back and audited
(``labkit.analysis.audit``). The victim changes from run to run; ``audit.crash_totals`` and
``audit.lost_messages`` tabulate the runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labkit.analysis import broken_promises
from labkit.analysis.audit import EVIDENCE_COLUMNS, AuditResult, audit
from labkit.cluster import Cluster, unique_name
from labkit.cluster.faults import FaultSchedule, leader_fault, wait_healthy
from labkit.workloads import client_logs
from labkit.workloads.producer import Background, ProducerRun, run_producer, validate_config
from labkit.workloads.readers import read_topic

ACKS_CONFIGS: dict[str, dict[str, Any]] = {
    "acks=0": {"acks": "0", "enable.idempotence": False},
    "acks=1": {"acks": "1", "enable.idempotence": False},
    "acks=all": {"acks": "all", "enable.idempotence": False},
    "acks=all + idempotence": {"acks": "all", "enable.idempotence": True},
}
"""The producer configs notebook 20 compares (idempotence needs acks=all)."""


@dataclass
class LeaderCrash:
    """One repetition of the experiment.

    Attributes:
        number: 0, 1, ... in the order run.
        victim: the broker killed.
        led: partitions the victim led when it was killed, per topic.
        topics: config label -> topic written.
        events: the ``FaultSchedule.events`` of this run.
        producers: config label -> the ``ProducerRun``.
        audits: config label -> the ``AuditResult`` of its topic.
    """

    number: int
    victim: int
    led: dict[str, list[int]]
    topics: dict[str, str]
    events: pd.DataFrame
    producers: dict[str, ProducerRun]
    audits: dict[str, AuditResult]

    @property
    def kill_wall(self) -> float:
        """Wall-clock time (epoch seconds) the kill began."""
        return self.events[self.events.action == "kill"].wall.iloc[0].timestamp()


@dataclass
class LeaderFault:
    """One producer run through a fault of its partition's leader, and its audit.

    Attributes:
        producer: the ``ProducerRun``.
        events: the ``FaultSchedule.events`` of the fault.
        started_wall: the schedule's t = 0 (epoch seconds).
        audit: the ``AuditResult`` of the topic read back after the cluster healed.
    """

    producer: ProducerRun
    events: pd.DataFrame
    started_wall: float
    audit: AuditResult


def through_leader_fault(cluster: Cluster, topic: str, config: dict[str, Any], fault: str,
                         fault_at: float, fault_length: float, duration: float, rate: float,
                         label: str, client_log_file: str | None = None,
                         timeout: float = 120) -> LeaderFault:
    """Stream to ``topic`` while the leader of its partition 0 breaks; then read back and audit.

    Args:
        cluster: a local cluster (fault injection).
        topic: an existing topic, written by this run only.
        config: the producer config.
        fault: "pause", "kill" or "restart" (``faults.leader_fault``).
        fault_at: seconds into the run the leader breaks.
        fault_length: seconds until it is resumed or started again.
        duration: seconds the producer sends.
        rate: messages per second it offers.
        label: the run's label.
        client_log_file: capture the producer's librdkafka debug log to this file.
        timeout: seconds the cluster may take to heal (full ISRs) after the run.

    Returns:
        The ``LeaderFault``.
    """
    steps = leader_fault(fault, topic, 0, fault_at, fault_length)
    with FaultSchedule(cluster, steps) as schedule:
        run = run_producer(cluster, config, duration=duration, rate=rate, topics=[topic],
                           label=label, client_log_file=client_log_file)
    wait_healthy(cluster, [topic], timeout=timeout)
    return LeaderFault(run, schedule.events, schedule.started_wall,
                       audit(run.records, read_topic(cluster, topic), run.run_id))


def placement(brokers: list[int], victim: int, partitions: int) -> list[list[int]]:
    """Replica lists (preferred leader first) for an RF 3 topic led partly by ``victim``.

    ``victim`` leads partitions 0, 3, 6, ...; the other brokers lead the rest in turn.

    Raises:
        ValueError: fewer than 3 brokers, or ``victim`` is not one of them.
    """
    if len(brokers) < 3 or victim not in brokers:
        raise ValueError(f"placement needs 3 brokers including victim {victim!r}; "
                         f"brokers are {brokers}")
    ring = sorted(brokers)
    start = ring.index(victim)
    ring = ring[start:] + ring[:start]
    return [[ring[(i + k) % len(ring)] for k in range(3)] for i in range(partitions)]


def crash_runs(cluster: Cluster, configs: dict[str, dict[str, Any]], runs: int, rate: float,
               duration: float, fault_at: float, down_s: float, partitions: int = 3,
               topic_config: dict[str, str] | None = None,
               common: dict[str, Any] | None = None,
               client_log_dir: str | os.PathLike | None = None,
               timeout: float = 180) -> list[LeaderCrash]:
    """Run the crash experiment ``runs`` times; return what each run did and found.

    Args:
        cluster: a local cluster of 3 brokers (fault injection).
        configs: label -> producer config; each gets its own topic and producer.
        runs: repetitions; run ``r`` kills broker ``brokers[r % 3]``.
        rate: messages per second each producer offers.
        duration: seconds each producer sends (its flush then waits for the rest).
        fault_at: seconds into the run the victim is killed (SIGKILL).
        down_s: seconds it stays dead before it is started again on its data.
        partitions: partitions per topic.
        topic_config: topic configs (e.g. ``{"min.insync.replicas": "2"}``).
        common: settings added to every producer config (e.g. ``linger.ms``).
        client_log_dir: capture every producer's librdkafka debug log to a file in this
            directory (``run<N>-<config>.log``), shown by ``crash_evidence``; None captures
            nothing.
        timeout: seconds a restart, or the wait for full ISRs after a run, may take (a
            restarted broker on a busy 2-core machine can need over a minute).

    Raises:
        ValueError: a bad argument or producer config, before anything runs.
    """
    if runs < 1 or not configs:
        raise ValueError(f"runs={runs!r} must be >= 1 and configs must name at least one config")
    if not 0 <= fault_at < duration or down_s < 0:
        raise ValueError(f"fault_at={fault_at!r} must lie in [0, duration={duration!r}) and "
                         f"down_s={down_s!r} must be >= 0")
    full = {label: {**(common or {}), **config} for label, config in configs.items()}
    for config in full.values():
        validate_config(dict(config))
    brokers = sorted(cluster.brokers)
    placement(brokers, brokers[0], partitions)  # checks the broker count
    return [_one_run(cluster, number, brokers[number % len(brokers)], full, rate, duration,
                     fault_at, down_s, partitions, topic_config, client_log_dir, timeout)
            for number in range(runs)]


def _one_run(cluster, number, victim, configs, rate, duration, fault_at, down_s, partitions,
             topic_config, client_log_dir, timeout) -> LeaderCrash:
    assignment = placement(sorted(cluster.brokers), victim, partitions)
    topics = {label: unique_name(f"crash-{number}") for label in configs}
    for topic in topics.values():
        cluster.create_topic(topic, partitions, config=topic_config,
                             replica_assignment=assignment)
    # A new partition answers acks=all slowly until its followers fetch: warm every topic.
    run_producer(cluster, {"acks": "all"}, messages=50 * partitions * len(topics),
                 keys="sequential", topics=list(topics.values()), label="warm-up")
    table = cluster.partitions(list(topics.values()))
    led = {topic: sorted(table[(table.topic == topic) & (table.leader == victim)].partition)
           for topic in topics.values()}
    steps = [(fault_at, "kill", victim), (fault_at + down_s, "restart", "last")]
    logs = {label: (client_logs.file_for(client_log_dir, label, f"run{number}-") if client_log_dir
                     else None)
            for label in configs}
    streams = {label: Background(cluster, config, rate=rate, topics=[topics[label]],
                                 label=label, client_log_file=logs[label])
               for label, config in configs.items()}
    with FaultSchedule(cluster, steps, step_timeout=timeout) as schedule, \
            contextlib.ExitStack() as running:
        for stream in streams.values():
            running.enter_context(stream)
        time.sleep(duration)
        for stream in streams.values():
            stream.stop()
    wait_healthy(cluster, list(topics.values()), timeout=timeout)
    producers = {label: stream.run for label, stream in streams.items()}
    audits = {label: audit(producers[label].records, read_topic(cluster, topics[label]),
                           producers[label].run_id)
              for label in configs}
    return LeaderCrash(number, victim, led, topics, schedule.events, producers, audits)


def crash_evidence(runs: list[LeaderCrash], labels, problems=None) -> list:
    """What a broken promise of some configs shows: their problem messages and the kills.

    The producers' log lines around those messages come too, if they were captured.

    Args:
        runs: the runs of ``crash_runs``.
        labels: config labels, e.g. ``["acks=all", "acks=all + idempotence"]``.
        problems: keep only these problems (see ``broken_promises.for_producer``).

    Returns:
        A list for ``findings.check(evidence=...)``: every copy of every lost, duplicated or
        reordered message (columns config, run, victim, led_by_victim, then
        ``audit.EVIDENCE_COLUMNS``; sent_s and acked_s relative to that run's kill); the
        faults of every run (``events``); and, when the producers captured their debug
        logs (``crash_runs(client_log_dir=...)``), one text excerpt per producer and run
        of the lines around those messages (``broken_promises.excerpt``).
    """
    tables, logs = [], []
    for run in runs:
        for label in labels:
            shown = broken_promises.for_producer(run.audits[label], run.producers[label],
                                                 run.kill_wall, problems)
            table = shown[0]
            if table.empty:
                continue
            led = run.led[run.topics[label]]
            tables.append(table.assign(config=label, run=run.number, victim=run.victim,
                                       led_by_victim=table.partition.isin(led)))
            logs += [f"Run {run.number}, {text}" for text in shown[1:]]
    columns = ["config", "run", "victim", "led_by_victim", *EVIDENCE_COLUMNS]
    table = (pd.concat(tables, ignore_index=True)[columns] if tables
             else pd.DataFrame(columns=columns))
    return [table, events(runs), *logs]


def events(runs: list[LeaderCrash]) -> pd.DataFrame:
    """The faults of every run, one row each: run, victim, action, broker, wall (UTC)."""
    return pd.concat([run.events.assign(run=run.number, victim=run.victim)
                      [["run", "victim", "action", "broker", "wall"]] for run in runs],
                     ignore_index=True)
