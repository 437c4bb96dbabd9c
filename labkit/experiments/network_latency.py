"""Producer settings under a real network: inter-broker delay, and a slow client link.

The experiments of notebook 06, for a ``LocalCluster(network=True)`` (every connection
passes the lab network, ``labkit.cluster.network``):

- ``delay_sweep``: each producer setting at a fixed rate under a one-way delay added
  between every two brokers (the replication path: followers fetch from leaders), one delay
  after another. The controller's links and the clients' links are left alone: no produce
  request waits for the controller, and the client sits beside the brokers, so whatever
  changes is what replication across the delay costs.
- ``compression_on_link``: each ``compression.type`` at a fixed rate, with every client's
  link to every broker rate-limited each way (``link_mbit``); bytes on the wire are counted
  by the network itself (``Network.connections()``, by the producer's ``client.id``).

Both are built on ``measure`` (one producer run under one set of network rules), which the
control panel (``labkit.viz.widgets.network_panel``) calls too. Every run gets a
``client.id`` of its own, and the network is healed in a ``finally``, so a failed run
leaves no rule behind. They return records; the numbers come from
``labkit.analysis.network_costs``. No plots here.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

from labkit.analysis import network_costs
from labkit.cluster import (
    LAB_TOPICS,
    Cluster,
    FaultInjectionUnavailable,
    retrying,
    unique_name,
    wait_until,
)
from labkit.cluster import network as lab_network
from labkit.workloads.producer import ProducerRun, run_producer, validate_config

SLACK_S = lab_network.TIMER_SLACK_S
"""How much sooner than its due time the lab network may pass bytes on (its timer slack):
every bound computed from a rule allows for it."""

STATS_INTERVAL_MS = 250
"""librdkafka statistics interval of every run (produce requests per broker, bytes sent)."""

SETTLE_TIMEOUT_S = 30.0
"""The longest a run waits, after its flush, for the log to hold its messages."""


def network_of(cluster: Cluster) -> lab_network.Network | None:
    """The cluster's lab network, or None if it has none.

    An external cluster has none, nor has a local one started without ``network=True``.
    """
    try:
        return cluster.network
    except FaultInjectionUnavailable:
        return None


def _check_network(cluster: Cluster) -> lab_network.Network:
    network = network_of(cluster)
    if network is None:
        raise FaultInjectionUnavailable(
            f"these experiments need the lab network, and {cluster.describe()} has none: use "
            "labkit.connect(network=True) or LocalCluster(brokers=3, network=True)")
    return network


def _is_number(value, low: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value >= low


def _check_number(name: str, value, low: float) -> float:
    if not _is_number(value, low):
        raise ValueError(f"{name}={value!r} must be a number >= {low:g}")
    return float(value)


def _check_values(name: str, values, low: float) -> list[float]:
    values = list(values)
    if not values or not all(_is_number(v, low) for v in values):
        raise ValueError(f"{name}={values!r} must be a non-empty list of numbers >= {low:g}")
    return [float(v) for v in values]


@dataclass
class Measured:
    """One producer run under one set of network rules.

    Attributes:
        run: the ``ProducerRun`` (its config carries the ``client.id`` it ran under).
        delay_ms: the one-way delay between every two brokers during the run.
        link_mbit: the rate limit of every client<->broker link, or None.
        connections: the run's connections through the network (``Network.connections()``
            rows of its client.id) with ``read``, the UTC time they were read (once the run
            had settled: every byte they count had passed by then).
        links: the network's rules during the run (``Network.links()``).
        settled_s: seconds from the end of the run's flush until the topics' high
            watermarks had grown by its delivered messages (NaN: not within
            ``SETTLE_TIMEOUT_S``). Near 0 when deliveries waited for the log; with
            ``acks=0`` a delivery is only a write to the socket, and the brokers may still
            be working through the run's requests.
    """

    run: ProducerRun
    delay_ms: float
    link_mbit: float | None
    connections: pd.DataFrame
    links: pd.DataFrame
    settled_s: float = math.nan


def _written(cluster: Cluster, partitions: list[TopicPartition]) -> int:
    """The sum of the partitions' high watermarks: messages the log holds for readers."""
    specs = {tp: OffsetSpec.latest() for tp in partitions}

    def ask() -> int:
        found = cluster.admin().list_offsets(specs, request_timeout=10)
        return sum(future.result(15).offset for future in found.values())

    return retrying(ask, 30)


