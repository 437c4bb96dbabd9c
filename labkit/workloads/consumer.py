"""Consumers: a fresh reader of whole topics, and a consumer group of background members.

``read_topic()`` is the independent reader the experiments and audits use: a consumer with
no group commits, assigned every partition from the beginning, reading until it reaches the
end offsets it saw when it started. ``Tail`` is a live reader of the same kind, following
topics in the background to record when each message became readable.

``ConsumerGroup`` runs N members, each a background thread with its own Consumer, and
records every message they process and every group event (see its docstring).

Columns of the DataFrame ``read_topic()`` returns:

============ ===============================================================================
topic        str
partition    int
offset       int
key          str or None
run_id       str, from the ``lab.id`` header ("" for a message not sent by labkit)
msg_id       int, from the ``lab.id`` header (-1 for a message not sent by labkit)
t_produced   float, wall-clock send time from the ``lab.ts`` header, seconds since the epoch
t_consumed   float, wall-clock time the reader received it, seconds since the epoch
============ ===============================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from typing import Any

import pandas as pd
from confluent_kafka import Consumer, KafkaException, TopicPartition

from labkit.cluster import LAB_TOPICS, Cluster, client_log, wait_until
from labkit.workloads.producer import parse_headers

ISOLATION_LEVELS = ("read_committed", "read_uncommitted")
OFFSETS_TOPIC = "__consumer_offsets"


def read_topic(cluster: Cluster, topics, isolation_level: str = "read_committed",
               timeout: float = 60) -> pd.DataFrame:
    """Read every partition of ``topics`` from the beginning to the current end.

    Under read_committed the end is the last stable offset: records of open transactions
    are not waited for.

    Args:
        cluster: where to read.
        topics: topic names.
        isolation_level: "read_committed" or "read_uncommitted".
        timeout: seconds allowed to reach the end.

    Raises:
        ValueError: a bad isolation level or an unknown topic.
        TimeoutError: the end was not reached in time.
    """
    if isolation_level not in ISOLATION_LEVELS:
        raise ValueError(
            f"isolation_level={isolation_level!r}; use one of {', '.join(ISOLATION_LEVELS)}"
        )
    topics = [topics] if isinstance(topics, str) else list(topics)
    consumer = Consumer(cluster.client_config(**{
        "group.id": f"labkit-reader-{uuid.uuid4().hex[:8]}",  # never commits
        "enable.auto.commit": False,
        "isolation.level": isolation_level,
        "logger": client_log,
    }))
    try:
        meta = consumer.list_topics(timeout=10).topics
        assignment = []
        for topic in topics:
            if topic not in meta or meta[topic].error is not None:
                raise ValueError(f"cannot read unknown topic {topic!r}")
            assignment += [TopicPartition(topic, p) for p in meta[topic].partitions]
        ends = {}
        for tp in assignment:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        consumer.assign([TopicPartition(tp.topic, tp.partition, -2) for tp in assignment])
        rows = []
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topics} did not reach the end offsets within "
                                   f"{timeout:g} s; partitions left: {sorted(ends)}")
            for msg in consumer.consume(10_000, 0.5):
                if msg.error() is not None:
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    continue
                where = (msg.topic(), msg.partition())
                rows.append(_row(msg))
                if where in ends and msg.offset() + 1 >= ends[where]:
                    del ends[where]
            _drop_finished(consumer, ends, assignment)
    finally:
        consumer.close()
    return pd.DataFrame(rows, columns=["topic", "partition", "offset", "key", "run_id", "msg_id",
                                       "t_produced", "t_consumed"])


class Tail:
    """Follow topics from the beginning in a background thread, without a consumer group.

    A live reader records when each message became readable, which ``read_topic`` (run
    afterwards) cannot: a consumer only gets records below a partition's high watermark,
    so a message the leader acknowledged but the watermark has not passed stays unread.
    Having no group, it needs no coordinator and commits nothing, so it keeps reading
    while internal topics are short of replicas.

    A context manager: reading starts on entering and stops on leaving. ``rows`` has the
    columns of ``read_topic`` (``t_consumed`` is when this reader received the record).

    Args:
        cluster: where to read.
        topics: topic names (they must exist).
        isolation_level: "read_committed" or "read_uncommitted".

    Raises:
        ValueError: a bad isolation level (before anything starts).
    """

    def __init__(self, cluster: Cluster, topics, isolation_level: str = "read_uncommitted"):
        if isolation_level not in ISOLATION_LEVELS:
            raise ValueError(
                f"isolation_level={isolation_level!r}; use one of {', '.join(ISOLATION_LEVELS)}"
            )
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self._config = cluster.client_config(**{
            "group.id": f"labkit-tail-{uuid.uuid4().hex[:8]}",  # never joins, never commits
            "enable.auto.commit": False,
            "isolation.level": isolation_level,
            "logger": client_log,
        })
        self._rows: list[tuple] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="labkit-tail", daemon=True)

    def __enter__(self) -> Tail:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(30)
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def _run(self) -> None:
        consumer = Consumer(self._config)
        try:
            meta = consumer.list_topics(timeout=10).topics
            missing = [t for t in self.topics if t not in meta or meta[t].error is not None]
            if missing:
                raise ValueError(f"cannot follow unknown topic(s) {missing}")
            consumer.assign([TopicPartition(t, p, -2) for t in self.topics
                             for p in meta[t].partitions])
            while not self._stop.is_set():
                for msg in consumer.consume(1000, 0.1):
                    if msg.error() is None:
                        self._rows.append(_row(msg))
                    elif msg.error().fatal():
                        raise KafkaException(msg.error())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc
        finally:
            consumer.close()

    @property
    def rows(self) -> pd.DataFrame:
        """Every record read so far (the columns of ``read_topic``)."""
        return pd.DataFrame(list(self._rows), columns=["topic", "partition", "offset", "key",
                                                       "run_id", "msg_id", "t_produced",
                                                       "t_consumed"])


def _drop_finished(consumer: Consumer, ends: dict, assignment) -> None:
    """Under read_committed the end may be a transaction marker that is never delivered."""
    for tp in assignment:
        where = (tp.topic, tp.partition)
        if where in ends:
            position = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if position >= ends[where]:
                del ends[where]


def _frozen(headers) -> tuple | None:
    return tuple(headers) if headers else None


def _lab_ids(headers) -> tuple[str, int, float]:
    """(run_id, msg_id, send time in s) from lab headers; ("", -1, nan) for other messages."""
    try:
        run_id, msg_id, sent_ns = parse_headers(headers)
    except ValueError:
        return "", -1, float("nan")
    return run_id, msg_id, sent_ns / 1e9


def _row(msg) -> tuple:
    key = msg.key()
    return (msg.topic(), msg.partition(), msg.offset(), key.decode() if key else None,
            *_lab_ids(msg.headers()), time.time())


# -- consumer groups ------------------------------------------------------------------------


def coordinator_partition(group_id: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group: its leader is the group's coordinator.

    Kafka's rule: the absolute value of the group id's Java ``String.hashCode()``, modulo
    the partition count of ``__consumer_offsets`` (``offsets.topic.num.partitions``).
    """
    h = 0
    units = group_id.encode("utf-16-be")  # Java hashes UTF-16 code units
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % partitions  # Kafka's Utils.abs


