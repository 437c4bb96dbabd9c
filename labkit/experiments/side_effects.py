"""A consumer with a side effect crashes mid-batch: what its side effect holds, per strategy.

A consumer that does something per message (here: insert a row into a SQLite table) keeps
two records of its progress: the side effect itself and the offsets it commits. A crash can
fall between the two, and the replacement resumes from the committed offsets, so the order
of the two decides the guarantee:

=================== ======================================================================
strategy            what the worker does with each batch of ``consume()``
=================== ======================================================================
at-most-once        commits the batch's offsets (synchronously), then inserts one row per
                    message, each in its own SQLite transaction
at-least-once       inserts one row per message, each in its own SQLite transaction, then
                    commits the batch's offsets (synchronously)
exactly-once-sqlite inserts the batch's rows and its next offsets in one SQLite transaction;
                    it never commits offsets to Kafka: a worker starts at the offsets stored
                    in the table
exactly-once-kafka  consume-transform-produce: copies each message to an output topic inside
                    a Kafka transaction that also commits the batch's offsets
                    (``send_offsets_to_transaction``); the side effect is the output topic,
                    as a ``read_committed`` reader sees it
=================== ======================================================================

``crash_each()`` runs each strategy over the same input topic with two workers in turn, as a
process and its restart would. The first crashes in the middle of a batch, after it has
processed part of the batch (written its rows, or produced and flushed its output records:
``crash_point``): it is destroyed without closing, committing or aborting anything
(``labkit.workloads.consumer.abandon``) and its SQLite connection is dropped with any open
transaction. The replacement (same group id, same ``transactional.id``, same database)
resumes where the committed state says and reads to the end of the input. The workers
assign themselves every partition rather than subscribe, so the replacement need not wait
for the crashed member's session to time out (notebook 14 shows that wait); they commit
their offsets to their group all the same.

The side effect is then counted against the input
(``labkit.analysis.consumer_faults.side_effect_outcomes``, with ``accounting.tally``):
duplicates are rows beyond the first per message, lost are input messages with no row at all.

Columns of ``CrashRun.received`` (the messages the crashing worker received, in order):

========== ====================================================================
batch      1, 2, ...: which ``consume()`` call returned it
partition  input partition
offset     input offset
msg_id     from the message's lab mark
processed  bool, the worker processed it before it crashed
========== ====================================================================
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

from labkit.cluster import Cluster, client_log, retrying, unique_name, wait_until
from labkit.experiments.commits import log_offsets
from labkit.workloads import marks
from labkit.workloads.consumer import abandon
from labkit.workloads.readers import read_topic

STRATEGIES = ("at-most-once", "at-least-once", "exactly-once-sqlite", "exactly-once-kafka")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (run_id TEXT, msg_id INTEGER, partition INTEGER, "
    "offset INTEGER, worker TEXT)",
    "CREATE TABLE IF NOT EXISTS offsets (topic TEXT, partition INTEGER, next_offset INTEGER, "
    "PRIMARY KEY (topic, partition))",
)
# The group coordinator is moving or still loading (e.g. on a fresh cluster): ask again.
# Errors that pass: a busy or moving coordinator, and no known leader yet (_NOENT: the
# client's metadata is behind a leadership change).

class _Crash(Exception):
    """Raised inside a batch where the worker dies."""


def crash_point(processed: int, batch: int, crash_after: int, within: float = 0.5) -> int | None:
    """Where in a batch the crash comes, if it comes in this batch.

    The crash comes in the batch that holds message number ``crash_after`` (counting from 0
    in the order the worker receives them), once the share ``within`` of that batch is
    processed, and always with at least one message of the batch processed and at least one
    left, so that it really is mid-batch; a batch of one message is passed over.

    Args:
        processed: messages the worker processed in earlier batches.
        batch: messages in this batch.
        crash_after: the worker's crash point, in messages.
        within: the share of the crash batch processed before the crash.

    Returns:
        How many messages of this batch are processed before the crash, or None if the crash
        does not come in this batch.
    """
    if batch < 2 or processed + batch <= crash_after:
        return None
    return min(max(round(within * batch), 1), batch - 1)


@dataclass
class CrashRun:
    """One strategy's run: a worker that crashed mid-batch, then its replacement.

    Attributes:
        strategy: one of ``STRATEGIES``.
        group_id: the group both workers commit to.
        crash_batch: number of the batch the crash came in (1, 2, ...).
        batch_messages: messages in that batch.
        before_crash: messages of that batch processed before the crash.
        received: what the crashing worker received (module docstring: columns).
        effects: one row per side effect: run_id, msg_id (for ``exactly-once-kafka`` the
            output topic as a ``read_committed`` reader sees it).
        uncommitted: ``exactly-once-kafka`` only: the output topic as a
            ``read_uncommitted`` reader sees it (same columns); else None.
        output_topic: ``exactly-once-kafka`` only: the output topic; else "".
        open_after_crash: ``exactly-once-kafka`` only: records of the output topic past
            its last stable offset right after the crash (written in a transaction that is
            still open), summed over partitions; else 0.
        open_after_restart: the same, right after the replacement's ``init_transactions``.
        seconds: wall time of the run, both workers.
    """

    strategy: str
    group_id: str
    crash_batch: int
    batch_messages: int
    before_crash: int
    received: pd.DataFrame
    effects: pd.DataFrame
    uncommitted: pd.DataFrame | None
    output_topic: str
    open_after_crash: int
    open_after_restart: int
    seconds: float

    def predicted(self) -> dict[str, int]:
        """Duplicates and losses the crash point predicts for this strategy.

        at-most-once: the rest of the crash batch is committed but never processed (lost);
        at-least-once: its processed part is processed again (duplicates); the exactly-once
        strategies: neither.
        """
        left = self.batch_messages - self.before_crash
        return {"at-most-once": {"duplicates": 0, "lost": left},
                "at-least-once": {"duplicates": self.before_crash, "lost": 0},
                }.get(self.strategy, {"duplicates": 0, "lost": 0})


@dataclass
class _Setup:
    """What both workers of one strategy share."""

    cluster: Cluster
    strategy: str
    topic: str
    partitions: list[int]
    ends: dict[int, int]
    db_path: str
    group_id: str
    transactional_id: str
    output_topic: str
    batch_size: int
    timeout: float


class _Worker:
    """One incarnation of a worker process: its clients and its SQLite connection."""

    def __init__(self, setup: _Setup, name: str):
        self.setup, self.name = setup, name
        self.crashed = False
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        # Autocommit mode: every statement outside an explicit BEGIN is its own transaction.
        self.db = sqlite3.connect(setup.db_path, isolation_level=None)
        try:
            # WAL with synchronous=NORMAL: a committed row survives a process crash (what is
            # simulated here), just not a power cut; it spares an fsync per row.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self.db.execute(statement)
            cluster = setup.cluster
            self.consumer = Consumer(cluster.client_config(**{
                "group.id": setup.group_id,
                "client.id": f"{setup.group_id}-{name}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "logger": client_log,
            }))
            if setup.strategy == "exactly-once-kafka":
                self.producer = Producer(cluster.client_config(**{
                    "transactional.id": setup.transactional_id,
                    # Each transaction's first request meets CONCURRENT_TRANSACTIONS while
                    # the coordinator still writes the previous one's commit markers; retry
                    # it soon rather than after the default 100 ms.
                    "retry.backoff.ms": 10,
                    "client.id": f"{setup.group_id}-{name}",
                    "logger": client_log,
                }))
                # Fences any earlier producer with this transactional.id and aborts the
                # transaction it left open.
                self.producer.init_transactions(setup.timeout)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Shut down politely, or, after a crash, vanish as a killed process does."""
        try:
            if self.crashed:
                for client in (self.consumer, self.producer):
                    if client is not None:
                        # confluent-kafka's Producer and Consumer share the handle layout
                        # abandon() relies on: destroyed with nothing flushed, committed or
                        # aborted.
                        with contextlib.suppress(RuntimeError):
                            abandon(client)
            else:
                if self.producer is not None:
                    self.producer.flush(self.setup.timeout)
                    self.producer.close()
                if self.consumer is not None:
                    self.consumer.close()
        finally:
            # Closing without COMMIT rolls back an open transaction, as a crash would.
            self.db.close()

    # -- the loop ---------------------------------------------------------------------------

    def start_offsets(self) -> dict[int, int]:
        """Where this worker starts in each partition, per its strategy's committed state."""
        setup = self.setup
        if setup.strategy == "exactly-once-sqlite":
            stored = dict(self.db.execute(
                "SELECT partition, next_offset FROM offsets WHERE topic = ?", (setup.topic,)))
        else:
            committed = retrying(lambda: self.consumer.committed(
                [TopicPartition(setup.topic, p) for p in setup.partitions], setup.timeout),
                setup.timeout)
            stored = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
        starts = {}
        for p in setup.partitions:
            low, _ = self.consumer.get_watermark_offsets(
                TopicPartition(setup.topic, p), timeout=setup.timeout, cached=False)
            starts[p] = max(stored.get(p, low), low)
        return starts

    def run(self, crash_after: int | None = None, within: float = 0.5) -> pd.DataFrame:
        """Process the input to its end, or until the crash.

        Args:
            crash_after: crash in the batch holding this message (``crash_point``); None:
                never.
            within: the share of that batch processed before the crash.

        Returns:
            The messages received (module docstring: ``received`` columns).

        Raises:
            TimeoutError: the end of the input was not reached in time.
        """
        setup, consumer = self.setup, self.consumer
        starts = self.start_offsets()
        consumer.assign([TopicPartition(setup.topic, p, starts[p]) for p in setup.partitions])
        left = {p for p in setup.partitions if starts[p] < setup.ends[p]}
        received: list[tuple] = []
        count = {"processed": 0, "batches": 0}

        def one_batch() -> bool:
            """Consume and handle one batch; True once at the end of the input or crashed."""
            batch = []
            for msg in consumer.consume(setup.batch_size, 0.5):
                if msg.error() is None:
                    batch.append(msg)
                elif msg.error().fatal():
                    raise KafkaException(msg.error())
            if not batch:
                return False
            count["batches"] += 1
            stop = None if crash_after is None else crash_point(count["processed"], len(batch),
                                                                crash_after, within)
            ids = [_lab_id(m) for m in batch]
            received.extend((count["batches"], m.partition(), m.offset(), msg_id,
                             stop is None or i < stop)
                            for i, (m, (_, msg_id)) in enumerate(zip(batch, ids, strict=True)))
            try:
                self._handle(batch, ids, stop)
            except _Crash:
                self.crashed = True
                return True
            count["processed"] += len(batch)
            for m in batch:
                if m.offset() + 1 >= setup.ends[m.partition()]:
                    left.discard(m.partition())
            return not left

        if left:
            # consume() waits up to 0.5 s itself; every error of a batch is the run's error.
            wait_until(one_batch, setup.timeout, f"{setup.strategy} worker {self.name}",
                       interval=0, passes=lambda exc: False,
                       on_timeout=lambda _: TimeoutError(
                           f"{setup.strategy} worker {self.name} did not reach the end of "
                           f"{setup.topic} within {setup.timeout:g} s; partitions left: "
                           f"{sorted(left)}"))
        return pd.DataFrame(received, columns=["batch", "partition", "offset", "msg_id",
                                               "processed"])

    def _handle(self, batch: list, ids: list[tuple[str, int]], stop: int | None) -> None:
        """Process one batch the strategy's way; raise ``_Crash`` after ``stop`` messages."""
        setup = self.setup
        nexts = {}
        for m in batch:
            nexts[m.partition()] = m.offset() + 1
        offsets = [TopicPartition(setup.topic, p, o) for p, o in sorted(nexts.items())]
        rows = [(run_id, msg_id, m.partition(), m.offset(), self.name)
                for m, (run_id, msg_id) in zip(batch, ids, strict=True)]
        insert = "INSERT INTO effects VALUES (?, ?, ?, ?, ?)"
        strategy = setup.strategy
        if strategy == "at-most-once":
            self._commit(offsets)
        if strategy in ("at-most-once", "at-least-once"):
            for i, row in enumerate(rows):
                if i == stop:
                    raise _Crash
                self.db.execute(insert, row)  # its own transaction: durable at once
            if strategy == "at-least-once":
                self._commit(offsets)
        elif strategy == "exactly-once-sqlite":
            self.db.execute("BEGIN")
            for i, row in enumerate(rows):
                if i == stop:
                    raise _Crash  # the open transaction dies with the connection
                self.db.execute(insert, row)
            self.db.executemany(
                "INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)",
                [(tp.topic, tp.partition, tp.offset) for tp in offsets])
            self.db.execute("COMMIT")
        else:
            self._transform(batch, offsets, stop)

    def _transform(self, batch: list, offsets: list[TopicPartition], stop: int | None) -> None:
        """Copy the batch to the output topic in one transaction with its offsets."""
        producer, timeout = self.producer, self.setup.timeout
        producer.begin_transaction()
        for i, m in enumerate(batch):
            if i == stop:
                # Crash once what was produced so far is in the log, inside the open
                # transaction: the worst moment, as readers may see it (read_uncommitted).
                if producer.flush(timeout):
                    raise TimeoutError(f"output not delivered within {timeout:g} s")
                raise _Crash
            producer.produce(self.setup.output_topic, m.value(), m.key(), headers=m.headers())
            producer.poll(0)
        metadata = self.consumer.consumer_group_metadata()
        retrying(lambda: producer.send_offsets_to_transaction(offsets, metadata, timeout),
                  timeout)
        retrying(lambda: producer.commit_transaction(timeout), timeout)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        """Commit offsets to the group synchronously; raise on any partition's error."""
        def commit():
            for tp in self.consumer.commit(offsets=offsets, asynchronous=False) or []:
                if tp.error is not None:
                    raise KafkaException(tp.error)

        retrying(commit, self.setup.timeout)


