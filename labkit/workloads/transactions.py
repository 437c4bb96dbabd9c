"""Transactional produce: batches of messages, each committed or aborted as a whole.

``run_transactions()`` sends ``batches`` transactions of ``batch_size`` messages from one
transactional producer (``transactional.id``, ``init_transactions``, ``begin``,
``commit`` / ``abort``), and returns a ``TransactionRun`` saying which messages were in
committed and which in aborted transactions. Messages carry the same lab mark as
``labkit.workloads.producer.run_producer``'s (``labkit.workloads.marks``), so
``labkit.workloads.readers.read_topic`` and ``labkit.analysis.audit.audit`` work on them unchanged.

Every batch is flushed before it is committed or aborted, so an aborted batch really reaches
the log (a ``read_uncommitted`` reader sees it) instead of being purged from the client's
queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from confluent_kafka import KafkaException, Producer

from labkit.cluster import Cluster, client_log
from labkit.workloads import marks
from labkit.workloads.producer import Deliveries, make_payloads, validate_config

COMMIT_ATTEMPTS = 5  # a retriable commit error (e.g. a coordinator move) is retried this often


@dataclass
class TransactionRun:
    """What one transactional run did.

    Attributes:
        run_id: unique id carried by every message (``labkit.workloads.marks``).
        transactional_id: the producer's ``transactional.id``.
        topic: the topic written.
        batches: one row per transaction: batch, outcome ("commit" or "abort"),
            first_msg_id, last_msg_id, partitions (how many partitions it wrote to),
            t_begin and t_end (seconds since the run started).
        records: one row per message, the columns of ``ProducerRun.records`` (msg_id,
            topic, key, size, partition, offset, t_send, t_delivered, latency_ms, error)
            plus batch and outcome.
        wall_s: seconds from ``init_transactions`` until the last transaction ended.
        init_s: seconds ``init_transactions`` took (it finds the transaction coordinator
            and fences any older producer with the same ``transactional.id``).
    """

    run_id: str
    transactional_id: str
    topic: str
    batches: pd.DataFrame
    records: pd.DataFrame
    wall_s: float
    init_s: float

    @property
    def committed_ids(self) -> set[int]:
        """msg_ids of the messages in committed transactions."""
        return set(self.records.msg_id[self.records.outcome == "commit"].tolist())

    @property
    def aborted_ids(self) -> set[int]:
        """msg_ids of the messages in aborted transactions."""
        return set(self.records.msg_id[self.records.outcome == "abort"].tolist())

    def seen_by(self, found: pd.DataFrame) -> dict[str, int]:
        """Count what a reader found of this run (``read_topic`` rows; other runs ignored).

        Returns:
            committed and aborted: distinct messages of committed / aborted transactions
            found; records: this run's records found, copies included.
        """
        ids = found.msg_id[found.run_id == self.run_id]
        distinct = set(ids.tolist())
        return {"committed": len(distinct & self.committed_ids),
                "aborted": len(distinct & self.aborted_ids), "records": len(ids)}

    def markers(self, found: pd.DataFrame) -> pd.DataFrame:
        """Count, per partition, the offsets hidden from readers against the markers expected.

        Every transaction ends with one control record (its commit or abort marker) in each
        partition it wrote to. Readers never see markers, so between this run's first and
        last record in a partition a ``read_uncommitted`` reader finds exactly one gap per
        transaction that wrote there, except the last one, whose marker follows the last
        record.

        Args:
            found: a ``read_uncommitted`` read of the topic (other runs are ignored; the
                run's transactions must be the only writes to the topic while it ran).

        Returns:
            One row per partition: partition, transactions (that wrote to it), gaps
            (offsets from the run's first to last record holding none of its records),
            expected (transactions - 1).
        """
        mine = found[found.run_id == self.run_id]
        spans = mine.groupby("partition").offset.agg(["min", "max", "count"])
        touched = self.records[self.records.partition >= 0].groupby("partition").batch.nunique()
        table = pd.DataFrame({
            "transactions": touched,
            "gaps": (spans["max"] - spans["min"] + 1 - spans["count"]).reindex(touched.index),
        }).fillna(0).astype(int)
        table["expected"] = table.transactions - 1
        return table.rename_axis("partition").reset_index()

    def totals(self) -> dict[str, int]:
        """Transactions and messages per outcome, as a flat dict."""
        b = self.batches
        return {
            "transactions": len(b),
            "committed_transactions": int((b.outcome == "commit").sum()),
            "aborted_transactions": int((b.outcome == "abort").sum()),
            "committed_messages": len(self.committed_ids),
            "aborted_messages": len(self.aborted_ids),
        }


def outcome_of(batch: int, abort_every: int) -> str:
    """Return the outcome of transaction ``batch``: "abort" or "commit".

    Every ``abort_every``-th transaction is aborted (batches 2, 5, 8, ... for 3);
    ``abort_every=0`` aborts none, 1 aborts them all.
    """
    return "abort" if abort_every and (batch + 1) % abort_every == 0 else "commit"


def run_transactions(
    cluster: Cluster,
    topic: str,
    batches: int = 10,
    batch_size: int = 100,
    abort_every: int = 3,
    *,
    size: int = 100,
    key_count: int | None = 12,
    config: dict[str, Any] | None = None,
    transactional_id: str | None = None,
    timeout: float = 30,
) -> TransactionRun:
    """Send ``batches`` transactions of ``batch_size`` messages, committing or aborting each.

    Args:
        cluster: where to send.
        topic: the topic to write (it must exist).
        batches: number of transactions.
        batch_size: messages per transaction.
        abort_every: abort every n-th transaction (see ``outcome_of``); 0 commits them all.
        size: value size in bytes (at least the 24 bytes of the lab mark).
        key_count: message i gets key ``key-<i % key_count>``, so that a transaction spans
            several partitions; None sends null keys.
        config: extra librdkafka producer settings (``transactional.id`` is set here).
        transactional_id: default a fresh ``labkit-txn-<run_id>``.
        timeout: seconds each of init, commit, abort and flush may take.

    Returns:
        The run's ``TransactionRun``.

    Raises:
        ValueError: a bad argument or producer setting.
        KafkaException: a transaction failed in a way that cannot be retried or aborted.
    """
    for name, value, low in (("batches", batches, 1), ("batch_size", batch_size, 1),
                             ("abort_every", abort_every, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an integer >= {low}")
    if not isinstance(size, int) or not marks.MARK_SIZE <= size <= 1_000_000:
        raise ValueError(f"size={size!r} must be an integer from {marks.MARK_SIZE} (the lab "
                         "mark) to 1000000 bytes")
    if key_count is not None and (not isinstance(key_count, int) or key_count < 1):
        raise ValueError(f"key_count={key_count!r} must be a positive integer or None")
    settings = validate_config(dict(config or {}))
    if "transactional.id" in settings:
        raise ValueError("pass transactional_id=..., not config['transactional.id']")
    run_id = marks.new_run_id()
    txn_id = transactional_id or f"labkit-txn-{run_id}"
    n = batches * batch_size
    deliveries = Deliveries(n)
    try:
        producer = Producer(cluster.client_config(
            **settings, **{"transactional.id": txn_id, "logger": client_log,
                           "on_delivery": deliveries.callback()}))
    except KafkaException as exc:
        raise ValueError(f"producer config refused by librdkafka: {exc.args[0].str()}") from None

    keys = [None if key_count is None else f"key-{i % key_count}" for i in range(n)]
    writer = _Writer(producer, topic, run_id, keys, make_payloads(size - marks.MARK_SIZE),
                     deliveries, timeout)
    rows = []
    try:
        producer.init_transactions(timeout)
        init_s = writer.now()
        for batch in range(batches):
            first = batch * batch_size
            rows.append(writer.transaction(batch, range(first, first + batch_size),
                                           outcome_of(batch, abort_every)))
        wall = writer.now()
    finally:
        producer.close()  # aborts a transaction left open by an error or Ctrl-C
    table = pd.DataFrame(rows)
    records = deliveries.records(n, writer.started_ns, [topic], pd.Categorical(keys), size)
    records["batch"] = records.msg_id // batch_size
    records["outcome"] = table.outcome.to_numpy()[records.batch]
    return TransactionRun(run_id=run_id, transactional_id=txn_id, topic=topic, batches=table,
                          records=records, wall_s=wall, init_s=init_s)


class _Writer:
    """Sends one transaction at a time with lab marks, then commits or aborts it.

    Delivery reports go to ``deliveries`` (the recorder ``run_producer`` uses too, whose
    callback the producer was made with), send times to its ``sent_ns``.
    """

    def __init__(self, producer: Producer, topic: str, run_id: str, keys: list[str | None],
                 bodies: list[bytes], deliveries: Deliveries, timeout: float):
        self.producer, self.topic, self.timeout = producer, topic, timeout
        self.keys, self.bodies, self.deliveries = keys, bodies, deliveries
        self.head = marks.head(run_id)
        self.started_ns = time.time_ns()
        self.t0 = time.perf_counter()

    def now(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.t0

    def transaction(self, batch: int, ids: range, outcome: str) -> dict[str, Any]:
        """Send messages ``ids`` in one transaction, flush them, then commit or abort it."""
        producer, deliveries = self.producer, self.deliveries
        pick = len(self.bodies) - 1  # a power of two less one (make_payloads)
        t_begin = self.now()
        producer.begin_transaction()
        for i in ids:
            key, ns = self.keys[i], time.time_ns()
            producer.produce(self.topic, marks.MARK.pack(self.head, i, ns) + self.bodies[i & pick],
                             key.encode() if key else None)
            deliveries.sent_ns[i] = ns
            producer.poll(0)
        left = producer.flush(self.timeout)
        if left:
            raise TimeoutError(f"transaction {batch}: {left} messages not delivered within "
                               f"{self.timeout:g} s")
        if outcome == "commit":
            _commit(producer, self.timeout)
        else:
            producer.abort_transaction(self.timeout)
        return {"batch": batch, "outcome": outcome, "first_msg_id": ids[0],
                "last_msg_id": ids[-1],
                "partitions": len(deliveries.partitions_of(ids)),
                "t_begin": t_begin, "t_end": self.now()}


def _commit(producer: Producer, timeout: float) -> None:
    """Commit the open transaction, retrying what the client says is retriable."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            producer.commit_transaction(timeout)
            return
        except KafkaException as exc:
            err = exc.args[0]
            if err.retriable() and attempt < COMMIT_ATTEMPTS - 1:
                continue
            raise
