"""Message size, measured (notebook 09): throughput per size, and every size limit hit.

- ``throughput_by_size``: the same producer flat out at each message size, for a fixed
  byte budget per size (labkit's ``run_producer`` with librdkafka's statistics on).
- ``producer_limits``: the limits a producer meets, each probed just below and just above:
  the producer's own ``message.max.bytes`` (librdkafka refuses in ``produce()``), a topic's
  ``max.message.bytes`` and the broker's ``message.max.bytes`` (the broker refuses, the
  delivery report says so); then messages each under a topic's limit, sent in batches that
  are not (default batching, ``batch.size``, the producer's ``message.max.bytes``, lz4).
  Every probe carries a lab mark, and the probe topics are read back at the end.
- ``consumer_limits``: a consumer whose ``max.partition.fetch.bytes``, ``fetch.max.bytes``
  or ``receive.message.max.bytes`` is below a message's size, reading two messages, one
  just under the limit and one just over it.

The largest size that passes a limit is found by bisection on what really happens (a
``produce()`` that raises or not; a delivery report), not computed from a formula. Each
returns a record of DataFrames (``PROBE_COLUMNS``, ``CONSUMER_PROBE_COLUMNS``). No math,
no plots.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource

from labkit.analysis import metrics
from labkit.cluster import Cluster, client_log, unique_name
from labkit.cluster.base import LAB_TOPIC_PARTITIONS
from labkit.workloads import marks
from labkit.workloads.producer import (
    ProducerRun,
    run_producer,
    setting_in_effect,
    validate_config,
)
from labkit.workloads.readers import read_topic

RUN_PRODUCER_MAX_SIZE = 1_000_000
"""The largest message ``run_producer`` sends (its own check)."""

PROBE_COLUMNS = [
    "step", "limit", "limit_bytes", "who", "config", "probe", "value_bytes", "msg_id",
    "topic", "outcome", "error", "text", "latency_ms",
]
"""One row per producer probe: step (which limit), limit (its name and value), limit_bytes,
who (who enforces it), config (the producer's settings that matter, for people), probe
("just below", "just above", "search" for a bisection step, or a batch probe's name),
value_bytes, msg_id (the probe's lab mark), topic, outcome ("acknowledged", "refused by
produce()", "failed in the delivery report"), error (librdkafka's error name, "" if none),
text (its message), latency_ms (produce() to delivery report; NaN when refused at once)."""

CONSUMER_PROBE_COLUMNS = [
    "step", "case", "limit", "limit_bytes", "config", "probe", "value_bytes", "outcome", "read_s",
    "error", "text", "callback_errors", "poll_errors",
]
"""One row per consumer probe: step, case (a name of ``consumer_cases``), limit, limit_bytes,
config, probe ("just below",
"just above"), value_bytes, outcome ("read", "not read", "consumer refused"), read_s
(seconds from assign() until this message came out of poll(); NaN if it did not), error
(the error names the application saw, poll()'s first), text (the first text of each:
"poll(): ..." and "error callback: ..."),
callback_errors (errors the error callback got), poll_errors (errors poll() returned)."""


@dataclass
class SizeRuns:
    """The producer flat out at each message size.

    Attributes:
        runs: one ``ProducerRun`` per size, in order, labelled by size ("1 KiB").
        sizes: the value sizes in bytes.
        messages: messages sent per size.
        budget_bytes: the byte budget per size.
        config: the producer's config.
        topics: the topic each size wrote (deleted after its run).
    """

    runs: list[ProducerRun]
    sizes: list[int]
    messages: list[int]
    budget_bytes: int
    config: dict[str, str]
    topics: list[str]


def throughput_by_size(cluster: Cluster, sizes: list[int], budget_bytes: int,
                       min_messages: int = 20, config: dict[str, Any] | None = None,
                       stats_interval_ms: int = 1000,
                       partitions: int = LAB_TOPIC_PARTITIONS) -> SizeRuns:
    """Send ``budget_bytes`` of values flat out at each size, one run per size.

    Each run sends ``max(min_messages, budget_bytes // size)`` messages to a new topic of
    its own (``partitions``, the cluster's default replication), deleted after the run.

    Args:
        cluster: where to produce.
        sizes: value sizes in bytes, each from the 24-byte lab mark to 1,000,000.
        budget_bytes: value bytes to send per size.
        min_messages: the fewest messages a run sends.
        config: producer settings (librdkafka's defaults otherwise).
        stats_interval_ms: librdkafka statistics interval.
        partitions: partitions of the topic.

    Raises:
        ValueError: a bad size, budget or config, before anything starts.
    """
    sizes = list(sizes)
    if not sizes or any(not isinstance(s, int) or not marks.MARK_SIZE <= s
                        <= RUN_PRODUCER_MAX_SIZE for s in sizes):
        raise ValueError(f"sizes={sizes!r} must be a non-empty list of integers from "
                         f"{marks.MARK_SIZE} to {RUN_PRODUCER_MAX_SIZE} bytes")
    if not isinstance(budget_bytes, int) or budget_bytes <= 0:
        raise ValueError(f"budget_bytes={budget_bytes!r} must be a positive integer")
    if not isinstance(min_messages, int) or min_messages < 1:
        raise ValueError(f"min_messages={min_messages!r} must be a positive integer")
    settings = validate_config(dict(config or {}))
    counts = [max(min_messages, budget_bytes // s) for s in sizes]
    runs, topics = [], []
    for size, count in zip(sizes, counts, strict=True):
        # A topic per size: each run starts on empty partitions, and its bytes go at once.
        topic = unique_name("message-size")
        cluster.create_topic(topic, partitions)
        topics.append(topic)
        try:
            runs.append(run_producer(cluster, settings, messages=count, size=size,
                                     topics=[topic], stats_interval_ms=stats_interval_ms,
                                     label=metrics.size_label(size)))
        finally:
            cluster.delete_topic(topic)
    return SizeRuns(runs=runs, sizes=sizes, messages=counts, budget_bytes=budget_bytes,
                    config=settings, topics=topics)


class _Prober:
    """Sends marked messages of a given size and records what became of each one."""

    def __init__(self, cluster: Cluster, timeout: float):
        self.cluster = cluster
        self.timeout = timeout
        self.run_id = marks.new_run_id()
        self.rows: list[dict] = []
        self._next = 0

    def value(self, size: int, filler: str = "random") -> tuple[int, bytes]:
        """A new msg_id and a value of ``size`` bytes starting with its mark."""
        msg_id, self._next = self._next, self._next + 1
        body = size - marks.MARK_SIZE
        fill = (np.random.default_rng(msg_id).bytes(body) if filler == "random"
                else b" " * body)
        return msg_id, marks.mark(self.run_id, msg_id, time.time_ns()) + fill

    def producer(self, config: dict[str, Any]) -> Producer:
        return Producer(self.cluster.client_config(**config, logger=client_log))

    def send(self, producer: Producer, topic: str, sizes: list[int], filler: str = "random",
             **row: Any) -> list[dict]:
        """Produce one message per size (in one go, so they may share a batch), flush.

        Returns:
            The rows recorded (``PROBE_COLUMNS``), one per message.
        """
        rows = []
        for size in sizes:
            msg_id, value = self.value(size, filler)
            entry = {**row, "value_bytes": size, "msg_id": msg_id, "topic": topic,
                     "outcome": "", "error": "", "text": "", "latency_ms": float("nan")}

            def report(err, msg, entry=entry):
                entry["latency_ms"] = msg.latency() * 1000
                if err is None:
                    entry["outcome"] = "acknowledged"
                else:
                    entry.update(outcome="failed in the delivery report", error=err.name(),
                                 text=err.str())
            try:
                producer.produce(topic, value, on_delivery=report)
            except KafkaException as exc:
                error = exc.args[0]
                entry.update(outcome="refused by produce()", error=error.name(),
                             text=error.str())
            rows.append(entry)
        left = producer.flush(self.timeout)
        for entry in rows:
            if not entry["outcome"]:
                entry.update(outcome="unreported", error="unreported",
                             text=f"no delivery report within {self.timeout:g} s ({left} left)")
        self.rows += rows
        return rows

    def largest(self, passes: Callable[[int], bool], low: int, high: int) -> int:
        """The largest size that ``passes``, given that ``low`` passes and ``high`` fails.

        Raises:
            RuntimeError: ``low`` does not pass or ``high`` does.
        """
        if not passes(low) or passes(high):
            raise RuntimeError(f"the search needs {low} to pass and {high} to fail")
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if passes(middle) else (low, middle)
        return low


@dataclass
class ProducerLimits:
    """What ``producer_limits`` sent and what became of it.

    Attributes:
        probes: every message sent (``PROBE_COLUMNS``), bisection steps included.
        read_back: the probe topics read back (``labkit.workloads.readers.READ_COLUMNS``),
            this run's messages only.
        run_id: the lab mark's run id of every probe.
        producer_limit: the producer's message.max.bytes in effect (librdkafka's default
            unless ``config`` set it).
        produce_largest: the largest value ``produce()`` accepted under it.
        topic_limit: the small topic's max.message.bytes.
        broker_limit: max.message.bytes of a topic created without one (the broker's
            message.max.bytes).
        broker_limit_source: where the broker says that value comes from (e.g.
            "DEFAULT_CONFIG").
        topics: step -> the topic it wrote.
    """

    probes: pd.DataFrame
    read_back: pd.DataFrame
    run_id: str
    producer_limit: int
    produce_largest: int
    topic_limit: int
    broker_limit: int
    broker_limit_source: str
    topics: dict[str, str] = field(default_factory=dict)


def _topic_limit(cluster: Cluster, topic: str, timeout: float) -> tuple[int, str]:
    future = cluster.admin().describe_configs([ConfigResource("topic", topic)])
    entry = next(iter(future.values())).result(timeout)["max.message.bytes"]
    try:
        name = ConfigSource(entry.source).name
    except ValueError:
        name = str(entry.source)
    return int(entry.value), name


def producer_limits(cluster: Cluster, topic_limit: int = 65536, batch_count: int = 3,
                    batch_linger_ms: int = 100, search_broker: bool = True,
                    timeout: float = 60) -> ProducerLimits:
    """Probe every producer-side size limit just below and just above it.

    Steps (the ``step`` column):

    - "producer": librdkafka's ``message.max.bytes`` (its default): the largest value
      ``produce()`` accepts is found by bisection (the accepted ones purged, never sent);
      then that value and one byte more are sent to a topic of default limits.
    - "topic": a topic with ``max.message.bytes=topic_limit``, a producer with its own
      limit far above; bisection on the delivery reports, one message at a time
      (``linger.ms=0``); then the largest that passed and one byte more.
    - "batch": ``batch_count`` messages of 60 % of ``topic_limit`` each (each under it),
      produced at once with ``linger.ms=batch_linger_ms`` so they wait together, with
      librdkafka's default batching, with ``batch.size=topic_limit``, and with the
      producer's ``message.max.bytes=topic_limit``; then one message of 3 x
      ``topic_limit`` with ``compression.type=lz4``, once of spaces and once of random bytes.
    - "broker": a topic created without ``max.message.bytes``, so the broker's
      ``message.max.bytes`` applies, and a producer allowed twice that; bisection on the
      delivery reports (``search_broker``; else the two sizes just around that limit minus
      the framing the "topic" step measured), then the largest that passed and one more.

    Args:
        cluster: where to produce (3 brokers or 1: the topics get the default RF).
        topic_limit: the small topic's max.message.bytes.
        batch_count: messages per batch probe.
        batch_linger_ms: their linger.ms.
        search_broker: bisect on ~1 MB messages for the broker's limit (about 20 of them).
        timeout: seconds a flush or a read may take.

    Raises:
        ValueError: a bad argument, before anything starts.
    """
    if not isinstance(topic_limit, int) or not 4096 <= topic_limit <= 500_000:
        raise ValueError(f"topic_limit={topic_limit!r} must be an integer from 4096 to 500000 "
                         "bytes (the probes go to 3 times it)")
    if not isinstance(batch_count, int) or not 2 <= batch_count <= 100:
        raise ValueError(f"batch_count={batch_count!r} must be an integer from 2 to 100")
    validate_config({"linger.ms": batch_linger_ms})
    prober = _Prober(cluster, timeout)
    topics = {step: unique_name(f"size-{step}") for step in ("producer", "topic", "broker")}
    topics["batch"] = topics["topic"]
    cluster.create_topic(topics["producer"], 1)
    cluster.create_topic(topics["topic"], 1, config={"max.message.bytes": str(topic_limit)})
    cluster.create_topic(topics["broker"], 1)
    closers = []
    try:
        # The producer's own limit: produce() says yes or no at once; purge what it took.
        limit = int(setting_in_effect({}, "message.max.bytes"))
        holding = prober.producer({"linger.ms": 60_000})
        closers.append(holding)

        def taken(size: int) -> bool:
            try:
                holding.produce(topics["producer"], prober.value(size)[1])
            except KafkaException:
                return False
            holding.purge(in_flight=False)
            holding.poll(0)
            return True
        largest = prober.largest(taken, marks.MARK_SIZE, limit + 1)
        plain = prober.producer({"linger.ms": 0})
        closers.append(plain)
        row = {"step": "producer", "limit": f"producer message.max.bytes={limit:,}",
               "limit_bytes": limit, "who": "producer (librdkafka)",
               "config": "librdkafka's defaults, linger.ms=0"}
        for probe, size in (("just below", largest), ("just above", largest + 1)):
            prober.send(plain, topics["producer"], [size], probe=probe, **row)

        # A topic's max.message.bytes: the broker checks what arrives.
        row = {"step": "topic", "limit": f"topic max.message.bytes={topic_limit:,}",
               "limit_bytes": topic_limit, "who": "broker",
               "config": f"producer message.max.bytes={limit:,}, linger.ms=0"}

        def delivered(producer, step_row, topic):
            def passes(size: int) -> bool:
                sent = prober.send(producer, topic, [size], probe="search", **step_row)
                return sent[0]["outcome"] == "acknowledged"
            return passes
        below = prober.largest(delivered(plain, row, topics["topic"]), marks.MARK_SIZE,
                               topic_limit + 1)
        framing = topic_limit - below
        for probe, size in (("just below", below), ("just above", below + 1)):
            prober.send(plain, topics["topic"], [size], probe=probe, **row)

        # Messages each under the topic's limit, batched together.
        each = int(topic_limit * 0.6)
        batch_row = {"step": "batch", "limit": row["limit"], "limit_bytes": topic_limit,
                     "who": "broker"}
        waiting = {"linger.ms": batch_linger_ms}
        for name, extra in (("default batching", {}),
                            ("batch.size", {"batch.size": topic_limit}),
                            ("producer message.max.bytes", {"message.max.bytes": topic_limit})):
            producer = prober.producer({**waiting, **extra})
            closers.append(producer)
            config = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}"
                               for k, v in {**waiting, **extra}.items())
            prober.send(producer, topics["batch"], [each] * batch_count, probe=name,
                        config=config, **batch_row)
        squeezing = prober.producer({"linger.ms": 0, "compression.type": "lz4"})
        closers.append(squeezing)
        for filler, name in (("spaces", "lz4, spaces"), ("random", "lz4, random bytes")):
            prober.send(squeezing, topics["batch"], [3 * topic_limit], filler=filler,
                        probe=name, config="compression.type=lz4, linger.ms=0", **batch_row)

        # The broker's message.max.bytes, as a topic without its own limit inherits it.
        broker_limit, source = _topic_limit(cluster, topics["broker"], timeout)
        roomy = prober.producer({"linger.ms": 0, "message.max.bytes":
                                 min(2 * broker_limit, 1_000_000_000)})
        closers.append(roomy)
        row = {"step": "broker", "limit": f"broker message.max.bytes={broker_limit:,}",
               "limit_bytes": broker_limit, "who": "broker",
               "config": f"producer message.max.bytes={2 * broker_limit:,}, linger.ms=0"}
        if search_broker:
            top = prober.largest(delivered(roomy, row, topics["broker"]),
                                 broker_limit - 4 * framing, broker_limit + 1)
        else:
            top = broker_limit - framing
        for probe, size in (("just below", top), ("just above", top + 1)):
            prober.send(roomy, topics["broker"], [size], probe=probe, **row)

        read_back = read_topic(cluster, sorted(set(topics.values())), timeout=timeout)
    finally:
        for producer in closers:
            producer.purge()
            producer.flush(5)
        _delete(cluster, set(topics.values()))
    read_back = read_back[read_back.run_id == prober.run_id].reset_index(drop=True)
    return ProducerLimits(
        probes=pd.DataFrame(prober.rows, columns=PROBE_COLUMNS), read_back=read_back,
        run_id=prober.run_id, producer_limit=limit, produce_largest=largest,
        topic_limit=topic_limit, broker_limit=broker_limit, broker_limit_source=source,
        topics=topics)


@dataclass
class ConsumerLimits:
    """What ``consumer_limits`` read.

    Attributes:
        reads: one row per case and message (``CONSUMER_PROBE_COLUMNS``).
        limit: the consumer limit probed, in bytes.
        sizes: "just below" / "just above" -> the value sizes written.
        topic: the topic read (one partition: the message under the limit first).
        stall_s: how long each case waited for a message before giving up.
    """

    reads: pd.DataFrame
    limit: int
    sizes: dict[str, int]
    topic: str
    stall_s: float


def consumer_cases(limit: int) -> dict[str, dict[str, Any]]:
    """The consumer settings ``consumer_limits`` tries, by name, for a limit in bytes.

    librdkafka raises ``fetch.max.bytes`` to the consumer's ``message.max.bytes`` and
    ``receive.message.max.bytes`` to ``fetch.max.bytes`` + 512 unless they are set, so the
    cases set them as a person lowering a limit would have to.
    """
    small = {"message.max.bytes": limit, "fetch.max.bytes": limit}
    return {
        "max.partition.fetch.bytes": {"max.partition.fetch.bytes": limit},
        "fetch.max.bytes": {**small, "max.partition.fetch.bytes": limit},
        "fetch.max.bytes alone": {"fetch.max.bytes": limit},
        "receive.message.max.bytes": {**small, "receive.message.max.bytes": limit + 512},
        "receive.message.max.bytes alone": {"receive.message.max.bytes": limit},
    }


def consumer_limits(cluster: Cluster, limit: int = 65536, margin: int = 1024,
                    stall_s: float = 5.0, timeout: float = 60) -> ConsumerLimits:
    """Read a message just under and one just over a consumer limit, per setting.

    A new topic of one partition holds two messages (``linger.ms=0``, one batch each): a
    value of ``limit - margin`` bytes, then ``limit + margin``. Each case of
    ``consumer_cases(limit)`` is a new consumer (no group commits) assigned the partition
    from offset 0, polling until it has both messages or ``stall_s`` passed since the last
    one arrived.

    Args:
        cluster: where to read.
        limit: the consumer limit in bytes (librdkafka allows 1000 and more).
        margin: bytes below and above the limit of the two values.
        stall_s: seconds without a new message after which a case gives up.
        timeout: seconds the writes may take.

    Raises:
        ValueError: a bad argument, before anything starts.
    """
    if not isinstance(limit, int) or not 1000 + margin <= limit <= 10_000_000:
        raise ValueError(f"limit={limit!r} must be an integer from 1000 + margin "
                         f"({1000 + margin}) to 10000000 bytes")
    if not isinstance(margin, int) or not marks.MARK_SIZE <= margin:
        raise ValueError(f"margin={margin!r} must be an integer of at least {marks.MARK_SIZE}")
    if not stall_s > 0:
        raise ValueError(f"stall_s={stall_s!r} must be a positive number of seconds")
    prober = _Prober(cluster, timeout)
    topic = unique_name("size-consumer")
    cluster.create_topic(topic, 1)
    writer = prober.producer({"linger.ms": 0})
    sizes = {"just below": limit - margin, "just above": limit + margin}
    for probe, size in sizes.items():
        sent = prober.send(writer, topic, [size], probe=probe)
        if sent[0]["outcome"] != "acknowledged":
            raise RuntimeError(f"writing the {size}-byte probe failed: {sent[0]['text']}")
    rows = []
    for name, settings in consumer_cases(limit).items():
        step = {"step": "consumer", "case": name, "limit_bytes": limit,
                "limit": f"{name.removesuffix(' alone')}={limit:,}",
                "config": ", ".join(f"{k}={v:,}" for k, v in settings.items())}
        rows += [{**step, "probe": probe, "value_bytes": size, **result}
                 for (probe, size), result in zip(
                     sizes.items(), _read_two(cluster, topic, settings, stall_s), strict=True)]
    _delete(cluster, {topic})
    return ConsumerLimits(reads=pd.DataFrame(rows, columns=CONSUMER_PROBE_COLUMNS),
                          limit=limit,
                          sizes=sizes, topic=topic, stall_s=stall_s)


def _delete(cluster: Cluster, topics: set[str]) -> None:
    """Delete the probe topics (best effort: what they held was read already)."""
    for topic in sorted(topics):
        with contextlib.suppress(Exception):
            cluster.delete_topic(topic)


def _read_two(cluster: Cluster, topic: str, settings: dict[str, Any],
              stall_s: float) -> list[dict]:
    """Read offsets 0 and 1 of ``topic`` with ``settings``; what became of each."""
    said: list[tuple[str, str]] = []
    config = cluster.client_config(**{
        "group.id": f"labkit-size-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "logger": client_log, "error_cb": lambda err: said.append((err.name(), err.str())),
        **settings})
    try:
        consumer = Consumer(config)
    except KafkaException as exc:
        error = exc.args[0]
        refused = {"outcome": "consumer refused", "read_s": float("nan"),
                   "error": error.name(), "text": error.str(), "callback_errors": 0,
                   "poll_errors": 0}
        return [dict(refused), dict(refused)]
    polled: list[tuple[str, str]] = []
    read_at: dict[int, float] = {}
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        start = last = time.monotonic()
        while len(read_at) < 2 and time.monotonic() - last < stall_s:
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error() is not None:
                polled.append((msg.error().name(), msg.error().str()))
                continue
            read_at[msg.offset()] = time.monotonic() - start
            last = time.monotonic()
    finally:
        consumer.close()
    firsts = [(where, seen[0]) for where, seen in (("poll()", polled), ("error callback", said))
              if seen]
    names = ", ".join(dict.fromkeys(name for _, (name, _text) in firsts))
    text = " | ".join(f"{where}: {said_text}" for where, (_name, said_text) in firsts)
    return [{"outcome": "read" if offset in read_at else "not read",
             "read_s": read_at.get(offset, float("nan")), "error": names, "text": text,
             "callback_errors": len(said), "poll_errors": len(polled)} for offset in (0, 1)]