def _lab_id(msg) -> tuple[str, int]:
    """(run_id, msg_id) of an input message."""
    try:
        return marks.read(marks.mark_of(msg))[:2]
    except ValueError:
        raise ValueError(f"{msg.topic()}-{msg.partition()} offset {msg.offset()} carries no "
                         "lab mark (nor lab.id header); the input must be written by labkit's "
                         "producer") from None


def _effects(db_path: str) -> pd.DataFrame:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT run_id, msg_id FROM effects ORDER BY rowid").fetchall()
    return pd.DataFrame(rows, columns=["run_id", "msg_id"])


def _open_records(cluster: Cluster, topic: str, partitions: list[int],
                  timeout: float) -> int:
    """Records past the last stable offset (in open transactions), summed over partitions."""
    specs = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
    ends = {}
    attempt = min(timeout, 10.0)
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        def end(level=level) -> int:
            # A fresh client each attempt: once, right after notebook 22's faults, a cached
            # admin client answered "No leaders found" (_NOENT) for the whole timeout about a
            # topic a producer had just written to.
            admin = cluster.admin(fresh=True)  # kept until the answer is in
            found = admin.list_offsets(specs, isolation_level=level, request_timeout=attempt)
            return sum(f.result(attempt + 5).offset for f in found.values())

        ends[level] = retrying(end, timeout)
    return ends[IsolationLevel.READ_UNCOMMITTED] - ends[IsolationLevel.READ_COMMITTED]


