"""Replication under broker loss and network partitions, measured.

Three scripted experiments for a local cluster of 3 brokers: min.insync.replicas, unclean
leader election and a leader cut off from its cluster. Each streams producers through a
sequence of faults whose steps wait for the cluster to react (an ISR to shrink, a leader to
be elected) instead of for fixed times, so that a slow machine stretches a run rather than
breaks it. A ``PartitionWatch`` samples leaders and ISRs throughout.

- ``min_isr_outage``: two of the three brokers die under producers with different
  ``acks``, then come back one after the other (notebook 22).
- ``unclean_election``: the follower of a replication-factor-2 partition is shut down,
  the leader then crashes and the out-of-sync follower comes back, on a topic that
  forbids unclean leader election and on one that allows it, side by side (notebook 24).
- ``leader_cut_off``: a partition leader loses the controller and its followers while the
  producers still reach it, then the network heals (notebook 25; needs the lab network).

Each returns a ``ReplicationRun``: what was done and seen, on one clock (seconds since the
run started), and the phases to cut the producer runs at (``labkit.analysis.availability``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

from labkit.analysis import availability, broken_promises, broker_logs
from labkit.analysis.audit import AuditResult, audit
from labkit.cluster import (
    CONTROLLER_ID,
    Cluster,
    FaultInjectionUnavailable,
    client_log,
    unique_name,
    wait_until,
)
from labkit.cluster.faults import FaultRecorder, PartitionWatch, heal, wait_healthy
from labkit.workloads import client_logs
from labkit.workloads.producer import Background, ProducerRun, run_producer, validate_config
from labkit.workloads.readers import Tail, read_topic


@dataclass
class ReplicationRun:
    """What one replication experiment did and saw.

    Times ending in ``_s`` and the column ``t`` are seconds since the run started
    (``started_wall``); ``wall`` columns are epoch seconds (``events.wall`` a UTC Timestamp,
    as in ``FaultSchedule.events``, for ``plots.fault_markers``).

    Attributes:
        topics: label -> the topic that label's producer wrote.
        producers: label -> its ``ProducerRun``.
        audits: label -> the audit of its messages in its topic, read back once the cluster
            was whole again.
        events: the faults applied, one row each (``faults.FAULT_EVENT_COLUMNS``; ``at_s`` =
            ``t_s``).
        milestones: states the cluster was seen to reach: name, t_s, wall.
        phase_starts: ``(t_s, name)`` pairs in time order, for ``availability.phases``.
        partitions: the ``PartitionWatch`` samples (``faults.PARTITION_SAMPLE_COLUMNS``)
            with a column t added.
        seen: a live reader's rows (``readers.Tail``), or None if none ran.
        truncations: what brokers cut from their logs of these topics
            (``broker_logs.TRUNCATION_COLUMNS``), where the experiment read their logs
            (``leader_cut_off``: the old leader's); else None.
        started_wall: epoch seconds at t = 0.
        ended_s: when the producers were told to stop.
        min_insync: the topics' min.insync.replicas.
    """

    topics: dict[str, str]
    producers: dict[str, ProducerRun]
    audits: dict[str, AuditResult]
    events: pd.DataFrame
    milestones: pd.DataFrame
    phase_starts: list[tuple[float, str]]
    partitions: pd.DataFrame
    seen: pd.DataFrame | None
    started_wall: float
    ended_s: float
    min_insync: int
    truncations: pd.DataFrame | None = None

    def t(self, milestone: str) -> float:
        """When a milestone was reached (seconds since the start).

        Raises:
            KeyError: no such milestone (the message lists them).
        """
        rows = self.milestones[self.milestones.name == milestone]
        if rows.empty:
            raise KeyError(f"no milestone {milestone!r}; there are "
                           f"{', '.join(self.milestones.name)}")
        return float(rows.t_s.iloc[0])

    def event(self, action: str, broker: int) -> pd.Series:
        """The first event of ``action`` on ``broker`` (t_s: began, done_s: returned).

        Raises:
            KeyError: no such event.
        """
        rows = self.events[(self.events.action == action) & (self.events.broker == broker)]
        if rows.empty:
            raise KeyError(f"no {action} of broker {broker} in this run")
        return rows.iloc[0]

    def records(self, label: str) -> pd.DataFrame:
        """A producer's records with t_send and t_delivered on the run's clock.

        With a live reader, a column t_seen says when it first read each message (NaN:
        never, see ``availability.visibility``).
        """
        run = self.producers[label]
        shift = run.started_wall - self.started_wall
        rec = run.records.assign(t_send=run.records.t_send + shift,
                                 t_delivered=run.records.t_delivered + shift)
        if self.seen is not None:
            rec = availability.visibility(rec, self.seen, run.run_id, self.started_wall)
        return rec

    def acked_between(self, label: str, start_s: float, end_s: float) -> pd.DataFrame:
        """``label``'s acknowledged records whose delivery report came in [start_s, end_s)."""
        rec = self.records(label)
        return rec[(rec.error == "") & (rec.t_delivered >= start_s) & (rec.t_delivered < end_s)]

    def phases(self, time_column: str = "t_send") -> pd.DataFrame:
        """Every producer's messages per phase (``availability.phases``), one block per label.

        Returns:
            Index (label, phase number from 1); the columns of ``availability.phases``
            (error columns a label never met are 0).
        """
        tables = {label: availability.phases(self.records(label), self.phase_starts,
                                             self.ended_s, time_column)
                  for label in self.producers}
        table = pd.concat(tables, names=["label", "number"]).fillna(0)
        table = table.rename(index=lambda n: n + 1 if isinstance(n, int) else n, level=1)
        counts = [c for c in table.columns if c not in ("phase", "start_s", "end_s")]
        return table.astype({c: int for c in counts})

    def read_delays(self) -> pd.DataFrame:
        """How long each producer's messages took to become readable, by phase.

        See ``availability.read_delays``: phases of acknowledgement; needs the live reader.

        Raises:
            ValueError: the run had no live reader.
        """
        if self.seen is None:
            raise ValueError("this run had no live reader (seen is None)")
        tables = {label: availability.read_delays(self.records(label), self.phase_starts,
                                                  self.ended_s)
                  for label in self.producers}
        table = pd.concat(tables, names=["label", "number"])
        return table.rename(index=lambda n: n + 1 if isinstance(n, int) else n, level=1)

    def evidence(self, label: str, problems=None) -> list:
        """What a broken promise about ``label``'s messages shows.

        Args:
            label: the producer.
            problems: keep only these problems (see ``broken_promises.for_producer``).

        Returns:
            A list for ``findings.check(evidence=...)``: every copy of every lost,
            duplicated or reordered message (``audit.EVIDENCE_COLUMNS``, times on the
            run's clock, as the events'), the faults, and the producer's debug log lines
            around those messages if it captured them.
        """
        shown = broken_promises.for_producer(self.audits[label], self.producers[label],
                                             self.started_wall, problems)
        return [shown[0], self.events[["action", "broker", "t_s", "done_s"]], *shown[1:]]


class _Script:
    """Apply faults one after another (a ``FaultRecorder``), and record the states waited for."""

    def __init__(self, cluster: Cluster, timeout: float, first_phase: str):
        self.timeout = timeout
        self.faults = FaultRecorder(cluster, timeout)
        self.started_wall = self.faults.started_wall
        self.milestones: list[tuple[str, float, float]] = []
        self.phase_starts: list[tuple[float, str]] = [(0.0, first_phase)]
        self.ended_s = float("nan")

    def now(self) -> float:
        return self.faults.elapsed()

    def act(self, action: str, broker: int, options: dict | None = None) -> float:
        """Apply ``action`` to ``broker`` (``options``: a network action's); return its start."""
        return self.faults.act(action, broker, options=options)["t_s"]

    def phase(self, name: str, t_s: float | None = None) -> None:
        self.phase_starts.append((self.now() if t_s is None else t_s, name))

    def reach(self, name: str, check: Callable[[], bool], what: str) -> float:
        """Wait until ``check()`` holds; record and return when it was seen to."""
        wait_until(check, self.timeout, what, interval=0.1)
        return self.mark(name)

    def mark(self, name: str) -> float:
        """Record that milestone ``name`` is reached now; return when."""
        t_s = self.now()
        self.milestones.append((name, t_s, time.time()))
        return t_s

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        events = self.faults.events
        milestones = pd.DataFrame(self.milestones, columns=["name", "t_s", "wall"])
        return events, milestones


def _stop_and_heal(cluster: Cluster, script: _Script, streams, timeout: float) -> None:
    """End a scripted run: note when it ended, stop every stream, bring every broker back."""
    script.ended_s = script.now()
    for stream in streams.values():
        stream.stop()
    heal(cluster, timeout)


def _isrs(cluster: Cluster, topics) -> pd.DataFrame:
    return cluster.partitions(list(topics))


def _check_local(cluster: Cluster, brokers: list[int]) -> None:
    if not cluster.local:
        raise FaultInjectionUnavailable(
            f"this experiment breaks brokers and needs a cluster labkit runs; this is "
            f"{cluster.describe()} (unset KAFKA_BOOTSTRAP_SERVERS to use the local cluster)")
    nodes = sorted(cluster.nodes)
    if len(nodes) != 3 or any(b not in nodes for b in brokers):
        raise ValueError(f"this experiment needs a cluster of 3 brokers including {brokers}; "
                         f"brokers are {nodes}")


def check_seconds(**seconds: float) -> None:
    """Raise ``ValueError`` naming the first of ``seconds`` that is not a number >= 0."""
    for name, value in seconds.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name}={value!r} must be seconds >= 0")


