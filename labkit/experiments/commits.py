"""What a consumer group redoes or skips when a member dies or stalls, per commit mode.

A member that stops without committing leaves its partitions at the group's last committed
offsets, and whoever owns them next starts there. Messages processed beyond that offset are
processed again (duplicates); messages the commit already covers but nobody processed are
never processed (losses). When the commit trails processing the group is at-least-once;
when it runs ahead (offsets committed before the work is done) it is at-most-once.

``fault_each()`` runs that experiment: one ``ConsumerGroup`` per variant (commit mode,
``max.poll.interval.ms``, ...), all reading the same messages, and one member of each
crashed or stalled mid-stream. For each it records, at the moment of the fault, how far
processing had got and what was committed (``MemberFaultRun.at_fault``), then waits until the
rest of the group has finished. ``labkit.analysis.consumer_faults.commit_outcomes`` sets the
measured duplicates and losses next to what those offsets predict; the columns of
``MemberFaultRun.at_fault`` are those of ``consumer_faults.offsets_at_risk``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from labkit.analysis import accounting
from labkit.analysis.consumer_faults import offsets_at_risk
from labkit.cluster import Cluster, retrying, wait_until
from labkit.workloads.consumer import ConsumerGroup

FAULTS = ("crash", "pause")


def _split(partition: str) -> tuple[str, int]:
    topic, _, number = partition.rpartition("-")
    return topic, int(number)


def committed_offsets(cluster: Cluster, group_id: str, partitions: list[str],
                      timeout: float = 10) -> dict[str, int | None]:
    """The group's committed offset of each partition, as the coordinator has it.

    Args:
        cluster: where the group lives.
        group_id: the consumer group.
        partitions: "topic-partition" names.
        timeout: seconds for the request.

    Returns:
        "topic-partition" -> committed offset (the next message to process), or None if the
        group never committed one.
    """
    request = ConsumerGroupTopicPartitions(
        group_id, [TopicPartition(*_split(p)) for p in partitions])
    found = cluster.admin().list_consumer_group_offsets([request], request_timeout=timeout)
    result = found[group_id].result(timeout)
    return {f"{tp.topic}-{tp.partition}": (tp.offset if tp.offset >= 0 else None)
            for tp in result.topic_partitions}


def log_offsets(cluster: Cluster, partitions: list[str], end: bool = True,
                timeout: float = 10) -> dict[str, int]:
    """The end (next offset to be written) or start offset of each partition's log.

    Args:
        cluster: where the partitions live.
        partitions: "topic-partition" names.
        end: True for the end offsets, False for the start offsets.
        timeout: seconds for the request.
    """
    spec = OffsetSpec.latest() if end else OffsetSpec.earliest()

    def ask() -> dict[str, int]:
        futures = cluster.admin().list_offsets(
            {TopicPartition(*_split(p)): spec for p in partitions}, request_timeout=timeout)
        return {f"{tp.topic}-{tp.partition}": fut.result(timeout).offset
                for tp, fut in futures.items()}

    # A topic created a moment ago may have no leaders in the client's metadata yet.
    return retrying(ask, timeout)


@dataclass
class MemberFaultRun:
    """One group's run through a fault of one of its members.

    Attributes:
        label: the variant's name (e.g. the commit mode).
        fault: "crash" or "pause".
        member: the member that crashed or stalled.
        t_fault: when, seconds since the group started (its events' clock).
        t_back: when a paused member polled again (a crashed one never does: inf).
        at_fault: its partitions then, with processed and committed offsets
            (``consumer_faults.offsets_at_risk``).
        messages: ``ConsumerGroup.messages()`` at the end.
        events: ``ConsumerGroup.events()`` at the end.
        options: the ConsumerGroup arguments of this variant.
    """

    label: str
    fault: str
    member: str
    t_fault: float
    t_back: float
    at_fault: pd.DataFrame
    messages: pd.DataFrame
    events: pd.DataFrame
    options: dict[str, Any]

    @property
    def partitions(self) -> list[str]:
        """The partitions the member owned when the fault came."""
        return list(self.at_fault.partition)


def _work_in_flight(group: ConsumerGroup, name: str) -> bool:
    """Whether a pause now would leave processed, uncommitted work behind.

    A pause takes effect after the batch in progress, and with ``commit_every`` > 1 that
    batch may end in a commit. Wait until the member's last commit was at most one batch
    ago, so the batch in progress does not commit either.
    """
    if group.commit not in ("sync-per-batch", "async") or group.commit_every < 3:
        return True
    member = group.members[name]
    return member.uncommitted > 0 and member.batches % group.commit_every == 1


def _processed(group: ConsumerGroup) -> int:
    """How many messages the group has processed, without building ``messages()``."""
    return group.processed_count()


def _progress(group: ConsumerGroup, name: str, owned: list[str], starts: dict[str, int],
              ends: dict[str, int]) -> float:
    """How far through the messages of its partitions ``name`` is (0 to 1).

    From librdkafka's own measure, the member's newest consumer lag per partition (cheap,
    where ``messages()`` would decode every row).
    """
    total = sum(ends[p] - starts[p] for p in owned)
    lag = group.lag()
    lag = lag[lag.member == name]
    newest = lag.groupby(lag.topic + "-" + lag.partition.astype(str)).lag.last()
    if not total:
        return 0.0
    # No sample yet: nothing stored in that partition so far.
    return sum(ends[p] - starts[p] - min(int(newest.get(p, ends[p])), ends[p] - starts[p])
               for p in owned) / total


def _ready(group: ConsumerGroup, name: str, at: float, fault: str, partitions: list[str],
           starts: dict[str, int], ends: dict[str, int]) -> bool:
    """The group settled, and the member is ``at`` of the way through its partitions."""
    local = group.assignment()
    owned = sorted(p for parts in local.values() for p in parts)
    if not local.get(name) or owned != partitions:
        return False
    if _progress(group, name, local[name], starts, ends) < at:
        return False
    if fault == "pause" and not _work_in_flight(group, name):
        return False
    try:
        return group.broker_view() == local
    except KafkaException:  # the coordinator is busy: not settled yet
        return False


def _finished(group: ConsumerGroup, produced, partitions: list[str], ends: dict[str, int],
              fault: str, quiet: float, seen: dict) -> bool:
    """Done: every message processed or every offset committed, and nothing moves."""
    if fault == "pause" and not (group.events().kind == "resume").any():
        return False
    local = group.assignment()
    if sorted(p for parts in local.values() for p in parts) != sorted(partitions):
        return False
    now, rows, events = time.monotonic(), _processed(group), len(group.events())
    if seen.get("counts") != (rows, events):
        seen.update(counts=(rows, events), since=now)
        return False
    if now - seen["since"] < quiet:
        return False
    counts = accounting.partition_delivery(group.messages(), produced)
    if counts.lost.sum() == 0:
        return True
    committed = committed_offsets(group.cluster, group.group_id, partitions)
    return all(committed[p] is not None and committed[p] >= ends[p] for p in partitions)


def fault_each(cluster: Cluster, topics, produced, variants: dict[str, dict[str, Any]],
               fault: str = "crash", pause_s: float = 10.0, at: float = 0.3,
               member: str = "m1", quiet: float = 2.0, timeout: float = 180,
               **common: Any) -> dict[str, MemberFaultRun]:
    """Run one consumer group per variant over the same messages, and break one member each.

    All groups start together and read ``topics`` from the beginning. When a group has
    settled (every partition owned once, as the coordinator agrees) and has processed the
    share ``at`` of the messages in the partitions ``member`` owns, that member is crashed
    (``crash_member``: no commit, no LeaveGroup) or paused for ``pause_s`` seconds
    (``pause_member``: it stops polling; a pause is started only when it leaves processed,
    uncommitted work behind).
    Then the group runs on until every message was processed, or every offset committed,
    and nothing changed for ``quiet`` seconds; then it stops.

    The committed offsets in ``MemberFaultRun.at_fault`` are read just after the crash, or just
    after the pause begins. For a pause that is what the next owner finds only with a manual
    commit mode: with auto commit, librdkafka may commit more in the background while the
    member is paused, until it leaves the group.

    Args:
        cluster: where to consume.
        topics: the topics ``produced`` wrote.
        produced: the ``ProducerRun`` whose messages the groups read.
        variants: label -> ``ConsumerGroup`` keyword arguments of that variant, e.g.
            ``{"auto": {"commit": "auto"}}``; its ``config`` is merged into the common one.
        fault: "crash" or "pause".
        pause_s: seconds a paused member stops polling.
        at: how far through its partitions' messages the member is when the fault comes
            (0 < at < 1).
        member: which member breaks (members are named m1, m2, ...).
        quiet: seconds without a new message or event that count as "finished".
        timeout: seconds the whole run may take.
        **common: ``ConsumerGroup`` keyword arguments for every variant (members,
            processing, config, ...).

    Returns:
        label -> ``MemberFaultRun``, in the order of ``variants``.

    Raises:
        ValueError: a bad fault, share or group argument (before anything starts).
        TimeoutError: a group did not reach the fault or finish in time.
    """
    if fault not in FAULTS:
        raise ValueError(f"fault={fault!r}; use one of {', '.join(FAULTS)}")
    if not 0 < at < 1:
        raise ValueError(f"at={at!r} must be a share of the messages between 0 and 1")
    if fault == "pause" and not pause_s > 0:
        raise ValueError(f"pause_s={pause_s!r} must be a positive number of seconds")
    options = {label: {**common, **extra,
                       "config": {**common.get("config", {}), **extra.get("config", {})}}
               for label, extra in variants.items()}
    if not all(opts.get("stats_interval_ms", 1) for opts in options.values()):
        raise ValueError("stats_interval_ms=0 turns off the lag statistics that time the fault; "
                         "leave it at a positive interval")
    groups = {label: ConsumerGroup(cluster, topics, **opts) for label, opts in options.items()}
    with contextlib.ExitStack() as stack:
        for group in groups.values():
            stack.enter_context(group)
        partitions = sorted(groups[next(iter(groups))].partitions())
        starts = log_offsets(cluster, partitions, end=False)
        ends = log_offsets(cluster, partitions)
        deadline = time.monotonic() + timeout
        faults: dict[str, tuple[float, list[str], dict[str, int | None]]] = {}

        def break_ready_members() -> bool:
            for label, group in groups.items():
                if label in faults or not _ready(group, member, at, fault, partitions, starts,
                                                 ends):
                    continue
                owned = sorted(group.assignment()[member])
                t_fault = time.monotonic() - group.t0
                if fault == "crash":
                    group.crash_member(member)
                else:
                    group.pause_member(member, pause_s)
                # What the next owner will find. The crashed member is gone; a paused one
                # finishes the batch in progress, which does not commit (``_ready``).
                faults[label] = (t_fault, owned,
                                 committed_offsets(cluster, group.group_id, owned))
            return len(faults) == len(groups)

        wait_until(break_ready_members, timeout, f"every group to reach the {fault}",
                   interval=0.1, passes=lambda exc: False,  # a failing client call is an error
                   on_timeout=lambda _: TimeoutError(
                       f"groups {sorted(set(groups) - set(faults))} did not process {at:.0%} "
                       f"of the messages and settle within {timeout:g} s"))
        unfinished: dict[str, dict] = {label: {} for label in groups}

        def all_finished():
            for label, seen in list(unfinished.items()):
                if _finished(groups[label], produced, partitions, ends, fault, quiet, seen):
                    del unfinished[label]
            return not unfinished

        try:
            wait_until(all_finished, max(1.0, deadline - time.monotonic()),
                       f"every group to finish after the {fault}", interval=0.25)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; unfinished: {sorted(unfinished)}") from None
    runs = {}
    for label, group in groups.items():
        t_fault, owned, committed = faults[label]
        messages, events = group.messages(), group.events()
        t_back = _came_back(events, member, t_fault)
        runs[label] = MemberFaultRun(label, fault, member, t_fault, t_back,
                                     _at_fault(messages, events, member, t_fault, t_back, owned,
                                               committed, starts, ends),
                                     messages, events, options[label])
    return runs


def _came_back(events: pd.DataFrame, member: str, t_fault: float) -> float:
    """When a paused member polled again (inf for a crashed member)."""
    back = events[(events.member == member) & (events.kind == "resume") & (events.t > t_fault)]
    return float(back.t.min()) if len(back) else float("inf")


def _at_fault(messages: pd.DataFrame, events: pd.DataFrame, member: str, t_fault: float,
              t_back: float, owned: list[str], committed: dict[str, int | None],
              starts: dict[str, int], ends: dict[str, int]) -> pd.DataFrame:
    """The ``at_fault`` table (``offsets_at_risk``), from what happened around the fault."""
    if t_back < float("inf"):  # paused: who took its partitions over before it came back
        taken = events[(events.kind == "assign") & (events.member != member)
                       & (events.t > t_fault) & (events.t <= t_back)]
        moved = {p for parts in taken.partitions for p in parts} & set(owned)
    else:  # crashed: its partitions always go to someone else
        moved = set(owned)
    part = messages.topic + "-" + messages.partition.astype(str)
    # The member finishes what it has in hand (a crashed one the message, a paused one the
    # batch); nobody else touches its partitions until they move.
    before = (messages.t <= t_fault) | ((messages.member == member) & (messages.t < t_back))
    return offsets_at_risk(messages[part.isin(owned) & before], committed, starts, ends, moved)
