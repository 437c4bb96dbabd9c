"""Where a produced message's time goes, from librdkafka's own statistics (notebook 07).

Two scripted runs, each with ``statistics.interval.ms`` on, so that librdkafka reports how
long messages waited in its queue (``int_latency``), requests in the output buffer
(``outbuf_latency``) and for the broker's answer (``rtt``):

- ``sweep``: the same topic written once per producer setting (``linger.ms`` x ``acks``),
  at a fixed rate and flat out; one ``StatsRun`` per run.
- ``burst``: one producer at a fixed rate with a flat-out stretch in the middle, so the
  statistics windows show the parts of the latency rise and fall through it.

Every ``StatsRun`` carries ``zero``, the run's time 0 on librdkafka's monotonic clock, for
``labkit.analysis.client_stats`` to put the statistics on the run's clock. No math and no
plots here.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from labkit.cluster import Cluster, check_topic_name, client_log, unique_name, wait_until
from labkit.workloads import marks
from labkit.workloads.producer import (
    Deliveries,
    ProducerRun,
    describe,
    make_payloads,
    run_producer,
    validate_config,
)

MODES = {"fixed": "fixed rate", "flat": "flat out"}
"""How a sweep run offers its messages, with its name for people."""

STATS_MIN_MS = 10
"""The shortest statistics interval accepted: each sample is a JSON document to parse."""


@dataclass
class StatsRun:
    """One producer run with its statistics.

    Attributes:
        run: the ``ProducerRun`` (``run.stats``: one parsed statistics dict per interval).
        mode: "fixed" or "flat" (``MODES``), or "burst".
        config: the producer settings that vary (acks, linger.ms).
        zero: the run's t = 0 (``t_send`` 0) in seconds of librdkafka's monotonic clock.
        rate: the offered msg/s (None: flat out).
    """

    run: ProducerRun
    mode: str
    config: dict[str, str]
    zero: float
    rate: float | None

    @property
    def label(self) -> str:
        """A human name, e.g. ``"acks=all, linger.ms=5"``."""
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


@dataclass
class Sweep:
    """What ``sweep`` ran: one ``StatsRun`` per (mode, acks, linger.ms), in run order."""

    topic: str
    rate: float
    measured: list[StatsRun] = field(default_factory=list)


def _check_stats(stats_interval_ms: int) -> None:
    if not isinstance(stats_interval_ms, int) or stats_interval_ms < STATS_MIN_MS:
        raise ValueError(f"stats_interval_ms={stats_interval_ms!r} must be an integer of at "
                         f"least {STATS_MIN_MS}")


def check_settings(lingers=(0,), acks_values=("1",), rates=(), stats_intervals=()) -> None:
    """Check a notebook's settings at once, before any run starts.

    Args:
        lingers: ``linger.ms`` values.
        acks_values: ``acks`` values.
        rates: msg/s values (each positive).
        stats_intervals: ``statistics.interval.ms`` values.

    Raises:
        ValueError: one sentence naming the bad value and what is allowed.
    """
    if not list(lingers) or not list(acks_values):
        raise ValueError(f"lingers={list(lingers)!r} and acks_values={list(acks_values)!r} "
                         "must each hold at least one value")
    for linger in lingers:
        for acks in acks_values:
            validate_config({"acks": acks, "linger.ms": linger})
    for rate in rates:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ValueError(f"rate={rate!r} must be a positive number of messages per second")
    for interval in stats_intervals:
        _check_stats(interval)


def run_with_stats(cluster: Cluster, config: dict[str, Any], topic: str, *,
                   rate: float | None = None, messages: int | None = None,
                   duration: float | None = None, stats_interval_ms: int = 250,
                   label: str | None = None) -> StatsRun:
    """One ``run_producer`` run with statistics, and its time 0 on librdkafka's clock.

    Args:
        cluster: where to produce.
        config: producer settings (acks, linger.ms, ...).
        topic: the topic to write.
        rate: msg/s, or None for flat out.
        messages: how many (or give ``duration``).
        duration: seconds to send.
        stats_interval_ms: librdkafka's ``statistics.interval.ms``.
        label: the run's name (default from ``config``).

    Raises:
        ValueError: a bad config or workload value, before anything is sent.
    """
    _check_stats(stats_interval_ms)
    settings = validate_config(config)
    run = run_producer(cluster, settings, messages=messages, duration=duration, rate=rate,
                       topics=[topic], stats_interval_ms=stats_interval_ms,
                       label=label or describe(settings))
    return StatsRun(run=run, mode="fixed" if rate else "flat", config=settings,
                    zero=run.started_monotonic, rate=rate)


def prepare_topic(cluster: Cluster, topic: str | None = None, partitions: int = 3) -> str:
    """A new topic of ``partitions`` partitions (replication factor min(3, brokers)), written to.

    A new partition answers its first acks=all requests slowly, until its followers have
    fetched from it: 200 messages are written first so that the runs measure the steady
    state.
    """
    topic = topic or unique_name("internals")
    check_topic_name(topic)
    cluster.create_topic(topic, partitions)
    run_producer(cluster, {"acks": "all"}, messages=200, topics=[topic])
    return topic


def sweep(cluster: Cluster, lingers=(0, 5, 50), acks_values=("1", "all"), rate: float = 1000,
          seconds: float = 2.0, flat_messages: int = 20_000, modes=("fixed", "flat"),
          stats_interval_ms: int = 250, topic: str | None = None,
          progress: bool = False) -> Sweep:
    """Every (acks, linger.ms) at a fixed rate and flat out, on one topic, one after another.

    Args:
        cluster: where to produce.
        lingers: ``linger.ms`` values.
        acks_values: ``acks`` values.
        rate: msg/s of the fixed-rate runs.
        seconds: how long each fixed-rate run sends.
        flat_messages: how many messages each flat-out run sends.
        modes: which of ``MODES`` to run.
        stats_interval_ms: librdkafka's ``statistics.interval.ms``.
        topic: the topic to write (default: a new one, ``prepare_topic``).
        progress: show a progress bar over the runs.

    Raises:
        ValueError: a bad setting or workload value, before anything starts.
    """
    check_settings(lingers, acks_values, [rate], [stats_interval_ms])
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes={list(modes)!r} must be a non-empty list of "
                         f"{', '.join(MODES)}")
    if not seconds or seconds <= 0:
        raise ValueError(f"seconds={seconds!r} must be a positive number")
    if not isinstance(flat_messages, int) or flat_messages < 1:
        raise ValueError(f"flat_messages={flat_messages!r} must be a positive integer")
    configs = [{"acks": str(a), "linger.ms": str(n)} for a in acks_values for n in lingers]
    topic = prepare_topic(cluster, topic)
    plan = [(mode, config) for mode in modes for config in configs]
    if progress:
        from tqdm.auto import tqdm
        plan = tqdm(plan, desc="runs", unit="run", leave=False)
    result = Sweep(topic=topic, rate=rate)
    for mode, config in plan:
        fixed = mode == "fixed"
        result.measured.append(run_with_stats(
            cluster, config, topic, rate=rate if fixed else None,
            duration=seconds if fixed else None, messages=None if fixed else flat_messages,
            stats_interval_ms=stats_interval_ms,
            label=f"{MODES[mode]}: " + ", ".join(f"{k}={v}" for k, v in config.items())))
    return result


@dataclass
class Burst:
    """What ``burst`` did.

    Attributes:
        measured: the run (mode "burst", ``rate`` the fixed rate around the burst).
        burst_start_s, burst_end_s: when the flat-out stretch began and ended, on the run's
            clock (seconds since t = 0).
        burst_messages: messages sent in it.
    """

    measured: StatsRun
    burst_start_s: float
    burst_end_s: float
    burst_messages: int


def burst(cluster: Cluster, config: dict[str, Any] | None = None, topic: str | None = None,
          rate: float = 500, before_s: float = 2.0, burst_s: float = 1.0,
          after_s: float = 2.0, size: int = 100, stats_interval_ms: int = 100,
          flush_timeout: float = 120) -> Burst:
    """A producer at ``rate`` msg/s with ``burst_s`` seconds flat out in the middle.

    The producer sends at the fixed rate for ``before_s``, as fast as ``produce()`` accepts
    for ``burst_s``, and at the fixed rate again for ``after_s``; ``poll(0)`` after every
    message (and while waiting for a send slot), ``poll(0.1)`` and a retry on
    ``BufferError``. Its records have the columns of ``run_producer``'s (the same
    ``Deliveries`` recorder and lab mark), one message at a time to a single producer, so
    the burst queues up inside this client.

    Args:
        cluster: where to produce.
        config: producer settings (default acks=all, linger.ms=5).
        topic: the topic to write (default: a new one, ``prepare_topic``).
        rate: msg/s before and after the burst.
        before_s: seconds at ``rate`` before the burst.
        burst_s: seconds flat out.
        after_s: seconds at ``rate`` after it.
        size: value bytes (at least the 24-byte lab mark).
        stats_interval_ms: librdkafka's ``statistics.interval.ms`` (short, to see the burst).
        flush_timeout: seconds the final flush may take.

    Raises:
        ValueError: a bad setting or value, before anything starts.
    """
    _check_stats(stats_interval_ms)
    settings = validate_config({"acks": "all", "linger.ms": 5, **(config or {})})
    for name, value in (("rate", rate), ("before_s", before_s), ("burst_s", burst_s),
                        ("after_s", after_s)):
        if not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive number")
    if not isinstance(size, int) or not marks.MARK_SIZE <= size <= 1_000_000:
        raise ValueError(f"size={size!r} must be an integer from {marks.MARK_SIZE} "
                         "(the lab mark) to 1000000 bytes")
    topic = prepare_topic(cluster, topic)
    stats: list[dict] = []
    deliveries = Deliveries()
    client = cluster.client_config(**settings, logger=client_log)
    client.update({"statistics.interval.ms": stats_interval_ms,
                   "stats_cb": lambda text: stats.append(json.loads(text)),
                   "on_delivery": deliveries.callback()})
    producer = Producer(client)
    bodies = make_payloads(size - marks.MARK_SIZE)
    pick = len(bodies) - 1  # a power of two less one (make_payloads)
    head, pack = marks.head(run_id := marks.new_run_id()), marks.MARK.pack
    phases = [(before_s, rate), (burst_s, None), (after_s, rate)]
    edges: list[float] = []
    i = buffer_errors = 0
    flushed = False
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as run_producer: the growing report arrays must not slow the loop down
    try:
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        phase_start = t0
        for seconds, phase_rate in phases:
            edges.append(phase_start - t0)
            end, first = phase_start + seconds, i
            while True:
                now = time.perf_counter()
                if phase_rate:
                    slot = phase_start + (i - first) / phase_rate
                    if slot >= end:
                        break
                    while (ahead := slot - time.perf_counter()) > 0.001:
                        producer.poll(min(ahead, 0.1))
                elif now >= end:
                    break
                if not i & 63:
                    deliveries.reserve(i + 64)
                while True:
                    ns = time.time_ns()
                    try:
                        producer.produce(topic, pack(head, i, ns) + bodies[i & pick])
                        deliveries.sent_ns[i] = ns
                        break
                    except BufferError:
                        buffer_errors += 1
                        producer.poll(0.1)
                i += 1
                producer.poll(0)
            phase_start = end
        edges.append(time.perf_counter() - t0)
        flushed = producer.flush(flush_timeout) == 0
        wall = time.perf_counter() - t0
        count = len(stats)
        with contextlib.suppress(TimeoutError):  # one more sample, covering the flush
            wait_until(lambda: len(stats) > count or (producer.poll(0.05), 0)[1],
                       3 * stats_interval_ms / 1000 + 1, "one more statistics sample",
                       interval=0)
    finally:
        if gc_was_enabled:
            gc.enable()
        if not flushed:  # an exception or a flush timeout: give up what is left, at once
            producer.purge()
        producer.close()
    records = deliveries.records(i, started_ns, [topic], None, size)
    errors = records.error
    run = ProducerRun(
        label=f"{describe(settings)}, {rate:g} msg/s with {burst_s:g} s flat out",
        run_id=run_id, config=settings,
        workload={"rate": rate, "before_s": before_s, "burst_s": burst_s, "after_s": after_s,
                  "size": size, "topics": [topic]},
        records=records, sent=i, delivered=int((errors == "").sum()),
        failed=int((~errors.isin(["", "unreported"])).sum()),
        unreported=int((errors == "unreported").sum()), buffer_errors=buffer_errors, dropped=0,
        wall_s=wall, stats=stats, started_wall=started_ns / 1e9, started_monotonic=t0)
    burst_ids = records.t_send.between(edges[1], edges[2], inclusive="left")
    measured = StatsRun(run=run, mode="burst", config=settings,
                        zero=run.started_monotonic, rate=rate)
    return Burst(measured=measured, burst_start_s=edges[1], burst_end_s=edges[2],
                 burst_messages=int(burst_ids.sum()))

