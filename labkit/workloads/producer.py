"""The instrumented producer: send a workload, record what happened to every message.

``run_producer()`` validates a librdkafka producer config and a workload, sends the workload
to one or more topics, and returns a ``ProducerRun`` whose ``records`` DataFrame has one row
per message. Every message carries its run id, msg_id and send time so readers elsewhere can
match it: in a 24-byte mark at the start of its value, or in two headers with
``id_in="headers"`` (``labkit.workloads.marks``).

``records`` columns:

========== =================================================================================
msg_id     int, 0.. in send order (unique within the run; ``run.run_id`` makes it global)
topic      str (categorical)
key        str or None (categorical)
size       int, value bytes
partition  int, -1 until a delivery report says where it went
offset     int, -1 unless delivered (and always with acks=0: no answer, no offset)
t_send     float, seconds since the run started (wall clock: the send time the message
           carries), when it was handed to ``produce()`` (NaN: dropped on ``BufferError``)
t_delivered float, seconds since the run started, when its delivery report was served:
           ``t_send`` plus ``latency_ms`` (NaN: no report)
latency_ms float, delivery latency in ms as librdkafka reports it (``Message.latency()``):
           from ``produce()`` until the delivery report is handed to the callback, so it
           includes any wait for ``poll()``/``flush()`` (NaN: no report)
error      str, "" if delivered, else the error name (e.g. ``_MSG_TIMED_OUT``);
           ``"BufferError"`` for a message dropped because the local queue was full,
           ``"unreported"`` for one whose delivery report never came
========== =================================================================================
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import KafkaException, Producer

from labkit.cluster import LAB_TOPICS, Cluster, check_topic_name, client_log, wait_until
from labkit.workloads import client_logs, marks

KEY_SCHEMES = ("none", "uniform", "zipf", "sequential")
PAYLOADS = ("json", "random")
POLL_POLICIES = ("every", "never")  # or a positive int N: poll(0) after every N produces
ON_FULL = ("wait", "drop")

# Producer settings the lab turns, with what librdkafka allows; anything else is checked by
# librdkafka itself when the producer is created.
CHOICES: dict[str, tuple] = {
    "acks": ("0", "1", "all", "-1"),
    "compression.type": ("none", "gzip", "snappy", "lz4", "zstd"),
    "compression.codec": ("none", "gzip", "snappy", "lz4", "zstd"),
    "partitioner": ("random", "consistent", "consistent_random", "murmur2", "murmur2_random",
                    "fnv1a", "fnv1a_random"),
    "enable.idempotence": ("true", "false"),
}
RANGES: dict[str, tuple[int, int]] = {
    "linger.ms": (0, 900_000),
    "queue.buffering.max.ms": (0, 900_000),
    "batch.size": (1, 2_147_483_647),
    "batch.num.messages": (1, 1_000_000),
    "queue.buffering.max.messages": (0, 2_147_483_647),
    "queue.buffering.max.kbytes": (1, 2_147_483_647),
    "message.timeout.ms": (0, 2_147_483_647),
    "delivery.timeout.ms": (0, 2_147_483_647),
    "request.timeout.ms": (1, 900_000),
    "retries": (0, 2_147_483_647),
    "max.in.flight.requests.per.connection": (1, 1_000_000),
    "compression.level": (-1, 12),
}
PRODUCER_RESERVED = ("on_delivery", "stats_cb", "error_cb", "logger")


def validate_config(config: dict[str, Any]) -> dict[str, str]:
    """Check a producer config and return it with every value as librdkafka's string form.

    Raises:
        ValueError: one sentence naming the key, the value and what is allowed.
    """
    checked = {}
    for key, value in config.items():
        if key in PRODUCER_RESERVED:
            raise ValueError(f"producer config key {key!r} is set by labkit; leave it out")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key in CHOICES and text not in CHOICES[key]:
            raise ValueError(
                f"producer config {key}={value!r} is not allowed; use one of "
                f"{', '.join(CHOICES[key])}"
            )
        if key in RANGES:
            low, high = RANGES[key]
            try:
                number = int(text)
            except ValueError:
                number = None
            if number is None or not low <= number <= high:
                raise ValueError(
                    f"producer config {key}={value!r} is not allowed; use an integer from "
                    f"{low} to {high}"
                )
        checked[key] = text
    return checked


@dataclass
class ProducerRun:
    """What one producer run did.

    Attributes:
        label: a name for plots and tables.
        run_id: unique id (8 hex digits) carried by every message (``labkit.workloads.marks``).
        config: the producer config used (without bootstrap and security settings).
        workload: the workload parameters.
        records: one row per message (see the module docstring).
        sent: messages ``produce()`` accepted.
        delivered: messages with a successful delivery report.
        failed: messages with an error delivery report.
        unreported: accepted messages whose delivery report never came.
        buffer_errors: ``BufferError`` (local queue full) raised by ``produce()``.
        dropped: messages given up after a ``BufferError`` (``on_full="drop"``).
        wall_s: seconds from the first ``produce()`` until flush returned (or the producer
            was dropped).
        stats: parsed librdkafka statistics, one dict per ``statistics.interval.ms``.
        started_wall: wall-clock time (epoch seconds) at which ``t_send`` and
            ``t_delivered`` are 0, to line the run up with faults and readers.
        started_monotonic: the same moment on the monotonic clock (``time.perf_counter()``,
            ``CLOCK_MONOTONIC`` on Linux, as librdkafka's statistics ``ts``), to line the run
            up with CPU samples and statistics (``client_stats``' ``zero``).
        client_errors: errors librdkafka reported outside delivery reports (its
            ``error_cb``: a broker connection lost, all brokers down, ...), one row each:
            t (seconds on the run's clock), error (name), reason.
        client_log_file: the file holding the client's debug log (``run_producer``'s
            ``client_log_file``; read it with ``labkit.analysis.logs.read_log``), or None.
        cpu_s: CPU seconds this process used over ``wall_s`` (every thread: the sending
            loop, librdkafka's own threads, and anything else the process ran meanwhile).
        thread_cpu_s: CPU seconds of the thread that ran the sending loop over ``wall_s``
            (Python, ``produce()``, and the delivery callbacks it served).
        reports_before_flush: delivery reports served before the final ``flush()`` began
            (by the ``poll()`` calls of the send loop); the others came in ``flush()`` or
            never.
    """

    label: str
    run_id: str
    config: dict[str, str]
    workload: dict[str, Any]
    records: pd.DataFrame
    sent: int
    delivered: int
    failed: int
    unreported: int
    buffer_errors: int
    dropped: int
    wall_s: float
    stats: list[dict] = field(default_factory=list)
    started_wall: float = float("nan")
    started_monotonic: float = float("nan")
    client_errors: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["t", "error", "reason"]))
    client_log_file: str | None = None
    cpu_s: float = float("nan")
    thread_cpu_s: float = float("nan")
    reports_before_flush: int = 0

    @property
    def throughput(self) -> float:
        """Delivered messages per second over the whole run."""
        return self.delivered / self.wall_s if self.wall_s else 0.0

    def totals(self) -> dict[str, Any]:
        """The run's totals as a flat dict (one row of a comparison table)."""
        return {
            "label": self.label, "sent": self.sent, "delivered": self.delivered,
            "failed": self.failed, "unreported": self.unreported,
            "buffer_errors": self.buffer_errors, "dropped": self.dropped,
            "wall_s": round(self.wall_s, 3), "msgs_per_s": round(self.throughput),
        }


def _check_workload(messages, duration, rate, size, keys, key_count, poll, on_full, topics,
                    payload, id_in="value") -> None:
    if id_in not in marks.ID_PLACES:
        raise ValueError(f"id_in={id_in!r} must be one of {', '.join(marks.ID_PLACES)}")
    if (messages is None) == (duration is None):
        raise ValueError("give exactly one of messages= (a count) or duration= (seconds), "
                         f"got messages={messages!r}, duration={duration!r}")
    if messages is not None and (not isinstance(messages, int) or messages < 1):
        raise ValueError(f"messages={messages!r} must be a positive integer")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration={duration!r} must be a positive number of seconds")
    if rate is not None and not rate > 0:
        raise ValueError(f"rate={rate!r} must be a positive msg/s, or None for unlimited")
    if not isinstance(size, int) or not 0 <= size <= 1_000_000:
        raise ValueError(f"size={size!r} must be an integer from 0 to 1000000 bytes")
    if id_in == "value" and size < marks.MARK_SIZE:
        raise ValueError(f"size={size!r} is smaller than the {marks.MARK_SIZE}-byte mark that "
                         f"starts every value; use size>={marks.MARK_SIZE}, or id_in='headers' "
                         "to carry the message's id in headers")
    if keys not in KEY_SCHEMES:
        raise ValueError(f"keys={keys!r} is not a key scheme; use one of {', '.join(KEY_SCHEMES)}")
    if not isinstance(key_count, int) or key_count < 1:
        raise ValueError(f"key_count={key_count!r} must be a positive integer")
    if not (poll in POLL_POLICIES or (isinstance(poll, int) and poll >= 1)):
        raise ValueError(f"poll={poll!r} must be 'every', 'never' or a positive integer N")
    if on_full not in ON_FULL:
        raise ValueError(f"on_full={on_full!r} must be one of {', '.join(ON_FULL)}")
    if payload not in PAYLOADS:
        raise ValueError(f"payload={payload!r} must be one of {', '.join(PAYLOADS)}")
    if not topics or isinstance(topics, str):
        raise ValueError(f"topics={topics!r} must be a non-empty list of topic names")
    for topic in topics:
        check_topic_name(topic)


def make_keys(scheme: str, count: int, key_count: int = 100, zipf_s: float = 1.2,
              seed: int = 0) -> list[bytes | None] | None:
    """Return one key per message for a key scheme (None for null keys).

    Args:
        scheme: "none" (null keys), "uniform" (uniform over ``key_count`` keys), "zipf"
            (``key_count`` keys, key k drawn with probability proportional to 1/k^zipf_s),
            "sequential" (key i for message i: every key distinct).
        count: number of messages.
        key_count: distinct keys for "uniform" and "zipf".
        zipf_s: skew exponent for "zipf".
        seed: random seed (runs are reproducible).
    """
    if scheme == "none":
        return None
    rng = np.random.default_rng(seed)
    names = [f"key-{k}".encode() for k in range(key_count)]
    if scheme == "uniform":
        return [names[k] for k in rng.integers(0, key_count, count)]
    if scheme == "zipf":
        weights = 1.0 / np.arange(1, key_count + 1) ** zipf_s
        return [names[k] for k in rng.choice(key_count, count, p=weights / weights.sum())]
    return [f"key-{i}".encode() for i in range(count)]


POOL_BYTES = 64 * 1024 * 1024
"""The most memory a pool of values takes: at 900 KiB a value, 64 values, not 1,024 (0.9 GB)."""


def make_payloads(size: int, kind: str = "json", pool: int | None = None,
                  seed: int = 0) -> list[bytes]:
    """Return a pool of message values of exactly ``size`` bytes.

    "json" values look like application events (they compress as real ones do); "random"
    values do not compress at all. The pool holds ``pool`` values, by default 1,024 or as
    many as fit in ``POOL_BYTES`` (at least 8), whichever is fewer, rounded down to a power
    of two: senders pick value ``i & (len(pool) - 1)`` for message ``i``.
    """
    if pool is None:
        fit = min(1024, max(8, POOL_BYTES // max(size, 1)))
        pool = 1 << (fit.bit_length() - 1)
    rng = np.random.default_rng(seed)
    if kind == "random":
        return [rng.bytes(size) for _ in range(pool)]
    kinds = ["page_view", "click", "add_to_cart", "checkout", "search"]
    values = []
    for i in range(pool):
        event = {"event": kinds[i % len(kinds)], "user": f"user-{rng.integers(10_000)}",
                 "session": uuid.UUID(int=int(rng.integers(2**63))).hex[:16],
                 "page": f"/products/{rng.integers(500)}",
                 "amount": round(float(rng.random()) * 100, 2)}
        text = json.dumps(event, separators=(",", ":")).encode()
        values.append((text + b" " * size)[:size])
    return values


_NO_KEYS = pd.Categorical([None]).dtype  # the key column of a run without keys: all missing


class Deliveries:
    """The one delivery recorder: one callback for every message, arrays indexed by msg_id.

    ``run_producer`` and ``labkit.workloads.transactions.run_transactions`` both record
    through it, so their ``records`` have the same columns (see the module docstring).

    The callback learns a report's msg_id from the message's mark and writes the report's
    partition, offset, librdkafka latency and outcome into preallocated ``array.array``
    columns: about 30 bytes per message and no Python object per report. (A delivery report
    carries no headers, so with ``id_in="headers"`` each message gets a callback of its own,
    ``callback_for``, which knows its msg_id: slower, for lessons about headers.) The sender
    writes each message's send time (``sent_ns``, the wall-clock ns its mark carries) into
    the same kind of column.
    """

    UNREPORTED, ACKED, FAILED = 0, 1, 2

    def __init__(self, capacity: int = 1024):
        self.partition = array.array("i", [-1]) * capacity
        self.offset = array.array("q", [-1]) * capacity
        self.latency = array.array("d", [float("nan")]) * capacity  # seconds, librdkafka's
        self.state = array.array("b", [self.UNREPORTED]) * capacity
        self.sent_ns = array.array("q", [0]) * capacity
        self.errors: dict[int, str] = {}  # msg_id -> error name, for the failed ones

    def reserve(self, n: int) -> None:
        """Make room for msg_ids below ``n`` (in place: callbacks keep their references)."""
        extra = n - len(self.state)
        if extra > 0:
            extra = max(extra, len(self.state))  # grow by doubling
            for column, blank in ((self.partition, -1), (self.offset, -1),
                                  (self.latency, float("nan")), (self.state, self.UNREPORTED),
                                  (self.sent_ns, 0)):
                column.extend(array.array(column.typecode, [blank]) * extra)

    def store(self, j: int, err, msg) -> None:
        """Record the delivery report ``msg`` (error ``err``) of message ``j``."""
        self.partition[j] = msg.partition()
        self.latency[j] = msg.latency()
        if err is None:
            where = msg.offset()
            if where is not None and where >= 0:  # acks=0: the broker never says where
                self.offset[j] = where
            self.state[j] = self.ACKED
        else:
            self.state[j] = self.FAILED
            self.errors[j] = err.name()

    def callback_for(self, j: int) -> Callable:
        """A delivery-report callback for message ``j`` alone (for ``id_in="headers"``)."""
        return lambda err, msg: self.store(j, err, msg)

    def callback(self) -> Callable:
        """The delivery-report callback for every marked message of a run."""
        partition, offset, latency, state = self.partition, self.offset, self.latency, self.state
        errors, acked, failed = self.errors, self.ACKED, self.FAILED
        id_at = marks.ID_AT.unpack_from

        def on_delivery(err, msg):
            # store() inlined: this runs once per message, and a call costs what the rest does.
            j = id_at(msg.value(), 8)[0]
            partition[j] = msg.partition()
            latency[j] = msg.latency()
            if err is None:
                where = msg.offset()
                if where is not None and where >= 0:
                    offset[j] = where
                state[j] = acked
            else:
                state[j] = failed
                errors[j] = err.name()
        return on_delivery

    def reported(self) -> int:
        """How many delivery reports have been served so far (safe from another thread)."""
        return len(self.state) - self.state.count(self.UNREPORTED)

    def acknowledged(self) -> int:
        """How many reports so far say the message was written (safe from another thread)."""
        return self.state.count(self.ACKED)

    def partitions_of(self, ids: range) -> set[int]:
        """The partitions the reports of messages ``ids`` named."""
        return {self.partition[i] for i in ids if self.state[i] != self.UNREPORTED}

    def records(self, n: int, started_ns: int, topics: list[str], keys: pd.Categorical | None,
                size: int, dropped_ids=()) -> pd.DataFrame:
        """The per-message table, from the send times and the delivery reports.

        Args:
            n: messages sent (msg_ids 0 .. n-1).
            started_ns: wall-clock ns at which the run's clock (t_send, t_delivered) is 0.
            topics: message i went to ``topics[i % len(topics)]``.
            keys: the key of each message (a Categorical of n), or None for no keys at all.
            size: value bytes.
            dropped_ids: msg_ids given up on ``BufferError`` (error "BufferError").

        Returns:
            The ``records`` columns of the module docstring. ``t_delivered`` is ``t_send``
            plus librdkafka's latency, which runs from ``produce()`` to the report's serving
            (in whole microseconds, so ``t_delivered`` may fall a few microseconds early).
        """
        def column(values: array.array, dtype) -> np.ndarray:
            # A read-only view, no copy: a million-message run's table costs its columns
            # once. (The view pins the array's size, and the run has ended: nothing grows it.)
            return np.frombuffer(values, dtype=dtype, count=n)

        dropped_ids = np.asarray(list(dropped_ids), dtype=np.int64)
        latency = column(self.latency, np.float64)
        # Error names by code: one string object per name, not one per message.
        names = ["", "unreported", "BufferError", *sorted(set(self.errors.values()))]
        codes = (column(self.state, np.int8) != self.ACKED).astype(np.int8)  # "" or "unreported"
        for i, name in self.errors.items():
            if i < n:
                codes[i] = names.index(name)
        codes[dropped_ids] = 2
        sent = (column(self.sent_ns, np.int64) - started_ns) / 1e9
        sent[dropped_ids] = np.nan
        ids = np.arange(n)
        return pd.DataFrame({
            "msg_id": ids,
            "topic": pd.Categorical.from_codes(ids % len(topics), topics),
            "key": keys if keys is not None else pd.Categorical.from_codes(
                np.full(n, -1, dtype=np.int8), dtype=_NO_KEYS),
            "size": np.full(n, size, dtype=np.int32),
            "partition": column(self.partition, np.int32),
            "offset": column(self.offset, np.int64),
            "t_send": sent,
            "t_delivered": sent + latency,
            "latency_ms": latency * 1000,
            "error": np.array(names, dtype=object)[codes],
        }, copy=False)


def run_producer(
    cluster: Cluster,
    config: dict[str, Any] | None = None,
    *,
    messages: int | None = None,
    duration: float | None = None,
    rate: float | None = None,
    size: int = 100,
    keys: str = "none",
    key_count: int = 100,
    zipf_s: float = 1.2,
    payload: str = "json",
    poll: str | int = "every",
    flush: bool = True,
    flush_timeout: float = 60,
    on_full: str = "wait",
    topics: list[str] | tuple[str, ...] = LAB_TOPICS,
    stats_interval_ms: int | None = None,
    label: str | None = None,
    progress: bool = False,
    seed: int = 0,
    stop: threading.Event | None = None,
    client_log_file: str | os.PathLike | None = None,
    client_debug: str = client_logs.DEBUG_CONTEXTS,
    deliveries: Deliveries | None = None,
    id_in: str = "value",
) -> ProducerRun:
    """Send a workload and record every message's fate.

    Messages go to ``topics`` in turn (message i to ``topics[i % len(topics)]``).

    Args:
        cluster: where to send (``labkit.connect()``).
        config: librdkafka producer settings, e.g. ``{"acks": "all", "linger.ms": 5}``.
        messages: how many messages to send (or give ``duration`` instead).
        duration: seconds to keep sending (with ``messages=None``).
        rate: target msg/s; None sends as fast as the client accepts.
        size: value size in bytes.
        keys: key scheme: "none", "uniform", "zipf" or "sequential" (see ``make_keys``).
        key_count: distinct keys for "uniform" and "zipf".
        zipf_s: skew exponent for "zipf".
        payload: "json" (compressible, event-like) or "random" (incompressible) values.
        poll: "every" (``poll(0)`` after each produce), N (after every N), or "never"
            (delivery reports are served only by the final flush).
        flush: flush at the end (True) or drop the producer without flushing (False).
        flush_timeout: seconds the final flush may take.
        on_full: on ``BufferError`` (local queue full), "wait" (serve delivery reports for
            up to 0.1 s, retry the message) or "drop" (give the message up).
        topics: topics to write.
        stats_interval_ms: collect librdkafka statistics at this interval (None: off).
        label: name for plots; default derived from the config.
        progress: show a progress bar.
        seed: seed for keys and payloads.
        stop: end the run early when this event is set (checked every 64 messages).
        client_log_file: capture librdkafka's debug log to this file, one time-stamped
            line each (see ``labkit.workloads.client_logs``); None (the default) captures nothing
            and costs nothing.
        client_debug: the librdkafka ``debug`` contexts captured with ``client_log_file``
            (a ``debug`` key in ``config`` wins).
        deliveries: record the delivery reports into this (empty) recorder, so that
            another thread can watch ``deliveries.acknowledged()`` while the run goes on;
            None uses a recorder of the run's own.
        id_in: where each message carries its run id, msg_id and send time: "value" (a
            24-byte mark before the payload, so ``size`` must be at least 24) or "headers"
            (``lab.id`` and ``lab.ts``, where a lesson is about headers); see
            ``labkit.workloads.marks``.

    Returns:
        The run's ``ProducerRun``.

    Raises:
        ValueError: a bad config key or value, or a bad workload argument.
    """
    _check_workload(messages, duration, rate, size, keys, key_count, poll, on_full, topics,
                    payload, id_in)
    settings = validate_config(dict(config or {}))
    run_id = marks.new_run_id()
    stats: list[dict] = []
    client_errors: list[tuple[float, str, str]] = []
    client = cluster.client_config(**settings, logger=client_log)
    captured = contextlib.ExitStack()
    if client_log_file is not None:
        client["logger"] = captured.enter_context(
            client_logs.capture(client_log_file, f"labkit.librdkafka.{run_id}"))
        client.setdefault("debug", client_debug)
    client["error_cb"] = lambda err: client_errors.append((time.time(), err.name(), err.str()))
    if stats_interval_ms:
        client["statistics.interval.ms"] = int(stats_interval_ms)
        client["stats_cb"] = lambda text: stats.append(json.loads(text))
    deliveries = Deliveries() if deliveries is None else deliveries
    deliveries.reserve(messages or 1024)
    by_value = id_in == "value"
    if by_value:
        client["on_delivery"] = deliveries.callback()  # one callback serves every message
    callback_for = deliveries.callback_for
    try:
        producer = Producer(client)
    except KafkaException as exc:
        captured.close()
        raise ValueError(f"producer config refused by librdkafka: {exc.args[0].str()}") from None

    key_list = make_keys(keys, min(messages or 1_000_000, 1_000_000), key_count, zipf_s, seed)
    bodies = make_payloads(size - marks.MARK_SIZE if by_value else size, payload, seed=seed)
    pick = len(bodies) - 1  # a power of two less one: message i takes value i & pick
    topic_list = list(topics)
    sent_ns = deliveries.sent_ns
    dropped_ids: list[int] = []
    head, pack = marks.head(run_id), marks.MARK.pack
    poll_every = 1 if poll == "every" else (0 if poll == "never" else int(poll))
    keyed = key_list is not None
    key_list = key_list if keyed else [None]
    n_topics, n_keys = len(topic_list), len(key_list)
    buffer_errors = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=messages, unit="msg", desc=label or "producing", leave=False)

    perf, time_ns, produce, poll_now = (time.perf_counter, time.time_ns, producer.produce,
                                        producer.poll)
    # The run keeps every delivery report until it ends; without this, Python's cyclic GC
    # would rescan that growing heap again and again and become the bottleneck.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        cpu0, thread_cpu0 = time.process_time(), time.thread_time()
        started_ns = time_ns()
        t0 = perf()
        end = t0 + duration if duration else None
        limit = messages or 2**62
        i = 0
        stopped = stop.is_set if stop is not None else None
        while i < limit:
            if not i & 63:  # every 64 messages: the checks that need not run for each one
                if (stopped is not None and stopped()) or (end is not None and perf() >= end):
                    break
                deliveries.reserve(i + 64)
                if bar is not None:
                    bar.update(i - bar.n)
            if rate:
                slot = t0 + i / rate
                if end is not None and slot >= end:
                    break
                # Wait for the send slot, serving delivery reports meanwhile unless the
                # policy is never to poll (poll() may return early: check again).
                while ((ahead := slot - perf()) > 0.001
                       and not (stopped is not None and stopped())):
                    poll_now(min(ahead, 0.1)) if poll_every else time.sleep(min(ahead, 0.1))
                if ahead > 0.001:
                    break  # stopped while waiting
            topic, key = topic_list[i % n_topics], key_list[i % n_keys]
            while True:  # once, unless the local queue is full
                ns = time_ns()  # a retry carries the time of the send that was accepted
                try:
                    if by_value:
                        produce(topic, pack(head, i, ns) + bodies[i & pick], key)
                    else:
                        produce(topic, bodies[i & pick], key,
                                headers=marks.headers(run_id, i, ns), on_delivery=callback_for(i))
                    sent_ns[i] = ns
                    break
                except BufferError:
                    buffer_errors += 1
                    if on_full == "drop":
                        dropped_ids.append(i)
                        break
                    poll_now(0.1)
            i += 1
            if poll_every and not i % poll_every:
                poll_now(0)
        reports_before_flush = deliveries.reported()
        if flush:
            producer.flush(flush_timeout)
        else:
            # Dropping the producer: librdkafka purges what it has not sent, and the delivery
            # reports still queued are never served.
            del producer, produce, poll_now
        wall = perf() - t0
        cpu, thread_cpu = time.process_time() - cpu0, time.thread_time() - thread_cpu0
        if flush and stats_interval_ms:
            # One more statistics sample, so the last one covers the whole run.
            count, every = len(stats), stats_interval_ms / 1000
            with contextlib.suppress(TimeoutError):  # without it, the run still stands
                wait_until(lambda: len(stats) > count or (producer.poll(every), 0)[1],
                           3 * every, "one more statistics sample", interval=0)
    finally:
        if gc_was_enabled:
            gc.enable()
        captured.close()
    if bar is not None:
        bar.close()

    message_keys = None
    if keyed:
        names = pd.Categorical(key_list)
        message_keys = pd.Categorical.from_codes(
            names.codes[np.arange(i) % n_keys],
            [name.decode() for name in names.categories])
    rows = deliveries.records(i, started_ns, topic_list, message_keys, size, dropped_ids)
    errors = rows.error
    started_wall = started_ns / 1e9
    return ProducerRun(
        label=label or describe(settings), run_id=run_id, config=settings,
        workload=dict(messages=messages, duration=duration, rate=rate, size=size, keys=keys,
                      key_count=key_count, zipf_s=zipf_s, payload=payload, poll=poll,
                      flush=flush, on_full=on_full, topics=topic_list, id_in=id_in),
        records=rows, sent=i - len(dropped_ids), delivered=int((errors == "").sum()),
        failed=int((~errors.isin(["", "BufferError", "unreported"])).sum()),
        unreported=int((errors == "unreported").sum()), buffer_errors=buffer_errors,
        dropped=len(dropped_ids), wall_s=wall, stats=stats, started_wall=started_wall,
        started_monotonic=t0, client_errors=pd.DataFrame(
            [(t - started_wall, name, reason) for t, name, reason in client_errors],
            columns=["t", "error", "reason"]),
        client_log_file=os.fspath(client_log_file) if client_log_file is not None else None,
        cpu_s=cpu, thread_cpu_s=thread_cpu, reports_before_flush=reports_before_flush,
    )


def bare_loop(producer: Producer, topic: str, values: list[bytes], records: int,
              flush_timeout: float = 60) -> float:
    """The reference the instrument is held against: produce with no bookkeeping at all.

    ``produce(topic, value)`` with no key, headers or delivery callback, ``poll(0)`` after
    each, ``poll(0.01)`` and retry on ``BufferError``, then ``flush()``. It records nothing,
    so it shows how fast this client and cluster go without labkit's per-message cost.

    Args:
        producer: a ``confluent_kafka.Producer`` (its config decides acks, batching, ...).
        topic: where to write.
        values: message values, used in turn; their count must be a power of two (the
            loop picks ``values[i & (count - 1)]``, as cheap as picking gets).
        records: how many to send.
        flush_timeout: seconds the final flush may take.

    Returns:
        Seconds from the first ``produce()`` until ``flush()`` returned.

    Raises:
        RuntimeError: the flush left records undelivered.
    """
    mask = len(values) - 1
    if len(values) < 1 or len(values) & mask:
        raise ValueError(f"bare_loop needs a power-of-two number of values, got {len(values)}")
    produce, poll = producer.produce, producer.poll
    t0 = time.perf_counter()
    for i in range(records):
        value = values[i & mask]
        while True:
            try:
                produce(topic, value)
                break
            except BufferError:
                poll(0.01)
        poll(0)
    left = producer.flush(flush_timeout)
    seconds = time.perf_counter() - t0
    if left:
        raise RuntimeError(f"the bare loop's flush left {left} records undelivered")
    return seconds


def describe(config: dict[str, str]) -> str:
    """A short label for a config, e.g. ``"acks=all linger.ms=5"`` (``"defaults"`` if empty)."""
    return " ".join(f"{k}={v}" for k, v in config.items()) or "defaults"


def compare(cluster: Cluster, configs: dict[str, dict[str, Any]], progress: bool = False,
            **workload: Any) -> list[ProducerRun]:
    """Run the same workload once per config, one after another.

    Every config is validated before the first run starts.

    Args:
        cluster: where to produce.
        configs: label -> producer config.
        progress: show a progress bar over the configs.
        **workload: ``run_producer`` keyword arguments shared by every run.

    Returns:
        One ProducerRun per config, in order, labelled with its key.
    """
    for config in configs.values():
        validate_config(config)
    items = list(configs.items())
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, desc="configs", unit="run", leave=False)
    return [run_producer(cluster, config, label=label, **workload) for label, config in items]


class Background:
    """A producer running in a background thread until the block ends; a context manager.

    ``with Background(cluster, config, rate=1000) as stream: ...`` keeps sending at
    ``rate`` while the block runs (up to ``max_seconds``); afterwards ``stream.run`` is the
    ``ProducerRun``, flushed. Meanwhile ``stream.deliveries.acknowledged()`` counts the
    messages acknowledged so far.

    Args:
        cluster: where to produce.
        config: producer config.
        max_seconds: the longest the stream may run.
        **workload: other ``run_producer`` arguments (rate, topics, keys, size, ...).
    """

    def __init__(self, cluster: Cluster, config: dict[str, Any] | None = None,
                 max_seconds: float = 3600, **workload: Any):
        validate_config(dict(config or {}))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.run: ProducerRun | None = None
        self.deliveries = Deliveries()
        self._thread = threading.Thread(
            target=self._main, name="labkit-background-producer", daemon=True,
            args=(cluster, config, {**workload, "messages": None, "duration": max_seconds,
                                    "deliveries": self.deliveries}))

    def _main(self, cluster, config, workload):
        try:
            self.run = run_producer(cluster, config, stop=self._stop, **workload)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the stream to stop sending, without waiting for its flush.

        Leaving the block waits for the flush; stopping several streams first lets them
        flush in parallel.
        """
        self._stop.set()

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(120)
        if self._error is not None:
            raise self._error


def setting_in_effect(config: dict[str, Any], name: str) -> str:
    """The value of a librdkafka setting a client made with ``config`` runs with.

    The config's own value if it sets ``name``, else librdkafka's default, asked of the
    librdkafka library bundled with confluent-kafka (so a sentence can say "60000" because
    the client said so, not because someone typed it).

    Args:
        config: a producer config as given to ``run_producer``.
        name: a librdkafka property, e.g. ``"socket.timeout.ms"``.

    Returns:
        The value in librdkafka's string form.

    Raises:
        ValueError: librdkafka knows no property of that name.
    """
    if name in config:
        return validate_config({name: config[name]})[name]
    import ctypes

    from labkit.workloads import librdkafka

    lib = librdkafka.library()
    # Global properties first, then topic-level ones (message.timeout.ms, acks, ...).
    for kind in ("conf", "topic_conf"):
        create, get, destroy = (getattr(lib, f"rd_kafka_{kind}_{verb}")
                                for verb in ("new", "get", "destroy"))
        create.restype = ctypes.c_void_p
        get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.POINTER(ctypes.c_size_t)]
        destroy.argtypes = [ctypes.c_void_p]
        conf = create()
        try:
            value, size = ctypes.create_string_buffer(1024), ctypes.c_size_t(1024)
            if get(conf, name.encode(), value, ctypes.byref(size)) == 0:
                return value.value.decode()
        finally:
            destroy(conf)
    raise ValueError(f"librdkafka has no configuration property {name!r}")
