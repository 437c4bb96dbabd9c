"""What a share group's records say: who processed how much, what a fault's records became.

Pure functions of ``labkit.workloads.share.ShareGroup`` records (``messages()``, ``held()``);
the counting of copies is ``labkit.analysis.accounting``'s.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from labkit.analysis import accounting


def member_counts(messages: pd.DataFrame, members) -> pd.DataFrame:
    """Records processed per member, including members that processed none.

    Args:
        messages: ``ShareGroup.messages()`` or ``ConsumerGroup.messages()``.
        members: every member name that took part (e.g. ``["m1", ..., "m6"]``).

    Returns:
        Indexed by member: records (int), share (fraction of all rows), partitions (sorted
        list of the partitions it read from).
    """
    counts = messages.groupby("member").size()
    parts = messages.groupby("member").partition.agg(lambda s: sorted(set(s)))
    table = pd.DataFrame({"records": counts.reindex(members, fill_value=0)})
    table["share"] = table.records / max(1, int(table.records.sum()))
    table["partitions"] = [parts.get(m, []) for m in members]
    table.index.name = "member"
    return table


def _records(frame: pd.DataFrame) -> pd.Series:
    """The (topic, partition, offset) of each row: which record of the log it is."""
    return pd.Series(list(zip(frame.topic, frame.partition, frame.offset, strict=True)),
                     index=frame.index, dtype=object)


def redelivery(messages: pd.DataFrame, held: pd.DataFrame, t_fault: float) -> dict[str, Any]:
    """What became of the records a member held when it crashed or stalled.

    Args:
        messages: ``ShareGroup.messages()``.
        held: the member's held records (``crash_member`` or ``stall_member``).
        t_fault: when the fault began, seconds since the group started (its event's ``t``).

    Returns:
        member, held, processed_before (of those, processed by the member before the fault),
        redelivered (held records processed again with a delivery count above 1),
        to_members (sorted names of the members they went to), delivery_counts (sorted
        distinct counts of those deliveries), first_s and last_s (seconds from the fault to
        the first and last redelivery; NaN if none), processed_twice (held messages
        processed more than once in all: ``accounting.tally``'s duplicated_ids).
    """
    member = held.member.iloc[0] if len(held) else ""
    keys = set(_records(held))
    ours = _records(messages).isin(keys).to_numpy()
    rows = messages[(messages.delivery_count > 1) & ours]
    again = rows.drop_duplicates(["topic", "partition", "offset"])
    counts = accounting.tally(held.msg_id.unique(), messages.msg_id[ours])
    delay = again.t_received - t_fault
    return {
        "member": member,
        "held": len(keys),
        "processed_before": int(held.processed.sum()) if len(held) else 0,
        "redelivered": len(again),
        "to_members": sorted(set(rows.member), key=lambda m: (len(m), m)),
        "delivery_counts": sorted(int(c) for c in set(rows.delivery_count)),
        "first_s": float(delay.min()) if len(delay) else float("nan"),
        "last_s": float(delay.max()) if len(delay) else float("nan"),
        "processed_twice": counts["duplicated_ids"],
    }


def duplicated_messages(messages: pd.DataFrame) -> pd.DataFrame:
    """The messages processed more than once, with who processed them.

    Args:
        messages: ``ShareGroup.messages()``.

    Returns:
        Indexed by msg_id: times (rows), members (list, in processing order),
        delivery_counts (list, in processing order), partition, offset.
    """
    again = messages.msg_id[accounting.copy_number(messages.msg_id) > 0]
    dup = messages[messages.msg_id.isin(again)].sort_values("t")
    return dup.groupby("msg_id").agg(
        times=("member", "size"), members=("member", list),
        delivery_counts=("delivery_count", list), partition=("partition", "first"),
        offset=("offset", "first"))


def idle_members(whole_run: pd.DataFrame, settled: pd.DataFrame,
                 assignment: dict[str, list[str]]) -> dict[str, Any]:
    """Which members of a classic group sat idle once it had settled, and what they did before.

    Args:
        whole_run: ``member_counts`` over the whole run.
        settled: ``member_counts`` over the records processed once the group had settled.
        assignment: the settled group's member -> partitions.

    Returns:
        idle (sorted members without a record once settled), busy (sorted members with
        records then), owners (sorted members assigned a partition), idle_records (records
        the idle members processed once settled), forming_records (records they processed
        in the whole run: while the group was still forming).
    """
    idle = settled.index[settled.records == 0]
    return {
        "idle": sorted(idle),
        "busy": sorted(settled.index[settled.records > 0]),
        "owners": sorted(m for m, parts in assignment.items() if parts),
        "idle_records": int(settled.records[idle].sum()),
        "forming_records": int(whole_run.records.reindex(idle, fill_value=0).sum()),
    }


def spread(messages: pd.DataFrame, members) -> dict[str, int]:
    """How a group spread its records over its members and its partitions over readers.

    Args:
        messages: ``ShareGroup.messages()`` (or ``ConsumerGroup.messages()``).
        members: every member name that took part.

    Returns:
        members (how many of ``members`` processed a record), fewest and most (records of
        the least and the most busy member), readers_min and readers_max (members that read
        from a partition, over partitions), distinct (messages processed at least once).
    """
    counts = member_counts(messages, members)
    readers = messages.groupby("partition").member.nunique()
    return {
        "members": int((counts.records > 0).sum()),
        "fewest": int(counts.records.min()) if len(counts) else 0,
        "most": int(counts.records.max()) if len(counts) else 0,
        "readers_min": int(readers.min()) if len(readers) else 0,
        "readers_max": int(readers.max()) if len(readers) else 0,
        "distinct": int(messages.msg_id.nunique()),
    }


def deliveries(messages: pd.DataFrame, held: pd.DataFrame, t_fault: float) -> pd.DataFrame:
    """Every delivery of the records a member held at a fault, on the fault's clock.

    Args:
        messages: ``ShareGroup.messages()``.
        held: the member's held records (``crash_member`` or ``stall_member``).
        t_fault: when the fault began, seconds since the group started.

    Returns:
        One row per (record, member, delivery_count): partition, offset, member,
        delivery_count, received_s and processed_s (seconds from the fault to the
        ``poll()`` that returned it and to its processing; NaN if it never was processed),
        in record order. Held records the member never processed are rows too.
    """
    keys = ["partition", "offset", "member", "delivery_count"]
    ours = messages[_records(messages).isin(set(_records(held))).to_numpy()]
    rows = pd.concat([ours, held[~held.processed.astype(bool)]] if len(held) else [ours])
    rows = rows.drop_duplicates(keys).sort_values(["partition", "offset", "t_received"])
    return pd.DataFrame({**{k: rows[k].to_numpy() for k in keys},
                         "received_s": (rows.t_received - t_fault).to_numpy(dtype=float),
                         "processed_s": (rows.t - t_fault).to_numpy(dtype=float)})
