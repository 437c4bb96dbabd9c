"""Clients cut off by the lab network, measured (notebook 26; needs the lab network).

Two scripted experiments for a local cluster of 3 brokers behind the lab network
(``LocalCluster(network=True)``):

- ``producer_cut_off``: a producer loses its link to one partition's leader (a pulled cable)
  for longer than its ``message.timeout.ms``, while the other partitions' leaders stay
  reachable; what its delivery callback is told and when, and delivery after the heal.
- ``member_cut_off``: one member of a consumer group loses its link to the group
  coordinator (both ways, or one way only), so its session expires on the coordinator; the
  others take its partitions, and after the heal its uncommitted work is redone.

Each heals the network in ``finally`` and returns a record of DataFrames; times ending in
``_s`` are seconds since the run started (``started_wall``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from labkit.cluster import Cluster, FaultInjectionUnavailable, unique_name
from labkit.cluster.faults import FaultRecorder, wait_healthy
from labkit.experiments.replication import check_seconds
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import Background, ProducerRun, validate_config

DIRECTIONS = {"both": "both ways", "to-coordinator": "member to coordinator only",
              "from-coordinator": "coordinator to member only"}
"""Which way ``member_cut_off`` cuts, with its name for people."""


def _check(cluster: Cluster, broker: int | None = None) -> None:
    if not cluster.local or not getattr(cluster, "network_control", None):
        raise FaultInjectionUnavailable(
            f"cutting a client off needs a local cluster behind the lab network "
            f"(LocalCluster(network=True)); this is {cluster.describe()}")
    if len(cluster.nodes) != 3 or (broker is not None and broker not in cluster.nodes):
        raise ValueError(f"this experiment needs 3 brokers including broker {broker}; "
                         f"brokers are {sorted(cluster.nodes)}")


@dataclass
class ProducerCut:
    """What ``producer_cut_off`` did and saw.

    Attributes:
        run: the producer's ``ProducerRun`` (its own clock: ``run.started_wall``).
        records: ``run.records`` with t_send and t_delivered on this run's clock.
        topic: the topic written (3 partitions, one led by each broker).
        leaders: partition -> its leader (unchanged by the cut: only the client is cut off).
        broker: the broker the producer was cut off from.
        cut_partitions: the partitions it leads.
        client_id: the producer's client.id, the endpoint cut.
        message_timeout_ms: the producer's message.timeout.ms.
        events: the network actions (``faults.FAULT_EVENT_COLUMNS``).
        cut_s, healed_s, ended_s: when the link was cut, healed, and the producer stopped.
        started_wall: epoch seconds at t = 0.
    """

    run: ProducerRun
    records: pd.DataFrame
    topic: str
    leaders: dict[int, int]
    broker: int
    cut_partitions: list[int]
    client_id: str
    message_timeout_ms: int
    events: pd.DataFrame
    cut_s: float
    healed_s: float
    ended_s: float
    started_wall: float


def producer_cut_off(cluster: Cluster, rate: float = 100, broker: int = 1,
                     message_timeout_ms: int = 3000, baseline_s: float = 1.0,
                     hold_s: float = 5.0, tail_s: float = 3.0,
                     client_id: str = "writer-cut-off", config: dict | None = None,
                     timeout: float = 120) -> ProducerCut:
    """Cut a producer off from one partition's leader for a while, then heal.

    A new topic of 3 partitions, replication factor 3, each broker leading one; a producer
    (uniform keys, so every partition gets messages) writes at ``rate``. The sequence:
    ``baseline_s``; ``network.partition(broker, client_id)`` (drop: silence, nothing
    refused); ``hold_s``; heal that link; ``tail_s``; the producer stops and flushes.

    Args:
        cluster: a local cluster of 3 brokers with the lab network.
        rate: messages per second.
        broker: the leader the producer loses.
        message_timeout_ms: the producer's message.timeout.ms (set ``hold_s`` above it to
            see messages given up).
        baseline_s: seconds before the cut.
        hold_s: seconds the link stays cut.
        tail_s: seconds after the heal.
        client_id: the producer's client.id.
        config: more producer settings.
        timeout: seconds the final flush may take.

    Raises:
        ValueError: a bad argument or producer config, before anything starts.
        FaultInjectionUnavailable: not a local cluster behind the lab network.
    """
    _check(cluster, broker)
    check_seconds(baseline_s=baseline_s, hold_s=hold_s, tail_s=tail_s)
    if rate <= 0 or not isinstance(message_timeout_ms, int) or message_timeout_ms <= 0:
        raise ValueError(f"rate={rate!r} and message_timeout_ms={message_timeout_ms!r} "
                         "must be positive (message_timeout_ms an int)")
    config = {"acks": "all", "linger.ms": 5, **(config or {}),
              "message.timeout.ms": message_timeout_ms, "client.id": client_id}
    validate_config(dict(config))
    brokers = sorted(cluster.nodes)
    assignment = [brokers[i:] + brokers[:i] for i in range(3)]  # partition i led by brokers[i]
    topic = unique_name("client-cut")
    cluster.create_topic(topic, 3, replica_assignment=assignment)
    wait_healthy(cluster, [topic], timeout)
    leaders = {p: cluster.leader(topic, p) for p in range(3)}
    network = cluster.network
    recorder = FaultRecorder(cluster, timeout)
    events = {}
    with Background(cluster, config, rate=rate, topics=[topic], keys="uniform",
                    flush_timeout=timeout, label=client_id) as stream:
        try:
            time.sleep(baseline_s)
            events["cut"] = recorder.act("partition", broker, options={"b": client_id})
            time.sleep(hold_s)
            events["heal"] = recorder.act("heal", broker, options={"b": client_id})
            time.sleep(tail_s)
        finally:
            network.heal(broker, client_id)
            ended_s = recorder.elapsed()
            stream.stop()
    run = stream.run
    shift = run.started_wall - recorder.started_wall
    records = run.records.assign(t_send=run.records.t_send + shift,
                                 t_delivered=run.records.t_delivered + shift)
    return ProducerCut(
        run=run, records=records, topic=topic, leaders=leaders, broker=broker,
        cut_partitions=[p for p, b in leaders.items() if b == broker], client_id=client_id,
        message_timeout_ms=message_timeout_ms, events=recorder.events,
        cut_s=events["cut"]["t_s"], healed_s=events["heal"]["t_s"], ended_s=ended_s,
        started_wall=recorder.started_wall)


@dataclass
class MemberCut:
    """What ``member_cut_off`` did and saw.

    Attributes:
        group_id: the group.
        member: the member cut off (its name; its client.id is ``client_id``).
        client_id: its client.id.
        coordinator: the group coordinator's broker id.
        direction: one of ``DIRECTIONS``.
        run: the producer feeding the topic.
        messages: ``ConsumerGroup.messages()``, t on this run's clock.
        group_events: ``ConsumerGroup.events()``, t on this run's clock.
        events: the network actions (``faults.FAULT_EVENT_COLUMNS``).
        partitions: every partition of the topic ("topic-p").
        final: member -> partitions once the group settled after the heal.
        session_timeout_ms: the members' session.timeout.ms.
        cut_s, healed_s, settled_s: the cut, the heal, and when the group was seen settled.
        started_wall: epoch seconds at t = 0.
        group_started_wall: the group's own t = 0 (for ``plots.group_timeline``).
    """

    group_id: str
    member: str
    client_id: str
    coordinator: int
    direction: str
    run: ProducerRun
    messages: pd.DataFrame
    group_events: pd.DataFrame
    events: pd.DataFrame
    partitions: list[str]
    final: dict[str, list[str]]
    session_timeout_ms: int
    cut_s: float
    healed_s: float
    settled_s: float
    started_wall: float
    group_started_wall: float


def _described_coordinator(cluster: Cluster, group_id: str, timeout: float = 10) -> int:
    """The broker id of ``group_id``'s coordinator, as the admin client describes the group."""
    future = cluster.admin().describe_consumer_groups([group_id])[group_id]
    return int(future.result(timeout).coordinator.id)


