"""How a workload rides out a fault: the stall, the latency spike and the recovery time.

Pure functions of what the runners recorded: a producer run's ``records`` (see
``labkit.workloads.producer``), a consumer group's ``messages()`` and ``events()`` (see
``labkit.workloads.consumer``), librdkafka statistics, and fault times (``FaultSchedule.events``).
Nothing here talks to Kafka.

Clocks: a producer run's ``t_send`` and ``t_delivered`` are seconds since its
``started_wall``; a group's ``t`` is seconds since its ``started_wall``; faults carry wall
times. The functions taking wall times (epoch seconds) convert; results are in seconds
since the fault.

Recovery, precisely (``recovery``):

- the **baseline** is the p99 delivery latency of the messages delivered before the fault
  (after the warm-up, see ``metrics.default_warmup``);
- a message is **held** by the fault if its delivery report came after the fault and it
  either failed or took longer than the **threshold**, ``max(factor * baseline, floor_ms)``;
- the run has **recovered** when the last held message was reported: from then on, every
  delivery is an on-time success. ``recovered_after_s`` is that moment minus the fault (0
  if nothing was held; NaN if some message never got a report).

Equivalently: bucket the delivery reports by the time they came; from the recovery on, the
slowest latency in every bucket stays under the threshold, and no report is an error.
"""

from __future__ import annotations

import pandas as pd

from labkit.analysis import client_stats, gaps, metrics
from labkit.analysis.timeline import partition_changes

OK = ""  # a producer record's ``error`` when the message was delivered
NO_VERDICT = ("BufferError", "unreported")  # never sent, or never reported on


def recovery(records: pd.DataFrame, fault_s: float, factor: float = 5.0,
             floor_ms: float = 1000.0, warmup_s: float | None = None) -> pd.Series:
    """Measure one producer run's latency spike and recovery from a fault.

    Args:
        records: a ``ProducerRun.records`` frame.
        fault_s: when the fault began, in seconds on the run's clock.
        factor: a held message is slower than ``factor`` times the baseline ...
        floor_ms: ... and slower than this, so that a quiet baseline of a few ms does not
            count ordinary jitter as the fault's doing.
        warmup_s: seconds from the first send left out of the baseline; None:
            ``metrics.default_warmup``.

    Returns:
        A Series: baseline_ms, threshold_ms, spike_ms (slowest delivery reported after
        the fault), held (messages held, see the module docstring), failed (error reports
        after the fault), unreported, recovered_at_s (run clock) and recovered_after_s.
    """
    # Delivered before the fault: a message sent just before it may be held by it.
    before = records[records.t_delivered < fault_s]
    baseline = metrics.latency_percentiles(before, warmup_s=warmup_s, percentiles=(99.0,))
    baseline_ms = float(baseline["p99"])
    threshold = max(factor * baseline_ms, floor_ms) if baseline_ms == baseline_ms else floor_ms
    after = records[records.t_delivered > fault_s]
    failed = ~after.error.isin([OK, *NO_VERDICT])
    held = after[failed | (after.latency_ms > threshold)]
    unreported = int((records.error == "unreported").sum())
    recovered_at = float(held.t_delivered.max()) if len(held) else float(fault_s)
    if unreported:
        recovered_at = float("nan")
    return pd.Series({
        "baseline_ms": baseline_ms, "threshold_ms": float(threshold),
        "spike_ms": float(after.latency_ms.max()) if len(after) else float("nan"),
        "held": len(held), "failed": int(failed.sum()), "unreported": unreported,
        "recovered_at_s": recovered_at, "recovered_after_s": recovered_at - fault_s,
    })


def recovery_table(runs, fault_wall: float, end_wall: float | None = None,
                   **options) -> pd.DataFrame:
    """``recovery`` for each producer run, against a fault given on the wall clock.

    Args:
        runs: ``ProducerRun`` objects (each has ``records`` and ``started_wall``).
        fault_wall: when the fault began (epoch seconds), e.g. a pause.
        end_wall: when it was undone (epoch seconds), e.g. the resume; adds the columns
            recovered_after_end_s (negative: recovered while the fault still lasted) and
            after_end_slowest_ms (the slowest delivery of the messages sent after it).
        **options: ``recovery`` options (factor, floor_ms, warmup_s).

    Returns:
        One row per run, indexed by label: the ``recovery`` values except recovered_at_s.
    """
    rows = {}
    for run in runs:
        row = recovery(run.records, fault_wall - run.started_wall, **options)
        if end_wall is not None:
            row["recovered_after_end_s"] = row.recovered_after_s - (end_wall - fault_wall)
            later = run.records.t_send >= end_wall - run.started_wall
            row["after_end_slowest_ms"] = float(run.records.latency_ms[later].max())
        rows[run.label] = row.drop("recovered_at_s")
    table = pd.DataFrame(rows).T
    counts = ["held", "failed", "unreported"]
    table[counts] = table[counts].astype(int)
    return table