def _streams(cluster: Cluster, configs: dict[str, dict[str, Any]], topics: dict[str, str],
             rate: float, running: contextlib.ExitStack,
             client_log_dir: str | os.PathLike | None = None) -> dict[str, Background]:
    return {label: running.enter_context(
                Background(cluster, config, rate=rate, topics=[topics[label]], label=label,
                           client_log_file=(client_logs.file_for(client_log_dir, label)
                                            if client_log_dir else None)))
            for label, config in configs.items()}


def _first_ack_after(stream: Background, timeout: float) -> None:
    """Wait up to ``timeout`` for ``stream``'s next acknowledgement; never raise."""
    before = stream.deliveries.acknowledged()
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: stream.deliveries.acknowledged() > before, timeout,
                   "an acknowledgement", interval=0.05)


def _warm_up(cluster: Cluster, topics) -> None:
    # A new partition answers acks=all slowly until its followers fetch: write to it first.
    run_producer(cluster, {"acks": "all"}, messages=20 * len(topics), topics=list(topics),
                 label="warm-up")


def _finish(cluster, script, configs, streams, topics, watch, tail, min_insync,
            timeout) -> ReplicationRun:
    producers = {label: streams[label].run for label in configs}
    events, milestones = script.frames()
    found = read_topic(cluster, sorted(set(topics.values())))
    seen = None
    if tail is not None:
        # Everything in the topic becomes readable once the cluster is whole: let the live
        # reader get to the end before it stops.
        wait_until(lambda: len(tail.rows) >= len(found), timeout,
                   f"the live reader to read all {len(found)} records")
        seen = tail.rows
    audits = {label: audit(run.records, found[found.topic == topics[label]], run.run_id)
              for label, run in producers.items()}
    timeline = watch.timeline
    return ReplicationRun(
        topics=dict(topics), producers=producers, audits=audits, events=events,
        milestones=milestones, phase_starts=script.phase_starts,
        partitions=timeline.assign(t=timeline.wall - script.started_wall), seen=seen,
        started_wall=script.started_wall, ended_s=script.ended_s, min_insync=min_insync)


