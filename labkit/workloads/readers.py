"""Readers without a group: a fresh read of whole topics, and a live tail.

``read_topic()`` is the independent reader the experiments and audits use: a consumer with
no group commits, assigned every partition from the beginning, reading until it reaches the
end offsets it saw when it started. ``Tail`` is a live reader of the same kind, following
topics in the background to record when each message became readable. Consumer groups are in
``labkit.workloads.consumer``, share groups in ``labkit.workloads.share``; all of them decode
a message's lab mark with ``labkit.workloads.marks``.

Columns of the DataFrame ``read_topic()`` returns (and of ``Tail.rows``):

============ ===============================================================================
topic        str
partition    int
offset       int
key          str or None
run_id       str, from the message's lab mark ("" for a message not sent by labkit)
msg_id       int, from the message's lab mark (-1 for a message not sent by labkit)
t_produced   float, wall-clock send time from the lab mark, seconds since the epoch
t_consumed   float, wall-clock time the reader received it, seconds since the epoch
============ ===============================================================================
"""

from __future__ import annotations

import threading
import time
import uuid

import pandas as pd
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from labkit.cluster import Cluster, client_log, wait_until
from labkit.workloads.marks import lab_ids, mark_of

ISOLATION_LEVELS = ("read_committed", "read_uncommitted")
_NOT_YET = (KafkaError.OFFSET_NOT_AVAILABLE, KafkaError.LEADER_NOT_AVAILABLE,
            KafkaError.NOT_LEADER_FOR_PARTITION)
"""Errors of a watermark request that a moment later may not come: leadership is moving."""
READ_COLUMNS = ["topic", "partition", "offset", "key", "run_id", "msg_id", "t_produced",
                "t_consumed"]


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
            # Just after a leader change the new leader answers OFFSET_NOT_AVAILABLE ("Leader
            # high watermark is not caught up") until its high watermark is known: ask again.
            low, high = wait_until(
                lambda tp=tp: consumer.get_watermark_offsets(tp, timeout=10, cached=False),
                timeout, f"the end offsets of {tp.topic}-{tp.partition}",
                passes=lambda exc: isinstance(exc, KafkaException)
                and exc.args[0].code() in _NOT_YET)
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        consumer.assign([TopicPartition(tp.topic, tp.partition, -2) for tp in assignment])
        rows = []

        def at_the_end() -> bool:
            for msg in consumer.consume(10_000, 0.5) if ends else ():
                if msg.error() is not None:
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    continue
                where = (msg.topic(), msg.partition())
                rows.append(message_row(msg))
                if where in ends and msg.offset() + 1 >= ends[where]:
                    del ends[where]
            _drop_finished(consumer, ends, assignment)
            return not ends

        wait_until(at_the_end, timeout, f"reading {topics} to reach the end offsets", 0,
                   passes=lambda _exc: False,
                   on_timeout=lambda _last: TimeoutError(
                       f"reading {topics} did not reach the end offsets within {timeout:g} s; "
                       f"partitions left: {sorted(ends)}"))
    finally:
        consumer.close()
    return pd.DataFrame(rows, columns=READ_COLUMNS)


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
                for msg in take(consumer, 1000, 0.1):
                    if msg.error() is None:
                        self._rows.append(message_row(msg))
                    elif msg.error().fatal():
                        raise KafkaException(msg.error())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc
        finally:
            consumer.close()

    @property
    def rows(self) -> pd.DataFrame:
        """Every record read so far (the columns of ``read_topic``)."""
        return pd.DataFrame(list(self._rows), columns=READ_COLUMNS)


def _drop_finished(consumer: Consumer, ends: dict, assignment) -> None:
    """Under read_committed the end may be a transaction marker that is never delivered."""
    for tp in assignment:
        where = (tp.topic, tp.partition)
        if where in ends:
            position = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if position >= ends[where]:
                del ends[where]


def take(consumer, most: int, timeout: float) -> list:
    """What the client holds now, up to ``most`` messages; if nothing, wait for the next one.

    ``consume(most, timeout)`` returns only when it has ``most`` messages or ``timeout`` has
    passed, so a message stamped when the call returns may have waited in the client for up
    to ``timeout``: at 50 msg/s per member, a 0.1 s timeout adds ~0.1 s to the end-to-end
    latency measured. Taking what is there without waiting, and waiting only for the first
    message, hands each one over when it arrives (as the Java consumer's ``poll()`` does).
    """
    return consumer.consume(most, 0) or consumer.consume(1, timeout)


def message_row(msg) -> tuple:
    """One row of ``READ_COLUMNS`` for a message just received (``t_consumed`` is now)."""
    key = msg.key()
    return (msg.topic(), msg.partition(), msg.offset(), key.decode() if key else None,
            *lab_ids(mark_of(msg)), time.time())