def member_cut_off(cluster: Cluster, rate: float = 100, members: int = 3,
                   partitions: int = 6, direction: str = "both",
                   session_timeout_ms: int = 6000, baseline_s: float = 2.0,
                   hold_s: float = 10.0, tail_s: float = 2.0,
                   timeout: float = 120) -> MemberCut:
    """Cut one consumer group member off from its coordinator, then heal.

    A new topic (``partitions``, RF 3) fed by a producer at ``rate``; a group of ``members``
    (auto commit, ``session.timeout.ms``, heartbeat every second) reads it. Once it is
    stable: ``baseline_s``; the first member's link to the coordinator is cut (drop) in
    ``direction``; ``hold_s`` (longer than the session, so the coordinator expires it);
    heal; wait until the group settles and has processed every acknowledged message;
    ``tail_s``.

    Args:
        cluster: a local cluster of 3 brokers with the lab network.
        rate: messages per second produced.
        members: group members.
        partitions: partitions of the topic.
        direction: one of ``DIRECTIONS``.
        session_timeout_ms: the members' session.timeout.ms (the broker allows >= 6000).
        baseline_s: seconds of steady consumption before the cut.
        hold_s: seconds the link stays cut.
        tail_s: seconds after the group settled.
        timeout: seconds any one wait may take.

    Raises:
        ValueError: a bad argument, before anything starts.
        FaultInjectionUnavailable: not a local cluster behind the lab network.
    """
    _check(cluster)
    check_seconds(baseline_s=baseline_s, hold_s=hold_s, tail_s=tail_s)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}; use one of {', '.join(DIRECTIONS)}")
    if rate <= 0 or members < 2 or partitions < members:
        raise ValueError(f"need rate > 0 (got {rate!r}), members >= 2 (got {members!r}) and "
                         f"partitions >= members (got {partitions!r})")
    topic = unique_name("member-cut")
    cluster.create_topic(topic, partitions, 3)
    wait_healthy(cluster, [topic], timeout)
    network = cluster.network
    config = {"session.timeout.ms": session_timeout_ms, "heartbeat.interval.ms": 1000}
    group = ConsumerGroup(cluster, [topic], members=members, config=config)
    recorder = FaultRecorder(cluster, timeout)
    member = "m1"
    client_id = f"{group.group_id}-{member}"
    with group:
        with Background(cluster, {"acks": "all", "linger.ms": 5}, rate=rate, topics=[topic],
                        keys="uniform", label="feed") as stream:
            group.wait_for_stable(timeout)
            coordinator = _described_coordinator(cluster, group.group_id)
            one_way = direction != "both"
            a, b = ((coordinator, client_id) if direction == "from-coordinator"
                    else (client_id, coordinator))
            try:
                time.sleep(baseline_s)
                cut = recorder.act("partition", coordinator, options={"b": client_id},
                                   do=lambda: network.partition(a, b, one_way=one_way))["t_s"]
                time.sleep(hold_s)
                healed = recorder.act("heal", coordinator, options={"b": client_id},
                                      do=lambda: network.heal(coordinator, client_id))["t_s"]
            finally:
                network.heal(coordinator, client_id)
            final = group.wait_for_stable(timeout)
            settled = recorder.elapsed()
            stream.stop()
        group.wait_for_run(stream.run, timeout)  # every acknowledged message read
        time.sleep(tail_s)
    shift = group.started_wall - recorder.started_wall
    return MemberCut(
        group_id=group.group_id, member=member, client_id=client_id, coordinator=coordinator,
        direction=direction, run=stream.run,
        messages=group.messages().assign(t=lambda f: f.t + shift),
        group_events=group.events().assign(t=lambda f: f.t + shift),
        events=recorder.events, partitions=group.partitions(), final=final,
        session_timeout_ms=session_timeout_ms, cut_s=cut, healed_s=healed, settled_s=settled,
        started_wall=recorder.started_wall, group_started_wall=group.started_wall)