def coordinator_of(cluster: Cluster, group_id: str, timeout: float = 60) -> int:
    """Return the broker that coordinates ``group_id`` (the group need not exist yet).

    The coordinator is the leader of the group's ``__consumer_offsets`` partition (see
    ``coordinator_partition``), so an experiment can place other leaderships on the broker
    that coordinates its group, or away from it. The offsets topic is created first if it
    does not exist yet (the first group lookup creates it).

    Raises:
        TimeoutError: the offsets topic did not get a leader for every partition in time.
    """
    if OFFSETS_TOPIC not in cluster.admin().list_topics(timeout=10).topics:
        # A group member's first coordinator lookup makes the broker create the topic.
        probe = Consumer(cluster.client_config(**{
            "group.id": f"labkit-probe-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "logger": client_log}))
        try:
            probe.subscribe([OFFSETS_TOPIC])
            wait_until(lambda: (probe.poll(0.2), OFFSETS_TOPIC in
                                cluster.admin().list_topics(timeout=10).topics)[1],
                       timeout, f"the broker to create {OFFSETS_TOPIC}")
        finally:
            probe.close()
    leaders = wait_until(
        lambda: (parts := {p.id: p.leader for p in
                           cluster.topic_metadata(OFFSETS_TOPIC).partitions.values()})
        and all(b >= 0 for b in parts.values()) and parts,
        timeout, f"a leader for every partition of {OFFSETS_TOPIC}")
    return leaders[coordinator_partition(group_id, len(leaders))]


COMMIT_MODES = ("auto", "sync-per-message", "sync-per-batch", "async", "store-offsets")
EVENT_KINDS = ("join", "assign", "revoke", "lost", "error", "commit", "leave", "crash",
               "pause", "resume")
KIP848_FORBIDDEN = ("partition.assignment.strategy", "session.timeout.ms",
                    "heartbeat.interval.ms")
_DESTROY_NO_CONSUMER_CLOSE = 0x8  # librdkafka's RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE


def _librdkafka():
    """The librdkafka shared library bundled with confluent-kafka (for ``abandon``)."""
    import ctypes
    import glob

    import confluent_kafka

    base = os.path.dirname(confluent_kafka.__file__)
    found = glob.glob(base + ".libs/librdkafka*.so*") + glob.glob(base + "/.dylibs/librdkafka*")
    if not found:
        raise RuntimeError("cannot find the librdkafka library bundled with confluent-kafka")
    lib = ctypes.CDLL(found[0])
    lib.rd_kafka_destroy_flags.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def abandon(consumer: Consumer) -> None:
    """Make a consumer vanish the way a killed process does: no LeaveGroup, no commit.

    confluent-kafka's ``close()`` (and garbage collection) leave the group politely, so the
    group rebalances at once. A crashed process just stops talking; the coordinator notices
    only when the session times out. This destroys the client's librdkafka handle with
    ``RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE`` and detaches it from the Python object, which
    then raises "Consumer closed" like any closed consumer. (It reads the handle pointer
    from confluent-kafka's C object, whose first field after the Python header it is; the
    test suite checks the resulting behaviour against a real broker.)
    """
    import ctypes

    slot = ctypes.c_void_p.from_address(id(consumer) + object.__basicsize__)
    handle = slot.value
    if not handle:
        raise RuntimeError("consumer already closed")
    slot.value = None
    _librdkafka().rd_kafka_destroy_flags(handle, _DESTROY_NO_CONSUMER_CLOSE)


def _parts(partitions) -> list[str]:
    return [f"{p.topic}-{p.partition}" for p in partitions]


class _Member(threading.Thread):
    """One group member: a thread polling its own Consumer until told to stop."""

    def __init__(self, group: ConsumerGroup, name: str, config: dict[str, Any]):
        super().__init__(name=f"labkit-{group.group_id}-{name}", daemon=True)
        self.group, self.member = group, name
        self.stop_event = threading.Event()
        self.pause_until = 0.0
        self.crashed = False
        self.graceful = True
        self.assignment: set[str] = set()
        self.uncommitted = 0
        self.batches = 0
        config = {**config, "stats_cb": self._on_stats, "error_cb": self._on_error,
                  "on_commit": self._on_commit}
        try:
            self.consumer = Consumer(config)
        except KafkaException as exc:
            raise ValueError(f"consumer config refused by librdkafka: {exc.args[0].str()}") \
                from None

    # callbacks run inside consume(), on this thread
    def _on_assign(self, consumer, partitions):
        self.assignment |= set(_parts(partitions))
        self.group._event(self.member, "assign", _parts(partitions))
        if self.group.protocol == "consumer" or self.group.cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _on_revoke(self, consumer, partitions):
        # Work in flight: processed since the last commit (manual modes only).
        detail = f"uncommitted={self.uncommitted}"
        if self.group.commit_on_revoke and self.uncommitted:
            with contextlib.suppress(KafkaException):
                consumer.commit(asynchronous=False)
                self.uncommitted = 0
                detail += ", committed in on_revoke"
        self.assignment -= set(_parts(partitions))
        self.group._event(self.member, "revoke", _parts(partitions), detail)
        if self.group.protocol == "consumer" or self.group.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()

    def _on_lost(self, consumer, partitions):
        self.assignment -= set(_parts(partitions))
        self.group._event(self.member, "lost", _parts(partitions))
        if self.group.protocol == "consumer" or self.group.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()

    def _on_error(self, err):
        self.group._event(self.member, "error", [], f"{err.name()}: {err.str()}")

    def _on_commit(self, err, partitions):
        detail = err.name() if err else ""
        self.group._event(self.member, "commit", _parts(partitions), detail)

    def _on_stats(self, text):
        stats = json.loads(text)
        now = time.monotonic() - self.group.t0
        for topic, tstats in stats.get("topics", {}).items():
            for pid, pstats in tstats.get("partitions", {}).items():
                # Lag behind what this member has processed (stored offsets), not behind
                # the last commit, which trails by up to auto.commit.interval.ms.
                lag = pstats.get("consumer_lag_stored", pstats.get("consumer_lag", -1))
                if pid != "-1" and f"{topic}-{pid}" in self.assignment and lag >= 0:
                    self.group._lag.append((now, self.member, topic, int(pid), lag))

    def run(self):
        group, consumer = self.group, self.consumer
        try:
            consumer.subscribe(group.topics, on_assign=self._on_assign,
                               on_revoke=self._on_revoke, on_lost=self._on_lost)
            group._event(self.member, "join", [])
            while not self.stop_event.is_set():
                if self.pause_until:
                    if time.monotonic() < self.pause_until:
                        time.sleep(0.05)
                        continue
                    self.pause_until = 0.0
                    group._event(self.member, "resume", [])
                try:
                    batch = consumer.consume(group.batch_size, group.poll_timeout)
                except KafkaException as exc:
                    group._event(self.member, "error", [], str(exc.args[0]))
                    continue
                batch_len = len(batch)
                if group.fast and not any(m.error() for m in batch):
                    # No work to simulate and nothing to do per message: record the batch
                    # in one go (the headers are decoded later, in messages()).
                    now, since = time.time(), time.monotonic() - group.t0
                    name = self.member
                    # (Headers as a tuple: rows of atomic values leave the cyclic GC's
                    # watch, which otherwise rescans every row again and again.)
                    group._rows.extend([(name, m.topic(), m.partition(), m.offset(), m.key(),
                                         _frozen(m.headers()), now, since) for m in batch])
                    self.uncommitted += len(batch)
                    batch = ()
                for msg in batch:
                    if self.crashed:
                        break  # a crash mid-batch: the rest is never processed
                    if msg.error() is not None:
                        where = [f"{msg.topic()}-{msg.partition()}"] if msg.topic() else []
                        group._event(self.member, "error", where,
                                     f"{msg.error().name()}: {msg.error().str()}")
                        continue
                    group._process(self, msg)
                if batch_len and not self.crashed:  # a crashed process commits nothing more
                    self.batches += 1
                    group._after_batch(self)
        finally:
            if self.crashed:
                with contextlib.suppress(Exception):
                    abandon(consumer)
            else:
                self._leave(consumer)

    def _leave(self, consumer) -> None:
        """Commit what is processed (manual batch modes), close, and leave the group.

        A failed final commit changes what the next owner re-reads, so it is recorded as an
        error event rather than swallowed, and the consumer is closed all the same.
        """
        group = self.group
        if group.commit in ("sync-per-batch", "async") and self.uncommitted:
            try:
                consumer.commit(asynchronous=False)
                self.uncommitted = 0
            except KafkaException as exc:
                group._event(self.member, "error", sorted(self.assignment),
                             f"final commit failed: {exc.args[0]}")
        try:
            consumer.close()  # leaves the group: its partitions move at once
        except (KafkaException, RuntimeError) as exc:
            group._event(self.member, "error", [], f"close failed: {exc}")
        group._event(self.member, "leave", [])


class ConsumerGroup:
    """N consumers in one group, each a background thread; a context manager.

    Args:
        cluster: where to consume.
        topics: topics every member subscribes to (default: the lab's two topics).
        members: how many members to start with.
        group_id: the group's id (default: a new unique one).
        config: librdkafka consumer settings for every member, e.g.
            ``{"partition.assignment.strategy": "cooperative-sticky"}`` or
            ``{"group.protocol": "consumer"}`` (KIP-848).
        member_config: per-member overrides, member name -> settings.
        processing: seconds of simulated work per message: a number, or (low, high) for a
            uniform random time.
        commit: "auto" (enable.auto.commit), "sync-per-message", "sync-per-batch", "async"
            (commit after each ``commit_every`` batches), or "store-offsets" (auto commit of
            offsets stored after processing).
        commit_every: for "sync-per-batch" and "async", commit every this many batches.
        commit_on_revoke: commit processed offsets in on_revoke, before partitions move.
        batch_size: messages per ``consume()`` call.
        poll_timeout: seconds ``consume()`` waits for messages.
        stats_interval_ms: librdkafka statistics interval (for lag), 0 to turn off.

    Records (DataFrames, readable while running):
        ``messages()``: member, topic, partition, offset, key, run_id, msg_id, t (s since the
        group started), t_produced and t_consumed (wall clock, s), e2e_ms.
        ``events()``: t, member, kind (join, assign, revoke, lost, error, commit, leave,
        crash, pause, resume), partitions (list of "topic-partition"), detail.
        ``t`` is seconds since the group started; ``started_wall`` is that moment on the
        wall clock (epoch seconds), to line events up with producer runs and faults.
        ``lag()``: t, member, topic, partition, lag (librdkafka's consumer_lag).

    Raises:
        ValueError: a bad argument or consumer setting, named with what is allowed.
    """

    def __init__(self, cluster: Cluster, topics=LAB_TOPICS, members: int = 3,
                 group_id: str | None = None, config: dict[str, Any] | None = None,
                 member_config: dict[str, dict[str, Any]] | None = None,
                 processing: float | tuple[float, float] = 0.0, commit: str = "auto",
                 commit_every: int = 1, commit_on_revoke: bool = False, batch_size: int = 100,
                 poll_timeout: float = 0.1, stats_interval_ms: int = 500):
        if commit not in COMMIT_MODES:
            raise ValueError(f"commit={commit!r} is not a commit mode; use one of "
                             f"{', '.join(COMMIT_MODES)}")
        if not isinstance(members, int) or members < 0:
            raise ValueError(f"members={members!r} must be a non-negative integer")
        if not isinstance(commit_every, int) or commit_every < 1:
            raise ValueError(f"commit_every={commit_every!r} must be a positive integer")
        low, high = processing if isinstance(processing, tuple) else (processing, processing)
        if not 0 <= low <= high:
            raise ValueError(f"processing={processing!r} must be seconds >= 0, or (low, high)")
        self.config = dict(config or {})
        self.protocol = str(self.config.get("group.protocol", "classic"))
        if self.protocol not in ("classic", "consumer"):
            raise ValueError(f"group.protocol={self.protocol!r}; use classic or consumer")
        if self.protocol == "consumer":
            for key in KIP848_FORBIDDEN:
                if key in self.config:
                    raise ValueError(
                        f"{key} cannot be set with group.protocol=consumer (KIP-848): the "
                        "broker decides assignment and session timing; remove it"
                    )
        self.cooperative = "cooperative" in str(self.config.get("partition.assignment.strategy"))
        self.cluster = cluster
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.group_id = group_id or f"lab-group-{uuid.uuid4().hex[:8]}"
        self.member_config = dict(member_config or {})
        self.processing = (low, high)
        self.commit, self.commit_every = commit, commit_every
        self.commit_on_revoke = commit_on_revoke
        self.batch_size, self.poll_timeout = batch_size, poll_timeout
        self.stats_interval_ms = stats_interval_ms
        self.initial_members = members
        # Nothing to do per message: members may record whole batches at once.
        self.fast = high == 0 and commit in ("auto", "sync-per-batch", "async")
        self.members: dict[str, _Member] = {}
        self._count = 0
        self._overrides: dict[str, dict[str, Any]] = {}
        self._rows: list[tuple] = []
        self._events: list[tuple] = []
        self._lag: list[tuple] = []
        self._rng = random.Random(0)
        self.t0 = time.monotonic()
        self.started_wall = time.time()  # wall clock (epoch s) at which ``t`` is 0
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ConsumerGroup:
        """Start the initial members."""
        if not self._started:
            self._started = True
            self.t0, self.started_wall = time.monotonic(), time.time()
            for _ in range(self.initial_members):
                self.add_member()
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop every member (each leaves the group and closes its consumer).

        Raises:
            RuntimeError: a member's thread was still running ``timeout`` s after it was
                told to stop (it is left in ``members``).
        """
        for member in self.members.values():
            member.stop_event.set()
        for member in list(self.members.values()):
            member.join(timeout)
        stuck = [name for name, member in self.members.items() if member.is_alive()]
        self.members = {name: self.members[name] for name in stuck}
        if stuck:
            raise RuntimeError(f"consumer group {self.group_id}: member(s) {', '.join(stuck)} "
                               f"still running {timeout:g} s after stop()")

    def __enter__(self) -> ConsumerGroup:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- membership -------------------------------------------------------------------------

    def _consumer_config(self, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
        auto = self.commit in ("auto", "store-offsets")
        base = {
            "group.id": self.group_id,
            "client.id": f"{self.group_id}-{name}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": auto,
            "enable.auto.offset.store": self.commit != "store-offsets",
            "logger": client_log,
        }
        if self.stats_interval_ms:
            base["statistics.interval.ms"] = self.stats_interval_ms
        config = {**base, **self.config, **self.member_config.get(name, {}), **overrides}
        return self.cluster.client_config(**config)

    def add_member(self, name: str | None = None, **overrides: Any) -> str:
        """Start one more member and return its name.

        Args:
            name: member name (default m1, m2, ...).
            **overrides: consumer settings for this member only (dotted keys via a dict:
                ``add_member(**{"group.instance.id": "a"})``).

        Raises:
            ValueError: the name is taken, or librdkafka refuses the settings.
        """
        self._count += 1
        name = name or f"m{self._count}"
        if name in self.members:
            raise ValueError(f"member {name!r} already exists; members are {list(self.members)}")
        member = _Member(self, name, self._consumer_config(name, overrides))
        self._overrides[name] = dict(overrides)
        self.members[name] = member
        member.start()
        return name

    def _member(self, name: str) -> _Member:
        if name not in self.members:
            raise ValueError(f"no member {name!r}; members are {list(self.members)}")
        return self.members[name]

    def remove_member(self, name: str, graceful: bool = True, timeout: float = 30) -> None:
        """Stop a member.

        Graceful: it closes its consumer and leaves the group, so its partitions move at once.
        Not graceful: ``crash_member``.
        """
        if not graceful:
            self.crash_member(name)
            return
        member = self._member(name)
        member.stop_event.set()
        self._forget(name, timeout)

    def _forget(self, name: str, timeout: float) -> None:
        """Wait for a stopped member's thread, then drop it from ``members``.

        Raises:
            RuntimeError: the thread is still running after ``timeout`` s (it stays listed).
        """
        member = self.members[name]
        member.join(timeout)
        if member.is_alive():
            raise RuntimeError(f"consumer group {self.group_id}: member {name} still running "
                               f"{timeout:g} s after it was told to stop")
        del self.members[name]

    def member_overrides(self, name: str) -> dict[str, Any]:
        """The per-member settings ``add_member`` was given for ``name``."""
        return dict(self._overrides.get(name, {}))

    def crash_member(self, name: str, timeout: float = 30) -> None:
        """Kill a member as a crashed process dies.

        It stops mid-batch, commits nothing and never says goodbye; the group notices only
        when its session times out.
        """
        member = self._member(name)
        member.crashed = True
        self._event(name, "crash", sorted(member.assignment))
        member.stop_event.set()
        self._forget(name, timeout)

    def pause_member(self, name: str, seconds: float) -> None:
        """Make a member stop polling for ``seconds`` (as if stuck processing)."""
        member = self._member(name)
        self._event(name, "pause", sorted(member.assignment), f"{seconds:g} s")
        member.pause_until = time.monotonic() + seconds

    # -- processing -------------------------------------------------------------------------

    def _process(self, member: _Member, msg) -> None:
        low, high = self.processing
        if high > 0:
            time.sleep(low if low == high else self._rng.uniform(low, high))
        self._rows.append((member.member, msg.topic(), msg.partition(), msg.offset(), msg.key(),
                           _frozen(msg.headers()), time.time(), time.monotonic() - self.t0))
        consumer = member.consumer
        if self.commit == "sync-per-message":
            try:
                consumer.commit(message=msg, asynchronous=False)
            except KafkaException as exc:  # e.g. the partition was just revoked
                self._event(member.member, "error", [f"{msg.topic()}-{msg.partition()}"],
                            str(exc.args[0]))
        elif self.commit == "store-offsets":
            consumer.store_offsets(message=msg)
        else:
            member.uncommitted += 1

    def _after_batch(self, member: _Member) -> None:
        if self.commit in ("sync-per-batch", "async") and member.batches % self.commit_every == 0:
            try:
                member.consumer.commit(asynchronous=self.commit == "async")
                member.uncommitted = 0
            except KafkaException as exc:  # e.g. no offsets to commit during a rebalance
                self._event(member.member, "error", [], str(exc.args[0]))

    def _event(self, member: str, kind: str, partitions: list[str], detail: str = "") -> None:
        self._events.append((time.monotonic() - self.t0, member, kind, partitions, detail))

    # -- records ----------------------------------------------------------------------------

    def messages(self) -> pd.DataFrame:
        """Every message processed so far (see the class docstring for the columns)."""
        rows = [(member, topic, partition, offset, key.decode() if key else None,
                 *_lab_ids(headers), t_consumed, t)
                for member, topic, partition, offset, key, headers, t_consumed, t
                in list(self._rows)]
        frame = pd.DataFrame(rows, columns=[
            "member", "topic", "partition", "offset", "key", "run_id", "msg_id", "t_produced",
            "t_consumed", "t"])
        frame["e2e_ms"] = (frame.t_consumed - frame.t_produced) * 1000
        return frame

    def processed_count(self) -> int:
        """How many messages (rows, duplicates included) were processed so far; cheap."""
        return len(self._rows)

    def events(self) -> pd.DataFrame:
        """Every group event so far (see the class docstring for the columns)."""
        return pd.DataFrame(list(self._events),
                            columns=["t", "member", "kind", "partitions", "detail"])

    def lag(self) -> pd.DataFrame:
        """Consumer lag samples from librdkafka's statistics."""
        return pd.DataFrame(list(self._lag), columns=["t", "member", "topic", "partition", "lag"])

    def assignment(self) -> dict[str, list[str]]:
        """Current partitions of each live member, as the members' callbacks saw them."""
        return {name: sorted(m.assignment) for name, m in self.members.items()}

    def partitions(self) -> list[str]:
        """Every "topic-partition" of the group's topics."""
        return [f"{t}-{p}" for t in self.topics
                for p in sorted(self.cluster.topic_metadata(t).partitions)]

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_messages(self, count: int, timeout: float = 60) -> int:
        """Wait until at least ``count`` messages were processed; return how many were."""
        return wait_until(lambda: len(self._rows) >= count and len(self._rows), timeout,
                          f"{count} messages consumed by group {self.group_id} "
                          f"(so far {len(self._rows)})")

    def wait_for_run(self, run, timeout: float = 120) -> None:
        """Wait until every message ``run`` (a ProducerRun) got acknowledged was processed.

        Unlike ``wait_for_messages`` this counts distinct messages, so duplicates do not
        end the wait early.
        """
        wanted = set(run.records.msg_id[run.records.error == ""])

        def done():
            rows = self.messages()
            return not wanted - set(rows.msg_id[rows.run_id == run.run_id]) or None

        wait_until(done, timeout, f"all {len(wanted)} messages of run {run.run_id} processed",
                   interval=0.25)

    def wait_for_lag(self, at_most: int = 0, timeout: float = 60) -> int:
        """Wait until the newest lag sample of every owned partition is <= ``at_most``.

        Returns:
            The total lag of those samples.
        """
        def caught_up():
            lag = self.lag()
            owned = {p for parts in self.assignment().values() for p in parts}
            if lag.empty or not owned:
                return None
            newest = lag.assign(part=lag.topic + "-" + lag.partition.astype(str)) \
                .groupby("part").last()
            if not owned <= set(newest.index) or (newest.lag > at_most).any():
                return None
            return int(newest.lag.sum()) + 1  # truthy even when 0

        return wait_until(caught_up, timeout, f"group {self.group_id} lag <= {at_most}") - 1

    def broker_view(self) -> dict[str, list[str]] | None:
        """The group's members and their partitions as the coordinator describes them.

        Returns:
            member name -> sorted partitions, or None while the group is rebalancing.
        """
        desc = self.cluster.admin().describe_consumer_groups([self.group_id])[self.group_id]
        group = desc.result(10)
        if self.protocol == "consumer":
            # KIP-848: the coordinator says UNKNOWN while it still reconciles; settled means
            # STABLE with every member owning its target assignment.
            if group.state.name != "STABLE" or any(
                    m.target_assignment is not None and
                    set(_parts(m.target_assignment.topic_partitions)) !=
                    set(_parts(m.assignment.topic_partitions)) for m in group.members):
                return None
        elif group.state.name != "STABLE":
            return None
        prefix = f"{self.group_id}-"
        return {m.client_id.removeprefix(prefix): sorted(_parts(m.assignment.topic_partitions))
                for m in group.members}

    def wait_for_stable(self, timeout: float = 90, quiet: float = 0.5) -> dict[str, list[str]]:
        """Wait until the group has settled and return the assignment.

        Settled: the coordinator lists exactly the live members, each owning what its own
        callbacks say it owns, every partition owned once, and no event for ``quiet`` s.
        A crashed member stays listed until its session times out, so this waits for that.
        """
        expected = sorted(self.partitions())

        def stable():
            local = self.assignment()
            owned = sorted(p for parts in local.values() for p in parts)
            if owned != expected or (self._events and
                                     time.monotonic() - self.t0 - self._events[-1][0] < quiet):
                return None
            return local if self.broker_view() == local else None

        return wait_until(stable, timeout, f"group {self.group_id} to settle on {expected}",
                          interval=0.2)
