"""Share groups (KIP-932, "queues for Kafka"): N share consumers as background threads.

In a classic consumer group a partition belongs to one member at a time, so members beyond
the partition count sit idle. In a share group the broker hands out individual records: a
partition is shared by several members, each record is *acquired* by one of them for a
limited time (the acquisition lock, ``share.record.lock.duration.ms``) and must be
acknowledged before the lock runs out, or it is released and delivered again, possibly to
another member, with its delivery count raised.

``ShareGroup`` runs N members, each a thread with its own ``confluent_kafka.ShareConsumer``
(a preview API in confluent-kafka 2.16) in explicit acknowledgement mode: a member
acknowledges each record after processing it and commits the acknowledgements after each
batch. ``crash_member`` makes a member die mid-batch, holding records it acquired and never
acknowledged.

Columns of ``ShareGroup.messages()`` (one row per record a member processed):

============== ============================================================================
member         str, the member's name (m1, m2, ...)
topic          str
partition      int
offset         int
run_id         str, from the message's lab mark ("" for a message not sent by labkit)
msg_id         int, from the message's lab mark (-1 for a message not sent by labkit)
delivery_count int, the broker's delivery attempt number for this record (1 = first)
t_received     float, seconds since the group started, when ``poll()`` returned it
t              float, seconds since the group started, when processing finished
t_produced     float, wall-clock send time from the lab mark, s since the epoch
t_consumed     float, wall-clock time the member received it, s since the epoch
============== ============================================================================

``ShareGroup.held()`` has the same columns plus ``processed`` (bool) for the records a
crashed member held when it died: acquired by it, acknowledged never (``t`` is NaN for
those it had not processed).

``ShareGroup.events()`` has the columns of every group's events
(``labkit.workloads.members.GROUP_EVENT_COLUMNS``); ``partitions`` names the partitions of
the records a member held when it crashed or stalled.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pandas as pd
from confluent_kafka import IllegalStateException, KafkaException, ShareConsumer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from labkit.cluster import Cluster, client_log, wait_until
from labkit.workloads.members import MemberGroup, MemberThread
from labkit.workloads.readers import message_row

COLUMNS = ["member", "topic", "partition", "offset", "run_id", "msg_id", "delivery_count",
           "t_received", "t", "t_produced", "t_consumed"]
SHARE_RESERVED = ("group.id", "share.acknowledgement.mode", "error_cb", "logger")


class _ShareMember(MemberThread):
    """One share-group member: a thread polling its own ShareConsumer until told to stop."""

    def __init__(self, group: ShareGroup, name: str, config: dict[str, Any]):
        super().__init__(group, name)
        self.crash_requested = threading.Event()
        self.crash_deadline = float("inf")
        self.stall_for = 0.0
        self.stalled = False
        self.crashed = threading.Event()
        self.in_flight: list[list] = []  # the current batch: [row, processed] per record
        try:
            self.consumer: ShareConsumer | None = ShareConsumer(
                {**config, "error_cb": self._on_error})
        except KafkaException as exc:
            raise ValueError(f"share consumer config refused by librdkafka: "
                             f"{exc.args[0].str()}") from None

    def run(self):
        group, consumer = self.group, self.consumer
        try:
            consumer.set_acknowledgement_commit_callback(self._on_acks)
            consumer.subscribe(group.topics)
            self.event("join")
            while not self.stop_event.is_set():
                try:
                    batch = consumer.poll(group.poll_timeout)
                except KafkaException as exc:
                    self.event("error", detail=str(exc.args[0]))
                    continue
                received = time.monotonic() - group.t0
                self.in_flight = [[_share_row(self.member, m, received), False]
                                  for m in batch if m.error() is None]
                done = 0
                for msg in batch:
                    if msg.error() is not None:
                        self.event("error", detail=f"{msg.error().name()}: {msg.error().str()}")
                        continue
                    if self.crash_requested.is_set() or self.stop_event.is_set():
                        break  # mid-batch: the rest stays acquired and unacknowledged
                    group._work()
                    entry = self.in_flight[done]
                    entry[0] = (*entry[0][:8], time.monotonic() - group.t0, *entry[0][9:])
                    entry[1] = True
                    group._rows.append(entry[0])
                    try:
                        consumer.acknowledge(msg)
                    except IllegalStateException as exc:  # e.g. no longer in flight
                        self.event("error", [f"{msg.topic()}-{msg.partition()}"],
                                   f"acknowledge: {exc}")
                    done += 1
                    if self.crash_requested.is_set():
                        break
                    if self.stall_for:
                        self._stall()
                if self.crash_requested.is_set() and (
                        self.in_flight or time.monotonic() > self.crash_deadline):
                    self._die()
                    return  # the consumer is freed with this frame, unclosed
                if self.in_flight:
                    self._commit(stalled=self.stalled)
                self.stalled = False
                self.in_flight = []
        finally:
            if not self.crashed.is_set() and self.consumer is not None:
                consumer, self.consumer = self.consumer, None
                self._close(consumer)  # commits acknowledgements, leaves the group

    def _commit(self, stalled: bool) -> None:
        """Send this batch's acknowledgements; after a stall, wait for the answer."""
        try:
            if not stalled:
                self.consumer.commit_async()
                return
            result = self.consumer.commit_sync(30)
            failed = sum(exc is not None for exc in result.values())
            self.event("stall-end", detail=f"commit_sync: {failed} of {len(result)} "
                       "partitions failed")
        except (KafkaException, IllegalStateException) as exc:
            self.event("error", detail=f"commit: {exc}")

    def _stall(self) -> None:
        """Stop mid-batch for ``stall_for`` s, holding the batch, still connected."""
        seconds, self.stall_for = self.stall_for, 0.0
        self.stalled = True
        held = sum(not processed for _row, processed in self.in_flight)
        self.event("stall", _held_partitions(self.in_flight),
                   f"{seconds:g} s, held={len(self.in_flight)}, unprocessed={held}")
        self.stop_event.wait(seconds)
        self.event("resume")

    def _on_acks(self, offsets, exc) -> None:
        now = time.monotonic() - self.group.t0
        error = "" if exc is None else exc.args[0].name()
        for tp, acked in offsets.items():
            error_tp = error or (tp.error.name() if tp.error is not None else "")
            self.group._acks.extend((now, self.member, tp.topic, tp.partition, offset, error_tp)
                                    for offset in sorted(acked))

    def _die(self) -> None:
        """Let go of the consumer without close(): no acknowledgement, no leave."""
        held = [(*row, processed) for row, processed in self.in_flight]
        self.group._held.extend(held)
        self.event("crash", _held_partitions(self.in_flight), f"held={len(held)}")
        self.crashed.set()
        # confluent-kafka destroys a ShareConsumer freed unclosed with
        # RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE: its connections close and nothing more is
        # sent, as when a process dies. run()'s frame holds the last other reference.
        self.consumer = None


