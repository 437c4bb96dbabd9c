"""Idempotence, transactions and fault schedules against the session's real 3-broker cluster.

Every test leaves the cluster whole: what it breaks it restarts, and it waits for full ISRs.
"""

import time
import uuid

import pytest

from labkit.analysis.audit import audit
from labkit.cluster import (
    ClusterError,
    ExternalCluster,
    FaultInjectionUnavailable,
    wait_until,
)
from labkit.cluster.faults import FaultSchedule, leader_fault, serving, wait_healthy
from labkit.workloads.producer import run_producer
from labkit.workloads.readers import read_topic
from labkit.workloads.transactions import outcome_of, run_transactions

RETRYING = {"acks": "all", "max.in.flight.requests.per.connection": 5,
            "request.timeout.ms": 1000}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic(cluster3):
    name = unique("idem")
    cluster3.create_topic(name, partitions=3, replication_factor=3)
    yield name
    wait_healthy(cluster3, [name], timeout=90)
    cluster3.delete_topic(name)


def test_idempotent_producer_across_a_leader_kill_writes_each_message_once_in_order(
        cluster3, topic):
    steps = leader_fault("kill", topic, at=0.5, length=0.5)
    with FaultSchedule(cluster3, steps) as schedule:
        run = run_producer(cluster3, {**RETRYING, "enable.idempotence": True}, duration=2,
                           rate=3000, topics=[topic])
    assert schedule.events.action.tolist() == ["kill", "restart"]
    killed = schedule.events.broker.iloc[0]
    assert schedule.events.broker.tolist() == [killed, killed]
    result = audit(run.records, read_topic(cluster3, topic), run.run_id)
    t = result.totals
    assert t["acked"] == t["sent"] > 3000
    assert (t["duplicates"], t["reordered"], t["lost"], t["acked_elsewhere"]) == (0, 0, 0, 0)
    assert t["found"] == t["sent"]


def test_without_idempotence_acks_all_still_loses_nothing_across_a_leader_pause(
        cluster3, topic):
    with FaultSchedule(cluster3, leader_fault("pause", topic, at=0.3, length=1.5)) as schedule:
        run = run_producer(cluster3, {**RETRYING, "enable.idempotence": False}, duration=2,
                           rate=3000, topics=[topic])
    assert not cluster3.is_paused(schedule.events.broker.iloc[0])
    result = audit(run.records, read_topic(cluster3, topic), run.run_id)
    # Duplicates and reorders may or may not happen; losing an acks=all message may not.
    assert result.totals["lost"] == 0
    assert result.totals["found"] == result.totals["distinct"] + result.totals["duplicates"]
    assert result.totals["distinct"] == result.totals["sent"]


def test_read_committed_sees_exactly_the_committed_transactions(cluster3, topic):
    txn = run_transactions(cluster3, topic, batches=6, batch_size=50, abort_every=3)
    assert txn.batches.outcome.tolist() == ["commit", "commit", "abort"] * 2
    assert txn.totals() == {"transactions": 6, "committed_transactions": 4,
                            "aborted_transactions": 2, "committed_messages": 200,
                            "aborted_messages": 100}
    assert (txn.records.error == "").all()  # aborted messages were written, then aborted
    committed = read_topic(cluster3, topic, "read_committed")
    uncommitted = read_topic(cluster3, topic, "read_uncommitted")
    assert sorted(committed.msg_id) == sorted(txn.committed_ids)
    assert sorted(uncommitted.msg_id) == sorted(txn.committed_ids | txn.aborted_ids)
    assert txn.seen_by(committed) == {"committed": 200, "aborted": 0, "records": 200}
    assert txn.seen_by(uncommitted) == {"committed": 200, "aborted": 100, "records": 300}
    assert audit(txn.records, uncommitted, txn.run_id).totals["duplicates"] == 0
    # Each transaction leaves one commit or abort marker in each partition it wrote to.
    markers = txn.markers(uncommitted)
    assert markers.partition.tolist() == [0, 1, 2]
    assert (markers.transactions == 6).all()  # 12 keys spread each batch over 3 partitions
    assert (markers.gaps == markers.expected).all() and (markers.gaps == 5).all()
    # read_committed also skips the aborted records: bigger holes in its offsets.
    assert txn.markers(committed).gaps.sum() > markers.gaps.sum()


def test_transactional_run_refuses_bad_arguments(cluster3):
    with pytest.raises(ValueError, match="batches=0 must be an integer >= 1"):
        run_transactions(cluster3, "t", batches=0)
    with pytest.raises(ValueError, match="pass transactional_id="):
        run_transactions(cluster3, "t", config={"transactional.id": "x"})
    with pytest.raises(ValueError, match="acks='2' is not allowed"):
        run_transactions(cluster3, "t", config={"acks": "2"})


def test_outcome_of_aborts_every_nth_batch():
    assert [outcome_of(b, 3) for b in range(6)] == ["commit", "commit", "abort"] * 2
    assert {outcome_of(b, 0) for b in range(5)} == {"commit"}
    assert {outcome_of(b, 1) for b in range(5)} == {"abort"}


