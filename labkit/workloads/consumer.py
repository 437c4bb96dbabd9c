"""Consumer groups: N members, each a background thread with its own Consumer.

``ConsumerGroup`` records every message its members process and every group event (see its
docstring; the events have the columns of every group's, ``labkit.workloads.members``).
``coordinator_of`` finds the broker that coordinates a group, and ``abandon`` makes a consumer
vanish as a killed process does. Readers without a group (``read_topic``, ``Tail``) are in
``labkit.workloads.readers``.
"""

from __future__ import annotations

import array
import contextlib
import json
import sys
import threading
import time
import uuid
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaException, Message

from labkit.cluster import LAB_TOPICS, Cluster, client_log, wait_until
from labkit.workloads import librdkafka, marks
from labkit.workloads.members import MemberGroup, MemberThread
from labkit.workloads.readers import take

OFFSETS_TOPIC = "__consumer_offsets"


class _Chunk(NamedTuple):
    """What ``ConsumerGroup.messages()`` needs of one processed batch, as columns."""

    member: str
    t_consumed: float  # wall clock when the batch was recorded
    t: float  # seconds since the group started
    topics: list[str]  # interned
    partitions: array.array  # "i"
    offsets: array.array  # "q"
    keys: list[bytes | None]
    marks: bytes | list  # marks.marks_of(batch)


