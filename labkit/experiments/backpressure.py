"""A producer faster than its link: backpressure, measured (notebook 08; needs the lab network).

Three scripted experiments for a local cluster of 3 brokers behind the lab network
(``LocalCluster(network=True)``); each producer gets a ``client.id`` of its own, and its link
to every broker is rate-limited (``Network.bandwidth(client_id, "*", mbit)``), so that the
link, not the machine, is the narrowest pipe:

- ``queue_full``: ``produce()`` called flat out, never waiting: how many calls raise
  ``BufferError`` ("Local: Queue full") once the producer holds ``queue.buffering.max.messages``.
- ``strategy_run``: an application that makes messages at a fixed rate faster than the link
  carries them, living with the full queue one of three ways (``ON_FULL_STRATEGIES``): block
  (serve delivery reports with ``poll()`` until there is room, then retry), drop and count,
  or a bounded application queue in front of the producer, filled by the application thread
  and drained by a sender thread that blocks.
- ``leaderless_timeout``: a replication-factor-1 partition loses its only replica (SIGKILL)
  for longer than the producer's ``message.timeout.ms``: what the delivery callback is told,
  and when; the broker is started again and the partition comes back.

Each heals what it broke in ``finally`` and returns a record of DataFrames; times ending in
``_s`` and columns ``t*`` are seconds on the run's clock (``started_wall`` is its 0). The
numbers come from ``labkit.analysis.backpressure``. No plots here.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, Producer

from labkit.cluster import Cluster, FaultInjectionUnavailable, client_log, unique_name
from labkit.cluster.faults import FaultRecorder, PartitionWatch, heal, wait_healthy
from labkit.experiments.replication import check_seconds
from labkit.workloads import marks
from labkit.workloads.producer import (
    Background,
    Deliveries,
    ProducerRun,
    make_payloads,
    run_producer,
    validate_config,
)

ON_FULL_STRATEGIES = {
    "block": "block: poll() until there is room",
    "drop": "drop and count",
    "app-queue": "bounded application queue",
}
"""The ways ``strategy_run`` lives with a full producer queue, with their names for people."""

QUEUE_STATS_INTERVAL_MS = 100
"""librdkafka statistics interval of every run (the producer's queue depth over time)."""


class CountedDeliveries(Deliveries):
    """The lab's delivery recorder, also counting every delivery callback it serves.

    ``calls`` against the messages with a report tells whether any message was reported
    twice (a message's columns only keep its last report).
    """

    def __init__(self, capacity: int = 1024):
        super().__init__(capacity)
        self.calls = 0

    def callback(self):
        """The recorder's callback for every marked message, counting each call."""
        inner = super().callback()

        def counted(err, msg):
            self.calls += 1
            inner(err, msg)
        return counted


def _check_network(cluster: Cluster) -> None:
    if not cluster.local or not getattr(cluster, "network_control", None):
        raise FaultInjectionUnavailable(
            f"limiting a producer's link needs a local cluster behind the lab network "
            f"(LocalCluster(network=True)); this is {cluster.describe()}")


@contextlib.contextmanager
def _limited_link(cluster: Cluster, name: str, config: dict, mbit: float):
    """Producer settings with a ``client.id`` of their own (checked), rate-limited.

    The client's link to every broker is held to ``mbit`` for the block, healed after it.
    """
    client_id = unique_name(name)
    settings = {**config, "client.id": client_id}
    validate_config(dict(settings))
    cluster.network.bandwidth(client_id, "*", mbit)
    try:
        yield settings
    finally:
        cluster.network.heal(client_id)


def _positive(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name}={value!r} is not allowed; it must be a number > 0")


def queue_settings(max_messages: int, max_kbytes: int, **more) -> dict:
    """The producer settings of a small local queue, checked (``validate_config``).

    Args:
        max_messages: ``queue.buffering.max.messages``.
        max_kbytes: ``queue.buffering.max.kbytes``.
        **more: other producer settings (``linger.ms`` and the like, dots as in librdkafka,
            so pass them as a dict: ``**{"linger.ms": 5}``).

    Raises:
        ValueError: a value librdkafka does not allow, naming it.
    """
    config = {"queue.buffering.max.messages": max_messages,
              "queue.buffering.max.kbytes": max_kbytes, **more}
    validate_config(dict(config))
    return config


def make_topic(cluster: Cluster, prefix: str = "backpressure", timeout: float = 60) -> str:
    """A new topic of one partition, replication factor 3, for the strategy runs."""
    topic = unique_name(prefix)
    cluster.create_topic(topic, 1, 3)
    wait_healthy(cluster, [topic], timeout)
    return topic


@dataclass
class QueueFull:
    """What ``queue_full`` did and saw.

    Attributes:
        run: the producer's ``ProducerRun`` (``on_full="drop"``: error ``"BufferError"``
            for each call refused).
        calls: delivery callbacks served (``CountedDeliveries.calls``).
        config: the producer settings (the queue's limits among them).
        mbit: the client link's rate limit, each way.
        zero: the run's time 0 on the monotonic clock (``client_stats``' ``zero``).
    """

    run: ProducerRun
    calls: int
    config: dict
    mbit: float
    zero: float


def queue_full(cluster: Cluster, topic: str, config: dict, mbit: float,
               messages: int = 2000, size: int = 200) -> QueueFull:
    """Call ``produce()`` ``messages`` times as fast as Python can, never waiting.

    ``poll(0)`` after each call serves whatever delivery reports are ready, as a well
    behaved application does; a call that raises ``BufferError`` is counted, and its
    message given up (``run_producer(on_full="drop")``). Then flush.

    Args:
        cluster: a local cluster behind the lab network.
        topic: where to write.
        config: producer settings (``queue_settings``); a ``client.id`` is added.
        mbit: the client link's rate limit, each way (Mbit/s).
        messages: produce() calls.
        size: value bytes.

    Raises:
        ValueError: a bad argument or setting, before anything starts.
        FaultInjectionUnavailable: not a local cluster behind the lab network.
    """
    _check_network(cluster)
    _positive(mbit=mbit, messages=messages, size=size)
    deliveries = CountedDeliveries()
    with _limited_link(cluster, "lab08-full", config, mbit) as settings:
        run = run_producer(cluster, settings, messages=messages, size=size, topics=[topic],
                           on_full="drop", stats_interval_ms=QUEUE_STATS_INTERVAL_MS,
                           deliveries=deliveries, label="produce() never waiting")
    return QueueFull(run=run, calls=deliveries.calls, config=settings, mbit=mbit,
                     zero=run.started_monotonic)


@dataclass
class StrategyRun:
    """What ``strategy_run`` did and saw.

    Attributes:
        strategy: one of ``ON_FULL_STRATEGIES``.
        run: the producer's ``ProducerRun``: one row per message handed to ``produce()``
            (or refused, with ``drop``); t_send is when ``produce()`` accepted it.
        wanted: one row per message the application made: msg_id, t_want (when it wanted
            to send it: msg_id / rate) and t_handed (when it got it off its hands: accepted by
            ``produce()``, or put in the application queue; NaN: dropped).
        offered: messages the application would have made in ``seconds`` at ``rate``; those
            beyond ``wanted`` it never got to make, being blocked.
        calls: delivery callbacks served.
        rate: msg/s the application wanted to send.
        seconds: how long the application ran.
        mbit: the client link's rate limit, each way.
        size: value bytes.
        app_queue: the application queue's capacity in messages (0: none).
        config: the producer settings.
        zero: the run's time 0 on the monotonic clock (``client_stats``' ``zero``).
    """

    strategy: str
    run: ProducerRun
    wanted: pd.DataFrame
    offered: int
    calls: int
    rate: float
    seconds: float
    mbit: float
    size: int
    app_queue: int
    config: dict
    zero: float

    @property
    def label(self) -> str:
        """The strategy's name for people."""
        name = ON_FULL_STRATEGIES[self.strategy]
        return f"{name} ({self.app_queue:,} messages)" if self.app_queue else name


def _app_queue_run(cluster: Cluster, settings: dict, topic: str, rate: float, seconds: float,
                   size: int, capacity: int, deliveries: CountedDeliveries,
                   flush_timeout: float) -> tuple[ProducerRun, pd.DataFrame]:
    """The application thread fills a ``queue.Queue(capacity)``; a sender thread drains it.

    The sender hands each message to ``produce()``, serving delivery reports with
    ``poll(0.1)`` and retrying while the producer's queue is full (the block strategy,
    behind the application queue), ``poll(0)`` after each. The application thread blocks in
    ``put()`` while the application queue is full.
    """
    stats: list[dict] = []
    client_errors: list[tuple[float, str, str]] = []
    client = cluster.client_config(**validate_config(settings), logger=client_log)
    client.update({"statistics.interval.ms": QUEUE_STATS_INTERVAL_MS,
                   "stats_cb": lambda text: stats.append(json.loads(text)),
                   "error_cb": lambda e: client_errors.append((time.time(), e.name(), e.str())),
                   "on_delivery": deliveries.callback()})
    producer = Producer(client)
    run_id = marks.new_run_id()
    head, pack = marks.head(run_id), marks.MARK.pack
    bodies = make_payloads(size - marks.MARK_SIZE)
    pick = len(bodies) - 1  # a power of two less one (make_payloads)
    messages = max(1, int(rate * seconds))
    deliveries.reserve(messages)
    want = np.full(messages, np.nan)
    handed = np.full(messages, np.nan)
    items: queue.Queue = queue.Queue(capacity)
    failure: list[BaseException] = []
    sent = [0]

    def sender() -> None:
        produce, poll, sent_ns = producer.produce, producer.poll, deliveries.sent_ns
        try:
            while (i := items.get()) is not None:
                while True:
                    ns = time.time_ns()
                    try:
                        produce(topic, pack(head, i, ns) + bodies[i & pick])
                        sent_ns[i] = ns
                        break
                    except BufferError:
                        poll(0.1)
                poll(0)
                sent[0] = i + 1
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=sender, name="labkit-app-queue-sender", daemon=True)
    started_ns = time.time_ns()
    t0 = time.perf_counter()
    end = t0 + seconds
    made = 0
    thread.start()
    try:
        for i in range(messages):
            slot = t0 + i / rate
            now = time.perf_counter()
            if now >= end or failure:
                break
            if slot > now:
                time.sleep(slot - now)
            want[i] = slot - t0
            items.put(i)  # blocks while the application queue is full
            handed[i] = time.perf_counter() - t0
            made = i + 1
    finally:
        items.put(None)
        thread.join(flush_timeout)
    if failure:
        raise failure[0]
    producer.flush(flush_timeout)
    wall = time.perf_counter() - t0
    # One more statistics sample, so the last one covers the whole run (as run_producer).
    count, give_up = len(stats), time.perf_counter() + 3 * QUEUE_STATS_INTERVAL_MS / 1000
    while len(stats) == count and time.perf_counter() < give_up:
        producer.poll(QUEUE_STATS_INTERVAL_MS / 1000)
    records = deliveries.records(made, started_ns, [topic], None, size)
    errors = records.error
    started_wall = started_ns / 1e9
    run = ProducerRun(
        label=ON_FULL_STRATEGIES["app-queue"], run_id=run_id, config=validate_config(settings),
        workload=dict(messages=messages, duration=seconds, rate=rate, size=size, keys="none",
                      topics=[topic], app_queue=capacity),
        records=records, sent=made, delivered=int((errors == "").sum()),
        failed=int((~errors.isin(["", "BufferError", "unreported"])).sum()),
        unreported=int((errors == "unreported").sum()), buffer_errors=0, dropped=0,
        wall_s=wall, stats=stats, started_wall=started_wall, started_monotonic=t0,
        client_errors=pd.DataFrame([(t - started_wall, n, r) for t, n, r in client_errors],
                                   columns=["t", "error", "reason"]))
    wanted = pd.DataFrame({"msg_id": np.arange(made), "t_want": want[:made],
                           "t_handed": handed[:made]})
    return run, wanted