def min_isr_outage(cluster: Cluster, configs: dict[str, dict[str, Any]], rate: float,
                   down=(2, 3), partitions: int = 3, min_insync: int = 2,
                   baseline_s: float = 1.0, hold_s: float = 3.0, tail_s: float = 2.0,
                   timeout: float = 180,
                   client_log_dir: str | os.PathLike | None = None) -> ReplicationRun:
    """Kill two of the three brokers under one producer per config, then start them again.

    Every producer writes its own stream to one new topic (replication factor 3,
    ``min.insync.replicas=min_insync``, leaders spread over the brokers), audited per
    run; a live reader (``readers.Tail``) follows the topic to see when each message
    becomes readable. The sequence, each step waiting for the one before:

    1. ``baseline_s`` with every broker up;
    2. SIGKILL each broker of ``down``; wait until every partition's ISR is the survivor
       alone (the controller fences a dead broker when its session times out);
    3. ``hold_s`` more with the ISR below min.insync.replicas;
    4. restart ``down[0]``; wait until every ISR has ``min_insync`` members again;
    5. restart the other; wait until the cluster is whole (``faults.wait_healthy``);
    6. ``tail_s`` more; then the producers stop (and flush).

    The phases: healthy; brokers dead, not yet fenced; ISR below min; broker restarting;
    min ISR met; whole again. If a step fails, every broker is started again before the
    error is raised.

    Args:
        cluster: a local cluster of 3 brokers.
        configs: label -> producer config (e.g. acks=all and acks=1 with retries=0).
        rate: messages per second each producer offers.
        down: the two brokers killed, restarted in this order.
        partitions: partitions of the topic.
        min_insync: the topic's min.insync.replicas.
        baseline_s: seconds before the first kill.
        hold_s: seconds with the ISR below min before the first restart.
        tail_s: seconds after the cluster is whole again.
        timeout: seconds any one wait (fencing, a restart, catching up) may take.
        client_log_dir: capture each producer's librdkafka debug log to a file in this
            directory (see ``log_file``), shown by ``ReplicationRun.evidence``; None
            captures nothing.

    Raises:
        ValueError: a bad argument or producer config, before anything starts.
        FaultInjectionUnavailable: not a cluster labkit runs.
    """
    down = [int(b) for b in down]
    _check_local(cluster, down)
    survivors = sorted(set(cluster.nodes) - set(down))
    if len(down) != 2 or len(survivors) != 1:
        raise ValueError(f"down={down!r} must name two different brokers of "
                         f"{sorted(cluster.nodes)}")
    if not configs or rate <= 0 or not 1 <= min_insync <= 3:
        raise ValueError(f"need producer configs, rate > 0 (got {rate!r}) and min_insync "
                         f"from 1 to 3 (got {min_insync!r})")
    check_seconds(baseline_s=baseline_s, hold_s=hold_s, tail_s=tail_s)
    for config in configs.values():
        validate_config(dict(config))
    topic = unique_name("min-isr")
    cluster.create_topic(topic, partitions, 3, {"min.insync.replicas": str(min_insync)})
    _warm_up(cluster, [topic])
    topics = {label: topic for label in configs}
    first, rest = down[0], down[1:]
    with PartitionWatch(cluster, [topic], interval=0.25) as watch, \
            Tail(cluster, [topic]) as tail:
        with contextlib.ExitStack() as running:
            streams = _streams(cluster, configs, topics, rate, running, client_log_dir)
            script = _Script(cluster, timeout, "healthy")
            try:
                time.sleep(baseline_s)
                kills = [script.act("kill", broker) for broker in down]  # when each began
                script.phase(f"brokers {down[0]} and {down[1]} dead, not yet fenced", kills[0])
                script.phase("ISR below min", script.reach(
                    "ISR shrank",
                    lambda: all(isr == survivors for isr in _isrs(cluster, [topic]).isr),
                    f"every ISR of {topic} to shrink to {survivors}"))
                time.sleep(hold_s)
                script.phase(f"broker {first} restarting", script.act("restart", first))
                script.phase("min ISR met", script.reach(
                    "min ISR met",
                    lambda: all(len(isr) >= min_insync for isr in _isrs(cluster, [topic]).isr),
                    f"every ISR of {topic} to have {min_insync} members again"))
                for broker in rest:
                    script.act("restart", broker)
                wait_healthy(cluster, [topic], timeout)
                script.phase("whole again", script.mark("whole again"))
                time.sleep(tail_s)
            finally:
                _stop_and_heal(cluster, script, streams, timeout)
        wait_healthy(cluster, [topic], timeout)
        return _finish(cluster, script, configs, streams, topics, watch, tail, min_insync,
                       timeout)


