"""What a client cut off by the network was told, and what its group redid (pure pandas).

For ``labkit.experiments.client_partition`` (notebook 26). Inputs are recorded frames: a
producer's ``records`` (``labkit.workloads.producer``) on the run's clock, and a consumer
group's ``messages()`` / ``events()`` (``labkit.workloads.consumer``).
"""

from __future__ import annotations

import pandas as pd

TIMER_GRANULARITY_MS = 100
"""Slack allowed below message.timeout.ms: librdkafka checks timeouts on a timer, and the
recorded send time is taken just before ``produce()``."""


def delivery_phases(records: pd.DataFrame, cut_partitions, cut_s: float, healed_s: float,
                    end_s: float) -> pd.DataFrame:
    """Delivery reports per phase (before the cut, cut, after the heal), cut partitions apart.

    A message counts in the phase its delivery report came in.

    Args:
        records: producer records with t_delivered on the run's clock.
        cut_partitions: partitions whose leader the producer lost.
        cut_s: when the link was cut.
        healed_s: when it was healed.
        end_s: the end of the last phase.

    Returns:
        One row per (phase, partitions): phase, partitions ("cut leader" or "reachable"),
        acknowledged, failed, first_ack_s and last_ack_s (NaN without an acknowledgement).
    """
    edges = [("before the cut", -float("inf"), cut_s), ("cut", cut_s, healed_s),
             ("after the heal", healed_s, end_s)]
    cut = records.partition.isin(list(cut_partitions))
    rows = []
    for phase, start, end in edges:
        inside = records[(records.t_delivered >= start) & (records.t_delivered < end)]
        for name, mask in (("cut leader", cut), ("reachable", ~cut)):
            part = inside[mask.loc[inside.index]]
            acked = part[part.error == ""]
            rows.append({"phase": phase, "partitions": name, "acknowledged": len(acked),
                         "failed": int((part.error != "").sum()),
                         "first_ack_s": acked.t_delivered.min() if len(acked) else float("nan"),
                         "last_ack_s": acked.t_delivered.max() if len(acked) else float("nan")})
    return pd.DataFrame(rows)


def failures(records: pd.DataFrame, message_timeout_ms: float) -> pd.DataFrame:
    """The failed messages, with how long each waited for its report.

    Returns:
        msg_id, partition, error, t_send, t_delivered, waited_ms (send to report) and
        over_ms (waited_ms minus message.timeout.ms: how late the report came).
    """
    failed = records[records.error != ""]
    waited = (failed.t_delivered - failed.t_send) * 1000
    return pd.DataFrame({"msg_id": failed.msg_id, "partition": failed.partition,
                         "error": failed.error.astype(str), "t_send": failed.t_send,
                         "t_delivered": failed.t_delivered, "waited_ms": waited,
                         "over_ms": waited - message_timeout_ms}).reset_index(drop=True)


def errors_by_name(records: pd.DataFrame) -> pd.Series:
    """How many messages failed with each error name (an empty Series if none did)."""
    return records[records.error != ""].error.astype(str).value_counts()


def early_timeouts(records: pd.DataFrame, message_timeout_ms: float,
                   slack_ms: float = TIMER_GRANULARITY_MS) -> pd.DataFrame:
    """Messages reported ``_MSG_TIMED_OUT`` sooner than message.timeout.ms (less the slack)."""
    table = failures(records, message_timeout_ms)
    return table[(table.error == "_MSG_TIMED_OUT") & (table.over_ms < -slack_ms)]


def acked_sent_during(records: pd.DataFrame, cut_partitions, cut_s: float,
                      healed_s: float) -> pd.DataFrame:
    """Messages to the cut partitions sent after the cut and acknowledged before the heal.

    None can be: their bytes could not reach the leader. (A message sent just before the
    cut may still be acknowledged after it, from a response already on its way.)

    Args:
        records: producer records on the run's clock.
        cut_partitions: the partitions whose leader was cut off.
        cut_s: when the cut was in force (the network action returned).
        healed_s: when the heal began.
    """
    cut = records[records.partition.isin(list(cut_partitions)) & (records.error == "")]
    return cut[(cut.t_send > cut_s) & (cut.t_delivered < healed_s)]


def processed_between(messages: pd.DataFrame, member: str, start_s: float,
                      end_s: float) -> int:
    """How many messages ``member`` processed in [start_s, end_s) (``messages().t``)."""
    mine = messages[messages.member == member]
    return int(((mine.t >= start_s) & (mine.t < end_s)).sum())