def strategy_run(cluster: Cluster, topic: str, strategy: str, config: dict, mbit: float,
                 rate: float, seconds: float, size: int = 200, app_queue: int = 1000,
                 flush_timeout: float = 120) -> StrategyRun:
    """An application making ``rate`` msg/s for ``seconds`` through a link of ``mbit``.

    Every strategy sees the same workload: message i is due at i / rate; the application
    stops making messages after ``seconds``, then the producer is flushed.

    - ``block``: ``run_producer(on_full="wait")``: on ``BufferError``, ``poll(0.1)`` and
      retry; the application is held up meanwhile and falls behind its schedule.
    - ``drop``: ``run_producer(on_full="drop")``: the message is given up and counted.
    - ``app-queue``: a ``queue.Queue(app_queue)`` in front of a sender thread that blocks
      as ``block`` does; the application blocks in ``put()`` once it is full.

    Args:
        cluster: a local cluster behind the lab network.
        topic: where to write (``make_topic``).
        strategy: one of ``ON_FULL_STRATEGIES``.
        config: producer settings (``queue_settings``); a ``client.id`` is added.
        mbit: the client link's rate limit, each way (Mbit/s).
        rate: msg/s the application makes.
        seconds: how long it makes them.
        size: value bytes.
        app_queue: the application queue's capacity (``app-queue`` only).
        flush_timeout: seconds the final flush may take.

    Raises:
        ValueError: a bad argument or setting, before anything starts.
        FaultInjectionUnavailable: not a local cluster behind the lab network.
    """
    _check_network(cluster)
    if strategy not in ON_FULL_STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not known; use one of "
                         f"{', '.join(ON_FULL_STRATEGIES)}")
    _positive(mbit=mbit, rate=rate, seconds=seconds)
    if not isinstance(size, int) or size < marks.MARK_SIZE:
        raise ValueError(f"size={size!r} is not allowed; use an integer >= {marks.MARK_SIZE} "
                         "(every value starts with the lab's mark)")
    if strategy == "app-queue" and (isinstance(app_queue, bool) or not isinstance(app_queue, int)
                                    or app_queue < 1):
        raise ValueError(f"app_queue={app_queue!r} is not allowed; use a positive integer "
                         "(messages the application queue holds)")
    deliveries = CountedDeliveries()
    with _limited_link(cluster, f"lab08-{strategy}", config, mbit) as settings:
        if strategy == "app-queue":
            run, wanted = _app_queue_run(cluster, settings, topic, rate, seconds, size,
                                         app_queue, deliveries, flush_timeout)
        else:
            run = run_producer(cluster, settings, duration=seconds, rate=rate, size=size,
                               topics=[topic], on_full="wait" if strategy == "block" else "drop",
                               stats_interval_ms=QUEUE_STATS_INTERVAL_MS, deliveries=deliveries,
                               flush_timeout=flush_timeout, label=ON_FULL_STRATEGIES[strategy])
            ids = run.records.msg_id.to_numpy()
            wanted = pd.DataFrame({"msg_id": ids, "t_want": ids / rate,
                                   "t_handed": run.records.t_send.to_numpy()})
    return StrategyRun(strategy=strategy, run=run, wanted=wanted,
                       offered=max(1, int(rate * seconds)), calls=deliveries.calls, rate=rate,
                       seconds=seconds, mbit=mbit, size=size,
                       app_queue=app_queue if strategy == "app-queue" else 0,
                       config=settings, zero=run.started_monotonic)