UNCLEAN_LABELS = {"false": "unclean=false", "true": "unclean=true"}
"""The producer labels of ``unclean_election``, by unclean.leader.election.enable value."""


def unclean_election(cluster: Cluster, config: dict[str, Any], rate: float, leader: int = 1,
                     follower: int = 2, baseline_s: float = 1.0, hold_s: float = 3.0,
                     tail_s: float = 2.0, timeout: float = 180,
                     client_log_dir: str | os.PathLike | None = None) -> ReplicationRun:
    """Lose the last in-sync replica and bring back an out-of-sync one, twice side by side.

    Two new topics with one partition on ``[leader, follower]`` (the leader first),
    min.insync.replicas=1, one with unclean.leader.election.enable=false and one with
    true, each written by its own producer (labels in ``UNCLEAN_LABELS``) with ``config``.
    Both go through the same sequence, each step waiting for the one before:

    1. ``baseline_s`` with every broker up;
    2. shut the follower down cleanly; wait until both ISRs are the leader alone;
    3. ``hold_s``: writes acknowledged now are on the leader only;
    4. SIGKILL the leader, then start the follower again (it registers once its old
       session has timed out);
    5. wait until the controller has fenced the leader: the unclean=true topic is led by
       the follower, the unclean=false topic by nobody;
    6. ``hold_s`` in that state, counted from the unclean=true producer's first
       acknowledgement after the election (its metadata refresh can take seconds; waited
       for up to ``timeout``, and if none comes the run goes on and shows it);
    7. restart the leader; wait until the cluster is whole (``faults.wait_healthy``);
    8. ``tail_s`` more; then the producers stop (and flush).

    If a step fails, every broker is started again before the error is raised.

    Args:
        cluster: a local cluster of 3 brokers.
        config: producer config of both producers (e.g. acks=all).
        rate: messages per second each producer offers.
        leader: the broker leading both partitions (it crashes).
        follower: the other replica (shut down first, back after the crash).
        baseline_s: seconds before the follower is shut down.
        hold_s: seconds of writes the leader alone holds, and seconds the partitions stay
            in the state of step 5.
        tail_s: seconds after the cluster is whole again.
        timeout: seconds any one wait may take.
        client_log_dir: capture each producer's librdkafka debug log to a file in this
            directory (see ``log_file``); None captures nothing.

    Raises:
        ValueError: a bad argument or producer config, before anything starts.
        FaultInjectionUnavailable: not a cluster labkit runs.
    """
    _check_local(cluster, [leader, follower])
    if leader == follower or rate <= 0:
        raise ValueError(f"leader={leader!r} and follower={follower!r} must differ and "
                         f"rate={rate!r} must be > 0")
    check_seconds(baseline_s=baseline_s, hold_s=hold_s, tail_s=tail_s)
    validate_config(dict(config))
    topics = {label: unique_name(f"unclean-{value}")
              for value, label in UNCLEAN_LABELS.items()}
    for value, label in UNCLEAN_LABELS.items():
        cluster.create_topic(topics[label], 1, config={
            "min.insync.replicas": "1", "unclean.leader.election.enable": value},
            replica_assignment=[[leader, follower]])
    _warm_up(cluster, topics.values())
    clean, unclean = topics[UNCLEAN_LABELS["false"]], topics[UNCLEAN_LABELS["true"]]
    configs = {label: config for label in UNCLEAN_LABELS.values()}

    def leaders() -> dict[str, int]:
        table = _isrs(cluster, [clean, unclean])
        return dict(zip(table.topic, table.leader, strict=True))

    with PartitionWatch(cluster, list(topics.values()), interval=0.25) as watch:
        with contextlib.ExitStack() as running:
            streams = _streams(cluster, configs, topics, rate, running, client_log_dir)
            script = _Script(cluster, timeout, "healthy")
            try:
                time.sleep(baseline_s)
                script.phase(f"broker {follower} shut down", script.act("shutdown", follower))
                script.reach(
                    f"only {leader} in sync",
                    lambda: all(isr == [leader] for isr in _isrs(cluster, topics.values()).isr),
                    f"both ISRs to shrink to [{leader}]")
                time.sleep(hold_s)
                script.phase(f"broker {leader} dead", script.act("kill", leader))
                script.act("restart", follower)
                script.phase(f"broker {follower} elected for unclean=true", script.reach(
                    "unclean leader elected",
                    lambda: leaders() == {clean: -1, unclean: follower},
                    f"broker {follower} to lead {unclean} and nobody {clean}"))
                _first_ack_after(streams[UNCLEAN_LABELS["true"]], timeout)
                time.sleep(hold_s)
                script.phase(f"broker {leader} restarting", script.act("restart", leader))
                wait_healthy(cluster, topics.values(), timeout)
                script.phase("whole again", script.mark("whole again"))
                time.sleep(tail_s)
            finally:
                _stop_and_heal(cluster, script, streams, timeout)
        wait_healthy(cluster, topics.values(), timeout)
        return _finish(cluster, script, configs, streams, topics, watch, None, 1, timeout)