def measure(cluster: Cluster, config: dict[str, Any], *, delay_ms: float = 0,
            link_mbit: float | None = None, label: str | None = None, topics=LAB_TOPICS,
            **workload: Any) -> Measured:
    """Run a producer once with a delay between every two brokers and a client link limit.

    The rules are set before the producer starts. After its flush the run waits (up to
    ``SETTLE_TIMEOUT_S``) until the topics' high watermarks hold its delivered messages, so
    that the next run does not meet this one's backlog in the brokers (an ``acks=0`` run's
    flush returns once its messages are on the socket). Then the whole network is healed,
    whatever happened.

    Args:
        cluster: a cluster with the lab network.
        config: producer settings (a ``client.id`` is added, unique to the run).
        delay_ms: one-way delay added between every two brokers, each way (0: none).
        link_mbit: rate limit of every client's link to every broker, each way (None: none).
        label: the run's name (default: from its config).
        topics: topics to write.
        **workload: other ``run_producer`` arguments (messages, rate, size, ...).

    Returns:
        What ran and what the network saw (``Measured``).

    Raises:
        FaultInjectionUnavailable: the cluster has no lab network.
        ValueError: a bad setting, delay, rate limit or workload argument.
    """
    network = _check_network(cluster)
    settings = validate_config(dict(config))
    delay_ms = _check_number("delay_ms", delay_ms, 0)
    if link_mbit is not None:
        link_mbit = _check_number("link_mbit", link_mbit, 1e-3)
    client_id = settings.setdefault("client.id", unique_name("lab06"))
    workload.setdefault("stats_interval_ms", STATS_INTERVAL_MS)
    brokers = network.brokers
    partitions = [TopicPartition(topic, p) for topic in topics
                  for p in sorted(cluster.topic_metadata(topic).partitions)]
    try:
        for a, b in itertools.combinations(brokers, 2):
            if delay_ms:
                network.delay(a, b, delay_ms)
        if link_mbit is not None:
            for broker in brokers:
                network.bandwidth("clients", broker, link_mbit)
        links = network.links()
        before = _written(cluster, partitions)
        run = run_producer(cluster, settings, label=label, topics=topics, **workload)
        flushed = time.perf_counter()
        try:
            wait_until(lambda: _written(cluster, partitions) - before >= run.delivered,
                       SETTLE_TIMEOUT_S, "the log to hold the run's messages", interval=0.05)
            settled_s = time.perf_counter() - flushed
        except TimeoutError:
            settled_s = math.nan
        read = pd.Timestamp.now(tz="UTC")
        connections = network.connections()
    finally:
        network.heal()
    mine = connections[connections.client_id == client_id].assign(read=read)
    return Measured(run, delay_ms, link_mbit, mine.reset_index(drop=True), links, settled_s)


@dataclass
class DelaySweep:
    """Every setting under every inter-broker delay (``delay_sweep``).

    Attributes:
        measured: (delay_ms, setting name) -> its ``Measured``, in run order.
        rate: the msg/s every run offered.
        table: ``network_costs.delay_table`` of the runs.
        floor: ``network_costs.round_trip_floor`` of the table (the network's slack
            allowed for).
        requests: ``network_costs.request_bounds`` of the runs: each ``acks=all`` run's
            produce requests per broker against what the delay lets a connection complete.
    """

    measured: dict[tuple[float, str], Measured]
    rate: float
    table: pd.DataFrame
    floor: pd.DataFrame
    requests: pd.DataFrame

    @property
    def runs(self) -> dict[tuple[float, str], ProducerRun]:
        """(delay_ms, setting name) -> its ``ProducerRun``."""
        return {key: m.run for key, m in self.measured.items()}


