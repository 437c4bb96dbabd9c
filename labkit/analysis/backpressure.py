"""Backpressure in numbers: where the messages a producer could not send yet went (pure pandas).

For ``labkit.experiments.backpressure`` (notebook 08). Inputs are recorded frames: a
producer's ``records`` (``labkit.workloads.producer``), the application's ``wanted`` frame
(msg_id, t_want: when it wanted to send the message, t_handed: when it got it off its hands)
and librdkafka's statistics (``labkit.analysis.client_stats.client_queue``), all on the run's
clock (seconds).

A message's time from the application's wish to its delivery report is split into three:

- **behind**: from when the application wanted to send it (its slot in a fixed-rate schedule)
  until it got it off its hands (``produce()`` accepted it, or the application queue took
  it): the application itself held up;
- **in the application queue**: until the sender thread handed it to ``produce()`` (0
  without such a queue);
- **delivery**: librdkafka's latency, from ``produce()`` until the report was served.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.analysis import client_stats, gaps, metrics

REFUSED = "BufferError"
"""The ``records.error`` of a message ``produce()`` refused and the application gave up."""


def journeys(wanted: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Every message the application made, from its wish to its delivery report.

    Args:
        wanted: msg_id, t_want, t_handed (NaN: given up on ``BufferError``).
        records: the producer's records (msg_id, t_send, t_delivered, latency_ms, error).

    Returns:
        One row per message of ``wanted``: msg_id, t_want, t_handed, t_send, t_delivered
        (when its report was served, whatever it said: NaN without one), error, behind_ms
        (t_handed - t_want), queue_ms (t_send - t_handed: in the application queue),
        delivery_ms (librdkafka's latency), total_ms (t_delivered -
        t_want), blocked_ms (``blocked_ms``).
    """
    rows = wanted.merge(records[["msg_id", "t_send", "t_delivered", "latency_ms", "error"]],
                        on="msg_id", how="left").sort_values("msg_id", ignore_index=True)
    delivered = rows.error == ""
    return pd.DataFrame({
        "msg_id": rows.msg_id, "t_want": rows.t_want, "t_handed": rows.t_handed,
        "t_send": rows.t_send, "t_delivered": rows.t_delivered,
        "error": rows.error.fillna("unreported"),
        "behind_ms": (rows.t_handed - rows.t_want) * 1000,
        "queue_ms": (rows.t_send - rows.t_handed) * 1000,
        "delivery_ms": rows.latency_ms.where(delivered),
        "total_ms": (rows.t_delivered - rows.t_want).where(delivered) * 1000,
        "blocked_ms": blocked_ms(rows.t_want, rows.t_handed),
    })


def blocked_ms(t_want: pd.Series, t_handed: pd.Series) -> pd.Series:
    """How long each hand-off held the application up, in ms.

    A message's hand-off can begin at its slot, or once the message before it was off the
    application's hands, whichever is later; it blocked from then until it returned. A
    message given up (t_handed NaN) blocked for no time at all (0).

    Args:
        t_want: each message's slot (seconds), in msg_id order.
        t_handed: when its hand-off returned (NaN: given up).
    """
    handed = pd.Series(np.asarray(t_handed, dtype=float))
    want = pd.Series(np.asarray(t_want, dtype=float))
    previous = handed.ffill().shift(1)
    began = np.fmax(want, previous)
    return ((handed - began).clip(lower=0).fillna(0.0) * 1000).set_axis(t_want.index)


def held_over_time(journey: pd.DataFrame, step_s: float = 0.01,
                   end_s: float | None = None) -> pd.DataFrame:
    """What the producer and the application queue held, and how far behind the application was.

    Counted from the per-message times: the producer holds a message from ``produce()``
    until its delivery report is served (as librdkafka's own ``msg_cnt`` counts it); the
    application queue from the hand-off until ``produce()``.

    Args:
        journey: ``journeys``.
        step_s: the grid's step (s).
        end_s: the grid's end (default: the last report).

    Returns:
        Columns t, client_msgs, app_msgs, behind_s (how late the application's last
        hand-off by t was against its schedule; 0 before the first).
    """
    sent = np.sort(journey.t_send.dropna().to_numpy())
    reported = np.sort(journey.t_delivered.dropna().to_numpy())
    handed_rows = journey.dropna(subset=["t_handed"]).sort_values("t_handed")
    handed = handed_rows.t_handed.to_numpy()
    last = end_s if end_s is not None else float(np.nanmax(np.r_[sent, reported, 0.0]))
    grid = np.arange(0.0, last + step_s, step_s)
    client = np.searchsorted(sent, grid, "right") - np.searchsorted(reported, grid, "right")
    app = np.searchsorted(handed, grid, "right") - np.searchsorted(sent, grid, "right")
    lateness = (handed_rows.t_handed - handed_rows.t_want).to_numpy()
    index = np.searchsorted(handed, grid, "right") - 1
    behind = np.where(index >= 0, lateness[np.clip(index, 0, None)] if len(lateness) else 0, 0)
    return pd.DataFrame({"t": grid, "client_msgs": client, "app_msgs": np.clip(app, 0, None),
                         "behind_s": np.clip(behind, 0, None)})