def compare_strategies(cluster: Cluster, topic: str, strategies, config: dict, mbit: float,
                       rate: float, seconds: float, size: int = 200,
                       app_queue: int = 1000) -> dict[str, StrategyRun]:
    """``strategy_run`` once per strategy, one after another, every argument checked first.

    Returns:
        strategy -> its ``StrategyRun``, in the order given.
    """
    strategies = list(strategies)
    unknown = [s for s in strategies if s not in ON_FULL_STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"strategies={strategies!r}: use one or more of "
                         f"{', '.join(ON_FULL_STRATEGIES)}")
    _positive(mbit=mbit, rate=rate, seconds=seconds)
    validate_config(dict(config))
    return {s: strategy_run(cluster, topic, s, config, mbit, rate, seconds, size, app_queue)
            for s in strategies}


@dataclass
class Leaderless:
    """What ``leaderless_timeout`` did and saw.

    Attributes:
        run: the producer's ``ProducerRun`` (its own clock: ``run.started_wall``).
        records: ``run.records`` with t_send and t_delivered on this run's clock.
        topic: the topic written (one partition, replication factor 1).
        broker: the broker holding its only replica, killed and started again.
        message_timeout_ms: the producer's message.timeout.ms.
        events: the kill and the restart (``faults.FAULT_EVENT_COLUMNS``).
        leaders: the partition's leader as the cluster's metadata said it (``PartitionWatch``
            samples with t on this run's clock).
        client_errors: what the producer's error callback was told, t on this run's clock.
        error_texts: each error name the delivery callback got -> the text that error's
            ``str()`` gives (what an application logs).
        killed_s, restarted_s, serving_s, ended_s: the kill, the restart's start, when the
            restarted broker served again, and when the producer stopped.
        started_wall: epoch seconds at t = 0.
    """

    run: ProducerRun
    records: pd.DataFrame
    topic: str
    broker: int
    message_timeout_ms: int
    events: pd.DataFrame
    leaders: pd.DataFrame
    client_errors: pd.DataFrame
    killed_s: float
    restarted_s: float
    serving_s: float
    ended_s: float
    started_wall: float
    config: dict = field(default_factory=dict)
    error_texts: dict = field(default_factory=dict)