def test_fault_schedule_records_when_each_fault_happened(cluster3, topic):
    start = time.time()
    with FaultSchedule(cluster3, [(0.2, "pause", 2), (0.6, "resume", "last")]) as schedule:
        time.sleep(0.1)
    # The block ended before the steps were due: leaving it waited for them.
    events = schedule.events
    assert events[["step", "action", "target", "broker"]].values.tolist() == [
        [0, "pause", "2", 2], [1, "resume", "last", 2]]
    assert (events.t_s >= events.at_s).all() and (events.t_s < events.at_s + 0.5).all()
    assert (events.done_s >= events.t_s).all()
    walls = [w.timestamp() for w in events.wall]
    assert start <= schedule.started_wall < walls[0] < walls[1] < time.time()
    assert walls[1] - walls[0] == pytest.approx(0.4, abs=0.2)
    assert not cluster3.is_paused(2)


def test_a_failing_block_cancels_the_schedule_and_heals_the_cluster(cluster3, topic):
    victim = cluster3.leader(topic, 0)
    steps = [(0.0, "pause", victim), (30.0, "resume", "last")]
    with pytest.raises(RuntimeError, match="workload failed"):
        with FaultSchedule(cluster3, steps) as schedule:
            wait_until(lambda: cluster3.is_paused(victim), 10, "the pause")
            raise RuntimeError("workload failed")
    assert schedule.events.action.tolist() == ["pause"]  # the resume step was cancelled...
    assert serving(cluster3, victim)  # ...but healing resumed the broker
    assert cluster3.brokers == [1, 2, 3]


def test_a_killed_broker_is_still_registered_but_not_serving(cluster3, topic):
    victim = next(b for b in cluster3.replicas(topic, 0) if b != cluster3.leader(topic, 0))
    cluster3.kill(victim)
    try:
        assert victim in cluster3.brokers  # until the controller's session timeout
        assert not serving(cluster3, victim)
    finally:
        cluster3.restart(victim)
    wait_healthy(cluster3, [topic], timeout=90)
    assert serving(cluster3, victim) and cluster3.isr(topic, 0) == [1, 2, 3]


def test_schedules_are_checked_before_anything_starts(cluster3):
    bad = {
        "action='stop' is not allowed": [(0, "stop", 1)],
        "no broker 7 in this cluster": [(0, "kill", 7)],
        "target='leader:x' must be": [(0, "kill", "leader:x")],
        "'last' needs a previous step": [(0, "resume", "last")],
        "comes before the previous step": [(2, "pause", 1), (1, "resume", "last")],
        "at_s=-1 must be seconds >= 0": [(-1, "kill", 1)],
        "expected \\(at_s, action, target\\)": [(0, "kill")],
    }
    for message, steps in bad.items():
        with pytest.raises(ValueError, match=message):
            FaultSchedule(cluster3, steps)
    with pytest.raises(ValueError, match="fault='freeze' is not known"):
        leader_fault("freeze", "t")
    external = ExternalCluster(cluster3.bootstrap_servers)
    with pytest.raises(FaultInjectionUnavailable, match="needs a cluster labkit runs"):
        FaultSchedule(external, [(0, "kill", 1)])
    assert cluster3.brokers == [1, 2, 3]


def test_leader_fault_builds_the_steps():
    assert leader_fault("pause", "t", 1, at=1.0, length=2.0) == [
        (1.0, "pause", "leader:t:1"), (3.0, "resume", "last")]
    assert leader_fault("kill", "t", at=0.5, length=1) == [
        (0.5, "kill", "leader:t:0"), (1.5, "restart", "last")]
    assert leader_fault("restart", "t") == [(1.0, "restart", "leader:t:0")]


def test_an_error_in_the_schedule_is_raised_in_the_caller(cluster3, topic):
    victim = next(b for b in cluster3.replicas(topic, 0) if b != cluster3.leader(topic, 0))
    with pytest.raises(ClusterError, match=f"broker {victim} is not running; cannot pause"):
        with FaultSchedule(cluster3, [(0, "kill", victim), (0, "pause", "last")]):
            pass
    assert serving(cluster3, victim)  # healed


def test_two_brokers_down_leave_the_controller_shrinking_isrs_to_the_survivor(cluster3, topic):
    steps = [(0.0, "kill", 2), (0.0, "shutdown", 3)]
    with FaultSchedule(cluster3, steps) as schedule:
        time.sleep(0.2)  # let both steps run before waiting on the controller

        def shrunk():
            table = cluster3.partitions([topic])
            return [table] if table.isr.map(lambda isr: isr == [1]).all() else None

        [table] = wait_until(shrunk, 60, "every ISR to shrink to broker 1")
        assert (table.leader == 1).all()
    assert schedule.events[["action", "broker"]].values.tolist() == [["kill", 2],
                                                                     ["shutdown", 3]]
    # Leaving the block healed the cluster: both brokers serve again.
    wait_healthy(cluster3, [topic], timeout=120)
    assert cluster3.brokers == [1, 2, 3]