def coordinator_partition(group_id: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group: its leader is the group's coordinator.

    Kafka's rule: the absolute value of the group id's Java ``String.hashCode()``, modulo
    the partition count of ``__consumer_offsets`` (``offsets.topic.num.partitions``).
    """
    h = 0
    units = group_id.encode("utf-16-be")  # Java hashes UTF-16 code units
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % partitions  # Kafka's Utils.abs


def coordinator_of(cluster: Cluster, group_id: str, timeout: float = 60) -> int:
    """Return the broker that coordinates ``group_id`` (the group need not exist yet).

    The coordinator is the leader of the group's ``__consumer_offsets`` partition (see
    ``coordinator_partition``), so an experiment can place other leaderships on the broker
    that coordinates its group, or away from it. The offsets topic is created first if it
    does not exist yet (the first group lookup creates it).

    Raises:
        TimeoutError: the offsets topic did not get a leader for every partition in time.
    """
    if OFFSETS_TOPIC not in cluster.admin().list_topics(timeout=10).topics:
        # A group member's first coordinator lookup makes the broker create the topic.
        probe = Consumer(cluster.client_config(**{
            "group.id": f"labkit-probe-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "logger": client_log}))
        try:
            probe.subscribe([OFFSETS_TOPIC])
            wait_until(lambda: (probe.poll(0.2), OFFSETS_TOPIC in
                                cluster.admin().list_topics(timeout=10).topics)[1],
                       timeout, f"the broker to create {OFFSETS_TOPIC}")
        finally:
            probe.close()
    leaders = wait_until(
        lambda: (parts := {p.id: p.leader for p in
                           cluster.topic_metadata(OFFSETS_TOPIC).partitions.values()})
        and all(b >= 0 for b in parts.values()) and parts,
        timeout, f"a leader for every partition of {OFFSETS_TOPIC}")
    return leaders[coordinator_partition(group_id, len(leaders))]


COMMIT_MODES = ("auto", "sync-per-message", "sync-per-batch", "async", "store-offsets")
KIP848_FORBIDDEN = ("partition.assignment.strategy", "session.timeout.ms",
                    "heartbeat.interval.ms")
_DESTROY_NO_CONSUMER_CLOSE = 0x8  # librdkafka's RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE


def abandon(consumer: Consumer) -> None:
    """Make a consumer vanish the way a killed process does: no LeaveGroup, no commit.

    confluent-kafka's ``close()`` (and garbage collection) leave the group politely, so the
    group rebalances at once. A crashed process just stops talking; the coordinator notices
    only when the session times out. This destroys the client's librdkafka handle with
    ``RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE`` and detaches it from the Python object, which
    then raises "Consumer closed" like any closed consumer. (It reads the handle pointer
    from confluent-kafka's C object, whose first field after the Python header it is; the
    test suite checks the resulting behaviour against a real broker.)
    """
    import ctypes

    slot = ctypes.c_void_p.from_address(id(consumer) + object.__basicsize__)
    handle = slot.value
    if not handle:
        raise RuntimeError("consumer already closed")
    slot.value = None
    librdkafka.library().rd_kafka_destroy_flags(handle, _DESTROY_NO_CONSUMER_CLOSE)


def _parts(partitions) -> list[str]:
    return [f"{p.topic}-{p.partition}" for p in partitions]


class _ConsumerMember(MemberThread):
    """One consumer-group member: a thread polling its own Consumer until told to stop."""

    def __init__(self, group: ConsumerGroup, name: str, config: dict[str, Any]):
        super().__init__(group, name)
        self.pause_until = 0.0
        self.crashed = False
        self.assignment: set[str] = set()
        self.uncommitted = 0
        self.batches = 0
        config = {**config, "stats_cb": self._on_stats, "error_cb": self._on_error,
                  "on_commit": self._on_commit}
        try:
            self.consumer = Consumer(config)
        except KafkaException as exc:
            raise ValueError(f"consumer config refused by librdkafka: {exc.args[0].str()}") \
                from None

    # callbacks run inside consume(), on this thread
    def _on_assign(self, consumer, partitions):
        self.assignment |= set(_parts(partitions))
        self.event("assign", _parts(partitions))
        if self.group.protocol == "consumer" or self.group.cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _on_revoke(self, consumer, partitions):
        # Work in flight: processed since the last commit (manual modes only).
        detail = f"uncommitted={self.uncommitted}"
        if self.group.commit_on_revoke and self.uncommitted:
            with contextlib.suppress(KafkaException):
                consumer.commit(asynchronous=False)
                self.uncommitted = 0
                detail += ", committed in on_revoke"
        self.assignment -= set(_parts(partitions))
        self.event("revoke", _parts(partitions), detail)
        if self.group.protocol == "consumer" or self.group.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()

    def _on_lost(self, consumer, partitions):
        self.assignment -= set(_parts(partitions))
        self.event("lost", _parts(partitions))
        if self.group.protocol == "consumer" or self.group.cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()

    def _on_commit(self, err, partitions):
        self.event("commit", _parts(partitions), err.name() if err else "")

    def _on_stats(self, text):
        stats = json.loads(text)
        now = time.monotonic() - self.group.t0
        if self.group.keep_stats:
            self.group._stats.append((self.member, stats))
        for topic, tstats in stats.get("topics", {}).items():
            for pid, pstats in tstats.get("partitions", {}).items():
                # Lag behind what this member has processed (stored offsets), not behind
                # the last commit, which trails by up to auto.commit.interval.ms.
                lag = pstats.get("consumer_lag_stored", pstats.get("consumer_lag", -1))
                if pid != "-1" and f"{topic}-{pid}" in self.assignment and lag >= 0:
                    self.group._lag.append((now, self.member, topic, int(pid), lag))

    def _sample_positions(self, consumer) -> None:
        """Record this member's positions, with the high watermarks its fetches brought.

        A Consumer is not thread-safe, so this runs on the member's own thread, right
        after a poll: a position moves only inside a poll, so it holds until the next one.
        """
        now = time.monotonic() - self.group.t0
        for tp in consumer.position(consumer.assignment()):
            if tp.offset >= 0:
                _, high = consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
                self.group._positions.append(
                    (now, self.member, tp.topic, tp.partition, tp.offset, high))

    def run(self):
        group, consumer = self.group, self.consumer
        try:
            consumer.subscribe(group.topics, on_assign=self._on_assign,
                               on_revoke=self._on_revoke, on_lost=self._on_lost)
            self.event("join")
            while not self.stop_event.is_set():
                if self.pause_until:
                    if time.monotonic() < self.pause_until:
                        time.sleep(0.05)
                        continue
                    self.pause_until = 0.0
                    self.event("resume")
                try:
                    batch = take(consumer, group.batch_size, group.poll_timeout)
                except KafkaException as exc:
                    self.event("error", detail=str(exc.args[0]))
                    continue
                batch_len = len(batch)
                if batch_len and group.track_positions:
                    self._sample_positions(consumer)
                if group.fast and not any(map(Message.error, batch)):
                    # No work to simulate and nothing to do per message: record the batch
                    # in one go, as columns (the marks are decoded later, in messages()).
                    group._record(self.member, batch)
                    self.uncommitted += batch_len
                    batch = ()
                for msg in batch:
                    if self.crashed:
                        break  # a crash mid-batch: the rest is never processed
                    if msg.error() is not None:
                        where = [f"{msg.topic()}-{msg.partition()}"] if msg.topic() else []
                        self.event("error", where, f"{msg.error().name()}: {msg.error().str()}")
                        continue
                    group._process(self, msg)
                if batch_len and not self.crashed:  # a crashed process commits nothing more
                    self.batches += 1
                    group._after_batch(self)
        finally:
            if self.crashed:
                with contextlib.suppress(Exception):
                    abandon(consumer)
            else:
                self._leave(consumer)

    def _leave(self, consumer) -> None:
        """Commit what is processed (manual batch modes), close, and leave the group.

        A failed final commit changes what the next owner re-reads, so it is recorded as an
        error event rather than swallowed, and the consumer is closed all the same.
        """
        group = self.group
        if group.commit in ("sync-per-batch", "async") and self.uncommitted:
            try:
                consumer.commit(asynchronous=False)
                self.uncommitted = 0
            except KafkaException as exc:
                self.event("error", sorted(self.assignment),
                           f"final commit failed: {exc.args[0]}")
        self._close(consumer)  # leaves the group: its partitions move at once


class ConsumerGroup(MemberGroup):
    """N consumers in one group, each a background thread; a context manager.

    Args:
        cluster: where to consume.
        topics: topics every member subscribes to (default: the lab's two topics).
        members: how many members to start with.
        group_id: the group's id (default: a new unique one).
        config: librdkafka consumer settings for every member, e.g.
            ``{"partition.assignment.strategy": "cooperative-sticky"}`` or
            ``{"group.protocol": "consumer"}`` (KIP-848).
        member_config: per-member overrides, member name -> settings.
        processing: seconds of simulated work per message: a number, or (low, high) for a
            uniform random time.
        commit: "auto" (enable.auto.commit), "sync-per-message", "sync-per-batch", "async"
            (commit after each ``commit_every`` batches), or "store-offsets" (auto commit of
            offsets stored after processing).
        commit_every: for "sync-per-batch" and "async", commit every this many batches.
        commit_on_revoke: commit processed offsets in on_revoke, before partitions move.
        batch_size: the most messages one poll hands over (``readers.take``: what the
            client holds, up to this many; a batch does not wait to fill).
        poll_timeout: seconds a poll waits when the client holds no message.
        stats_interval_ms: librdkafka statistics interval (for lag), 0 to turn off.
        track_positions: after every poll that returned messages, each member records its
            positions (``positions()``).
        keep_stats: keep every statistics document of every member (``stats()``).

    Records (DataFrames, readable while running):
        ``messages()``: member, topic, partition, offset, key, run_id, msg_id, t (s since the
        group started), t_produced and t_consumed (wall clock, s), e2e_ms.
        ``events()``: ``labkit.workloads.members.GROUP_EVENT_COLUMNS``; kinds: join, assign,
        revoke, lost, error, commit, leave, crash, pause, resume.
        ``t`` is seconds since the group started; ``started_wall`` is that moment on the
        wall clock (epoch seconds), to line events up with producer runs and faults.
        ``lag()``: t, member, topic, partition, lag (librdkafka's consumer_lag_stored).
        ``stats()`` (with ``keep_stats``): (member, parsed statistics) pairs, in the order
        the members' polls served them (``labkit.analysis.client_stats`` reads them).
        ``positions()`` (with ``track_positions``): t, member, topic, partition, position
        (the next offset the member's poll returns), high_cached (the high watermark of the
        member's last fetch response, ``get_watermark_offsets(cached=True)``).

    Raises:
        ValueError: a bad argument or consumer setting, named with what is allowed.
    """

    def __init__(self, cluster: Cluster, topics=LAB_TOPICS, members: int = 3,
                 group_id: str | None = None, config: dict[str, Any] | None = None,
                 member_config: dict[str, dict[str, Any]] | None = None,
                 processing: float | tuple[float, float] = 0.0, commit: str = "auto",
                 commit_every: int = 1, commit_on_revoke: bool = False, batch_size: int = 100,
                 poll_timeout: float = 0.1, stats_interval_ms: int = 500,
                 track_positions: bool = False, keep_stats: bool = False):
        if commit not in COMMIT_MODES:
            raise ValueError(f"commit={commit!r} is not a commit mode; use one of "
                             f"{', '.join(COMMIT_MODES)}")
        super().__init__(members, processing)
        if not isinstance(commit_every, int) or commit_every < 1:
            raise ValueError(f"commit_every={commit_every!r} must be a positive integer")
        self.config = dict(config or {})
        self.protocol = str(self.config.get("group.protocol", "classic"))
        if self.protocol not in ("classic", "consumer"):
            raise ValueError(f"group.protocol={self.protocol!r}; use classic or consumer")
        if self.protocol == "consumer":
            for key in KIP848_FORBIDDEN:
                if key in self.config:
                    raise ValueError(
                        f"{key} cannot be set with group.protocol=consumer (KIP-848): the "
                        "broker decides assignment and session timing; remove it"
                    )
        self.cooperative = "cooperative" in str(self.config.get("partition.assignment.strategy"))
        self.cluster = cluster
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.group_id = group_id or f"lab-group-{uuid.uuid4().hex[:8]}"
        self.member_config = dict(member_config or {})
        self.commit, self.commit_every = commit, commit_every
        self.commit_on_revoke = commit_on_revoke
        self.batch_size, self.poll_timeout = batch_size, poll_timeout
        self.stats_interval_ms = stats_interval_ms
        self.track_positions, self.keep_stats = track_positions, keep_stats
        # Nothing to do per message: members may record whole batches at once.
        self.fast = self.processing[1] == 0 and commit in ("auto", "sync-per-batch", "async")
        self._overrides: dict[str, dict[str, Any]] = {}
        # One chunk per batch recorded (see _record); the count is kept beside them.
        self._chunks: list[_Chunk] = []
        self._processed = 0
        self._recording = threading.Lock()
        self._lag: list[tuple] = []
        self._stats: list[tuple[str, dict]] = []
        self._positions: list[tuple] = []
        self.started_wall = time.time()  # wall clock (epoch s) at which ``t`` is 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ConsumerGroup:
        """Start the initial members."""
        if not self._started:
            self._started = True
            self.t0, self.started_wall = time.monotonic(), time.time()
            for _ in range(self.initial_members):
                self.add_member()
        return self

    # -- membership -------------------------------------------------------------------------

    def _consumer_config(self, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
        auto = self.commit in ("auto", "store-offsets")
        base = {
            "group.id": self.group_id,
            "client.id": f"{self.group_id}-{name}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": auto,
            "enable.auto.offset.store": self.commit != "store-offsets",
            "logger": client_log,
        }
        if self.stats_interval_ms:
            base["statistics.interval.ms"] = self.stats_interval_ms
        config = {**base, **self.config, **self.member_config.get(name, {}), **overrides}
        return self.cluster.client_config(**config)

    def add_member(self, name: str | None = None, **overrides: Any) -> str:
        """Start one more member and return its name.

        Args:
            name: member name (default m1, m2, ...).
            **overrides: consumer settings for this member only (dotted keys via a dict:
                ``add_member(**{"group.instance.id": "a"})``).

        Raises:
            ValueError: the name is taken, or librdkafka refuses the settings.
        """
        name = self._new_name(name)
        member = _ConsumerMember(self, name, self._consumer_config(name, overrides))
        self._overrides[name] = dict(overrides)
        self.members[name] = member
        member.start()
        return name

    def remove_member(self, name: str, graceful: bool = True, timeout: float = 30) -> None:
        """Stop a member.

        Graceful: it closes its consumer and leaves the group, so its partitions move at once.
        Not graceful: ``crash_member``.
        """
        if not graceful:
            self.crash_member(name)
            return
        member = self._member(name)
        member.stop_event.set()
        self._forget(name, timeout)

    def member_overrides(self, name: str) -> dict[str, Any]:
        """The per-member settings ``add_member`` was given for ``name``."""
        return dict(self._overrides.get(name, {}))

    def crash_member(self, name: str, timeout: float = 30) -> None:
        """Kill a member as a crashed process dies.

        It stops mid-batch, commits nothing and never says goodbye; the group notices only
        when its session times out.
        """
        member = self._member(name)
        member.crashed = True
        self._event(name, "crash", sorted(member.assignment))
        member.stop_event.set()
        self._forget(name, timeout)

    def pause_member(self, name: str, seconds: float) -> None:
        """Make a member stop polling for ``seconds`` (as if stuck processing)."""
        member = self._member(name)
        self._event(name, "pause", sorted(member.assignment), f"{seconds:g} s")
        member.pause_until = time.monotonic() + seconds

    # -- processing -------------------------------------------------------------------------

    def _process(self, member: _ConsumerMember, msg) -> None:
        self._work()
        self._record(member.member, [msg])
        consumer = member.consumer
        if self.commit == "sync-per-message":
            try:
                consumer.commit(message=msg, asynchronous=False)
            except KafkaException as exc:  # e.g. the partition was just revoked
                member.event("error", [f"{msg.topic()}-{msg.partition()}"], str(exc.args[0]))
        elif self.commit == "store-offsets":
            consumer.store_offsets(message=msg)
        else:
            member.uncommitted += 1

    def _after_batch(self, member: _ConsumerMember) -> None:
        if self.commit in ("sync-per-batch", "async") and member.batches % self.commit_every == 0:
            try:
                member.consumer.commit(asynchronous=self.commit == "async")
                member.uncommitted = 0
            except KafkaException as exc:  # e.g. no offsets to commit during a rebalance
                member.event("error", detail=str(exc.args[0]))

    # -- records ----------------------------------------------------------------------------

    def _record(self, member: str, msgs: list) -> None:
        """Keep what ``messages()`` needs of messages just processed, as one chunk of columns.

        The columns are built by C loops over the batch (``map`` of the Message methods), and
        hold no object per message that the cyclic GC would scan (in a harness of three bare
        consumers, a row tuple per message drained a backlog at 232-309k msg/s, and at
        428-438k with the GC off).
        """
        now, since = time.time(), time.monotonic() - self.t0
        chunk = _Chunk(member, now, since, list(map(sys.intern, map(Message.topic, msgs))),
                       array.array("i", map(Message.partition, msgs)),
                       array.array("q", map(Message.offset, msgs)),
                       list(map(Message.key, msgs)), marks.marks_of(msgs))
        with self._recording:
            self._chunks.append(chunk)
            self._processed += len(msgs)

    def messages(self) -> pd.DataFrame:
        """Every message processed so far (see the class docstring for the columns)."""
        with self._recording:
            chunks = list(self._chunks)
        sizes = np.array([len(c.partitions) for c in chunks], dtype=np.int64)
        total = int(sizes.sum())

        def column(field: str, dtype) -> np.ndarray:
            return np.fromiter(chain.from_iterable(getattr(c, field) for c in chunks),
                               dtype=dtype, count=total)

        def per_chunk(field: str, dtype) -> np.ndarray:
            return np.repeat(np.array([getattr(c, field) for c in chunks], dtype=dtype), sizes)

        ids = marks.decode_batches([c.marks for c in chunks])
        frame = pd.DataFrame({
            "member": per_chunk("member", object),
            "topic": list(chain.from_iterable(c.topics for c in chunks)),
            "partition": column("partitions", np.int64),
            "offset": column("offsets", np.int64),
            "key": [k.decode() if k else None for c in chunks for k in c.keys],
            "run_id": ids.run_id.to_numpy(), "msg_id": ids.msg_id.to_numpy(),
            "t_produced": ids.t_produced.to_numpy(),
            "t_consumed": per_chunk("t_consumed", float), "t": per_chunk("t", float)})
        frame["e2e_ms"] = (frame.t_consumed - frame.t_produced) * 1000
        return frame

    def processed_count(self) -> int:
        """How many messages (duplicates included) were processed so far; cheap."""
        return self._processed

    def lag(self) -> pd.DataFrame:
        """Consumer lag samples from librdkafka's statistics."""
        return pd.DataFrame(list(self._lag), columns=["t", "member", "topic", "partition", "lag"])

    def stats(self) -> list[tuple[str, dict]]:
        """Every member's statistics so far (with ``keep_stats``; see the class docstring)."""
        return list(self._stats)

    def positions(self) -> pd.DataFrame:
        """The members' positions after each poll (with ``track_positions``; see above)."""
        return pd.DataFrame(list(self._positions), columns=[
            "t", "member", "topic", "partition", "position", "high_cached"])

    def assignment(self) -> dict[str, list[str]]:
        """Current partitions of each live member, as the members' callbacks saw them."""
        return {name: sorted(m.assignment) for name, m in self.members.items()}

    def partitions(self) -> list[str]:
        """Every "topic-partition" of the group's topics."""
        return [f"{t}-{p}" for t in self.topics
                for p in sorted(self.cluster.topic_metadata(t).partitions)]

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_messages(self, count: int, timeout: float = 60) -> int:
        """Wait until at least ``count`` messages were processed; return how many were."""
        return wait_until(lambda: self._processed >= count and self._processed, timeout,
                          f"{count} messages consumed by group {self.group_id} "
                          f"(so far {self._processed})")

    def wait_for_run(self, run, timeout: float = 120) -> None:
        """Wait until every message ``run`` (a ProducerRun) got acknowledged was processed.

        Unlike ``wait_for_messages`` this counts distinct messages, so duplicates do not
        end the wait early.
        """
        wanted = set(run.records.msg_id[run.records.error == ""])

        def done():
            rows = self.messages()
            return not wanted - set(rows.msg_id[rows.run_id == run.run_id]) or None

        wait_until(done, timeout, f"all {len(wanted)} messages of run {run.run_id} processed",
                   interval=0.25)

    def wait_for_lag(self, at_most: int = 0, timeout: float = 60) -> int:
        """Wait until the newest lag sample of every owned partition is <= ``at_most``.

        Returns:
            The total lag of those samples.
        """
        def caught_up():
            lag = self.lag()
            owned = {p for parts in self.assignment().values() for p in parts}
            if lag.empty or not owned:
                return None
            newest = lag.assign(part=lag.topic + "-" + lag.partition.astype(str)) \
                .groupby("part").last()
            if not owned <= set(newest.index) or (newest.lag > at_most).any():
                return None
            return int(newest.lag.sum()) + 1  # truthy even when 0

        return wait_until(caught_up, timeout, f"group {self.group_id} lag <= {at_most}") - 1

    def broker_view(self) -> dict[str, list[str]] | None:
        """The group's members and their partitions as the coordinator describes them.

        Returns:
            member name -> sorted partitions, or None while the group is rebalancing.
        """
        desc = self.cluster.admin().describe_consumer_groups([self.group_id])[self.group_id]
        group = desc.result(10)
        if self.protocol == "consumer":
            # KIP-848: the coordinator says UNKNOWN while it still reconciles; settled means
            # STABLE with every member owning its target assignment.
            if group.state.name != "STABLE" or any(
                    m.target_assignment is not None and
                    set(_parts(m.target_assignment.topic_partitions)) !=
                    set(_parts(m.assignment.topic_partitions)) for m in group.members):
                return None
        elif group.state.name != "STABLE":
            return None
        prefix = f"{self.group_id}-"
        return {m.client_id.removeprefix(prefix): sorted(_parts(m.assignment.topic_partitions))
                for m in group.members}

    def wait_for_stable(self, timeout: float = 90, quiet: float = 0.5) -> dict[str, list[str]]:
        """Wait until the group has settled and return the assignment.

        Settled: the coordinator lists exactly the live members, each owning what its own
        callbacks say it owns, every partition owned once, and no event for ``quiet`` s.
        A crashed member stays listed until its session times out, so this waits for that.
        """
        expected = sorted(self.partitions())

        def stable():
            local = self.assignment()
            owned = sorted(p for parts in local.values() for p in parts)
            if owned != expected or (self._events and
                                     time.monotonic() - self.t0 - self._events[-1][0] < quiet):
                return None
            return local if self.broker_view() == local else None

        return wait_until(stable, timeout, f"group {self.group_id} to settle on {expected}",
                          interval=0.2)
