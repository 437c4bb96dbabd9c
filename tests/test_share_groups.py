"""Share groups (KIP-932) against a real broker: spread, crash and stall of a member."""

import os

import pandas as pd
import pytest

from labkit.analysis import share_groups
from labkit.cluster import unique_name
from labkit.workloads.producer import run_producer
from labkit.workloads.share import ShareGroup

LOCK_MS = 2000


def _rdkafka_threads() -> int:
    """librdkafka's threads in this process (each client has a few, named rdk:...)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                count += comm.read().startswith("rdk:")
        except OSError:
            continue
    return count


@pytest.fixture
def topic(cluster1):
    """A 2-partition topic of 2,000 labkit messages in small batches (10 per batch)."""
    name = unique_name("share")
    cluster1.create_topic(name, partitions=2)
    run_producer(cluster1, {"batch.num.messages": 10, "linger.ms": 1}, messages=2000,
                 keys="uniform", topics=[name])
    yield name
    cluster1.delete_topic(name)


@pytest.mark.parametrize("kwargs, message", [
    ({"members": -1}, "members=-1 must be"),
    ({"processing": (0.2, 0.1)}, "processing=\\(0.2, 0.1\\) must be"),
    ({"lock_duration_ms": 0}, "lock_duration_ms=0 must be a positive integer"),
    ({"config": {"group.id": "x"}}, "'group.id' is set by ShareGroup"),
])
def test_bad_arguments_fail_before_anything_starts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShareGroup(None, "t", **kwargs)


def test_a_group_config_the_broker_refuses_is_named(cluster1):
    group = ShareGroup(cluster1, "t", members=0, lock_duration_ms=600_000)
    with pytest.raises(ValueError, match="share.record.lock.duration.ms=600000.*range"):
        group.start()


def test_records_spread_over_more_members_than_partitions(cluster1, topic):
    with ShareGroup(cluster1, topic, members=4, processing=0.002, lock_duration_ms=LOCK_MS,
                    heartbeat_interval_ms=1000, config={"max.poll.records": 10}) as group:
        assert group.describe_group_config()["share.record.lock.duration.ms"] == str(LOCK_MS)
        group.wait_for_busy(4, timeout=60)
        group.wait_for_messages(2000, timeout=60)
    rows = group.messages()
    counts = share_groups.member_counts(rows, ["m1", "m2", "m3", "m4"])
    assert (counts.records > 0).all()
    assert set(rows.msg_id) == set(range(2000))
    assert set(group.events().kind) >= {"join", "leave"}
    acks = group.acks()
    assert len(acks) >= 2000 and (acks.error == "").all()


def test_crash_and_stall_release_held_records_to_other_members(cluster1, topic):
    with ShareGroup(cluster1, topic, members=4, processing=0.01, lock_duration_ms=LOCK_MS,
                    heartbeat_interval_ms=1000, config={"max.poll.records": 10}) as group:
        group.wait_for_busy(4, timeout=60)
        threads = _rdkafka_threads()
        held = group.crash_member("m1")
        # Let go unclosed, the client is destroyed: its librdkafka threads are gone.
        assert _rdkafka_threads() < threads
        assert len(held) > 0 and (held.member == "m1").all()
        group.wait_for_redelivery(held, timeout=30)
        victim = group.member_apart_from("m1")
        stalled = group.stall_member(victim, seconds=LOCK_MS / 1000 * 1.5)
        again = group.wait_for_redelivery(stalled, timeout=30)
        group.wait_for_event(victim, "stall-end", timeout=30)
        events = group.events()
    t_crash = events[events.kind == "crash"].t.iloc[0]
    t_stall = events[events.kind == "stall"].t.iloc[0]
    # The fault's event names the partitions of the records held (the one group-event schema).
    for kind, rows in (("crash", held), ("stall", stalled)):
        named = events[events.kind == kind].partitions.iloc[0]
        assert named == sorted(set(rows.topic + "-" + rows.partition.astype(str)))
    crash = share_groups.redelivery(group.messages(), held, t_crash)
    stall = share_groups.redelivery(group.messages(), stalled, t_stall)
    assert crash["redelivered"] == crash["held"] and "m1" not in crash["to_members"]
    assert crash["delivery_counts"][0] >= 2
    assert stall["redelivered"] == stall["held"] and set(again.delivery_count) >= {2}
    assert victim not in stall["to_members"]
    # A stalled member keeps its connection: its records wait for the acquisition lock.
    assert stall["first_s"] > 0.5 * LOCK_MS / 1000
    assert "leave" not in set(events[events.member == "m1"].kind)
    # The stalled member carried on after the stall: what it held was processed twice.
    assert stall["processed_twice"] == stall["held"]
    dup = share_groups.duplicated_messages(group.messages())
    assert set(stalled.msg_id) <= set(dup.index)


def test_member_counts_and_duplicates_from_rows():
    rows = pd.DataFrame({
        "member": ["a", "a", "b", "b"], "topic": "t", "partition": [0, 0, 0, 1],
        "offset": [0, 1, 1, 0], "msg_id": [0, 1, 1, 2], "delivery_count": [1, 1, 2, 1],
        "t": [0.1, 0.2, 0.3, 0.4], "t_received": [0.1, 0.2, 0.3, 0.4],
    })
    counts = share_groups.member_counts(rows, ["a", "b", "c"])
    assert counts.records.tolist() == [2, 2, 0]
    assert counts.partitions.tolist() == [[0], [0, 1], []]
    dup = share_groups.duplicated_messages(rows)
    assert dup.index.tolist() == [1] and dup.loc[1, "members"] == ["a", "b"]
    held = rows.iloc[[1]].assign(processed=True)
    result = share_groups.redelivery(rows, held, t_fault=0.25)
    assert result["redelivered"] == 1 and result["to_members"] == ["b"]
    assert result["first_s"] == pytest.approx(0.05) and result["processed_twice"] == 1
