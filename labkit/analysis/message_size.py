"""Message size: throughput per size, and what each size limit did (pure pandas).

For ``labkit.experiments.message_size`` (notebook 09). Inputs are its records: producer runs
(``ProducerRun``: ``records``, ``wall_s``, ``stats``, ``workload``), the producer probes
(``PROBE_COLUMNS``) with the probe topics read back, and the consumer probes
(``CONSUMER_PROBE_COLUMNS``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.analysis import metrics

LEARNED = {
    "acknowledged": "delivery report: acknowledged",
    "refused by produce()": "produce() raised KafkaException",
    "failed in the delivery report": "delivery report with an error",
    "unreported": "no delivery report",
    "read": "poll() returned it",
    "consumer refused": "Consumer() raised KafkaException",
}
"""How the application learns of each outcome (``not read`` is worded per case)."""

LIMIT_COLUMNS = ["limit", "who", "config", "probe", "size", "how the application learns",
                 "error", "text", "in topic"]
"""The columns of ``limit_table``, for people."""


def size_table(runs) -> pd.DataFrame:
    """One row per producer run of ``throughput_by_size``: what each message size gave.

    Args:
        runs: ``ProducerRun`` objects, one per size, made with ``stats_interval_ms``.

    Returns:
        Indexed by size_bytes: label, messages (delivered), seconds (first ``produce()``
        until ``flush()`` returned), msgs_per_s, mb_per_s (value bytes, 10^6 per MB),
        wire_bytes_per_msg (bytes librdkafka sent to brokers per delivered message,
        requests and framing included, from its statistics), overhead_bytes_per_msg
        (wire minus value bytes per message), batch_msgs_avg (messages per batch,
        librdkafka's statistics).
    """
    runs = list(runs)
    summary = metrics.summary(runs, warmup_s=0.0)
    wire = metrics.wire_table(runs)
    rows = []
    for run in runs:
        size = int(run.workload["size"])
        per_msg = float(wire.loc[run.label, "wire_bytes_per_msg"])
        rows.append({
            "size_bytes": size, "label": run.label, "messages": run.delivered,
            "seconds": run.wall_s, "msgs_per_s": float(summary.loc[run.label, "msgs_per_s"]),
            "mb_per_s": float(summary.loc[run.label, "mb_per_s"]),
            "wire_bytes_per_msg": per_msg, "overhead_bytes_per_msg": per_msg - size,
            "batch_msgs_avg": float(wire.loc[run.label, "batch_msgs_avg"]),
        })
    return pd.DataFrame(rows).set_index("size_bytes")


def stats_against_records(runs) -> pd.DataFrame:
    """What librdkafka's statistics counted beside labkit's per-message records, one row per run.

    Returns:
        Indexed by label: delivered (labkit: delivery reports without error), stats_txmsgs
        (librdkafka: messages put on the wire), extra_txmsgs (their difference),
        value_bytes (labkit: value bytes delivered), stats_txmsg_bytes (librdkafka: message
        bytes put on the wire), retries (librdkafka: request retries, every broker) and
        request_timeouts; from the last statistics sample (NaN without one).
    """
    rows = {}
    for run in runs:
        last = run.stats[-1] if run.stats else {}
        brokers = [b for b in last.get("brokers", {}).values() if b.get("nodeid", -1) >= 0]
        done = run.records[run.records.error == ""]
        txmsgs = last.get("txmsgs", np.nan)
        rows[run.label] = {
            "delivered": run.delivered, "stats_txmsgs": txmsgs,
            "extra_txmsgs": txmsgs - run.delivered,
            "value_bytes": int(done["size"].sum()),
            "stats_txmsg_bytes": last.get("txmsg_bytes", np.nan),
            "retries": sum(b.get("txretries", 0) for b in brokers) if last else np.nan,
            "request_timeouts": sum(b.get("req_timeouts", 0) for b in brokers) if last else np.nan,
        }
    return pd.DataFrame(rows).T


def with_read_back(probes: pd.DataFrame, read_back: pd.DataFrame) -> pd.DataFrame:
    """The probes with ``in_topic``: whether reading the topics back found each one."""
    found = set(zip(read_back.topic, read_back.msg_id, strict=True))
    return probes.assign(in_topic=[(t, m) in found for t, m in
                                   zip(probes.topic, probes.msg_id, strict=True)])


def read_back_mismatches(probes: pd.DataFrame, read_back: pd.DataFrame) -> pd.DataFrame:
    """Probes whose fate and the topic disagree (every probe, bisection steps included).

    Returns:
        The probes acknowledged yet not in the topic, or refused or failed yet in it.
    """
    seen = with_read_back(probes, read_back)
    acked = seen.outcome == "acknowledged"
    return seen[acked != seen.in_topic]


def probe(probes: pd.DataFrame, step: str, name: str) -> pd.DataFrame:
    """The rows of one probe (``step`` and ``probe`` columns), in the order sent."""
    return probes[(probes.step == step) & (probes.probe == name)]


def fared(rows: pd.DataFrame) -> str:
    """What became of some probe rows, e.g. "0 of 3 acknowledged, 3 refused (...)"."""
    acked = int((rows.outcome == "acknowledged").sum())
    if acked == len(rows):
        return f"{acked} of {len(rows)} acknowledged"
    errors = ", ".join(sorted(set(rows.error) - {""}))
    return f"{acked} of {len(rows)} acknowledged, {len(rows) - acked} refused ({errors})"


def _not_read(row: pd.Series, stall_s: float) -> str:
    said = []
    if row.callback_errors:
        said.append(f"{int(row.callback_errors)} from the error callback")
    if row.poll_errors:
        said.append(f"{int(row.poll_errors)} from poll()")
    return (f"poll() returned nothing for {stall_s:g} s (a stall); errors: "
            + (", ".join(said) if said else "none"))


def limit_table(probes: pd.DataFrame, read_back: pd.DataFrame,
                reads: pd.DataFrame | None = None, stall_s: float = 0.0) -> pd.DataFrame:
    """Every limit probe in one table for people, the bisection steps left out.

    Args:
        probes: the producer probes (``PROBE_COLUMNS``).
        read_back: the probe topics read back (``labkit.workloads.readers.READ_COLUMNS``).
        reads: the consumer probes (``CONSUMER_PROBE_COLUMNS``), or None.
        stall_s: how long a consumer case waited for a message before it gave up.

    Returns:
        ``LIMIT_COLUMNS``: the limit, who enforces it, the client's settings, the probe,
        the value size tried, how the application learned what happened, the error name
        and text, and whether the message is in the topic ("yes", "no"; "" for reads).
    """
    sent = with_read_back(probes[probes.probe != "search"], read_back)
    # Messages sent together in one batch probe: one row, with how many fared how.
    rows = []
    for _, group in sent.groupby(["step", "probe", "config"], sort=False):
        first = group.iloc[0]
        count = len(group)
        outcomes = group.outcome.value_counts()
        learned = "; ".join(f"{n} x {LEARNED.get(o, o)}" if count > 1 else LEARNED.get(o, o)
                            for o, n in outcomes.items())
        size = metrics.size_label(int(first.value_bytes))
        rows.append({
            "limit": first.limit, "who": first.who, "config": first.config,
            "probe": first.probe, "size": size if count == 1 else f"{count} x {size}",
            "how the application learns": learned,
            "error": ", ".join(sorted(set(group.error) - {""})),
            "text": " | ".join(sorted(set(group.text) - {""})),
            "in topic": (("yes" if group.in_topic.all() else "no") if count == 1
                         else f"{int(group.in_topic.sum())} of {count}"),
        })
    reads = reads if reads is not None else pd.DataFrame(columns=["outcome", "config"])
    refused = reads.outcome == "consumer refused"
    # A consumer refused at creation read neither message: one row says so.
    for _, row in reads[~refused | ~reads.duplicated(["config"])].iterrows():
        learned = (_not_read(row, stall_s) if row.outcome == "not read" else
                   LEARNED[row.outcome] + (f" after {row.read_s:.2f} s" if row.outcome == "read"
                                           else ""))
        rows.append({
            "limit": row.limit, "who": "consumer (librdkafka)", "config": row.config,
            "probe": "none: no consumer" if row.outcome == "consumer refused" else row.probe,
            "size": ("" if row.outcome == "consumer refused"
                     else metrics.size_label(int(row.value_bytes))),
            "how the application learns": learned, "error": row.error, "text": row.text,
            "in topic": "",
        })
    return pd.DataFrame(rows, columns=LIMIT_COLUMNS)


def consumer_case(reads: pd.DataFrame, case: str) -> pd.DataFrame:
    """The two reads of one consumer case (a ``consumer_cases`` name), indexed by probe."""
    return reads[reads.case == case].set_index("probe")