def counted_at(journey: pd.DataFrame, times) -> pd.DataFrame:
    """The producer's held messages counted from the per-message times, at given times.

    Returns:
        Columns t, client_msgs, app_msgs.
    """
    times = np.asarray(times, dtype=float)
    sent = np.sort(journey.t_send.dropna().to_numpy())
    reported = np.sort(journey.t_delivered.dropna().to_numpy())
    handed = np.sort(journey.t_handed.dropna().to_numpy())
    client = np.searchsorted(sent, times, "right") - np.searchsorted(reported, times, "right")
    app = np.searchsorted(handed, times, "right") - np.searchsorted(sent, times, "right")
    return pd.DataFrame({"t": times, "client_msgs": client, "app_msgs": np.clip(app, 0, None)})


def stats_against_counts(journey: pd.DataFrame, queue: pd.DataFrame) -> pd.DataFrame:
    """The statistic ``msg_cnt`` beside labkit's count of held messages, at each sample.

    Args:
        journey: ``journeys``.
        queue: ``client_stats.client_queue`` of the run (t on the same clock).

    Returns:
        Columns t, msg_cnt, counted (labkit's), difference (msg_cnt - counted).
    """
    counted = counted_at(journey, queue.t)
    return pd.DataFrame({"t": queue.t.to_numpy(), "msg_cnt": queue.msg_cnt.to_numpy(),
                         "counted": counted.client_msgs.to_numpy(),
                         "difference": queue.msg_cnt.to_numpy() - counted.client_msgs.to_numpy()})


def accounting(records: pd.DataFrame, calls: int) -> dict[str, int | bool]:
    """Whether every ``produce()`` was refused or got exactly one delivery report.

    Args:
        records: one row per message handed to ``produce()`` (error ``BufferError``: refused
            and given up).
        calls: delivery callbacks served.

    Returns:
        made, refused, reported (messages with a report), unreported, calls, and holds:
        no message unreported, one callback per reported message, and made = refused +
        reported.
    """
    made = len(records)
    refused = int((records.error == REFUSED).sum())
    unreported = int((records.error == "unreported").sum())
    reported = made - refused - unreported
    return {"made": made, "refused": refused, "reported": reported, "unreported": unreported,
            "calls": int(calls),
            "holds": unreported == 0 and calls == reported and refused + reported == made}


def first_refusal(records: pd.DataFrame) -> dict[str, float]:
    """When ``produce()`` first raised ``BufferError``, and what the producer held then.

    The refusal's own time is not recorded; the last message accepted before it stands in
    (the refusal came right after it, in the same loop).

    Returns:
        msg_id (of the first refused call; NaN if none was), accepted_before, reported_before
        (delivery reports served by then) and held (accepted_before - reported_before).
    """
    refused = records.msg_id[records.error == REFUSED]
    if refused.empty:
        return {"msg_id": np.nan, "accepted_before": len(records), "reported_before": np.nan,
                "held": np.nan}
    first = int(refused.min())
    before = records[records.msg_id < first]
    at = before.t_send.max() if len(before) else 0.0
    reported = int((records.t_delivered <= at).sum())
    return {"msg_id": first, "accepted_before": len(before), "reported_before": reported,
            "held": len(before) - reported}


def over_limits(queue: pd.DataFrame) -> pd.DataFrame:
    """Statistics samples in which the producer held more than its limits allow."""
    return queue[(queue.msg_cnt > queue.msg_max) | (queue.msg_size > queue.msg_size_max)]