def delay_sweep(cluster: Cluster, settings: dict[str, dict[str, Any]], delays_ms, *,
                rate: float, seconds: float, size: int = 100,
                topics=LAB_TOPICS, warmup_s: float = 1.0, progress: bool = False
                ) -> DelaySweep:
    """Run every setting at ``rate`` under each one-way delay between every two brokers.

    A warm-up comes first: every setting for ``warmup_s`` at the rate with no delay, not
    recorded, so that the first measured runs do not pay for the brokers' cold start. Then,
    for each delay in turn, every setting runs for ``seconds`` (``rate * seconds`` messages,
    flushed: a setting that falls behind takes longer).

    Args:
        cluster: a cluster with the lab network.
        settings: setting name -> producer config.
        delays_ms: one-way delays (ms), e.g. ``[0, 1, 5, 20]``.
        rate: msg/s every run offers.
        seconds: how long each run offers them.
        size: value bytes per message.
        topics: topics to write.
        warmup_s: how long each setting runs in the warm-up (0: no warm-up).
        progress: show a progress bar over the runs.

    Returns:
        The ``DelaySweep``.

    Raises:
        FaultInjectionUnavailable: the cluster has no lab network.
        ValueError: a bad setting, delay or workload argument (before anything runs).
    """
    _check_network(cluster)
    delays = _check_values("delays_ms", delays_ms, 0)
    if len(set(delays)) < len(delays):
        raise ValueError(f"delays_ms={list(delays_ms)!r} names a delay twice; give each once")
    for config in settings.values():
        validate_config(config)
    messages = max(1, round(rate * seconds))
    if warmup_s:
        for config in settings.values():
            measure(cluster, config, messages=max(1, round(rate * warmup_s)), rate=rate,
                    size=size, topics=topics)
    steps = [(d, name) for d in delays for name in settings]
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="delay x setting", unit="run", leave=False)
    measured = {(d, name): measure(cluster, settings[name], delay_ms=d, label=name,
                                   messages=messages, rate=rate, size=size, topics=topics)
                for d, name in steps}
    runs = {key: m.run for key, m in measured.items()}
    table = network_costs.delay_table(runs, settled_s={k: m.settled_s for k, m in measured.items()})
    return DelaySweep(measured, rate, table,
                      network_costs.round_trip_floor(table, SLACK_S * 1000),
                      network_costs.request_bounds(
                          runs, {key: m.connections for key, m in measured.items()},
                          SLACK_S * 1000))


@dataclass
class LinkRun:
    """Every codec over a rate-limited client link (``compression_on_link``).

    Attributes:
        measured: codec -> its ``Measured``.
        link_mbit: the rate limit of every client<->broker link, each way.
        rate: the msg/s every run offered.
        table: ``network_costs.link_table`` of the runs.
        bounds: ``network_costs.link_bounds`` of their connections (the network's slack
            allowed for).
    """

    measured: dict[str, Measured]
    link_mbit: float
    rate: float
    table: pd.DataFrame
    bounds: pd.DataFrame


def compression_on_link(cluster: Cluster, codecs, *, link_mbit: float, rate: float,
                        seconds: float, size: int = 200, config: dict[str, Any] | None = None,
                        topics=LAB_TOPICS) -> LinkRun:
    """Run each ``compression.type`` at ``rate`` with every client link limited to ``link_mbit``.

    Each run offers ``rate * seconds`` JSON-like messages (they compress as application
    events do) and is flushed: a codec whose bytes do not fit through the link takes longer.

    Args:
        cluster: a cluster with the lab network.
        codecs: ``compression.type`` values, e.g. ``["none", "lz4", "zstd"]``.
        link_mbit: rate limit of every client's link to every broker, each way (Mbit/s).
        rate: msg/s every run offers.
        seconds: how long each run offers them.
        size: value bytes per message.
        config: other producer settings shared by every run.
        topics: topics to write.

    Returns:
        The ``LinkRun``.

    Raises:
        FaultInjectionUnavailable: the cluster has no lab network.
        ValueError: a bad codec, rate limit or workload argument (before anything runs).
    """
    _check_network(cluster)
    configs = {codec: {**(config or {}), "compression.type": codec} for codec in codecs}
    for codec_config in configs.values():
        validate_config(codec_config)
    link_mbit = _check_number("link_mbit", link_mbit, 1e-3)
    messages = max(1, round(rate * seconds))
    measured = {codec: measure(cluster, codec_config, link_mbit=link_mbit, label=codec,
                               messages=messages, rate=rate, size=size, topics=topics)
                for codec, codec_config in configs.items()}
    connections = {codec: m.connections for codec, m in measured.items()}
    runs = {codec: m.run for codec, m in measured.items()}
    return LinkRun(measured, link_mbit, rate,
                   network_costs.link_table(runs, connections, link_mbit),
                   network_costs.link_bounds(connections, link_mbit, SLACK_S))