def crash_each(cluster: Cluster, topic: str, strategies: Iterable[str] = STRATEGIES,
               crash_at: float = 0.3, within: float = 0.5, batch_size: int = 100,
               timeout: float = 120) -> dict[str, CrashRun]:
    """Run each strategy over ``topic``: a worker that crashes mid-batch, then its replacement.

    Args:
        cluster: where the input topic lives.
        topic: the input, written beforehand (e.g. by ``run_producer``, whose
            lab mark every message must carry); nothing may write to it meanwhile.
        strategies: which of ``STRATEGIES`` to run, in order.
        crash_at: how far through the input the first worker is when it crashes (0 < crash_at
            < 1): the crash comes in the batch holding that message (``crash_point``).
        within: the share of the crash batch processed before the crash (0 < within < 1).
        batch_size: messages per ``consume()`` call.
        timeout: seconds each worker, and each client call, may take.

    Returns:
        strategy -> ``CrashRun``. ``exactly-once-kafka`` leaves its output topic behind
        (``CrashRun.output_topic``) for the caller to read or delete.

    Raises:
        ValueError: an unknown strategy, a bad share or batch size, or an empty topic (before
            anything starts).
        TimeoutError: a worker did not reach its crash or the end in time.
        RuntimeError: the first worker reached the end without its crash coming.
    """
    chosen = [strategies] if isinstance(strategies, str) else list(strategies)
    bad = [s for s in chosen if s not in STRATEGIES]
    twice = [s for s in chosen if chosen.count(s) > 1]
    if bad or twice or not chosen:
        problem = (f"strategy {bad[0]!r} is not known" if bad else
                   f"strategy {twice[0]!r} is given twice" if twice else "no strategy given")
        raise ValueError(f"{problem}; use some of {', '.join(STRATEGIES)}, each once")
    for name, value, what in (("crash_at", crash_at, "the input"),
                              ("within", within, "the crash batch")):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ValueError(f"{name}={value!r} must be a share of {what} strictly between 0 "
                             "and 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 2: a crash "
                         "mid-batch needs two messages in the batch")
    partitions = sorted(cluster.topic_metadata(topic).partitions)
    names = [f"{topic}-{p}" for p in partitions]
    starts = log_offsets(cluster, names, end=False, timeout=timeout)
    stops = log_offsets(cluster, names, timeout=timeout)
    ends = {p: stops[name] for p, name in zip(partitions, names, strict=True)}
    total = sum(stops[name] - starts[name] for name in names)
    if total < 2:
        raise ValueError(f"topic {topic!r} holds {total} message(s); a crash mid-batch needs "
                         "at least 2")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="labkit-side-effects-") as tmp:
        for strategy in chosen:
            tag = uuid.uuid4().hex[:8]
            setup = _Setup(
                cluster=cluster, strategy=strategy, topic=topic, partitions=partitions,
                ends=ends, db_path=os.path.join(tmp, f"{strategy}.sqlite"),
                group_id=f"lab-crash-{strategy}-{tag}",
                transactional_id=f"lab-crash-{tag}",
                output_topic=unique_name(f"{topic}-out") if strategy == "exactly-once-kafka"
                else "",
                batch_size=batch_size, timeout=timeout)
            runs[strategy] = _run_strategy(setup, int(crash_at * total), within)
    return runs