def strategy_row(journey: pd.DataFrame, queue: pd.DataFrame, offered: int, wall_s: float,
                 size: int) -> dict[str, float]:
    """One strategy's outcome, throughput, latency and memory.

    Args:
        journey: ``journeys`` of the run.
        queue: ``client_stats.client_queue`` of the run.
        offered: messages the application would have made on schedule.
        wall_s: seconds from the first hand-off until the flush returned.
        size: value bytes.

    Returns:
        offered, made (handed off or given up), never_made (offered - made: the
        application, blocked, never got to them), dropped, delivered, failed; msgs_per_s
        and payload_mbit_per_s delivered over wall_s; p50 and p99 of delivery_ms, queue_ms
        and total_ms; blocked_s (the application's time in hand-offs beyond its schedule),
        blocked_max_ms (the longest one), behind_s (how late its last hand-off was),
        last_handed_s (when that was);
        peak_client_msgs and peak_client_bytes (librdkafka's msg_cnt and msg_size: values
        and keys), peak_app_msgs and peak_app_bytes (the application queue, counted;
        values only) and peak_held_bytes (both at once, at the statistics samples).
    """
    delivered = journey[journey.error == ""]

    def pct(column: str, p: float) -> float:
        # Exact, from the (few thousand) recorded values: an HdrHistogram starts at 1 µs,
        # and an application queue's 0 must read 0.
        values = delivered[column].dropna()
        return float(values.quantile(p / 100)) if len(values) else np.nan

    held = counted_at(journey, queue.t)
    app_peak = int(held_over_time(journey).app_msgs.max()) if len(journey) else 0
    made = len(journey)
    handed = journey.dropna(subset=["t_handed"])
    return {
        "offered": int(offered), "made": made, "never_made": int(max(offered - made, 0)),
        "dropped": int((journey.error == REFUSED).sum()), "delivered": len(delivered),
        "failed": int((~journey.error.isin(["", REFUSED])).sum()),
        "msgs_per_s": len(delivered) / wall_s if wall_s else np.nan,
        "payload_mbit_per_s": len(delivered) * size * 8 / wall_s / 1e6 if wall_s else np.nan,
        **{f"{column}_p{p}": pct(column, p) for column in ("delivery_ms", "queue_ms",
                                                           "total_ms") for p in (50, 99)},
        "blocked_s": float(journey.blocked_ms.sum() / 1000),
        "blocked_max_ms": float(journey.blocked_ms.max()) if made else np.nan,
        "behind_s": float(handed.behind_ms.iloc[-1] / 1000) if len(handed) else np.nan,
        "last_handed_s": float(handed.t_handed.max()) if len(handed) else np.nan,
        "peak_client_msgs": float(queue.msg_cnt.max()) if len(queue) else np.nan,
        "peak_client_bytes": float(queue.msg_size.max()) if len(queue) else np.nan,
        "peak_app_msgs": app_peak, "peak_app_bytes": app_peak * size,
        "peak_held_bytes": float((queue.msg_size.to_numpy()
                                  + held.app_msgs.to_numpy() * size).max())
        if len(queue) else np.nan,
    }


def strategy_table(runs) -> pd.DataFrame:
    """``strategy_row`` of every run, indexed by its label (or by the names given).

    Beside ``strategy_row``'s columns, from librdkafka's statistics
    (``metrics.stats_summary``): batch_msgs_avg (messages per batch) and wire_bytes_per_msg
    (bytes sent to the brokers per message, requests and framing included).

    Args:
        runs: ``labkit.experiments.backpressure.StrategyRun`` objects (or anything with
            wanted, run.records, run.stats, run.wall_s, zero, offered, size, label), or a
            dict of them by name.
    """
    rows = {}
    items = runs.items() if isinstance(runs, dict) else ((r.label, r) for r in runs)
    for name, r in items:
        queue = client_stats.client_queue(r.run.stats, r.zero)
        rows[name] = strategy_row(journeys(r.wanted, r.run.records), queue, r.offered,
                                  r.run.wall_s, r.size)
        client = metrics.stats_summary(r.run.stats).attrs.get("client", {})
        rows[name]["batch_msgs_avg"] = client.get("batch_msgs_avg", np.nan)
        rows[name]["wire_bytes_per_msg"] = (client.get("wire_bytes", np.nan)
                                            / max(client.get("tx_msgs", 0), 1))
    return pd.DataFrame(rows).T


def link_capacity_msgs(mbit: float, bytes_per_msg: float) -> float:
    """Messages a second a link of ``mbit`` Mbit/s carries at ``bytes_per_msg`` each.

    Give the bytes each message really took on the wire (requests and framing included,
    e.g. librdkafka's ``tx_bytes`` / ``txmsgs``) for what the link can carry; the value
    bytes alone give an upper bound.
    """
    return mbit * 1e6 / 8 / bytes_per_msg


