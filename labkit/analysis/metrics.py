"""Numbers from recorded runs: throughput, latency percentiles, partition balance, stats.

Pure functions of DataFrames (and librdkafka statistics dicts); nothing here talks to Kafka.
Latency percentiles come from an HdrHistogram (1 µs to 10 min, 3 significant digits).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram
from scipy.special import chdtrc

from labkit.analysis import accounting, client_stats, gaps, rates

PERCENTILES = (50.0, 95.0, 99.0, 99.9, 100.0)
HIST_MAX_US = 600_000_000  # 10 minutes


def default_warmup(records: pd.DataFrame, share: float = 0.1, cap_s: float = 1.0) -> float:
    """The warm-up excluded from latency percentiles: 10% of the send span, at most 1 s.

    The first messages pay for connection set-up and empty batches; leaving them out keeps
    the percentiles about the steady state. Every function taking ``warmup_s=None`` uses this.
    """
    sent = records.t_send.dropna()
    if sent.empty:
        return 0.0
    return float(min(cap_s, share * (sent.max() - sent.min())))


def histogram(latencies_ms) -> HdrHistogram:
    """Record latencies (ms) in an HdrHistogram of microseconds."""
    hist = HdrHistogram(1, HIST_MAX_US, 3)
    values = np.asarray(latencies_ms, dtype=float)
    values = values[~np.isnan(values)]
    micros = np.clip(np.rint(values * 1000), 1, HIST_MAX_US).astype(np.int64)
    uniques, counts = np.unique(micros, return_counts=True)
    for value, count in zip(uniques.tolist(), counts.tolist(), strict=True):
        hist.record_value(value, count)
    return hist


def _steady(records: pd.DataFrame, column: str,
            warmup_s: float | None) -> tuple[pd.DataFrame, float]:
    """Rows sent after the warm-up that have a ``column`` value, and the warm-up used."""
    warmup = default_warmup(records) if warmup_s is None else warmup_s
    kept = records[(records.t_send >= records.t_send.min() + warmup) & records[column].notna()]
    return kept, warmup


def latency_percentiles(records: pd.DataFrame, column: str = "latency_ms",
                        warmup_s: float | None = None,
                        percentiles=PERCENTILES) -> pd.Series:
    """Latency percentiles in ms of the delivered messages sent after the warm-up.

    Args:
        records: a run's records (``t_send`` and the latency ``column``).
        column: which latency column.
        warmup_s: seconds from the first send to leave out; None: ``default_warmup``.
        percentiles: which percentiles (100 = max).

    Returns:
        A Series indexed "p50", "p95", ..., "max"; ``attrs`` holds ``warmup_s`` and
        ``count`` (messages measured).
    """
    kept, warmup = _steady(records, column, warmup_s)
    hist = histogram(kept[column])
    out = pd.Series(
        {_pname(p): hist.get_value_at_percentile(p) / 1000 for p in percentiles}, dtype=float,
    )
    if kept.empty:
        out[:] = np.nan
    out.attrs.update(warmup_s=warmup, count=len(kept))
    return out


def _pname(p: float) -> str:
    return "max" if p >= 100 else f"p{p:g}"


def percentile_curve(records: pd.DataFrame, column: str = "latency_ms",
                     warmup_s: float | None = None, nines: float = 3.0) -> pd.DataFrame:
    """Latency at percentiles from p0 out to ``nines`` nines (p99.9 for 3), for plotting.

    Returns:
        Columns: percentile, latency_ms, one_over_tail (1 / (1 - percentile/100)), the
        x position on a log-percentile axis.
    """
    kept, warmup = _steady(records, column, warmup_s)
    hist = histogram(kept[column])
    tails = np.logspace(0, -nines, 60)  # 1 - q, from 100% down to 10^-nines
    qs = 100 * (1 - tails)
    lat = [hist.get_value_at_percentile(q) / 1000 for q in qs]
    return pd.DataFrame({"percentile": qs, "latency_ms": lat, "one_over_tail": 1 / tails})


def throughput(records: pd.DataFrame, bucket_s: float = 0.1, time_column: str = "t_delivered",
               ) -> pd.DataFrame:
    """Messages and megabytes per second, in buckets of ``bucket_s`` by ``time_column``.

    Only delivered messages count (``error == ""``); ``rates.per_second`` does the counting.

    Returns:
        Columns: t (bucket start, s), msgs_per_s, mb_per_s.
    """
    done = records[(records.error == "") & records[time_column].notna()]
    msgs = rates.per_second(done[time_column], bucket_s)
    mb = rates.per_second(done[time_column], bucket_s, weights=done["size"]) / 1e6
    return pd.DataFrame({"t": msgs.index.to_numpy(), "msgs_per_s": msgs.to_numpy(),
                         "mb_per_s": mb.to_numpy()})


def partition_counts(records: pd.DataFrame) -> pd.DataFrame:
    """Delivered messages per (topic, partition): columns topic, partition, messages."""
    done = records[records.error == ""]
    return (done.groupby(["topic", "partition"], observed=True).size()
            .rename("messages").reset_index())


def balance(counts, partitions: int | None = None) -> dict[str, float]:
    """How evenly messages spread over partitions.

    Args:
        counts: messages per partition (a sequence, or a Series indexed by partition).
        partitions: total partition count; partitions missing from ``counts`` count as 0.

    Returns:
        ``chi2_p``: chi-square goodness-of-fit p-value against a uniform spread (small:
        not uniform); ``max_min_ratio``: busiest over quietest partition (inf if one got
        nothing); ``empty``: partitions that got no message; ``cv``: coefficient of variation.
    """
    values = np.asarray(list(counts), dtype=float)
    if partitions is not None and partitions > len(values):
        values = np.concatenate([values, np.zeros(partitions - len(values))])
    total = values.sum()
    if total == 0 or len(values) < 2:
        return {"chi2_p": float("nan"), "max_min_ratio": float("nan"), "empty": 0, "cv": 0.0}
    expected = total / len(values)
    # Pearson's chi-square against a uniform spread (what scipy.stats.chisquare computes,
    # without importing scipy.stats: about a second of every notebook's start).
    p = float(chdtrc(len(values) - 1, ((values - expected) ** 2 / expected).sum()))
    low = values.min()
    return {
        "chi2_p": p,
        "max_min_ratio": float(values.max() / low) if low > 0 else float("inf"),
        "empty": int((values == 0).sum()),
        "cv": float(values.std() / values.mean()),
    }


def keys_stick_to_partitions(records: pd.DataFrame) -> pd.DataFrame:
    """For each (topic, key), how many distinct partitions its delivered messages went to.

    Returns:
        Columns topic, key, partitions, messages; a keyed partitioner gives 1 everywhere.
    """
    done = records[(records.error == "") & records.key.notna()]
    return (done.groupby(["topic", "key"], observed=True)
            .agg(partitions=("partition", "nunique"), messages=("msg_id", "size"))
            .reset_index())


def stats_summary(stats: list[dict]) -> pd.DataFrame:
    """Summarise librdkafka statistics (``stats_cb`` JSON) over a whole run, per broker.

    librdkafka's window statistics (rtt, int_latency, batch sizes) cover one interval each;
    their means here are over every interval of the run (``client_stats`` reads the
    samples). Counters come from the last sample.

    Returns:
        One row per broker: rtt_avg_ms, int_latency_avg_ms (time in the client's queue
        before sending), tx_bytes, tx_requests. ``attrs['client']`` holds run-wide values:
        wire_bytes (bytes sent to brokers), tx_msgs, batch_msgs_avg, batch_bytes_avg.
    """
    if not stats:
        return pd.DataFrame()
    windows = client_stats.broker_windows(stats)
    last = stats[-1]
    current = windows[windows["sample"] == len(stats) - 1].broker
    windows = windows[windows.broker.isin(current)]  # brokers the last sample still lists
    rows = []
    for broker, seen in windows.groupby("broker"):
        rows.append({
            "broker": broker,
            "rtt_avg_ms": _pooled_mean(seen.rtt_sum_ms, seen.rtt_cnt),
            "int_latency_avg_ms": _pooled_mean(seen.int_latency_sum_ms, seen.int_latency_cnt),
            "tx_bytes": seen.txbytes.iloc[-1], "tx_requests": seen.tx.iloc[-1],
        })
    table = pd.DataFrame(rows).set_index("broker").sort_index() if rows else pd.DataFrame()
    batches = client_stats.batches(stats)
    table.attrs["client"] = {
        "wire_bytes": last.get("tx_bytes", 0), "tx_msgs": last.get("txmsgs", 0),
        "batch_msgs_avg": batches.msgs_per_batch, "batch_bytes_avg": batches.bytes_per_batch,
    }
    return table


def _pooled_mean(sums: pd.Series, counts: pd.Series) -> float:
    """Mean over librdkafka window statistics: total sum / total count (NaN for none)."""
    count = counts.sum()
    return float(sums.sum() / count) if count else float("nan")


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not dominated by another row with higher ``x`` and lower ``y``, sorted by ``x``."""
    ordered = points.sort_values([x, y], ascending=[False, True])
    keep, best_y = [], np.inf
    for idx, row in ordered.iterrows():
        if row[y] < best_y:
            keep.append(idx)
            best_y = row[y]
    return points.loc[keep].sort_values(x)