def topic_configs(cluster: Cluster, topics, keys) -> pd.DataFrame:
    """The effective values of topic configs, and where each comes from.

    Args:
        cluster: where the topics are.
        topics: topic names.
        keys: config names, e.g. ``["unclean.leader.election.enable"]``.

    Returns:
        One row per topic and key: topic, key, value, source (Kafka's ConfigSource name:
        DYNAMIC_TOPIC_CONFIG when the topic sets it, STATIC_BROKER_CONFIG or
        DEFAULT_CONFIG when it inherits it, ...).

    Raises:
        ValueError: an unknown topic or config name.
    """
    resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in topics]
    rows = []
    for resource, future in cluster.admin().describe_configs(resources).items():
        try:
            entries = future.result(30)
        except KafkaException as exc:
            raise ValueError(f"cannot describe topic {resource.name!r}: "
                             f"{exc.args[0].str()}") from None
        for key in keys:
            if key not in entries:
                raise ValueError(f"topic {resource.name!r} has no config {key!r}")
            entry = entries[key]
            rows.append((resource.name, key, entry.value, ConfigSource(entry.source).name))
    return pd.DataFrame(rows, columns=["topic", "key", "value", "source"])


_UNCLEAN_LINE = re.compile(
    r"^\[(?P<time>[^\]]+)\] INFO \[QuorumController id=\d+\] UNCLEAN partition change for "
    r"(?P<topic>.+)-(?P<partition>\d+) with topic ID \S+: (?P<change>.*) "
    r"\(org\.apache\.kafka\.controller\.ReplicationControlManager\)$")