def _run_strategy(setup: _Setup, crash_after: int, within: float) -> CrashRun:
    """The two workers of one strategy, one after the other."""
    t0 = time.perf_counter()
    if setup.output_topic:
        setup.cluster.create_topic(setup.output_topic, len(setup.partitions))
    with _Worker(setup, "first") as first:
        received = first.run(crash_after, within)
    if not first.crashed:
        raise RuntimeError(
            f"{setup.strategy}: the first worker reached the end of {setup.topic} without "
            f"crashing (crash after message {crash_after}); lower crash_at or batch_size")
    opened = reopened = 0
    if setup.output_topic:
        opened = _open_records(setup.cluster, setup.output_topic, setup.partitions,
                               setup.timeout)
    with _Worker(setup, "replacement") as second:
        if setup.output_topic:
            reopened = _open_records(setup.cluster, setup.output_topic, setup.partitions,
                                     setup.timeout)
        second.run()
    crash = received[~received.processed].batch.iloc[0]
    in_batch = received[received.batch == crash]
    effects = _effects(setup.db_path)
    uncommitted = None
    if setup.output_topic:
        effects = read_topic(setup.cluster, setup.output_topic, "read_committed",
                             setup.timeout)[["run_id", "msg_id"]]
        uncommitted = read_topic(setup.cluster, setup.output_topic, "read_uncommitted",
                                 setup.timeout)[["run_id", "msg_id"]]
    return CrashRun(
        strategy=setup.strategy, group_id=setup.group_id, crash_batch=int(crash),
        batch_messages=len(in_batch), before_crash=int(in_batch.processed.sum()),
        received=received, effects=effects, uncommitted=uncommitted,
        output_topic=setup.output_topic, open_after_crash=opened,
        open_after_restart=reopened, seconds=time.perf_counter() - t0)
