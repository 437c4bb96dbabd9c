"""Availability over time: a producer run split into phases, its outages, what readers saw.

Pure logic on DataFrames, no Kafka. The inputs are a producer's per-message ``records``
(``ProducerRun.records``, see ``labkit.workloads.producer``: t_send, t_delivered, error,
...) and, for ``visibility``, the rows of a live reader (``labkit.workloads.readers.Tail``).
Times are seconds on one clock, the run's or any other the caller shifted them to.

- ``phases``: cut the run at given instants (a fault, a state the cluster was seen to reach)
  and count, per phase, the messages sent, acknowledged and failed, by error name.
- ``outages`` / ``outage_at``: the stretches with no successful delivery at all (measured by
  ``labkit.analysis.gaps``).
- ``visibility`` / ``read_delays``: when each message became readable, against when it
  was acknowledged.
- ``below_min_isr``: a ``min_isr_outage`` run (``labkit.experiments.replication``) cut at its
  milestones; ``cut_off``: a ``leader_cut_off`` run, the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labkit.analysis import gaps
from labkit.analysis.accounting import NOT_SENT

"""Error names of messages the client dropped before queueing them (never sent)."""

PHASE_COLUMNS = ("phase", "start_s", "end_s", "sent", "acked", "failed", "unreported")
"""The leading columns of ``phases``; one column per error name follows."""


def phases(records: pd.DataFrame, starts, end: float | None = None,
           time_column: str = "t_send") -> pd.DataFrame:
    """Count a run's messages per phase.

    Args:
        records: ``ProducerRun.records`` (needs ``time_column`` and error).
        starts: ``(t, name)`` pairs in time order: phase ``name`` runs from ``t`` until the
            next pair's ``t``; the last runs until ``end``.
        end: end of the last phase (default: open-ended).
        time_column: "t_send" counts each message in the phase it was sent in (its fate
            then tells what a sender met in that phase); "t_delivered" in the phase its
            delivery report came in (messages without a report are then left out).

    Returns:
        One row per phase, in order: ``PHASE_COLUMNS`` (sent counts every message that
        was sent; acked, failed and unreported split it), then one column per error name
        seen in any phase, in name order. Messages before the first start, or at or after
        ``end``, are left out.

    Raises:
        ValueError: no starts, starts out of order, or a missing column.
    """
    starts = [(float(t), str(name)) for t, name in starts]
    if not starts:
        raise ValueError("phases needs at least one (t, name) start")
    times = [t for t, _ in starts]
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(f"phase starts must be in time order, got {times}")
    if end is not None and end < times[-1]:
        raise ValueError(f"end={end!r} comes before the last phase start {times[-1]!r}")
    _require(records, [time_column, "error"])
    sent = records[~records.error.isin(NOT_SENT) & records[time_column].notna()]
    edges = np.asarray(times + [np.inf if end is None else float(end)])
    # index of the phase each message falls in (-1 before the first, len at or after end)
    which = np.searchsorted(edges, sent[time_column].to_numpy(), side="right") - 1
    inside = (which >= 0) & (which < len(starts))
    sent, which = sent[inside], which[inside]
    error_names = sorted(set(sent.error) - {"", "unreported"})
    rows = []
    for index, (start, name) in enumerate(starts):
        errors = sent.error[which == index]
        rows.append({"phase": name, "start_s": start, "end_s": float(edges[index + 1]),
                     "sent": len(errors), "acked": int((errors == "").sum()),
                     "failed": int((~errors.isin(["", "unreported"])).sum()),
                     "unreported": int((errors == "unreported").sum()),
                     **{error: int((errors == error).sum()) for error in error_names}})
    return pd.DataFrame(rows, columns=[*PHASE_COLUMNS, *error_names])


def acked_times(records: pd.DataFrame) -> pd.Series:
    """When each successful delivery report came (``t_delivered`` of the rows with error "")."""
    _require(records, ["t_delivered", "error"])
    return records.t_delivered[(records.error == "") & records.t_delivered.notna()]


def outages(records: pd.DataFrame, min_gap_s: float = 1.0, start: float | None = None,
            end: float | None = None) -> pd.DataFrame:
    """Stretches longer than ``min_gap_s`` in which no message was acknowledged.

    ``gaps.between`` of the successful delivery reports (``acked_times``). With ``start``
    (``end``) given, the time from it to the first delivery (from the last delivery to it)
    counts as a stretch too; a run with no delivery at all is then one outage from
    ``start`` to ``end``.

    Args:
        records: ``ProducerRun.records``.
        min_gap_s: shortest stretch reported, in seconds.
        start: when the run began sending (e.g. 0 on the run's clock).
        end: when it stopped.

    Returns:
        Columns start_s (the last delivery before the outage, or ``start``), end_s (the
        first after it, or ``end``), seconds; longest first.
    """
    found = gaps.between(acked_times(records), start=start, end=end, longer_than=min_gap_s)
    return found.rename(columns={"start": "start_s", "end": "end_s"})[
        ["start_s", "end_s", "seconds"]]


def outage_at(records: pd.DataFrame, t: float) -> tuple[float, float]:
    """The stretch around the instant ``t`` in which no message was acknowledged.

    Returns:
        (the last successful delivery at or before ``t``, the first after it), on the
        records' clock; NaN for a side with no such delivery (``gaps.around``).
    """
    return gaps.around(acked_times(records), t)


def visibility(records: pd.DataFrame, seen: pd.DataFrame, run_id: str,
               zero_wall: float) -> pd.DataFrame:
    """When each message of a run became readable, on the run's clock.

    Args:
        records: ``ProducerRun.records``.
        seen: a live reader's rows (``labkit.workloads.readers.Tail.rows``: run_id, msg_id and the
            wall-clock ``t_consumed``), possibly of several runs.
        run_id: the run's id (``ProducerRun.run_id``).
        zero_wall: wall-clock time (epoch seconds) that is 0 on the run's clock
            (``ProducerRun.started_wall``).

    Returns:
        ``records`` with a column t_seen: seconds on the run's clock at which the reader
        first received the message (NaN if it never did).
    """
    _require(records, ["msg_id"])
    mine = seen[seen.run_id == run_id]
    first = mine.groupby("msg_id").t_consumed.min() - zero_wall
    return records.assign(t_seen=records.msg_id.map(first).astype(float))


def read_delays(records: pd.DataFrame, starts, end: float | None = None) -> pd.DataFrame:
    """How long acknowledged messages took to become readable, by phase of acknowledgement.

    Args:
        records: producer records with t_seen (see ``visibility``).
        starts: ``(t, name)`` phase starts, as for ``phases``.
        end: end of the last phase.

    Returns:
        One row per phase: phase, acked (acknowledged in the phase, by ``t_delivered``),
        read (of those, read at all), median_s and max_s (``t_seen - t_delivered`` of the
        ones read; NaN if none).
    """
    _require(records, ["t_delivered", "t_seen", "error"])
    acked = records[records.error == ""]
    counted = phases(acked, starts, end, "t_delivered")
    edges = [*counted.start_s, counted.end_s.iloc[-1]]
    which = np.searchsorted(edges, acked.t_delivered.to_numpy(), side="right") - 1
    delay = (acked.t_seen - acked.t_delivered).to_numpy()
    rows = []
    for index, name in enumerate(counted.phase):
        mine = delay[which == index]
        read = mine[~np.isnan(mine)]
        rows.append({"phase": name, "acked": len(mine), "read": len(read),
                     "median_s": float(np.median(read)) if len(read) else np.nan,
                     "max_s": float(read.max()) if len(read) else np.nan})
    return pd.DataFrame(rows, columns=["phase", "acked", "read", "median_s", "max_s"])


@dataclass
class BelowMinIsr:
    """What the producers of ``replication.min_isr_outage`` met with the ISR below min and after.

    The cuts notebook 22 checks its findings on.

    Attributes:
        below_s: seconds from the ISRs seen shrunk until the first restart began.
        counts: per producer label (rows), the phase "ISR below min" of ``run.phases()``:
            sent, acked, failed, unreported, then one column per error name.
        refused: per label, writes refused with NOT_ENOUGH_REPLICAS in that phase.
        other_failures: per label, "<n> with <error>" for the phase's other failures.
        held: records of the writes acknowledged from the ISRs seen shrunk until the first
            restart began, per label (with t_seen if the run had a live reader).
        enough: records of the writes acknowledged from "min ISR met" until the second
            restart returned, per label.
        first_restart: the event restarting ``down[0]``.
        second_restart: the event restarting ``down[1]``.
    """

    below_s: float
    counts: pd.DataFrame
    refused: dict[str, int]
    other_failures: dict[str, str]
    held: dict[str, pd.DataFrame]
    enough: dict[str, pd.DataFrame]
    first_restart: pd.Series
    second_restart: pd.Series


def below_min_isr(run, down) -> BelowMinIsr:
    """Cut a ``replication.min_isr_outage`` run at its milestones for notebook 22's findings.

    Args:
        run: the ``labkit.experiments.replication.ReplicationRun``.
        down: the brokers it killed, in restart order (as passed to ``min_isr_outage``).

    Raises:
        KeyError: the run lacks a milestone or event of ``min_isr_outage``.
    """
    first, second = run.event("restart", down[0]), run.event("restart", down[1])
    shrank, met = run.t("ISR shrank"), run.t("min ISR met")
    table = run.phases().droplevel("number")
    below = table[table.phase == "ISR below min"].drop(columns=["phase", "start_s", "end_s"])
    counts = list(PHASE_COLUMNS[3:])
    errors = [c for c in below.columns if c not in counts]
    refused, other = {}, {}
    for label, row in below.iterrows():
        refused[label] = int(row.get("NOT_ENOUGH_REPLICAS", 0))
        other[label] = ", ".join(f"{int(row[e])} with {e}" for e in errors
                                 if e != "NOT_ENOUGH_REPLICAS" and row[e])
    held = {label: run.acked_between(label, shrank, first.t_s) for label in run.producers}
    enough = {label: run.acked_between(label, met, second.done_s) for label in run.producers}
    return BelowMinIsr(below_s=first.t_s - shrank, counts=below.astype(int), refused=refused,
                       other_failures=other, held=held, enough=enough, first_restart=first,
                       second_restart=second)


@dataclass
class CutOff:
    """A ``leader_cut_off`` run cut at its faults and milestones (seconds on the run's clock).

    Attributes:
        cut_s: when the leader was cut off.
        elected_s: when observers cut off with it first saw a new leader.
        healed_s: when the network healed.
        whole_s: when every ISR was whole again.
        acked: label -> its acknowledged records whose acknowledgement came while the
            leader was cut off (from ``cut_s`` until ``healed_s``), with a column lost (the
            audit did not find it afterwards).
        lost_span: label -> (first, last) acknowledgement time of its lost writes, or None
            if it lost none.
    """

    cut_s: float
    elected_s: float
    healed_s: float
    whole_s: float
    acked: dict[str, pd.DataFrame]
    lost_span: dict[str, tuple[float, float] | None]


def cut_off(run, leader: int) -> CutOff:
    """Cut a ``replication.leader_cut_off`` run at its milestones for notebook 25's findings.

    Args:
        run: the ``labkit.experiments.replication.ReplicationRun``.
        leader: the broker that was cut off.

    Raises:
        KeyError: the run lacks a milestone or event of ``leader_cut_off``.
    """
    cut, healed = run.event("isolate", leader).t_s, run.event("heal", leader).t_s
    acked, spans = {}, {}
    for label in run.producers:
        rows = run.acked_between(label, cut, healed)
        rows = rows.assign(lost=rows.msg_id.isin(run.audits[label].lost.msg_id))
        acked[label] = rows
        lost = run.records(label)
        lost = lost[lost.msg_id.isin(run.audits[label].lost.msg_id)].t_delivered
        spans[label] = (float(lost.min()), float(lost.max())) if len(lost) else None
    return CutOff(cut_s=float(cut), elected_s=run.t("new leader elected"), healed_s=float(healed),
                  whole_s=run.t("whole again"), acked=acked, lost_span=spans)


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {', '.join(missing)}; they have "
                         f"{', '.join(map(str, frame.columns))}")
