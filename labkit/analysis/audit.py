"""Audit a producer run against what the topic holds: duplicates, reorders, losses.

Pure logic on DataFrames, no Kafka: ``audit(produced, found)`` compares the producer's
per-message records (``ProducerRun.records``, see ``labkit.workloads.producer``) with what an
independent reader found (``labkit.workloads.readers.read_topic``), matched on ``msg_id`` from the
``lab.id`` header.

Definitions (each counted per partition and in total; duplicates and losses are
``labkit.analysis.accounting``'s, the one accounting of the lab):

- **duplicates**: extra copies. A ``msg_id`` found n times adds n - 1; ``duplicated_ids``
  counts the msg_ids found more than once.
- **reordered**: walk one ordering stream in offset order, keeping only the first copy of
  each ``msg_id``; a record is reordered when its ``msg_id`` is lower than a ``msg_id``
  already seen in that stream, i.e. the log holds it after a message that was sent later
  (``msg_id`` is the send order). Each such record counts once; a sequence 0 1 4 2 3 5 has 2
  reordered records (2 and 3). With ``order="partition"`` (the default, Kafka's guarantee)
  a stream is one partition; with ``order="key"`` it is one key within a partition, and
  null-keyed records form one stream per partition.
- **lost**: acknowledged (``error == ""``) but not found at all.
- **failed_present** / **unreported_present**: the delivery report was an error, or never
  came, yet the message is in the topic.
- **acked_elsewhere**: acknowledged and found, but no copy sits at the partition and offset
  its delivery report gave.

A partition is ``(topic, partition)``. Producer-side counts use the partition of the delivery
report; a message without one (-1: failed or unreported before being assigned) is counted in
a row with partition -1, while a copy found in the topic counts in the partition it was
found in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labkit.analysis import accounting

ORDERS = ("partition", "key")
COUNTS = ("sent", "acked", "failed", "unreported", "found", "distinct", "duplicates",
          "duplicated_ids", "reordered", "lost", "failed_present", "unreported_present",
          "acked_elsewhere")
"""The columns of ``AuditResult.per_partition`` after topic and partition, in order."""



@dataclass
class AuditResult:
    """What one audit found.

    Attributes:
        totals: every count in ``COUNTS`` summed over partitions (ints).
        per_partition: one row per partition: topic, partition, then ``COUNTS``.
        found: the audited records in (topic, partition, offset) order, with added columns
            ``nth_copy`` (0 for the first copy of a msg_id, 1 for the second, ...),
            ``reordered`` (bool, see the module docstring) and ``status`` (the producer's
            ``error`` for that msg_id: "" acknowledged, else the error name).
        lost: the producer records of acknowledged messages that were not found.
    """

    totals: dict[str, int]
    per_partition: pd.DataFrame
    found: pd.DataFrame
    lost: pd.DataFrame

    def summary(self) -> str:
        """One line with the main counts, for printing."""
        t = self.totals
        return (f"{t['sent']} sent, {t['acked']} acked, {t['found']} found: "
                f"{t['duplicates']} duplicates, {t['reordered']} reordered, {t['lost']} lost")


def audit(produced: pd.DataFrame, found: pd.DataFrame, run_id: str | None = None,
          order: str = "partition") -> AuditResult:
    """Compare a producer's records with what a reader found in the topic.

    Args:
        produced: ``ProducerRun.records`` (needs msg_id, topic, partition, offset, error;
            key too for ``order="key"``).
        found: ``read_topic()`` rows (needs topic, partition, offset, msg_id; run_id when
            ``run_id`` is given; key for ``order="key"``).
        run_id: keep only the found rows of this run (the topic may hold other runs).
        order: what an ordering stream is: "partition" or "key" (see the module docstring).

    Returns:
        The ``AuditResult``.

    Raises:
        ValueError: a bad ``order``, a missing column, or a found msg_id the producer never
            sent (the reader and the producer records are of different runs).
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not allowed; use one of {', '.join(ORDERS)}")
    need_key = ["key"] if order == "key" else []
    _require(produced, "produced", ["msg_id", "topic", "partition", "offset", "error"])
    _require(found, "found", ["topic", "partition", "offset", "msg_id", *need_key,
                              *(["run_id"] if run_id is not None else [])])
    if run_id is not None:
        found = found[found.run_id == run_id]
    sent = produced[~produced.error.isin(accounting.NOT_SENT)]
    sent = sent.assign(topic=sent.topic.astype(str))
    status = sent.set_index("msg_id").error
    unknown = ~found.msg_id.isin(status.index)
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} found records carry msg_ids the producer never sent "
            f"(e.g. {found.msg_id[unknown].iloc[0]}); pass run_id= to keep only this run's"
        )

    seen = found.sort_values(["topic", "partition", "offset"], kind="stable").copy()
    seen["topic"] = seen.topic.astype(str)
    seen["nth_copy"] = accounting.copy_number(seen.msg_id)
    streams = ["topic", "partition"] + (["key"] if order == "key" else [])
    first = seen[seen.nth_copy == 0]
    # The highest msg_id before each record in its stream (-1 before the first one).
    stream = first.groupby(streams, dropna=False, observed=True, sort=False).ngroup()
    before = first.msg_id.groupby(stream).cummax().groupby(stream).shift(fill_value=-1)
    seen["reordered"] = False
    seen.loc[first.index, "reordered"] = first.msg_id < before
    seen["status"] = seen.msg_id.map(status)
    seen = seen.reset_index(drop=True)

    acked = sent[sent.error == ""]
    lost = acked[accounting.missing(acked.msg_id, seen.msg_id)]
    place = ["topic", "partition", "offset", "msg_id"]
    acked_found = acked[acked.msg_id.isin(seen.msg_id) & (acked.offset >= 0)]
    matched = acked_found[place].astype({"partition": "int64", "offset": "int64"}).merge(
        seen[place].astype({"partition": "int64", "offset": "int64"}), how="left",
        indicator=True)
    elsewhere = acked_found[(matched._merge == "left_only").to_numpy()]

    per_producer = _count(sent, {
        "sent": None,
        "acked": sent.error == "",
        "failed": ~sent.error.isin(["", "unreported"]),
        "unreported": sent.error == "unreported",
    })
    per_found = _count(seen, {
        "found": None,
        "distinct": seen.nth_copy == 0,
        "duplicates": seen.nth_copy > 0,
        "duplicated_ids": seen.nth_copy == 1,
        "reordered": seen.reordered,
        "failed_present": (seen.nth_copy == 0) & ~seen.status.isin(["", "unreported"]),
        "unreported_present": (seen.nth_copy == 0) & (seen.status == "unreported"),
    })
    per_lost = _count(lost, {"lost": None})
    per_elsewhere = _count(elsewhere, {"acked_elsewhere": None})
    table = pd.concat([per_producer, per_found, per_lost, per_elsewhere], axis=1)
    table = table.reindex(columns=list(COUNTS)).fillna(0).astype(np.int64)
    table = table.sort_index().reset_index()
    totals = {name: int(table[name].sum()) for name in COUNTS}
    return AuditResult(totals=totals, per_partition=table, found=seen,
                       lost=lost.reset_index(drop=True))