def no_leader(leaders: pd.DataFrame, after_s: float) -> tuple[float, float]:
    """When the partition's metadata first showed no leader after ``after_s``, and a leader again.

    Args:
        leaders: samples with t and leader (-1: none), one partition.
        after_s: from when (e.g. the kill).

    Returns:
        (first sample without a leader, first sample with one after that); NaN where none.
    """
    later = leaders[leaders.t >= after_s]
    gone = later[later.leader < 0]
    if gone.empty:
        return float("nan"), float("nan")
    start = float(gone.t.min())
    back = later[(later.t > start) & (later.leader >= 0)]
    return start, float(back.t.min()) if len(back) else float("nan")


def timeout_phases(records: pd.DataFrame, killed_s: float, no_leader_s: float,
                   leader_back_s: float, message_timeout_ms: float) -> pd.DataFrame:
    """What became of the messages sent in each stretch of a leaderless partition.

    Stretches by send time: before the kill; from the kill until the metadata first named no
    leader (it still named the dead broker); until it named a leader again; after.

    Args:
        records: the producer's records on the run's clock.
        killed_s: when the only replica's broker was killed.
        no_leader_s: when the metadata first named no leader (NaN: never).
        leader_back_s: when it named a leader again (NaN: never).
        message_timeout_ms: the producer's message.timeout.ms.

    Returns:
        One row per stretch that had messages: phase, sent, acknowledged, timed_out
        (``_MSG_TIMED_OUT``), other_errors, waited_min_ms and waited_max_ms (``produce()``
        to the report, of the timed-out ones), late_max_ms (the most any came after
        message.timeout.ms), first_report_s and last_report_s (of the timed-out ones).
    """
    inf = float("inf")
    edges = [("before the kill", -inf, killed_s)]
    if np.isfinite(no_leader_s):
        edges += [("dead broker still named leader", killed_s, no_leader_s),
                  ("no leader", no_leader_s, leader_back_s if np.isfinite(leader_back_s)
                   else inf)]
        if np.isfinite(leader_back_s):
            edges.append(("leader back", leader_back_s, inf))
    else:
        edges.append(("dead broker still named leader", killed_s, inf))
    rows = []
    for phase, start, end in edges:
        sent = records[(records.t_send >= start) & (records.t_send < end)]
        if sent.empty:
            continue
        timed = sent[sent.error == "_MSG_TIMED_OUT"]
        waited = (timed.t_delivered - timed.t_send) * 1000
        rows.append({
            "phase": phase, "sent": len(sent), "acknowledged": int((sent.error == "").sum()),
            "timed_out": len(timed),
            "other_errors": int((~sent.error.isin(["", "_MSG_TIMED_OUT"])).sum()),
            "waited_min_ms": waited.min() if len(timed) else np.nan,
            "waited_max_ms": waited.max() if len(timed) else np.nan,
            "late_max_ms": waited.max() - message_timeout_ms if len(timed) else np.nan,
            "first_report_s": timed.t_delivered.min() if len(timed) else np.nan,
            "last_report_s": timed.t_delivered.max() if len(timed) else np.nan,
        })
    return pd.DataFrame(rows)


def overdue_silence(records: pd.DataFrame, message_timeout_ms: float, start_s: float,
                    end_s: float) -> dict[str, float]:
    """The longest stretch in [start_s, end_s] without any delivery report, and what fell due in it.

    Args:
        records: the producer's records on the run's clock.
        message_timeout_ms: the producer's message.timeout.ms.
        start_s: from when (e.g. the kill).
        end_s: until when (e.g. when the metadata first named no leader).

    Returns:
        start, end and seconds of the stretch (NaN if the window is empty), and overdue: the
        messages whose message.timeout.ms ran out inside it, reported neither then nor
        sooner.
    """
    if not end_s > start_s:
        return {"start": np.nan, "end": np.nan, "seconds": np.nan, "overdue": 0}
    reports = records.t_delivered.dropna()
    reports = reports[(reports > start_s) & (reports < end_s)]
    found = gaps.between(reports.to_numpy(), start=start_s, end=end_s)
    first = found.iloc[0]
    due = records.t_send + message_timeout_ms / 1000
    overdue = (due > first.start) & (due < first.end) & ~(records.t_delivered <= first.end)
    return {"start": float(first.start), "end": float(first.end),
            "seconds": float(first.seconds), "overdue": int(overdue.sum())}
