"""What a group's membership steps did: per phase, what moved and how long nothing was read.

Pure pandas on the records of ``labkit.experiments.assignment.run_scenarios``: a run's
``events`` (``labkit.workloads.members.GROUP_EVENT_COLUMNS``), its ``phases`` (one row per
phase: phase, t_trigger, t_settled, before, after; see ``labkit.experiments.assignment``) and
its ``end``. ``phase_summary`` turns one run into a table, ``phase_summaries`` all of them,
``shapes`` shows the settled assignments compactly, and the functions below them pick out what
the findings of notebook 12 compare.
"""

from __future__ import annotations

import re

import pandas as pd

from labkit.analysis import metrics

CALLBACK_KINDS = ("assign", "revoke", "lost")


def _owners(assignment: dict[str, list[str]]) -> dict[str, str]:
    return {part: member for member, parts in assignment.items() for part in parts}


def _unavoidable(phase: str, before: dict, after: dict) -> int:
    """Partitions that have to change owner in this phase, whatever the assignor."""
    kind, _, member = phase.partition(" ")
    if kind == "remove":
        return len(before.get(member, []))
    if kind == "add":
        return len(after.get(member, []))
    return 0


def phase_summary(events: pd.DataFrame, phases: pd.DataFrame, end: float) -> pd.DataFrame:
    """What each phase of a scenario moved and how long partitions went without an owner.

    A phase runs from its step's trigger to the next step's trigger (the last one to ``end``).

    Args:
        events: the group's events.
        phases: the scenario's phases (``ScenarioRun.phases``).
        end: s since the group started when the scenario finished.

    Returns:
        Indexed by phase. Columns: settle_s (trigger to the last assign / revoke / lost
        callback of the phase), handovers (partitions given to a member other than their
        previous owner; one partition can count twice), unavoidable (hand-overs any assignor
        must make: the leaver's partitions, or those the newcomer ends up with), net_moved
        (partitions whose settled owner differs before and after), paused (partitions that
        had no owner for a while), longest_pause_s (the longest such stretch), ownerless_s
        (partition-seconds without an owner, summed).
    """
    events = events[events.t <= end]
    intervals = metrics.ownership(events, end=end)
    gaps = metrics.ownership_gaps(intervals)
    callbacks_all = events[events.kind.isin(CALLBACK_KINDS)]
    ordered = intervals.sort_values(["partition", "start"])
    previous = ordered.groupby("partition").member.shift()
    handed = ordered[previous.notna() & (ordered.member != previous)]
    bounds = list(phases.t_trigger) + [end + 1e-9]
    rows = []
    for i, phase in enumerate(phases.itertuples(index=False)):
        lo, hi = bounds[i], bounds[i + 1]
        in_phase = gaps[(gaps.start >= lo) & (gaps.start < hi)]
        callbacks = callbacks_all[(callbacks_all.t >= lo) & (callbacks_all.t < hi)]
        before, after = _owners(phase.before), _owners(phase.after)
        rows.append({
            "phase": phase.phase,
            "settle_s": float(callbacks.t.max() - lo) if len(callbacks) else 0.0,
            "handovers": int(((handed.start >= lo) & (handed.start < hi)).sum()),
            "unavoidable": _unavoidable(phase.phase, phase.before, phase.after),
            "net_moved": sum(1 for p, m in after.items() if p in before and before[p] != m),
            "paused": int(in_phase.partition.nunique()),
            "longest_pause_s": float(in_phase.gap_s.max()) if len(in_phase) else 0.0,
            "ownerless_s": float(in_phase.gap_s.sum()),
        })
    return pd.DataFrame(rows).set_index("phase")


def phase_summaries(runs) -> pd.DataFrame:
    """``phase_summary`` of every run, indexed by (scenario, phase).

    Args:
        runs: label -> ``ScenarioRun`` (anything with ``events``, ``phases`` and ``end``).
    """
    return pd.concat({label: phase_summary(run.events, run.phases, run.end)
                      for label, run in runs.items()}, names=["scenario", "phase"])


def short_name(partition: str) -> str:
    """"order-events-1a2b3c4d-5" -> "o5": a topic's first letter and the partition number."""
    match = re.fullmatch(r"(.+)-(\d+)", partition)
    if match is None:
        return partition
    return f"{match.group(1)[:1]}{match.group(2)}"


def partition_order(partition: str) -> tuple[str, int]:
    """A sort key for "topic-N" names: by topic, then by partition number (2 before 10)."""
    topic, _, number = str(partition).rpartition("-")
    return (topic, int(number)) if number.isdigit() else (str(partition), 0)


def shapes(runs) -> pd.DataFrame:
    """The settled assignment after each phase, compactly: one row per (scenario, phase).

    Args:
        runs: label -> ``ScenarioRun`` (anything with ``phases``).

    Returns:
        One column per member, its partitions as short names (``short_name``), "" if it
        owned none and "-" if it was not a member then.
    """
    rows = {}
    for label, run in runs.items():
        for phase in run.phases.itertuples(index=False):
            rows[(label, phase.phase)] = {
                member: " ".join(short_name(p) for p in sorted(parts, key=partition_order))
                for member, parts in phase.after.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["scenario", "phase"]
    return table[sorted(table.columns, key=lambda m: (len(m), m))].fillna("-")


def restart_outcomes(runs, table: pd.DataFrame, step: str, member: str) -> pd.DataFrame:
    """What restarting ``member`` (the phase ``step``, e.g. "restart m2") did in each run.

    Args:
        runs: label -> ``ScenarioRun`` (anything with ``phases``), each with the phase ``step``.
        table: their ``phase_summaries``.
        step: the restart's phase.
        member: the restarted member.

    Returns:
        Indexed by scenario: handovers, paused and longest_pause_s of the phase (from
        ``table``), away (partitions ``member`` owned before the step) and kept (whether every
        member owned after the step exactly what it owned before).
    """
    rows = {}
    for label, run in runs.items():
        phase = run.phases[run.phases.phase == step].iloc[0]
        summary = table.loc[(label, step)]
        rows[label] = {"handovers": int(summary.handovers), "paused": int(summary.paused),
                       "longest_pause_s": float(summary.longest_pause_s),
                       "away": len(phase.before.get(member, [])),
                       "kept": phase.after == phase.before}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("scenario")