def totals_table(results, names=None) -> pd.DataFrame:
    """One row of ``AuditResult.totals`` per audit, e.g. per configuration and run.

    Args:
        results: a mapping of label -> ``AuditResult``; tuple labels become a MultiIndex.
        names: names of the index levels, e.g. ``["config", "run"]``.

    Returns:
        Columns ``COUNTS``, one row per audit, in the mapping's order.
    """
    labels = list(results)
    rows = [results[label].totals for label in labels]
    if labels and all(isinstance(label, tuple) for label in labels):
        index = pd.MultiIndex.from_tuples(labels, names=names)
    else:
        index = pd.Index(labels, name=(names[0] if names else None))
    return pd.DataFrame(rows, index=index, columns=list(COUNTS))


def crash_totals(runs) -> pd.DataFrame:
    """The audit totals of every config in every crash run: index (config, run), ``COUNTS``.

    Args:
        runs: ``labkit.experiments.durability.crash_runs`` results (their ``number`` and
            ``audits``: config label -> ``AuditResult``).
    """
    return totals_table({(label, run.number): result for run in runs
                         for label, result in run.audits.items()}, names=["config", "run"])


LOST_COLUMNS = ("config", "run", "victim", "topic", "partition", "msg_id", "led_by_victim",
                "acked_s")
"""The columns of ``lost_messages``, in order."""


def lost_messages(runs) -> pd.DataFrame:
    """Every acknowledged message a crash run lost, with where and when it was acknowledged.

    Args:
        runs: ``labkit.experiments.durability.crash_runs`` results (their number, victim,
            led, topics, producers, audits and kill_wall).

    Returns:
        Columns ``LOST_COLUMNS``: config, run, victim, topic, partition, msg_id,
        led_by_victim (the victim led its partition when it was killed), acked_s (when its
        delivery report came, seconds relative to the kill; negative is before it).
    """
    frames = []
    for run in runs:
        for label, result in run.audits.items():
            lost = result.lost
            if lost.empty:
                continue
            producer = run.producers[label]
            led = run.led[run.topics[label]]
            frames.append(pd.DataFrame({
                "config": label, "run": run.number, "victim": run.victim,
                "topic": lost.topic.astype(str).to_numpy(),
                "partition": lost.partition.to_numpy(), "msg_id": lost.msg_id.to_numpy(),
                "led_by_victim": lost.partition.isin(led).to_numpy(),
                "acked_s": (lost.t_delivered + producer.started_wall - run.kill_wall).to_numpy(),
            }))
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=list(LOST_COLUMNS)))


