"""Consumer lag from three sources at once, while a slow group falls behind and catches up.

``slow_group_catches_up`` (notebook 18) runs one consumer group whose processing is slower
than its producer, adds a member, and records on one clock (seconds since the group
started) the lag of every partition as three sources see it:

- the members' own librdkafka statistics (``client_stats.partition_queues`` of each
  member's ``ConsumerGroup.stats()``: ``consumer_lag_stored`` and ``consumer_lag``, with
  the offsets they come from);
- the committed offsets, asked of the group coordinator with the admin client, against the
  high watermarks, asked of the partition leaders (``OffsetSampler``);
- the same high watermarks against the members' positions (``ConsumerGroup.positions()``,
  read by each member on its own thread after every poll).

No math here: ``labkit.analysis.lag`` lines the sources up and compares them.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import pandas as pd

from labkit.analysis import client_stats
from labkit.cluster import Cluster, unique_name
from labkit.cluster.faults import wait_healthy
from labkit.experiments.commits import committed_offsets, log_offsets
from labkit.experiments.replication import check_seconds
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import Background, ProducerRun

OFFSET_COLUMNS = ["t", "t_done", "partition", "high_watermark", "committed"]
"""Columns of ``OffsetSampler.offsets()`` (see there)."""


class OffsetSampler:
    """Asks the brokers for a group's committed offsets and the high watermarks, on a timer.

    A background thread; a context manager. Every ``interval_s`` it asks the partition
    leaders for the end of each partition's log (``list_offsets``, latest: the high
    watermark) and then the coordinator for the group's committed offsets
    (``list_consumer_group_offsets``).

    Args:
        cluster: where the group lives.
        group_id: the group.
        partitions: "topic-partition" names.
        t0: the ``time.monotonic()`` that is 0 on the clock of the records (a group's ``t0``).
        interval_s: seconds between two samples.

    Records:
        ``offsets()``: one row per sample and partition: t (when the sample was asked for),
        t_done (when both answers were in), partition, high_watermark, committed (NaN while
        the group has committed nothing there).
    """

    def __init__(self, cluster: Cluster, group_id: str, partitions: list[str], t0: float,
                 interval_s: float = 0.25):
        if not interval_s > 0:
            raise ValueError(f"interval_s={interval_s!r} must be seconds > 0")
        self.cluster, self.group_id, self.partitions = cluster, group_id, list(partitions)
        self.t0, self.interval_s = t0, interval_s
        self._rows: list[tuple] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="labkit-offset-sampler",
                                        daemon=True)

    def _main(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            try:
                high = log_offsets(self.cluster, self.partitions, timeout=5)
                committed = committed_offsets(self.cluster, self.group_id, self.partitions,
                                              timeout=5)
            except Exception as exc:  # noqa: BLE001 - a failed sample is recorded, not fatal
                self.errors.append(f"{time.monotonic() - self.t0:.2f} s: {exc}")
            else:
                t, done = asked - self.t0, time.monotonic() - self.t0
                self._rows.extend(
                    (t, done, part, high[part],
                     math.nan if committed.get(part) is None else committed[part])
                    for part in self.partitions)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - asked)))

    def offsets(self) -> pd.DataFrame:
        """Every sample so far (``OFFSET_COLUMNS``)."""
        return pd.DataFrame(list(self._rows), columns=OFFSET_COLUMNS)

    def __enter__(self) -> OffsetSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(30)


@dataclass
class LagRun:
    """What ``slow_group_catches_up`` recorded; every ``t`` is seconds since the group started.

    Attributes:
        topic: the topic read.
        group_id: the group.
        partitions: every "topic-partition" of the topic.
        stats: ``client_stats.partition_queues`` of each member's statistics, with a member
            column and ``partition`` as "topic-partition"; t is when librdkafka took them.
        positions: ``ConsumerGroup.positions()``, ``partition`` as "topic-partition".
        offsets: ``OffsetSampler.offsets()``.
        sampler_errors: samples the admin client could not take, with their time.
        messages: ``ConsumerGroup.messages()``.
        events: ``ConsumerGroup.events()``.
        run: the producer's ``ProducerRun`` (its own clock).
        added: the member added, and ``added_s`` when.
        produce_start_s, produce_end_s: when the producer started and was told to stop.
        rate: messages per second produced.
        processing_s: seconds of work per message in each member.
        stats_interval_ms, auto_commit_interval_ms: the members' statistics.interval.ms and
            auto.commit.interval.ms.
        started_wall: the group's t = 0 on the wall clock (epoch seconds).
    """

    topic: str
    group_id: str
    partitions: list[str]
    stats: pd.DataFrame
    positions: pd.DataFrame
    offsets: pd.DataFrame
    sampler_errors: list[str]
    messages: pd.DataFrame
    events: pd.DataFrame
    run: ProducerRun
    added: str
    added_s: float
    produce_start_s: float
    produce_end_s: float
    rate: float
    processing_s: float
    stats_interval_ms: int
    auto_commit_interval_ms: int
    started_wall: float


def _named(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(partition=frame.topic + "-" + frame.partition.astype(str)) \
        .drop(columns="topic")


def _member_stats(group: ConsumerGroup) -> pd.DataFrame:
    docs = group.stats()
    frames = [client_stats.partition_queues([doc for who, doc in docs if who == member],
                                            zero=group.t0).assign(member=member)
              for member in dict.fromkeys(who for who, _ in docs)]
    return _named(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()


def slow_group_catches_up(cluster: Cluster, rate: float = 100, partitions: int = 4,
                          processing_s: float = 0.012, behind_s: float = 15.0,
                          after_s: float = 15.0, tail_s: float = 2.0,
                          stats_interval_ms: int = 500, auto_commit_interval_ms: int = 2000,
                          sample_interval_s: float = 0.25, batch_size: int = 20,
                          timeout: float = 120) -> LagRun:
    """One member too slow for its producer falls behind; a second one joins; they catch up.

    A new topic (``partitions``, RF 3); a group of one member (auto commit, ``processing_s``
    of work per message, so it handles at most 1 / ``processing_s`` messages per second);
    once it owns every partition, a producer writes ``rate`` messages per second (uniform
    keys) and the offset sampler starts. After ``behind_s`` a second member joins; after
    ``after_s`` more the producer stops; the run waits until every acknowledged message
    was processed, then ``tail_s``.

    Args:
        cluster: where to run.
        rate: messages per second produced (above 1 / ``processing_s`` to fall behind).
        partitions: partitions of the topic (2 or more, so two members share them).
        processing_s: seconds of simulated work per message.
        behind_s: seconds with one member.
        after_s: seconds of producing after the second member joined.
        tail_s: seconds after the last message was processed.
        stats_interval_ms: the members' statistics.interval.ms.
        auto_commit_interval_ms: the members' auto.commit.interval.ms.
        sample_interval_s: seconds between two samples of the committed offsets and high
            watermarks.
        batch_size: the most messages a member takes per poll (its positions are read
            after each poll).
        timeout: seconds any one wait may take.

    Raises:
        ValueError: a bad argument, before anything starts.
    """
    check_seconds(behind_s=behind_s, after_s=after_s, tail_s=tail_s)
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 2:
        raise ValueError(f"partitions={partitions!r} must be an integer >= 2")
    if not rate > 0 or not processing_s > 0:
        raise ValueError(f"rate={rate!r} and processing_s={processing_s!r} must be > 0")
    for name, value in (("stats_interval_ms", stats_interval_ms),
                        ("auto_commit_interval_ms", auto_commit_interval_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive integer (milliseconds)")
    topic = unique_name("lag")
    cluster.create_topic(topic, partitions, 3)
    wait_healthy(cluster, [topic], timeout)
    group = ConsumerGroup(cluster, [topic], members=1, processing=processing_s,
                          commit="auto", batch_size=batch_size,
                          stats_interval_ms=stats_interval_ms, track_positions=True,
                          keep_stats=True,
                          config={"auto.commit.interval.ms": auto_commit_interval_ms})
    with group:
        group.wait_for_stable(timeout)
        names = group.partitions()
        with OffsetSampler(cluster, group.group_id, names, group.t0,
                           sample_interval_s) as sampler:
            with Background(cluster, {"acks": "all", "linger.ms": 5}, rate=rate,
                            topics=[topic], keys="uniform", label="feed") as stream:
                start = time.monotonic() - group.t0
                time.sleep(behind_s)
                added = group.add_member()
                added_s = time.monotonic() - group.t0
                time.sleep(after_s)
                stream.stop()
                end = time.monotonic() - group.t0
            group.wait_for_run(stream.run, timeout)
            time.sleep(tail_s)
    return LagRun(
        topic=topic, group_id=group.group_id, partitions=names,
        stats=_member_stats(group), positions=_named(group.positions()),
        offsets=sampler.offsets(), sampler_errors=list(sampler.errors),
        messages=group.messages(), events=group.events(), run=stream.run, added=added,
        added_s=added_s, produce_start_s=start, produce_end_s=end, rate=rate,
        processing_s=processing_s, stats_interval_ms=stats_interval_ms,
        auto_commit_interval_ms=auto_commit_interval_ms, started_wall=group.started_wall)
