"""Reading topics back: a fresh reader that sees exactly what the topic holds.

``read_topic()`` is the independent reader the experiments and audits use: a consumer with
no group commits, assigned every partition from the beginning, reading until it reaches the
end offsets it saw when it started. (The consumer-group lab builds on this module.)

Columns of the DataFrame it returns:

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

import time
import uuid

import pandas as pd
from confluent_kafka import Consumer, KafkaException, TopicPartition

from labkit.cluster import Cluster, client_log
from labkit.producer import parse_headers

ISOLATION_LEVELS = ("read_committed", "read_uncommitted")


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


def _drop_finished(consumer: Consumer, ends: dict, assignment) -> None:
    """Under read_committed the end may be a transaction marker that is never delivered."""
    for tp in assignment:
        where = (tp.topic, tp.partition)
        if where in ends:
            position = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if position >= ends[where]:
                del ends[where]


def _row(msg) -> tuple:
    try:
        run_id, msg_id, sent_ns = parse_headers(msg.headers())
        t_produced = sent_ns / 1e9
    except ValueError:
        run_id, msg_id, t_produced = "", -1, float("nan")
    key = msg.key()
    return (msg.topic(), msg.partition(), msg.offset(), key.decode() if key else None,
            run_id, msg_id, t_produced, time.time())