def _count(frame: pd.DataFrame, columns: dict[str, pd.Series | None]) -> pd.DataFrame:
    """Count rows (None) or true values of each boolean Series per (topic, partition)."""
    data = {name: (np.ones(len(frame), dtype=np.int64) if mask is None
                   else np.asarray(mask, dtype=np.int64))
            for name, mask in columns.items()}
    counts = pd.DataFrame(data, index=frame.index)
    counts["topic"] = frame.topic.to_numpy()
    counts["partition"] = frame.partition.to_numpy()
    return counts.groupby(["topic", "partition"]).sum()


def _require(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(missing)}; it has "
                         f"{', '.join(map(str, frame.columns))}")


EVIDENCE_COLUMNS = ("msg_id", "problem", "topic", "partition", "offset", "nth_copy", "copies",
                    "status", "acked_partition", "acked_offset", "sent_s", "acked_s",
                    "latency_ms")
"""The columns of ``evidence()``, in order."""


def evidence(result: AuditResult, produced: pd.DataFrame, started_wall: float = 0.0,
             zero_wall: float | None = None) -> pd.DataFrame:
    """Every copy of every message that broke a promise, with when it was sent and acked.

    A problem message is one the audit counted as lost (acknowledged, not found),
    duplicated (found more than once) or reordered (see the module docstring). Messages
    whose delivery report failed or never came are not problems by themselves: the client
    said it could not vouch for them.

    Args:
        result: an ``audit()`` result.
        produced: the producer's records, as passed to ``audit`` (needs msg_id, partition,
            offset, error, t_send, t_delivered; latency_ms if present).
        started_wall: the wall time (epoch seconds) at which the run's ``t_send`` and
            ``t_delivered`` are 0 (``ProducerRun.started_wall``).
        zero_wall: the wall time reported as 0, e.g. the fault; default ``started_wall``.

    Returns:
        One row per copy found (``nth_copy`` 0, 1, ...), and one row with ``offset`` -1
        and ``nth_copy`` -1 per lost message, ordered by msg_id then copy. Columns
        ``EVIDENCE_COLUMNS``: problem ("lost", "duplicated", "reordered", or
        "duplicated+reordered"); topic, partition, offset: where this copy sits (for a
        lost message: the partition its delivery report named); copies: how many copies
        were found; status: the producer's ``error`` ("" acknowledged); acked_partition
        and acked_offset: where the delivery report said the message went (-1: nowhere);
        sent_s and acked_s: when ``produce()`` accepted it and when its delivery report
        was served, in seconds since ``zero_wall`` (NaN: no report).

    Raises:
        ValueError: ``produced`` lacks a needed column.
    """
    _require(produced, "produced", ["msg_id", "partition", "offset", "error", "t_send",
                                    "t_delivered"])
    # One offset, computed once: adding epoch seconds to each time would cost precision.
    shift = 0.0 if zero_wall is None else started_wall - zero_wall
    seen = result.found
    copies = seen.groupby("msg_id").size()
    duplicated = set(seen.msg_id[seen.nth_copy > 0])
    reordered = set(seen.msg_id[seen.reordered])
    lost = set(result.lost.msg_id)
    problem = {m: ("duplicated+reordered" if m in reordered else "duplicated")
               for m in duplicated}
    problem.update({m: "reordered" for m in reordered - duplicated})
    problem.update({m: "lost" for m in lost})
    mine = produced.set_index("msg_id")
    mine = mine[mine.index.isin(list(problem))]
    latency = mine.latency_ms if "latency_ms" in mine else pd.Series(np.nan, index=mine.index)
    sent = pd.DataFrame({
        "acked_partition": mine.partition.astype(np.int64),
        "acked_offset": mine.offset.astype(np.int64),
        "status": mine.error.astype(str),
        "sent_s": mine.t_send + shift,
        "acked_s": mine.t_delivered + shift,
        "latency_ms": latency,
    })
    rows = seen.loc[seen.msg_id.isin(list(problem)),
                    ["msg_id", "topic", "partition", "offset", "nth_copy"]]
    gone = mine[mine.index.isin(list(lost))]
    rows = pd.concat([rows, pd.DataFrame({
        "msg_id": gone.index.to_numpy(), "topic": gone.topic.astype(str).to_numpy()
        if "topic" in gone else "", "partition": gone.partition.to_numpy(),
        "offset": -1, "nth_copy": -1})], ignore_index=True)
    rows = rows.astype({"msg_id": np.int64, "partition": np.int64, "offset": np.int64,
                        "nth_copy": np.int64})
    rows["problem"] = rows.msg_id.map(problem)
    rows["copies"] = rows.msg_id.map(copies).fillna(0).astype(np.int64)
    rows = rows.join(sent, on="msg_id")
    rows = rows.sort_values(["msg_id", "nth_copy"], kind="stable").reset_index(drop=True)
    return rows[list(EVIDENCE_COLUMNS)]