def _held_partitions(in_flight: list[list]) -> list[str]:
    """The sorted "topic-partition"s of a member's batch in flight."""
    return sorted({f"{row[1]}-{row[2]}" for row, _processed in in_flight})


def _share_row(member: str, msg, received: float) -> tuple:
    topic, partition, offset, _key, run_id, msg_id, t_produced, t_consumed = message_row(msg)
    return (member, topic, partition, offset, run_id, msg_id, msg.delivery_count(), received,
            float("nan"), t_produced, t_consumed)


class ShareGroup(MemberGroup):
    """N share consumers in one share group, each a background thread; a context manager.

    Args:
        cluster: where to consume.
        topics: topics every member subscribes to.
        members: how many members to start with.
        group_id: the share group's id (default: a new unique one).
        processing: seconds of simulated work per record: a number, or (low, high) for a
            uniform random time.
        lock_duration_ms: the group's acquisition lock (``share.record.lock.duration.ms``
            group config); None keeps the broker's ``group.share.record.lock.duration.ms``.
        heartbeat_interval_ms: the group's ``share.heartbeat.interval.ms``; None keeps the
            broker's default.
        group_config: other share-group configs to set, e.g.
            ``{"share.delivery.count.limit": "3"}``.
        config: librdkafka settings for every member, e.g. ``{"max.poll.records": 50}``.
        poll_timeout: seconds ``poll()`` waits for records.

    The group's ``share.auto.offset.reset`` is set to ``earliest`` (the broker's default,
    ``latest``, would skip what was produced before the members joined).

    Records (DataFrames, readable while running): ``messages()`` and ``held()`` (see the
    module docstring); ``acks()``, what the client reported for each acknowledgement;
    ``events()``: ``labkit.workloads.members.GROUP_EVENT_COLUMNS``; kinds: join, crash,
    stall, resume, stall-end, leave, error.

    Raises:
        ValueError: a bad argument or setting, named with what is allowed; a group config the
            broker refuses (with the broker's reason).
    """

    noun = "share group"

    def __init__(self, cluster: Cluster, topics, members: int = 3, group_id: str | None = None,
                 processing: float | tuple[float, float] = 0.0,
                 lock_duration_ms: int | None = None, heartbeat_interval_ms: int | None = None,
                 group_config: dict[str, str] | None = None,
                 config: dict[str, Any] | None = None, poll_timeout: float = 0.2):
        super().__init__(members, processing)
        for name, value in (("lock_duration_ms", lock_duration_ms),
                            ("heartbeat_interval_ms", heartbeat_interval_ms)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name}={value!r} must be a positive integer (ms) or None")
        for key in SHARE_RESERVED:
            if key in (config or {}):
                raise ValueError(f"{key!r} is set by ShareGroup; remove it from config")
        self.cluster = cluster
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.group_id = group_id or f"lab-share-{uuid.uuid4().hex[:8]}"
        self.group_config = {"share.auto.offset.reset": "earliest"}
        if lock_duration_ms is not None:
            self.group_config["share.record.lock.duration.ms"] = str(lock_duration_ms)
        if heartbeat_interval_ms is not None:
            self.group_config["share.heartbeat.interval.ms"] = str(heartbeat_interval_ms)
        self.group_config.update({k: str(v) for k, v in (group_config or {}).items()})
        self.config = dict(config or {})
        self.poll_timeout = poll_timeout
        self._rows: list[tuple] = []
        self._held: list[tuple] = []
        self._acks: list[tuple] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ShareGroup:
        """Set the group's configs on the broker, then start the initial members."""
        if not self._started:
            self.apply_group_config()
            self._started = True
            self.t0 = time.monotonic()
            for _ in range(self.initial_members):
                self.add_member()
        return self

    def apply_group_config(self, timeout: float = 30) -> dict[str, str]:
        """Set ``group_config`` on the broker (GROUP resource) and return it.

        Group configs travel through the metadata log, so brokers learn them a moment
        apart; this waits until ten describes in a row, over half a second, all report
        them, so that members do not join while their coordinator still has the defaults.

        Raises:
            ValueError: the broker refused a value (its message names the allowed range).
            TimeoutError: the brokers did not all report the values within ``timeout`` s.
        """
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                   for k, v in self.group_config.items()]
        resource = ConfigResource(ResourceType.GROUP, self.group_id, incremental_configs=entries)
        future = self.cluster.admin().incremental_alter_configs([resource])[resource]
        try:
            future.result(timeout)
        except KafkaException as exc:
            settings = ", ".join(f"{k}={v}" for k, v in self.group_config.items())
            raise ValueError(f"the broker refused share group config {settings}: "
                             f"{exc.args[0].str()}") from None
        agreeing = []

        def settled() -> bool:
            current = self.describe_group_config(prefix="")
            if all(current.get(k) == v for k, v in self.group_config.items()):
                agreeing.append(time.monotonic())
            else:
                agreeing.clear()
            return len(agreeing) >= 10 and agreeing[-1] - agreeing[0] >= 0.5

        wait_until(settled, timeout, f"the brokers to report group {self.group_id}'s configs "
                   f"{self.group_config}", interval=0.05)
        return dict(self.group_config)

    def describe_group_config(self, prefix: str = "share.") -> dict[str, str]:
        """The group's configs whose names start with ``prefix``, as a broker reports them."""
        resource = ConfigResource(ResourceType.GROUP, self.group_id)
        entries = self.cluster.admin().describe_configs([resource])[resource].result(30)
        return {k: e.value for k, e in sorted(entries.items()) if k.startswith(prefix)}

    # -- membership -------------------------------------------------------------------------

    def add_member(self, name: str | None = None) -> str:
        """Start one more member and return its name (default m1, m2, ...).

        Raises:
            ValueError: the name is taken, or librdkafka refuses the settings.
        """
        name = self._new_name(name)
        config = self.cluster.client_config(**{
            "group.id": self.group_id,
            "client.id": f"{self.group_id}-{name}",
            "share.acknowledgement.mode": "explicit",
            "logger": client_log,
            **self.config,
        })
        member = _ShareMember(self, name, config)
        self.members[name] = member
        member.start()
        return name

    def crash_member(self, name: str, timeout: float = 30) -> pd.DataFrame:
        """Kill a member mid-batch, as a crashed process dies, and return what it held.

        The member stops after the record it is processing (or, if it holds none, before the
        first record of its next batch, waiting up to ``timeout`` s for one), acknowledges
        nothing and never leaves: its ShareConsumer is let go without ``close()``, which
        confluent-kafka answers with a destroy that skips the consumer close (the handle
        trick of ``consumer.abandon`` does not apply: a ShareConsumer keeps its handle
        elsewhere in its C object). The records of that batch stay acquired by a member that
        is gone until the broker releases them.

        Returns:
            ``held()`` rows of this member: every record of its last batch, with
            ``processed`` telling whether it got as far as processing it.
        """
        member = self._member(name)
        member.crash_deadline = time.monotonic() + timeout
        member.crash_requested.set()
        wait_until(lambda: not member.is_alive(), timeout + 30, f"member {name} to crash")
        del self.members[name]
        held = self.held()
        return held[held.member == name].reset_index(drop=True)

    def stall_member(self, name: str, seconds: float, timeout: float = 30) -> pd.DataFrame:
        """Make a member stop mid-batch for ``seconds``, as if stuck processing one record.

        It keeps its connections (librdkafka still heartbeats for it) but neither processes
        nor acknowledges the rest of its batch; then it carries on: processes the rest,
        acknowledges, and commits synchronously (event "stall-end" once answered). Returns the
        batch it held when it stalled (``held()`` columns), once the stall has begun.
        """
        member = self._member(name)
        count = len(self._events)
        member.stall_for = seconds
        found = wait_until(
            lambda: [e for e in self._events[count:] if e[1] == name and e[2] == "stall"],
            timeout, f"member {name} to stall")
        del found
        held = [(*row, processed) for row, processed in member.in_flight]
        return pd.DataFrame(held, columns=[*COLUMNS, "processed"])

    def member_apart_from(self, name: str, window: float = 2.0) -> str:
        """A live member that shares no partition with ``name`` and has a live partner.

        Partitions are those members processed records from in the last ``window`` seconds.
        A record a member releases goes to a member reading its partition; with none alive
        and polling, it waits. Picking a member apart from an earlier victim keeps two faults
        from hiding each other.

        Raises:
            ValueError: no live member qualifies.
        """
        rows = self.messages()
        recent = rows[rows.t_received > rows.t_received.max() - window]
        read = recent.groupby("member").partition.agg(set).to_dict()
        avoid = read.get(name, set())
        live = [m for m in self.members if m != name and m in read]
        for member in live:
            partners = [m for m in live if m != member and read[m] & read[member]]
            if not read[member] & avoid and partners:
                return member
        raise ValueError(f"no live member shares no partition with {name} and has a partner; "
                         f"recent partitions per member: {read}")

    # -- records ----------------------------------------------------------------------------

    def messages(self) -> pd.DataFrame:
        """Every record processed so far (see the module docstring for the columns)."""
        return pd.DataFrame(list(self._rows), columns=COLUMNS)

    def held(self) -> pd.DataFrame:
        """The records crashed members held when they died, with a ``processed`` column."""
        return pd.DataFrame(list(self._held), columns=[*COLUMNS, "processed"])

    def acks(self) -> pd.DataFrame:
        """What the client reported for each acknowledgement it committed.

        Columns: t, member, topic, partition, offset, error ("" when accepted, else the
        error's name).
        """
        return pd.DataFrame(list(self._acks),
                            columns=["t", "member", "topic", "partition", "offset", "error"])

    def busy_members(self) -> list[str]:
        """Members (live or crashed) that have processed at least one record."""
        return sorted({row[0] for row in self._rows}, key=lambda m: (len(m), m))

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_messages(self, count: int, timeout: float = 60, unique: bool = False) -> int:
        """Wait until at least ``count`` records were processed; return how many were.

        Args:
            count: records to wait for.
            timeout: seconds.
            unique: count distinct records (topic, partition, offset), not processings.
        """
        def processed() -> int:
            rows = list(self._rows)
            return len({r[1:4] for r in rows}) if unique else len(rows)

        return wait_until(lambda: processed() >= count and processed(), timeout,
                          f"{count} records processed by share group {self.group_id}")

    def wait_for_busy(self, members: int, timeout: float = 60) -> list[str]:
        """Wait until ``members`` members have each processed a record; return them."""
        return wait_until(lambda: len(self.busy_members()) >= members and self.busy_members(),
                          timeout, f"{members} members of share group {self.group_id} to "
                          f"process records (so far {self.busy_members()})")

    def wait_for_redelivery(self, held: pd.DataFrame, timeout: float = 90) -> pd.DataFrame:
        """Wait until every record in ``held`` was processed again; return those rows.

        Returns:
            ``messages()`` rows of the held records processed after the crash.
        """
        keys = set(zip(held.topic, held.partition, held.offset, strict=True))

        def again():
            rows = self.messages()
            rows = rows[rows.delivery_count.gt(1)]
            mine = rows[[k in keys for k in zip(rows.topic, rows.partition, rows.offset,
                                                 strict=True)]]
            done = len(set(zip(mine.topic, mine.partition, mine.offset, strict=True)))
            return [mine] if done >= len(keys) else None  # a list: a DataFrame has no truth

        return wait_until(again, timeout, f"the {len(keys)} records a crashed member held to "
                          "be delivered again")[0]
