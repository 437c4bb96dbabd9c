"""labkit.experiments.consumer_lag and the group's lag records, against a real cluster."""

import threading

import pytest

from labkit.analysis import lag, metrics
from labkit.cluster import unique_name
from labkit.experiments import consumer_lag
from labkit.experiments.consumer_lag import OffsetSampler
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import run_producer


def labkit_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("labkit-")]


@pytest.mark.parametrize("kwargs, message", [
    ({"partitions": 1}, "partitions=1 must be an integer >= 2"),
    ({"rate": 0, "processing_s": 0.01}, "rate=0 and processing_s=0.01 must be > 0"),
    ({"behind_s": -1}, "behind_s=-1 must be seconds >= 0"),
    ({"stats_interval_ms": 0}, "stats_interval_ms=0 must be a positive integer"),
    ({"auto_commit_interval_ms": 1.5}, "auto_commit_interval_ms=1.5 must be a positive"),
])
def test_bad_arguments_are_refused_before_anything_starts(cluster3, kwargs, message):
    with pytest.raises(ValueError, match=message):
        consumer_lag.slow_group_catches_up(cluster3, **kwargs)
    with pytest.raises(ValueError, match="interval_s=0 must be seconds > 0"):
        OffsetSampler(cluster3, "g", ["t-0"], 0.0, interval_s=0)
    assert not labkit_threads()


def test_a_group_records_positions_and_statistics_only_when_asked(cluster3):
    topic = unique_name("lagrec")
    cluster3.create_topic(topic, partitions=2, replication_factor=3)
    run_producer(cluster3, messages=200, topics=[topic], keys="uniform")
    with ConsumerGroup(cluster3, [topic], members=1, track_positions=True,
                       keep_stats=True, stats_interval_ms=200) as group:
        group.wait_for_messages(200, timeout=60)
        group.wait_for_lag(0, timeout=30)
    with ConsumerGroup(cluster3, [topic], members=1, stats_interval_ms=200) as plain:
        plain.wait_for_messages(200, timeout=60)
    positions = group.positions()
    assert set(positions.partition) == {0, 1} and (positions.member == "m1").all()
    assert positions.groupby("partition").position.max().sum() == 200  # every message taken
    assert (positions.high_cached >= positions.position).all()
    docs = group.stats()
    assert docs and all(who == "m1" and "topics" in doc for who, doc in docs)
    assert not group.lag().empty  # the existing lag samples are kept as before
    assert plain.positions().empty and plain.stats() == []
    assert not labkit_threads()


def test_a_slow_group_falls_behind_catches_up_and_its_sources_agree(cluster3):
    run = consumer_lag.slow_group_catches_up(cluster3, rate=100, partitions=4,
                                             processing_s=0.010, behind_s=4.0, after_s=4.0,
                                             tail_s=0.5)
    assert not labkit_threads()
    assert run.added == "m2" and run.produce_start_s < run.added_s < run.produce_end_s
    assert set(run.offsets.partition) == set(run.partitions)
    assert {"m1", "m2"} <= set(run.positions.member) and {"m1", "m2"} <= set(run.stats.member)
    ownership = metrics.ownership(run.events)
    assert set(ownership[ownership.start > run.added_s].member) == {"m1", "m2"}
    acked = run.run.records[run.run.records.error == ""]
    assert set(acked.msg_id) <= set(run.messages.msg_id)  # every acknowledged one processed
    table = lag.lag_table(run.stats, run.positions, run.offsets, ownership,
                          run.stats_interval_ms / 1000, run.auto_commit_interval_ms / 1000)
    final = table[table.t == table.t.max()]
    assert (final.lag_position == 0).all()  # every message taken (commits may still trail)
    agree = lag.agreement(table)
    assert len(agree["stats"]) and len(agree["committed"])
    assert agree["stats"].within.all(), agree["stats"][~agree["stats"].within]
    assert agree["committed"].within.all(), agree["committed"][~agree["committed"].within]
    # Not asserted: that the committed lag is never below the position's. The position is
    # the one the member recorded after its last poll before the sample, and on a loaded
    # machine an auto commit of a later poll can reach the coordinator before the member
    # has recorded that poll's position (seen with three test workers on 2 cores): a race
    # between two recordings, which the allowance above covers, not a Kafka promise.
    assert lag.committed_ahead_of_stored(lag.owned_stats(run.stats, ownership)).empty