def leaderless_timeout(cluster: Cluster, rate: float = 100, broker: int = 3,
                       message_timeout_ms: int = 3000, baseline_s: float = 1.0,
                       hold_s: float = 5.0, tail_s: float = 2.0,
                       config: dict | None = None, timeout: float = 120) -> Leaderless:
    """Kill the only replica of a partition for ``hold_s`` while a producer writes to it.

    A new topic of one partition, replication factor 1, on ``broker``; a producer
    (``acks=all``, ``linger.ms=5``, ``message.timeout.ms``) writes at ``rate``. The
    sequence: ``baseline_s``; SIGKILL ``broker`` (the partition has no replica left to
    lead); ``hold_s``; start it again (returns once it serves); ``tail_s``; the producer
    stops and flushes. The partition's leader is sampled throughout.

    Args:
        cluster: a local cluster of 3 brokers (the lab network is not needed).
        rate: messages per second.
        broker: the broker holding the partition.
        message_timeout_ms: the producer's message.timeout.ms (``hold_s`` above it to see
            messages given up).
        baseline_s: seconds before the kill.
        hold_s: seconds the broker stays down.
        tail_s: seconds after it serves again.
        config: more producer settings.
        timeout: seconds a restart or the final flush may take.

    Raises:
        ValueError: a bad argument or producer config, before anything starts.
        FaultInjectionUnavailable: not a local cluster.
    """
    if not cluster.local:
        raise FaultInjectionUnavailable(
            f"killing a broker needs a local cluster; this is {cluster.describe()}")
    if broker not in cluster.nodes:
        raise ValueError(f"broker={broker!r} is not a broker of this cluster; brokers are "
                         f"{sorted(cluster.nodes)}")
    check_seconds(baseline_s=baseline_s, hold_s=hold_s, tail_s=tail_s)
    _positive(rate=rate)
    if isinstance(message_timeout_ms, bool) or not isinstance(message_timeout_ms, int) \
            or message_timeout_ms <= 0:
        raise ValueError(f"message_timeout_ms={message_timeout_ms!r} is not allowed; use a "
                         "positive integer (ms)")
    client_id = unique_name("lab08-timeout")
    settings = {"acks": "all", "linger.ms": 5, **(config or {}),
                "message.timeout.ms": message_timeout_ms, "client.id": client_id}
    validate_config(dict(settings))
    topic = unique_name("leaderless")
    cluster.create_topic(topic, 1, replica_assignment=[[broker]])
    wait_healthy(cluster, [topic], timeout)
    recorder = FaultRecorder(cluster, timeout)
    events = {}
    try:
        with PartitionWatch(cluster, [topic], interval=0.2, client_id=f"{client_id}-watch") \
                as watch, Background(cluster, settings, rate=rate, topics=[topic],
                                     flush_timeout=timeout, label=client_id) as stream:
            try:
                time.sleep(baseline_s)
                events["kill"] = recorder.act("kill", broker)
                time.sleep(hold_s)
                events["restart"] = recorder.act("restart", broker)
                time.sleep(tail_s)
            finally:
                ended_s = recorder.elapsed()
                stream.stop()
    finally:
        if not cluster.is_running(broker):
            heal(cluster, timeout)
    run = stream.run
    shift = run.started_wall - recorder.started_wall
    records = run.records.assign(t_send=run.records.t_send + shift,
                                 t_delivered=run.records.t_delivered + shift)
    leaders = watch.timeline
    leaders = leaders.assign(t=leaders.wall - recorder.started_wall)[["t", "leader"]]
    errors = run.client_errors.assign(t=run.client_errors.t + shift)
    return Leaderless(
        run=run, records=records, topic=topic, broker=broker,
        message_timeout_ms=message_timeout_ms, events=recorder.events, leaders=leaders,
        client_errors=errors, killed_s=events["kill"]["t_s"],
        restarted_s=events["restart"]["t_s"], serving_s=events["restart"]["done_s"],
        ended_s=ended_s, started_wall=recorder.started_wall, config=settings,
        error_texts=error_texts(records.error))


def error_texts(errors: pd.Series) -> dict[str, str]:
    """Each librdkafka error name among ``errors`` -> its text (``KafkaError.str()``)."""
    names = sorted(set(errors) - {"", "unreported", "BufferError"})
    return {name: KafkaError(getattr(KafkaError, name)).str() if hasattr(KafkaError, name)
            else name for name in names}
