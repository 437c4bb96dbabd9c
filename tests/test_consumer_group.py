"""ConsumerGroup and the commit accounting of labkit.experiments.commits, against a real broker.

Groups use the shortest session timeout the broker allows (group.min.session.timeout.ms,
6 s) and a short heartbeat, so a crash is noticed in seconds. Timing is only ever compared
with the session timeout or with another measurement of the same run, never bounded.
"""

import threading

import pandas as pd
import pytest

from labkit.analysis import consumer_faults, metrics
from labkit.cluster import unique_name, wait_until
from labkit.experiments import commits
from labkit.workloads.consumer import ConsumerGroup
from labkit.workloads.producer import run_producer

SESSION_MS = 6000
FAST = {"session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 500}


def labkit_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("labkit-")]


@pytest.fixture
def topic(cluster1):
    name = unique_name("cg")
    cluster1.create_topic(name, partitions=6)
    yield name
    cluster1.delete_topic(name)


# -- argument checks (nothing starts) --------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"commit": "sometimes"}, "commit='sometimes' is not a commit mode; use one of auto"),
    ({"commit_every": 0}, "commit_every=0 must be a positive integer"),
    ({"members": -1}, "members=-1 must be a non-negative integer"),
    ({"processing": (0.2, 0.1)}, "processing=\\(0.2, 0.1\\) must be seconds"),
    ({"config": {"group.protocol": "consumer", "session.timeout.ms": 6000}},
     "session.timeout.ms cannot be set with group.protocol=consumer"),
    ({"config": {"group.protocol": "consumer",
                  "partition.assignment.strategy": "cooperative-sticky"}},
     "partition.assignment.strategy cannot be set with group.protocol=consumer"),
])
def test_bad_arguments_raise_value_error(cluster1, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConsumerGroup(cluster1, ["any-topic"], **kwargs)
    assert not labkit_threads()


def test_librdkafka_refuses_max_poll_interval_below_session_timeout(cluster1, topic):
    group = ConsumerGroup(cluster1, [topic], members=1,
                          config={"session.timeout.ms": 10_000, "max.poll.interval.ms": 6000})
    with pytest.raises(ValueError, match="max.poll.interval.ms"):
        group.start()
    group.stop()
    assert not labkit_threads()


@pytest.mark.parametrize("kwargs, message", [
    ({"fault": "freeze"}, "fault='freeze'; use one of crash, pause"),
    ({"at": 1.5}, "at=1.5 must be a share"),
    ({"fault": "pause", "pause_s": 0}, "pause_s=0 must be a positive"),
    ({"variants": {"x": {"commit": "never"}}}, "commit='never' is not a commit mode"),
    ({"stats_interval_ms": 0}, "stats_interval_ms=0 turns off the lag statistics"),
])
def test_fault_each_checks_its_arguments_before_starting(cluster1, kwargs, message):
    args = {"variants": {"auto": {"commit": "auto"}}, **kwargs}
    with pytest.raises(ValueError, match=message):
        commits.fault_each(cluster1, ["any-topic"], produced=None, **args)
    assert not labkit_threads()


# -- a healthy group ------------------------------------------------------------------------


def test_three_members_share_every_partition_once_and_process_each_message_once(cluster1,
                                                                                topic):
    run = run_producer(cluster1, {"acks": "all"}, messages=3000, keys="uniform",
                       topics=[topic])
    with ConsumerGroup(cluster1, [topic], members=3, config=FAST) as group:
        assignment = group.wait_for_stable(timeout=60)
        group.wait_for_messages(run.delivered, timeout=60)
    owned = sorted(p for parts in assignment.values() for p in parts)
    assert owned == sorted(f"{topic}-{p}" for p in range(6))  # each exactly once
    assert sorted(assignment) == ["m1", "m2", "m3"]
    assert all(len(parts) == 2 for parts in assignment.values())
    counts = metrics.delivery_counts(group.messages(), run)
    assert counts == {"processed": 3000, "unique": 3000, "duplicates": 0, "lost": 0}
    assert not labkit_threads()


# -- crashes, leaves and stalls -------------------------------------------------------------


def test_a_crash_is_noticed_after_the_session_timeout_a_leave_at_once(cluster1, topic):
    with ConsumerGroup(cluster1, [topic], members=3, config=FAST) as group:
        group.wait_for_stable(timeout=60)
        crashed = group.assignment()["m1"]
        group.crash_member("m1")
        group.wait_for_stable(timeout=60)
        left = group.assignment()["m2"]
        group.remove_member("m2")
        group.wait_for_stable(timeout=60)
        events = group.events()
    gaps = metrics.ownership_gaps(metrics.ownership(events))
    crash_gap = gaps[(gaps.cause == "crash") & gaps.partition.isin(crashed)].gap_s
    t_leave = events[(events.member == "m2") & (events.kind == "revoke")].t.max()
    leave_gap = gaps[(gaps.from_member == "m2") & (gaps.start >= t_leave)
                     & gaps.partition.isin(left)].gap_s
    assert len(crash_gap) == len(crashed) and len(leave_gap) == len(left)
    # The coordinator waits for the crashed member's session to expire...
    assert crash_gap.min() >= 0.5 * SESSION_MS / 1000
    # ...but hears a member that leaves at once.
    assert leave_gap.max() < 0.5 * crash_gap.min()
    assert not labkit_threads()


def test_a_crashed_member_commits_nothing_after_the_crash(cluster1, topic):
    # Batches of 500 messages take about 1 s to process, so the crash comes mid-batch: the
    # group's committed offset must not cover messages the member never processed.
    run = run_producer(cluster1, {"acks": "all"}, messages=3000, topics=[topic])
    with ConsumerGroup(cluster1, [topic], members=1, config=FAST, commit="sync-per-batch",
                       batch_size=500, processing=0.002) as group:
        group.wait_for_messages(700, timeout=60)
        owned = group.assignment()["m1"]
        group.crash_member("m1")
        done = group.messages()
    committed = commits.committed_offsets(cluster1, group.group_id, owned)
    starts = commits.log_offsets(cluster1, owned, end=False)
    ends = commits.log_offsets(cluster1, owned)
    at_risk = consumer_faults.offsets_at_risk(done, committed, starts, ends)
    assert at_risk.skip.sum() == 0, at_risk
    assert 0 < at_risk.redo.sum() < 500, at_risk  # the part of the batch in progress
    assert run.delivered == 3000 and not labkit_threads()


def test_pausing_beyond_max_poll_interval_records_the_error_and_moves_partitions(cluster1,
                                                                                 topic):
    config = {**FAST, "max.poll.interval.ms": SESSION_MS}
    with ConsumerGroup(cluster1, [topic], members=2, config=config) as group:
        group.wait_for_stable(timeout=60)
        paused = group.assignment()["m1"]
        group.pause_member("m1", 8.5)
        wait_until(lambda: (group.events().kind == "resume").any(), 30, "m1 to resume")
        wait_until(lambda: group.events().detail.str.contains("_MAX_POLL_EXCEEDED").any(), 30,
                   "the max poll error")
        group.wait_for_stable(timeout=60)
        events = group.events()
    t_pause, t_resume = (events[events.kind == k].t.iloc[0] for k in ("pause", "resume"))
    errors = events[(events.kind == "error") & (events.member == "m1")]
    assert errors.detail.str.contains("maximum poll interval").any(), errors
    taken = events[(events.kind == "assign") & (events.member == "m2")
                   & events.t.between(t_pause, t_resume)]
    assert set(paused) <= {p for parts in taken.partitions for p in parts}
    assert (events[(events.member == "m1") & (events.t > t_resume)].kind == "assign").any()
    assert not labkit_threads()


def test_a_final_commit_that_fails_is_recorded_and_the_member_still_leaves(cluster1, topic):
    # Paused past max.poll.interval.ms, the member has lost its assignment when it is told to
    # stop: its final commit of processed offsets fails, and the record must say so.
    run_producer(cluster1, {"acks": "all"}, messages=1000, topics=[topic])
    config = {**FAST, "max.poll.interval.ms": SESSION_MS}
    group = ConsumerGroup(cluster1, [topic], members=1, config=config, commit="sync-per-batch",
                          commit_every=10_000)
    with group:
        group.wait_for_messages(1000, timeout=60)
        group.pause_member("m1", 60)
        wait_until(lambda: cluster1.admin().describe_consumer_groups([group.group_id])[
            group.group_id].result(10).members == [], 30, "the coordinator to drop m1")
    events = group.events()
    failed = events[(events.kind == "error") & events.detail.str.startswith("final commit failed")]
    assert len(failed) == 1 and "ASSIGNMENT_LOST" in failed.detail.iloc[0], events
    assert events.kind.iloc[-1] == "leave" and not group.members and not labkit_threads()


def test_a_member_still_running_after_stop_is_an_error_not_forgotten(cluster1, topic):
    run_producer(cluster1, {"acks": "all"}, messages=5, topics=[topic])
    group = ConsumerGroup(cluster1, [topic], members=1, config=FAST, processing=3.0,
                          batch_size=1).start()
    try:
        wait_until(lambda: len(group.messages()) >= 1, 60, "one message processed")
        with pytest.raises(RuntimeError, match=r"member\(s\) m1 still running 0.5 s after"):
            group.stop(timeout=0.5)  # m1 is inside its 3 s of processing
        assert list(group.members) == ["m1"]
    finally:
        group.stop(timeout=30)
    assert not group.members and not labkit_threads()


# -- the commit accounting ------------------------------------------------------------------


def test_offsets_at_risk_predicts_redo_and_skip():
    processed = pd.DataFrame({"topic": ["t"] * 5, "partition": [0, 0, 0, 1, 1],
                              "offset": [10, 11, 12, 0, 1]})
    table = consumer_faults.offsets_at_risk(processed, {"t-0": 11, "t-1": 5, "t-2": None},
                                            starts={"t-0": 0, "t-1": 0, "t-2": 0},
                                            ends={"t-0": 20, "t-1": 9, "t-2": 4},
                                            moved={"t-0", "t-1", "t-2"}).set_index("partition")
    assert table.loc["t-0"].to_dict() == {"processed": 13, "committed": 11, "left": 7,
                                          "moved": True, "redo": 2, "skip": 0}
    assert table.loc["t-1", ["redo", "skip"]].tolist() == [0, 3]  # committed ahead: lost
    assert table.loc["t-2", ["processed", "committed", "redo", "skip"]].tolist() == [0] * 4
    kept = consumer_faults.offsets_at_risk(processed, {"t-0": 11}, {"t-0": 0}, {"t-0": 20},
                                           moved=set())
    assert kept.loc[0, ["redo", "skip"]].tolist() == [0, 0]  # it stayed: read on from 13


def test_fault_each_accounts_for_every_duplicate_and_loss(cluster1, topic):
    run = run_producer(cluster1, {"acks": "all"}, messages=2400, keys="uniform",
                       topics=[topic])
    variants = {"per-message": {"commit": "sync-per-message"},
                "per-batch": {"commit": "sync-per-batch"},
                "auto": {"commit": "auto"}}
    runs = commits.fault_each(cluster1, [topic], run, variants, fault="crash", at=0.3,
                              members=2, processing=0.002, config=FAST, timeout=120)
    table = consumer_faults.commit_outcomes(runs, run)
    assert consumer_faults.predicted_exactly(table), table
    assert (consumer_faults.redone_elsewhere(table) >= 0).all()
    assert list(table.index) == list(variants)
    assert (table.partitions == 3).all()
    assert (table.duplicates_there == table.redo).all(), table
    assert (table.lost_there == table.skip).all(), table
    assert table.loc[["per-message", "per-batch"], "lost"].eq(0).all(), table
    assert table.loc["per-message", "duplicates"] <= 3  # at most one per crashed partition
    for r in runs.values():
        assert r.at_fault.left.sum() > 0  # the crash came mid-stream
        assert (r.events.kind == "crash").sum() == 1
    assert not labkit_threads()