def size_label(size: int) -> str:
    """A byte size for people: "16 KiB", "1 MB", "1,048,588 B" (binary units first)."""
    for unit, name in ((1 << 20, "MiB"), (1 << 10, "KiB"), (10**6, "MB"), (10**3, "kB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size:,} B"


def config_label(config: dict) -> str:
    """A human name for a producer config, e.g. ``"linger.ms=5, batch.size=16 KiB, lz4"``.

    Byte sizes (``batch.size``, ``message.max.bytes``) read in KiB/MiB (or kB/MB when that is
    exact); ``compression.type`` reads as the codec alone ("no compression" for none).
    """
    parts = []
    for key, value in config.items():
        if key == "compression.type":
            parts.append("no compression" if value == "none" else str(value))
        elif key in ("batch.size", "message.max.bytes") and str(value).isdigit():
            parts.append(f"{key}={size_label(int(value))}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "defaults"


def summary(runs, warmup_s: float | None = None) -> pd.DataFrame:
    """One row per producer run: totals, throughput and delivery-latency percentiles.

    Args:
        runs: ``labkit.workloads.producer.ProducerRun`` objects.
        warmup_s: warm-up left out of the percentiles (None: ``default_warmup`` per run).

    Returns:
        Indexed by label. Columns: sent, delivered, failed, unreported, buffer_errors,
        msgs_per_s, mb_per_s, p50_ms, p95_ms, p99_ms, p99.9_ms, max_ms, warmup_s.
    """
    rows = []
    for run in runs:
        pct = latency_percentiles(run.records, warmup_s=warmup_s)
        delivered_bytes = run.records.loc[run.records.error == "", "size"].sum()
        rows.append({
            "label": run.label, "sent": run.sent, "delivered": run.delivered,
            "failed": run.failed, "unreported": run.unreported,
            "buffer_errors": run.buffer_errors,
            "msgs_per_s": run.throughput,
            "mb_per_s": delivered_bytes / run.wall_s / 1e6 if run.wall_s else 0.0,
            **{f"{name}_ms": value for name, value in pct.items()},
            "warmup_s": pct.attrs["warmup_s"],
        })
    return pd.DataFrame(rows).set_index("label")


def partition_table(runs, topic: str | None = None) -> pd.DataFrame:
    """Delivered messages per partition, one row per run (index: label), for a heat map.

    Args:
        runs: ``labkit.workloads.producer.ProducerRun`` objects.
        topic: count only this topic (default: all topics together).
    """
    rows = {}
    for run in runs:
        done = run.records[run.records.error == ""]
        if topic is not None:
            done = done[done.topic == topic]
        rows[run.label] = done.partition.value_counts()
    return pd.DataFrame(rows).T.fillna(0).astype(int).sort_index(axis=1)


def balance_table(runs, partitions: int) -> pd.DataFrame:
    """How each run spread over ``partitions`` partitions, one row per run (index: label).

    Columns: the ``balance`` statistics, partitions_used and busiest_share (the busiest
    partition's fraction of the messages).
    """
    table = partition_table(runs).reindex(columns=range(partitions), fill_value=0)
    rows = {}
    for label, counts in table.iterrows():
        total = counts.sum()
        rows[label] = {**balance(counts.values), "partitions_used": int((counts > 0).sum()),
                       "busiest_share": float(counts.max() / total) if total else float("nan")}
    return pd.DataFrame(rows).T


def wire_table(runs) -> pd.DataFrame:
    """What went over the network per run, from librdkafka's statistics (index: label).

    Needs runs made with ``stats_interval_ms``. Columns: wire_bytes_per_msg (bytes sent to
    brokers, requests and framing included, per delivered message), value_bytes_per_msg,
    batch_msgs_avg (messages per batch), batch_bytes_avg.
    """
    rows = {}
    for run in runs:
        client = stats_summary(run.stats).attrs.get("client", {}) if run.stats else {}
        delivered = max(run.delivered, 1)
        rows[run.label] = {
            "wire_bytes_per_msg": client.get("wire_bytes", np.nan) / delivered,
            "value_bytes_per_msg": float(run.records.loc[run.records.error == "", "size"].mean()),
            "batch_msgs_avg": client.get("batch_msgs_avg", np.nan),
            "batch_bytes_avg": client.get("batch_bytes_avg", np.nan),
        }
    return pd.DataFrame(rows).T


# -- consumer groups ------------------------------------------------------------------------


def ownership(events: pd.DataFrame, end: float | None = None) -> pd.DataFrame:
    """Who owned which partition when, from a ConsumerGroup's events.

    An ownership starts at an assign and ends at the member's revoke, lost, crash or leave
    (or at ``end``, default the last event, if still open).

    Returns:
        Columns partition, member, start, end, ended_by (revoke / lost / crash / leave /
        open), sorted by partition and start.
    """
    open_: dict[tuple[str, str], float] = {}
    rows = []
    end = float(events.t.max()) if end is None and len(events) else (end or 0.0)
    for ev in events.itertuples(index=False):
        if ev.kind == "assign":
            for part in ev.partitions:
                open_.setdefault((part, ev.member), ev.t)
        elif ev.kind in ("revoke", "lost", "crash", "leave"):
            closing = [k for k in open_ if k[1] == ev.member
                       and (ev.kind in ("crash", "leave") or k[0] in ev.partitions)]
            for key in closing:
                rows.append((key[0], key[1], open_.pop(key), ev.t, ev.kind))
    rows += [(p, m, start, end, "open") for (p, m), start in open_.items()]
    return (pd.DataFrame(rows, columns=["partition", "member", "start", "end", "ended_by"])
            .sort_values(["partition", "start"], ignore_index=True))


def ownership_gaps(intervals: pd.DataFrame) -> pd.DataFrame:
    """Stretches during which a partition had no consuming owner, from ``ownership``.

    ``gaps.between`` of each partition's ownerships (a hand-over in the same instant is a gap
    of 0 s).

    Returns:
        Columns partition, start, end, gap_s, cause (how the previous ownership ended),
        from_member, to_member; by partition, then in time order.
    """
    columns = ["partition", "start", "end", "gap_s", "cause", "from_member", "to_member"]
    rows = []
    for part, owned in intervals.groupby("partition"):
        found = gaps.between(owned.start, owned.end).sort_values("start", kind="stable")
        rows.append(pd.DataFrame({
            "partition": part, "start": found.start, "end": found.end, "gap_s": found.seconds,
            "cause": intervals.ended_by.loc[found.before].to_numpy(),
            "from_member": intervals.member.loc[found.before].to_numpy(),
            "to_member": intervals.member.loc[found.after].to_numpy()}))
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns]


def pauses_by_change(gaps: pd.DataFrame, events: pd.DataFrame,
                     after_s: float = 0.5) -> pd.DataFrame:
    """Ownership gaps grouped by the membership change (join, leave, crash) before them.

    Args:
        gaps: ``ownership_gaps``.
        events: the group's events.
        after_s: changes before this (the group forming) count as the start-up.

    Returns:
        One row per episode ("start-up", then e.g. "crash m3", in time order): partitions
        paused, median pause s, longest pause s.
    """
    changes = events[events.kind.isin(["join", "leave", "crash"]) & (events.t > after_s)]
    episode = pd.cut(gaps.start, bins=[0, *changes.t, float("inf")],
                     labels=["start-up", *[f"{kind} {member}" for kind, member
                                           in zip(changes.kind, changes.member, strict=True)]])
    table = gaps.groupby(episode, observed=True).gap_s.agg(["count", "median", "max"])
    table.columns = ["partitions paused", "median pause s", "longest pause s"]
    return table


def member_throughput(messages: pd.DataFrame, bucket_s: float = 1.0,
                      members=()) -> pd.DataFrame:
    """Messages processed per second by each member (columns) per bucket of ``t`` (index).

    ``rates.per_second`` of each member's messages, over the buckets of the whole group.
    ``members`` that processed nothing get a column of zeros (a member that joined and
    got no message is a finding, not a gap).
    """
    if messages.empty:
        return pd.DataFrame()
    first, last = messages.t.min(), messages.t.max()
    table = pd.DataFrame({member: rates.per_second(rows.t, bucket_s, start=first, end=last)
                          for member, rows in messages.groupby("member")})
    for member in members:
        if member not in table.columns:
            table[member] = 0.0
    table.index = np.round(table.index.to_numpy(), 6)
    return table.rename_axis(columns="member")


def assignment_table(assignment: dict[str, list[str]]) -> pd.DataFrame:
    """A member -> partitions mapping as a table: member, partitions (count), owned (list)."""
    return pd.DataFrame([{"member": m, "partitions": len(p), "owned": ", ".join(p)}
                         for m, p in sorted(assignment.items())],
                        columns=["member", "partitions", "owned"]).set_index("member")


def delivery_counts(messages: pd.DataFrame, produced) -> dict[str, int]:
    """Duplicates and losses, in what a group processed, of what a producer had acknowledged.

    Args:
        messages: ``ConsumerGroup.messages()`` (may hold other runs' messages too).
        produced: a ``ProducerRun``, a list of them (matched by run_id and msg_id), or an
            iterable of msg_ids of a single run (matched by msg_id alone).

    Returns:
        ``accounting.tally`` in a group's words: processed (its found: rows of those
        messages), unique (its distinct), duplicates (rows beyond the first per message),
        lost (acknowledged but never processed).
    """
    runs = [produced] if hasattr(produced, "run_id") else produced
    if isinstance(runs, list) and runs and all(hasattr(r, "run_id") for r in runs):
        counts = accounting.tally(accounting.acked_keys(runs), accounting.found_keys(messages))
    else:
        counts = accounting.tally(produced, messages.msg_id)
    return {"processed": counts["found"], "unique": counts["distinct"],
            "duplicates": counts["duplicates"], "lost": counts["lost"]}


def comparison(value: float, other: float, tolerance: float = 0.0) -> str:
    """How ``value`` compares with ``other``, in words, for an observation's sentence.

    Args:
        value: the measured quantity the sentence is about.
        other: the one it is compared with.
        tolerance: a difference at most this large reads "about the same as".

    Returns:
        "higher than", "lower than" or "about the same as".
    """
    if abs(value - other) <= tolerance:
        return "about the same as"
    return "higher than" if value > other else "lower than"


def step_tables(table: pd.DataFrame, columns, first_phase: str = "start") -> list[pd.DataFrame]:
    """A per-(scenario, phase) table of group steps as one scenario x phase table per column.

    Args:
        table: indexed by (scenario, phase), e.g. ``labkit.analysis.groups.phase_summaries``'.
        columns: which columns, in order.
        first_phase: the phase left out, the group forming rather than a step.

    Returns:
        One DataFrame per column: a row per scenario, a column per phase.
    """
    changes = table.drop(index=first_phase, level="phase")
    return [changes[column].unstack("phase") for column in columns]