def fault_times(events: pd.DataFrame, action: str = "pause",
                undo: str = "resume") -> tuple[float, float, float]:
    """When a fault began, when it had surely taken hold, and when it was undone.

    A ``FaultSchedule`` stamps each step with the wall time it *began*; the action itself
    (a signal sent, the broker's process seen stopped) lands a little later, later still
    on a loaded machine. A message sent in between may be acknowledged as if nothing
    happened, so windows that must lie wholly inside the fault start at the second time.

    Args:
        events: ``FaultSchedule.events`` (its action, t_s, done_s and wall columns).
        action: the fault's action, e.g. "pause".
        undo: the action that ended it, e.g. "resume".

    Returns:
        (began, took_hold, undone) in epoch seconds: the first ``action`` step's wall
        time, that plus the seconds until its action returned (``done_s - t_s``), and the
        first ``undo`` step after it (NaN if none).

    Raises:
        ValueError: no step is ``action``.
    """
    steps = events.assign(epoch=events.wall.map(lambda w: w.timestamp()))
    faults = steps[steps.action == action]
    if faults.empty:
        raise ValueError(f"no {action!r} step among the events ({', '.join(events.action)})")
    fault = faults.iloc[0]
    undone = steps[(steps.action == undo) & (steps.t_s >= fault.t_s)]
    return (float(fault.epoch), float(fault.epoch + fault.done_s - fault.t_s),
            float(undone.epoch.iloc[0]) if len(undone) else float("nan"))


def isr_at(timeline: pd.DataFrame, wall: float, broker: int | None = None) -> pd.DataFrame:
    """Each partition's leader and ISR as the last sample before a moment showed them.

    Args:
        timeline: a ``PartitionWatch`` timeline.
        wall: the moment (epoch seconds), e.g. a fault.
        broker: if given, add a column ``has_broker``: whether it was in the ISR.

    Returns:
        One row per partition sampled before ``wall``: topic, partition, leader, isr,
        sampled_s (the sample's time minus ``wall``, <= 0), and has_broker.
    """
    before = timeline[timeline.wall <= wall].sort_values("wall", kind="stable")
    last = before.groupby(["topic", "partition"], as_index=False, sort=True).last()
    table = last.assign(sampled_s=last.wall - wall)[
        ["topic", "partition", "leader", "isr", "sampled_s"]]
    if broker is not None:
        table["has_broker"] = table.isr.map(lambda isr: broker in isr)
    return table.reset_index(drop=True)