def first_ack_after(records: pd.DataFrame, partitions, t_s: float) -> float:
    """When the first acknowledgement from ``partitions`` came after ``t_s`` (NaN: none)."""
    acked = records[records.partition.isin(list(partitions)) & (records.error == "")]
    later = acked.t_delivered[acked.t_delivered > t_s]
    return float(later.min()) if len(later) else float("nan")


def owned_once(assignment: dict[str, list[str]], partitions) -> bool:
    """Whether every partition is owned by exactly one member and nothing else is owned."""
    owned = sorted(p for parts in assignment.values() for p in parts)
    return owned == sorted(partitions)


def duplicates(messages: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """The messages of one run processed more than once, and by whom.

    Args:
        messages: ``ConsumerGroup.messages()`` (t on any clock).
        run_id: the producer run whose messages count.

    Returns:
        One row per duplicated msg_id: msg_id, partition, first_member, first_t,
        again_member, again_t (its last processing), copies.
    """
    ours = messages[messages.run_id == run_id].sort_values("t", kind="stable")
    repeated = ours[ours.msg_id.duplicated(keep=False)]
    columns = ["msg_id", "partition", "first_member", "first_t", "again_member", "again_t",
               "copies"]
    if repeated.empty:
        return pd.DataFrame(columns=columns)
    by = repeated.groupby("msg_id", sort=True)
    first, last = by.first(), by.last()
    return pd.DataFrame({"msg_id": first.index, "partition": first.partition.to_numpy(),
                         "first_member": first.member.to_numpy(),
                         "first_t": first.t.to_numpy(), "again_member": last.member.to_numpy(),
                         "again_t": last.t.to_numpy(),
                         "copies": by.size().to_numpy()})[columns]


def member_moments(events: pd.DataFrame, member: str, after_s: float) -> dict[str, float]:
    """When ``member`` first lost or gave up its partitions, and got some back, after a time.

    Args:
        events: ``ConsumerGroup.events()`` on the run's clock.
        member: the member's name.
        after_s: only events from then on (e.g. the cut).

    Returns:
        "lost" (first ``lost`` or ``revoke`` event of the member), "others_assigned"
        (first ``assign`` of another member after that) and "back" (the member's first
        ``assign`` with partitions after "lost"); NaN for what did not happen.
    """
    later = events[events.t >= after_s]
    mine = later[later.member == member]
    gone = mine[mine.kind.isin(["lost", "revoke"])]
    lost = float(gone.t.min()) if len(gone) else float("nan")
    others = later[(later.member != member) & (later.kind == "assign")]
    others_t = float(others.t.min()) if len(others) else float("nan")
    back = mine[(mine.kind == "assign") & (mine.t > lost)] if len(gone) else mine.iloc[:0]
    back = back[back.partitions.map(len) > 0]
    return {"lost": lost, "others_assigned": others_t,
            "back": float(back.t.min()) if len(back) else float("nan")}


def partition_numbers(assignment: dict[str, list[str]]) -> dict[str, list[int]]:
    """Each member's partition numbers ("topic-3" -> 3), for sentences about one topic."""
    return {member: sorted(int(p.rsplit("-", 1)[1]) for p in parts)
            for member, parts in assignment.items()}


def owned_at(events: pd.DataFrame, member: str, t_s: float) -> list[int]:
    """The partition numbers ``member`` was last assigned before ``t_s`` (``events()``)."""
    assigned = events[(events.member == member) & (events.kind == "assign") & (events.t < t_s)]
    if assigned.empty:
        return []
    return sorted(int(p.rsplit("-", 1)[1]) for p in assigned.partitions.iloc[-1])


def longest_unread(messages: pd.DataFrame, partitions, start_s: float,
                   end_s: float) -> tuple[float, float]:
    """The longest stretch in [start_s, end_s] in which nobody processed any of ``partitions``.

    Args:
        messages: ``ConsumerGroup.messages()`` (one topic), t on the run's clock.
        partitions: partition numbers.
        start_s: from when.
        end_s: until when.

    Returns:
        (seconds, when the stretch began).
    """
    ours = messages[messages.partition.isin(list(partitions))]
    times = sorted([start_s, *ours.t[(ours.t > start_s) & (ours.t < end_s)], end_s])
    gaps = [(b - a, a) for a, b in zip(times, times[1:], strict=False)]
    return max(gaps)