def unclean_changes(cluster: Cluster, topics) -> pd.DataFrame:
    """The partition changes the controller logged as UNCLEAN for ``topics``.

    Read from the dedicated controller's log (local 3-broker clusters); empty otherwise.

    Returns:
        Columns time (the log's local time stamp), topic, partition, change (the
        controller's own summary, e.g. ``isr: [] -> [2], leader: -1 -> 2, ...``).
    """
    columns = ["time", "topic", "partition", "change"]
    if not cluster.local or getattr(cluster, "controller", None) is None:
        return pd.DataFrame(columns=columns)
    wanted = set(topics)
    rows = []
    for line in cluster.log_tail(CONTROLLER_ID, 1_000_000).splitlines():
        match = _UNCLEAN_LINE.match(line)
        if match and match["topic"] in wanted:
            rows.append((match["time"], match["topic"], int(match["partition"]),
                         match["change"]))
    return pd.DataFrame(rows, columns=columns)


WATCH_CLIENT = "labkit-watch"
"""The client id of ``leader_cut_off``'s observers, cut off from the old leader with its cluster."""


def leader_cut_off(cluster: Cluster, configs: dict[str, dict[str, Any]], rate: float,
                   leader: int = 1, baseline_s: float = 1.0, hold_s: float = 3.0,
                   tail_s: float = 2.0, timeout: float = 180,
                   client_log_dir: str | os.PathLike | None = None) -> ReplicationRun:
    """Cut a partition leader off from the controller and its followers, not from producers.

    Each producer (one per config) writes its own new topic of one partition on all three
    brokers, ``leader`` first, min.insync.replicas=2. The sequence, each step waiting for
    the one before:

    1. ``baseline_s`` with the network whole;
    2. ``network.isolate(leader, from_=[controller, the followers, WATCH_CLIENT])``: the
       leader's heartbeats and its followers' fetches stop; the producers still reach it;
    3. wait until the controller has fenced it and elected a follower (seen by observers
       that are cut off from the old leader too, so they see the cluster's view and not the
       old leader's own: two brokers now call themselves the partition's leader);
    4. ``hold_s`` more, with two leaders;
    5. heal the network; wait until the cluster is whole (the old leader has rejoined as a
       follower: ``faults.wait_healthy``);
    6. ``tail_s`` more; then the producers stop (and flush).

    The phases: healthy; leader cut off; new leader elected; healed. If a step fails, the
    network is healed before the error is raised.

    Args:
        cluster: a local cluster of 3 brokers with the lab network.
        configs: label -> producer config (e.g. acks=1, and acks=all with idempotence).
        rate: messages per second each producer offers.
        leader: the broker that leads both partitions and is cut off.
        baseline_s: seconds before the cut.
        hold_s: seconds with two leaders before the network heals.
        tail_s: seconds after the cluster is whole again.
        timeout: seconds any one wait may take.
        client_log_dir: capture each producer's librdkafka debug log to a file in this
            directory; None captures nothing.

    Raises:
        ValueError: a bad argument or producer config, before anything starts.
        FaultInjectionUnavailable: not a cluster labkit runs, or one without the network.
    """
    _check_local(cluster, [leader])
    network = cluster.network  # raises at once without the lab network
    if not configs or rate <= 0:
        raise ValueError(f"need producer configs and rate > 0 (got {rate!r})")
    check_seconds(baseline_s=baseline_s, hold_s=hold_s, tail_s=tail_s)
    for config in configs.values():
        validate_config(dict(config))
    followers = sorted(set(cluster.nodes) - {leader})
    topics = {label: unique_name("cut-off") for label in configs}
    for topic in topics.values():
        cluster.create_topic(topic, 1, config={"min.insync.replicas": "2"},
                             replica_assignment=[[leader, *followers]])
    _warm_up(cluster, topics.values())
    observer = AdminClient(cluster.client_config(logger=client_log, **{
        "client.id": WATCH_CLIENT, "socket.timeout.ms": 1000,
        "allow.auto.create.topics": False}))

    def leaders() -> set[int]:
        found = observer.list_topics(timeout=1).topics
        return {p.leader for t in topics.values() if t in found
                for p in found[t].partitions.values()}

    cut = {"from_": ["controller", *followers, WATCH_CLIENT]}
    with PartitionWatch(cluster, list(topics.values()), interval=0.25,
                        client_id=WATCH_CLIENT) as watch:
        with contextlib.ExitStack() as running:
            streams = _streams(cluster, configs, topics, rate, running, client_log_dir)
            script = _Script(cluster, timeout, "healthy")
            try:
                time.sleep(baseline_s)
                script.phase(f"broker {leader} cut off", script.act("isolate", leader, cut))
                script.phase("new leader elected", script.reach(
                    "new leader elected",
                    lambda: (seen := leaders()) and all(b in followers for b in seen),
                    f"the controller to elect one of {followers}"))
                time.sleep(hold_s)
                script.phase("healed", script.act("heal", leader))
                wait_healthy(cluster, topics.values(), timeout)
                script.mark("whole again")
                time.sleep(tail_s)
            finally:
                network.heal()
                _stop_and_heal(cluster, script, streams, timeout)
        wait_healthy(cluster, topics.values(), timeout)
        run = _finish(cluster, script, configs, streams, topics, watch, None, 2, timeout)
    run.truncations = broker_logs.truncations(cluster.log_tail(leader, 20_000),
                                              topics.values())
    return run