def producer_errors(runs) -> pd.DataFrame:
    """What each producer's application was told, and what its client went through.

    Returns:
        One row per run (index: label): failed and unreported (delivery reports), error_cb
        (librdkafka's error callbacks), req_timeouts and disconnects (summed over brokers,
        see ``client_timeouts``; NaN without statistics).
    """
    rows = {}
    for run in runs:
        timeouts = client_timeouts(run.stats)
        rows[run.label] = {
            "failed": run.failed, "unreported": run.unreported,
            "error_cb": len(run.client_errors),
            "req_timeouts": timeouts.req_timeouts.sum() if run.stats else float("nan"),
            "disconnects": timeouts.disconnects.sum() if run.stats else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def releases(records: pd.DataFrame, start_s: float, end_s: float) -> pd.DataFrame:
    """When each partition acknowledged again the messages sent between two moments.

    Args:
        records: a ``ProducerRun.records`` frame.
        start_s: the start of the window (run clock), e.g. a pause.
        end_s: its end (run clock), e.g. the resume.

    Returns:
        One row per partition (index): sent (messages sent in the window and delivered
        there), released_after_s (the first of them to be acknowledged, in seconds after
        ``start_s``), slowest_ms (their slowest delivery latency).
    """
    window = records[(records.t_send >= start_s) & (records.t_send < end_s)
                     & (records.error == OK)]
    table = window.groupby("partition").agg(
        sent=("msg_id", "size"), released=("t_delivered", "min"),
        slowest_ms=("latency_ms", "max"))
    table["released_after_s"] = table.pop("released") - start_s
    return table[["sent", "released_after_s", "slowest_ms"]]


def release_table(runs, start_wall: float, end_wall: float) -> pd.DataFrame:
    """``releases`` for each producer run, with the window given on the wall clock.

    Returns:
        Indexed by (run label, partition); columns as ``releases``.
    """
    parts = {run.label: releases(run.records, start_wall - run.started_wall,
                                 end_wall - run.started_wall) for run in runs}
    return pd.concat(parts, names=["run", "partition"])


def client_timeouts(stats: list[dict]) -> pd.DataFrame:
    """Per broker, what a client's requests went through, from librdkafka's statistics.

    Counters are the largest value any sample shows: librdkafka drops a broker from its
    statistics once the cluster's metadata no longer lists it (a fenced broker), so the
    last sample may not have it.

    Returns:
        One row per broker id (index): req_timeouts (requests the client gave up waiting
        for, after ``socket.timeout.ms``), disconnects, slowest_rtt_ms (the slowest
        request round trip in any statistics window).
    """
    windows = client_stats.broker_windows(stats)
    table = windows.groupby("broker").agg(
        req_timeouts=("req_timeouts", "max"), disconnects=("disconnects", "max"),
        slowest_rtt_ms=("rtt_max_ms", "max")).fillna({"slowest_rtt_ms": 0.0})
    return table.sort_index().astype({"req_timeouts": int, "disconnects": int})


def cluster_reaction(timeline: pd.DataFrame, fault_wall: float) -> pd.DataFrame:
    """What the cluster's metadata showed changing after a fault, from a ``PartitionWatch``.

    Returns:
        ``timeline.partition_changes`` after the fault, with ``after_s`` (seconds after the
        fault the first sample showed the change) in place of ``wall``.
    """
    changes = partition_changes(timeline)
    changes = changes[changes.wall >= fault_wall].reset_index(drop=True)
    changes.insert(0, "after_s", changes.pop("wall") - fault_wall)
    return changes


def leader_moves(timeline: pd.DataFrame, broker: int, fault_wall: float) -> pd.DataFrame:
    """When the partitions ``broker`` led got another leader after a fault.

    Args:
        timeline: a ``PartitionWatch`` timeline.
        broker: the broken broker.
        fault_wall: when it broke (epoch seconds).

    Returns:
        One row per partition that moved: topic, partition, leader (the new one), wall
        (the first sample showing it), after_s (seconds after the fault).
    """
    changes = partition_changes(timeline)
    moved = changes[(changes.wall >= fault_wall) & (changes.was_leader == broker)
                    & (changes.leader != broker)]
    moved = moved.groupby(["topic", "partition"], as_index=False).first()
    return moved.assign(after_s=moved.wall - fault_wall)[
        ["topic", "partition", "leader", "wall", "after_s"]]


def with_leader_moves(events: pd.DataFrame, moves: pd.DataFrame) -> pd.DataFrame:
    """``FaultSchedule.events`` plus one row per leader move, for ``plots.fault_markers``.

    A move is drawn as action "new leader" and the broker that took over.
    """
    rows = pd.DataFrame({"action": "new leader", "broker": moves.leader,
                         "wall": pd.to_datetime(moves.wall, unit="s", utc=True)})
    return pd.concat([events, rows], ignore_index=True).sort_values("wall", kind="stable")


def consumption_gap(messages: pd.DataFrame, fault_wall: float) -> pd.Series:
    """The longest stretch in which a consumer group processed nothing, around a fault.

    Args:
        messages: ``ConsumerGroup.messages()`` (its ``t_consumed``, wall clock).
        fault_wall: when the fault began (epoch seconds); the stretch must end after it.

    Returns:
        A Series: from_s and to_s (seconds after the fault: the last message before the
        stretch, the first after it) and gap_s.
    """
    start, end = gaps.longest(messages.t_consumed, after=fault_wall)
    return pd.Series({"from_s": start - fault_wall, "to_s": end - fault_wall,
                      "gap_s": end - start})


def group_reaction(events: pd.DataFrame, started_wall: float, fault_wall: float,
                   members=None) -> pd.DataFrame:
    """What each consumer group member went through after a fault, from the group's events.

    Args:
        events: ``ConsumerGroup.events()``.
        started_wall: the group's ``started_wall`` (wall time of its ``t`` = 0).
        fault_wall: when the fault began (epoch seconds).
        members: the members to list (default: every member with an event).

    Returns:
        One row per member (index): lost_s (first "lost" event after the fault: its
        partitions taken away because its session timed out), assigned_s (first
        assignment after that), revoked (revocations after the fault), errors (error
        events after the fault), last_error (the last one's text, "" if none). Times are
        seconds after the fault, NaN if it did not happen.
    """
    after = events.assign(s=events.t + started_wall - fault_wall)
    after = after[after.s >= 0]
    names = list(members) if members is not None else sorted(events.member.unique())
    rows = {}
    for name in names:
        mine = after[after.member == name]
        lost = mine.s[mine.kind == "lost"]
        lost_s = float(lost.min()) if len(lost) else float("nan")
        assigned = mine.s[(mine.kind == "assign") & (mine.s > (lost_s if lost_s == lost_s
                                                                  else -1))]
        errors = mine[mine.kind == "error"]
        rows[name] = {"lost_s": lost_s,
                      "assigned_s": float(assigned.min()) if len(assigned) else float("nan"),
                      "revoked": int((mine.kind == "revoke").sum()), "errors": len(errors),
                      "last_error": errors.detail.iloc[-1] if len(errors) else ""}
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["lost_s", "assigned_s", "revoked", "errors",
                                            "last_error"])
    table.index.name = "member"
    return table
