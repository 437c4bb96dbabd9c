"""librdkafka's statistics (``statistics.interval.ms``) as tidy DataFrames.

A client made with ``statistics.interval.ms`` hands its ``stats_cb`` one JSON document per
interval (``ProducerRun.stats`` holds them parsed, one dict per sample). This module is the
one place that reads them:

- ``broker_windows``: one row per (sample, broker): the window statistics of each broker
  connection (``int_latency``, ``outbuf_latency``, ``rtt``, ``throttle``) and its counters.
- ``topic_windows``: one row per (sample, topic): batch sizes in bytes and in messages.
- ``partition_queues``: one row per (sample, topic, partition): queue depths, in-flight
  messages, offsets and consumer lag.
- ``messages_by_broker``: per (sample, broker), messages sent and answered in the window.
- ``latency_parts``: a producer's delivery latency split into the time a message waited in
  the client's queue, in the output buffer, and for the broker's answer.
- ``batches``: a run's batches and produce requests, and messages per each.
- ``parts_table`` and ``measured_by_window``: the parts beside labkit's own per-message
  latency (``records.latency_ms``), per run and per statistics window.

Times: librdkafka stamps each sample with ``ts``, microseconds of its monotonic clock
(``CLOCK_MONOTONIC`` on Linux, the clock of ``time.monotonic()`` and ``time.perf_counter()``).
Each function takes ``zero``, the caller's time 0 on that clock in seconds, and gives
``t = ts / 1e6 - zero``. Window statistics (min, avg, percentiles, cnt, sum) cover the time
since the previous sample (the first: since the client was created, ``ts - age``), so each row
also has ``t_start``. Counters (tx, txmsgs, ...) are totals since the client started.

Pure pandas: nothing here talks to Kafka.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOWS = ("int_latency", "outbuf_latency", "rtt", "throttle")
"""The per-broker window statistics, all in microseconds in the JSON."""

WINDOW_FIELDS = ("avg", "min", "p50", "p99", "max")
"""Which fields of a window statistic the frames keep (in ms), beside cnt and sum."""

BROKER_COUNTERS = ("tx", "txbytes", "txerrs", "txretries", "req_timeouts", "rx", "rxbytes",
                   "connects", "disconnects", "outbuf_cnt", "outbuf_msg_cnt", "waitresp_cnt",
                   "waitresp_msg_cnt")
"""Per-broker counters and gauges kept by ``broker_windows`` (librdkafka's names)."""

PARTITION_FIELDS = ("leader", "msgq_cnt", "msgq_bytes", "xmit_msgq_cnt", "xmit_msgq_bytes",
                    "msgs_inflight", "txmsgs", "txbytes", "rxmsgs", "rxbytes", "fetchq_cnt",
                    "fetch_state", "lo_offset", "hi_offset", "ls_offset", "app_offset",
                    "stored_offset", "committed_offset", "consumer_lag", "consumer_lag_stored")
"""Per-partition fields kept by ``partition_queues`` (librdkafka's names)."""

PARTS = {"queued_ms": "queued in the client (int_latency)",
         "outbuf_ms": "waiting in the output buffer (outbuf_latency)",
         "rtt_ms": "round trip to the broker (rtt)"}
"""The parts of a delivery latency ``latency_parts`` gives, in order, with their names."""


def _times(sample: dict, previous: dict | None, zero: float) -> tuple[float, float]:
    """The window a sample covers, (t_start, t), in seconds after ``zero``."""
    end = sample.get("ts", np.nan) / 1e6
    if previous is not None:
        start = previous.get("ts", np.nan) / 1e6
    else:
        start = end - sample.get("age", 0) / 1e6  # since the client was created
    return start - zero, end - zero


def _window(prefix: str, stat: dict | None) -> dict[str, float]:
    stat = stat or {}
    row = {f"{prefix}_{name}_ms": stat.get(name, np.nan) / 1000 for name in WINDOW_FIELDS}
    count = stat.get("cnt", 0)
    row[f"{prefix}_cnt"] = count
    row[f"{prefix}_sum_ms"] = stat.get("sum", 0) / 1000
    row[f"{prefix}_outofrange"] = stat.get("outofrange", 0)
    if not count:  # librdkafka prints 0 for an empty window: no value, not a zero latency
        for name in WINDOW_FIELDS:
            row[f"{prefix}_{name}_ms"] = np.nan
    return row


def _window_columns(prefixes) -> list[str]:
    return [f"{p}_{s}" for p in prefixes
            for s in [*(f"{name}_ms" for name in WINDOW_FIELDS), "cnt", "sum_ms", "outofrange"]]


def broker_windows(stats: list[dict], zero: float = 0.0) -> pd.DataFrame:
    """Per broker and statistics sample, the window statistics and counters of its connection.

    Args:
        stats: parsed statistics, one dict per sample (``ProducerRun.stats``).
        zero: time 0 in seconds of librdkafka's monotonic clock (see the module docstring).

    Returns:
        One row per (sample, broker), the bootstrap pseudo-brokers left out. Columns: sample
        (0..), t_start, t (s), broker (node id), then for each of ``WINDOWS``:
        ``{name}_avg_ms``, ``_min_ms``, ``_p50_ms``, ``_p99_ms``, ``_max_ms`` (NaN for an
        empty window),
        ``{name}_cnt`` (values in the window: messages for int_latency, requests for
        outbuf_latency and rtt), ``{name}_sum_ms`` and ``{name}_outofrange`` (values above
        the range of librdkafka's histogram: in avg, max and sum, not in the percentiles);
        then ``BROKER_COUNTERS`` and
        produce_requests (``req.Produce``), totals since the client started.
    """
    rows = []
    previous = None
    for number, sample in enumerate(stats):
        t_start, t = _times(sample, previous, zero)
        previous = sample
        for broker in sample.get("brokers", {}).values():
            if broker.get("nodeid", -1) < 0:
                continue  # a bootstrap address, not a broker
            row = {"sample": number, "t_start": t_start, "t": t, "broker": broker["nodeid"]}
            for name in WINDOWS:
                row.update(_window(name, broker.get(name)))
            row.update({name: broker.get(name, 0) for name in BROKER_COUNTERS})
            row["produce_requests"] = broker.get("req", {}).get("Produce", 0)
            rows.append(row)
    columns = ["sample", "t_start", "t", "broker", *_window_columns(WINDOWS),
               *BROKER_COUNTERS, "produce_requests"]
    return pd.DataFrame(rows, columns=columns)


def topic_windows(stats: list[dict], zero: float = 0.0) -> pd.DataFrame:
    """Per topic and statistics sample, the batches the producer made in the window.

    Args:
        stats: parsed statistics, one dict per sample.
        zero: time 0 in seconds of librdkafka's monotonic clock.

    Returns:
        One row per (sample, topic). Columns: sample, t_start, t, topic, then for
        ``batchsize`` (bytes per batch) and ``batchcnt`` (messages per batch): ``_avg``,
        ``_min``, ``_p50``, ``_p99``, ``_max`` (NaN for an empty window), ``_cnt`` (batches) and
        ``_sum`` (bytes, messages).
    """
    rows = []
    previous = None
    for number, sample in enumerate(stats):
        t_start, t = _times(sample, previous, zero)
        previous = sample
        for name, topic in sample.get("topics", {}).items():
            row = {"sample": number, "t_start": t_start, "t": t, "topic": name}
            for prefix in ("batchsize", "batchcnt"):
                stat = topic.get(prefix, {})
                count = stat.get("cnt", 0)
                for field in WINDOW_FIELDS:
                    row[f"{prefix}_{field}"] = stat.get(field, np.nan) if count else np.nan
                row[f"{prefix}_cnt"] = count
                row[f"{prefix}_sum"] = stat.get("sum", 0)
            rows.append(row)
    columns = ["sample", "t_start", "t", "topic",
               *[f"{p}_{s}" for p in ("batchsize", "batchcnt")
                 for s in (*WINDOW_FIELDS, "cnt", "sum")]]
    return pd.DataFrame(rows, columns=columns)


def partition_queues(stats: list[dict], zero: float = 0.0,
                     unassigned: bool = False) -> pd.DataFrame:
    """Per partition and statistics sample, its queues, offsets and consumer lag.

    Args:
        stats: parsed statistics, one dict per sample.
        zero: time 0 in seconds of librdkafka's monotonic clock.
        unassigned: keep librdkafka's internal partition -1 (a producer's messages waiting
            to be given a partition).

    Returns:
        One row per (sample, topic, partition). Columns: sample, t (s), topic, partition,
        then ``PARTITION_FIELDS``: queue gauges (msgq_cnt: messages in the partition's
        queue; xmit_msgq_cnt: in the broker thread's transmit queue; msgs_inflight: sent,
        not yet answered), totals (txmsgs, rxmsgs, ...) and, for a consumer, offsets and
        consumer_lag (librdkafka writes -1 or -1001 where it has no value; kept as NaN here).
    """
    rows = []
    previous = None
    for number, sample in enumerate(stats):
        _, t = _times(sample, previous, zero)
        previous = sample
        for name, topic in sample.get("topics", {}).items():
            for part in topic.get("partitions", {}).values():
                partition = part.get("partition", -1)
                if partition < 0 and not unassigned:
                    continue
                rows.append({"sample": number, "t": t, "topic": name, "partition": partition,
                             **{key: part.get(key, np.nan) for key in PARTITION_FIELDS}})
    table = pd.DataFrame(rows, columns=["sample", "t", "topic", "partition",
                                        *PARTITION_FIELDS])
    unknown = ["lo_offset", "hi_offset", "ls_offset", "app_offset", "stored_offset",
               "committed_offset", "consumer_lag", "consumer_lag_stored"]
    table[unknown] = table[unknown].astype(float).where(table[unknown] >= 0)
    return table


def messages_by_broker(stats: list[dict]) -> pd.DataFrame:
    """Per statistics window and broker, how many messages the client sent and got answered.

    From the partitions' counters: ``txmsgs`` counts messages sent in produce requests,
    ``msgs_inflight`` those sent and not yet answered, so answered = txmsgs -
    msgs_inflight; each partition counts for its leader in that sample.

    Returns:
        Columns sample, broker, sent, answered (messages in the window, not totals).
    """
    queues = partition_queues(stats)
    if queues.empty:
        return pd.DataFrame(columns=["sample", "broker", "sent", "answered"])
    queues = queues.sort_values(["topic", "partition", "sample"])
    totals = queues[["txmsgs"]].assign(answered=queues.txmsgs - queues.msgs_inflight)
    deltas = totals.groupby([queues.topic, queues.partition]).diff().fillna(totals)
    table = pd.DataFrame({"sample": queues["sample"], "broker": queues.leader,
                          "sent": deltas.txmsgs, "answered": deltas.answered})
    return (table.groupby(["sample", "broker"], as_index=False)[["sent", "answered"]].sum()
            .astype({"sent": int, "answered": int}))


def latency_parts(stats: list[dict], zero: float = 0.0, per: str = "window",
                  weight: str = "message") -> pd.DataFrame:
    """A producer's delivery latency in parts, from its brokers' window statistics.

    A produced message waits in the client's queue until it is written into a batch
    (``int_latency``, lingering included), the request holding the batch waits in the
    broker connection's output buffer until it is written to the socket
    (``outbuf_latency``), and the request waits for the broker's answer (``rtt``, the
    broker's own queue and, with acks=all, replication included). What these leave out: the
    time from the answer until ``poll()`` serves the delivery report.

    ``int_latency`` has one value per message. ``outbuf_latency`` and ``rtt`` have one per
    request (any request: produce, and the few metadata and version requests), so a request
    of one message counts as much as one of a thousand. With ``weight="message"`` each
    broker's window mean of ``outbuf_latency`` counts once per message that broker was sent
    in that window, and of ``rtt`` once per message it answered (``messages_by_broker``):
    a per-message mean as far as the windows resolve it (within one window and broker,
    requests still count alike). With ``weight="request"``: sum / count over the requests.

    Args:
        stats: parsed statistics, one dict per sample.
        zero: time 0 in seconds of librdkafka's monotonic clock.
        per: "window" (one row per statistics sample) or "run" (one row for all of them).
        weight: "message" or "request" (see above).

    Returns:
        Columns: t_start, t (the window; for "run", the first start and the last end),
        messages (int_latency's count: messages put into batches), requests (rtt's count),
        then ``PARTS`` (queued_ms, outbuf_ms, rtt_ms; NaN where the window had no value),
        total_ms (their sum), and total_low_ms / total_high_ms: the sum if every request's
        outbuf_latency and rtt had been its window's least / its window's most (the queue
        part is exact per message): the band a per-message mean of the three must lie in,
        whichever requests carried which messages.

    Raises:
        ValueError: ``per`` or ``weight`` is not one of its choices.
    """
    if per not in ("window", "run"):
        raise ValueError(f"per={per!r} must be 'window' or 'run'")
    if weight not in ("message", "request"):
        raise ValueError(f"weight={weight!r} must be 'message' or 'request'")
    brokers = broker_windows(stats, zero)
    columns = ["t_start", "t", "messages", "requests", *PARTS, "total_ms", "total_low_ms",
               "total_high_ms"]
    if brokers.empty:
        return pd.DataFrame(columns=columns)
    names = ("int_latency", "outbuf_latency", "rtt")
    for name in names:  # the band: every value at the window's least, or at its most
        for end in ("min", "max"):
            brokers[f"{name}_{end}sum_ms"] = brokers[f"{name}_sum_ms"]
    if weight == "message":
        counts = messages_by_broker(stats)
        brokers = brokers.merge(counts, on=["sample", "broker"], how="left")
        brokers[["sent", "answered"]] = brokers[["sent", "answered"]].fillna(0)
        for name, by in (("outbuf_latency", "sent"), ("rtt", "answered")):
            has = brokers[f"{name}_cnt"] > 0
            for field, column in (("avg", "sum_ms"), ("min", "minsum_ms"), ("max", "maxsum_ms")):
                brokers[f"{name}_{column}"] = (brokers[f"{name}_{field}_ms"]
                                               * brokers[by]).where(has, 0)
            brokers[f"{name}_cnt"] = brokers[by].where(has, 0)
    else:
        for name in names[1:]:
            for end in ("min", "max"):
                brokers[f"{name}_{end}sum_ms"] = (brokers[f"{name}_{end}_ms"]
                                                  * brokers[f"{name}_cnt"]).fillna(0)
    keys = brokers["sample"] if per == "window" else pd.Series(0, index=brokers.index)
    grouped = brokers.groupby(keys)
    sums = grouped[[f"{name}_{s}" for name in names
                    for s in ("sum_ms", "minsum_ms", "maxsum_ms", "cnt")]].sum()

    def mean(name: str, column: str = "sum_ms") -> pd.Series:
        count = sums[f"{name}_cnt"]
        return sums[f"{name}_{column}"] / count.where(count > 0)

    table = pd.DataFrame({
        "t_start": grouped.t_start.min(), "t": grouped.t.max(),
        "messages": sums.int_latency_cnt.astype(int),
        "requests": grouped.rtt_cnt.sum().astype(int) if weight == "request"
        else broker_windows(stats, zero).groupby(keys).rtt_cnt.sum().astype(int),
        "queued_ms": mean("int_latency"), "outbuf_ms": mean("outbuf_latency"),
        "rtt_ms": mean("rtt")})
    table["total_ms"] = table[list(PARTS)].sum(axis=1, min_count=1)
    for end in ("min", "max"):
        table[f"total_{'low' if end == 'min' else 'high'}_ms"] = pd.concat(
            [mean("int_latency"), *(mean(name, f"{end}sum_ms") for name in names[1:])],
            axis=1).sum(axis=1, min_count=1)
    return table.reset_index(drop=True)[columns]


def batches(stats: list[dict]) -> pd.Series:
    """The batches and requests of a producer's whole run, from its statistics.

    Args:
        stats: parsed statistics, one dict per sample; the last must come after the run
            (``run_producer`` waits for one more sample after its flush).

    Returns:
        batches (message sets made), msgs_per_batch and bytes_per_batch (window means over
        the run: sum / count), produce_requests (``req.Produce`` over the brokers), txmsgs
        (messages the client sent, its top-level counter), msgs_per_request (txmsgs over
        produce_requests), tx_requests (every request) and tx_bytes (bytes sent).
        NaN where there is no statistics sample.
    """
    names = ["batches", "msgs_per_batch", "bytes_per_batch", "produce_requests", "txmsgs",
             "msgs_per_request", "tx_requests", "tx_bytes"]
    if not stats:
        return pd.Series(np.nan, index=names, dtype=float)
    topics = topic_windows(stats)
    count = topics.batchcnt_cnt.sum()
    last = broker_windows(stats[-1:])
    requests = float(last.produce_requests.sum())
    txmsgs = float(stats[-1].get("txmsgs", 0))
    return pd.Series({
        "batches": float(count),
        "msgs_per_batch": topics.batchcnt_sum.sum() / count if count else np.nan,
        "bytes_per_batch": topics.batchsize_sum.sum() / topics.batchsize_cnt.sum()
        if topics.batchsize_cnt.sum() else np.nan,
        "produce_requests": requests, "txmsgs": txmsgs,
        "msgs_per_request": txmsgs / requests if requests else np.nan,
        "tx_requests": float(stats[-1].get("tx", 0)),
        "tx_bytes": float(stats[-1].get("tx_bytes", 0)),
    }, dtype=float)


CLIENT_QUEUE_FIELDS = ("msg_cnt", "msg_size", "msg_max", "msg_size_max")
"""The client-wide queue gauges ``client_queue`` keeps (librdkafka's names)."""


def client_queue(stats: list[dict], zero: float = 0.0) -> pd.DataFrame:
    """Per statistics sample, what the whole producer holds, against its limits.

    A producer counts a message from ``produce()`` until its delivery report has been served
    (by ``poll()`` or ``flush()``): queued, in flight, or answered but not yet reported.

    Args:
        stats: parsed statistics, one dict per sample.
        zero: time 0 in seconds of librdkafka's monotonic clock.

    Returns:
        One row per sample. Columns: sample, t (s), msg_cnt (messages held), msg_size (their
        bytes: values and keys), msg_max and msg_size_max (``queue.buffering.max.messages``
        and ``queue.buffering.max.kbytes`` in bytes, the limits ``produce()`` enforces).
    """
    rows = []
    previous = None
    for number, sample in enumerate(stats):
        _, t = _times(sample, previous, zero)
        previous = sample
        rows.append({"sample": number, "t": t,
                     **{key: sample.get(key, np.nan) for key in CLIENT_QUEUE_FIELDS}})
    return pd.DataFrame(rows, columns=["sample", "t", *CLIENT_QUEUE_FIELDS])


def parts_table(measured) -> pd.DataFrame:
    """Each run's delivery latency in parts beside what labkit measured per message.

    Args:
        measured: objects with ``label``, ``mode``, ``config`` (acks, linger.ms), ``run``
            (a ``ProducerRun`` with ``stats``) and ``zero``, e.g.
            ``labkit.experiments.client_internals.StatsRun``.

    Returns:
        Indexed by label. Columns: mode, acks, linger_ms, delivered, msgs_per_s; the
        run's ``latency_parts`` (queued_ms, outbuf_ms, rtt_ms, total_ms, total_low_ms,
        total_high_ms, counted: the messages int_latency counted); measured_mean_ms and
        measured_p50_ms (``records.latency_ms`` of the delivered messages, all of them as
        the statistics cover all of them); gap_ms (measured mean - total_ms); inside (the
        measured mean within the band); and the run's ``batches`` (msgs_per_batch,
        bytes_per_batch, msgs_per_request, produce_requests).
    """
    rows = []
    for item in measured:
        run = item.run
        parts = latency_parts(run.stats, item.zero, per="run")
        part = parts.iloc[0] if len(parts) else pd.Series(dtype=float)
        done = run.records.loc[run.records.error == "", "latency_ms"].dropna()
        mean = float(done.mean()) if len(done) else np.nan
        total = part.get("total_ms", np.nan)
        low, high = part.get("total_low_ms", np.nan), part.get("total_high_ms", np.nan)
        batch = batches(run.stats)
        rows.append({
            "label": item.label, "mode": item.mode, "acks": item.config.get("acks"),
            "linger_ms": _number(item.config.get("linger.ms")), "delivered": run.delivered,
            "msgs_per_s": run.throughput,
            **{name: part.get(name, np.nan) for name in (*PARTS, "total_ms", "total_low_ms",
                                                       "total_high_ms")},
            "counted": part.get("messages", 0),
            "measured_mean_ms": mean,
            "measured_p50_ms": float(done.median()) if len(done) else np.nan,
            "gap_ms": mean - total, "inside": bool(low <= mean <= high),
            **batch[["msgs_per_batch", "bytes_per_batch", "msgs_per_request",
                     "produce_requests"]].to_dict(),
        })
    return pd.DataFrame(rows).set_index("label")


def _number(value):
    """A setting's value as an int where it is one ("5" -> 5), else as it is."""
    text = str(value)
    return int(text) if text.isdigit() else value


def measured_by_window(records: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """The delivery latency labkit measured per message, in the windows of ``latency_parts``.

    A message counts in the window its delivery report was served in (``t_delivered``):
    the rtt of a window is recorded when the answers arrive, which for a report served at
    once is the same moment.

    Args:
        records: a run's records (t_delivered, latency_ms, error).
        parts: ``latency_parts(..., per="window")`` of the same run, on the same clock.

    Returns:
        One row per window of ``parts``: t_start, t, delivered (reports served in it),
        mean_ms and p50_ms of their latency (NaN for none).
    """
    done = records[(records.error == "") & records.t_delivered.notna()]
    rows = []
    for window in parts.itertuples(index=False):
        inside = done.latency_ms[(done.t_delivered >= window.t_start)
                                 & (done.t_delivered < window.t)]
        rows.append({"t_start": window.t_start, "t": window.t, "delivered": len(inside),
                     "mean_ms": float(inside.mean()) if len(inside) else np.nan,
                     "p50_ms": float(inside.median()) if len(inside) else np.nan})
    return pd.DataFrame(rows, columns=["t_start", "t", "delivered", "mean_ms", "p50_ms"])
