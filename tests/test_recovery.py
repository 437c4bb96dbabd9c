"""Pure logic of notebook 21's measures, on hand-made frames: recovery time, stalls per
partition, client timeouts, consumption gaps, group reactions, leadership changes, and the
group coordinator rule."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from labkit.analysis import recovery
from labkit.analysis.timeline import leaders_after, partition_changes
from labkit.cluster.faults import replicas_led_by
from labkit.workloads.consumer import coordinator_partition

matplotlib.use("Agg")


def records(rows):
    """Producer records from (t_send, latency_ms or None, partition, error) tuples."""
    frame = pd.DataFrame(rows, columns=["t_send", "latency_ms", "partition", "error"])
    frame["msg_id"] = range(len(frame))
    frame["latency_ms"] = frame.latency_ms.astype(float)
    frame["t_delivered"] = frame.t_send + frame.latency_ms / 1000
    return frame


def steady(start, end, latency_ms=10.0, partitions=3, step=0.1):
    return [(t, latency_ms, i % partitions, "")
            for i, t in enumerate(np.arange(start, end, step).round(3))]


class Run:
    def __init__(self, label, rows, started_wall=1000.0, stats=()):
        self.label, self.records = label, records(rows)
        self.started_wall, self.stats = started_wall, list(stats)


def test_recovery_is_the_last_held_delivery():
    # Steady 10 ms; a fault at 5 s holds partition 0's messages until 9 s.
    rows = steady(0, 5) + [(5.2, 3800.0, 0, ""), (6.0, 3000.0, 0, ""), (6.1, 20.0, 1, "")]
    rows += steady(9.5, 12)
    got = recovery.recovery(records(rows), fault_s=5.0, factor=5, floor_ms=100)
    assert got.baseline_ms == pytest.approx(10, rel=0.01)
    assert got.threshold_ms == 100  # the floor: 5 x 10 ms is below it
    assert got.spike_ms == 3800 and got.held == 2 and got.failed == 0
    assert got.recovered_at_s == pytest.approx(9.0)
    assert got.recovered_after_s == pytest.approx(4.0)


def test_recovery_baseline_ignores_messages_the_fault_held():
    # Sent just before the fault, delivered long after: not part of the baseline.
    rows = steady(0, 5, latency_ms=40) + [(4.95, 6000.0, 0, "")]
    got = recovery.recovery(records(rows), fault_s=5.0, factor=5, floor_ms=1)
    assert got.baseline_ms == pytest.approx(40, rel=0.01)
    assert got.threshold_ms == pytest.approx(200, rel=0.01)
    assert got.held == 1 and got.recovered_at_s == pytest.approx(10.95)


def test_recovery_counts_failures_and_nothing_held_is_zero():
    quiet = recovery.recovery(records(steady(0, 10)), fault_s=5.0)
    assert quiet.held == 0 and quiet.recovered_after_s == 0
    failed = recovery.recovery(records(steady(0, 5) + [(6.0, 50.0, 0, "_MSG_TIMED_OUT")]),
                               fault_s=5.0, floor_ms=1000)
    assert failed.failed == 1 and failed.held == 1
    assert failed.recovered_at_s == pytest.approx(6.05)
    lost = recovery.recovery(records(steady(0, 5) + [(6.0, None, 0, "unreported")]),
                             fault_s=5.0)
    assert lost.unreported == 1 and math.isnan(lost.recovered_after_s)


def test_recovery_table_uses_wall_clock_faults_and_the_end_of_the_fault():
    a = Run("a", steady(0, 5) + [(5.5, 4500.0, 0, "")] + steady(10.5, 12), started_wall=1000)
    b = Run("b", steady(0, 4) + [(4.5, 2500.0, 1, "")] + steady(7.5, 11), started_wall=1001)
    table = recovery.recovery_table([a, b], fault_wall=1005.0, end_wall=1008.0, floor_ms=100)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "recovered_after_s"] == pytest.approx(5.0)
    assert table.loc["a", "recovered_after_end_s"] == pytest.approx(2.0)
    # b started a second later: its fault was at 4 s on its own clock
    assert table.loc["b", "recovered_after_s"] == pytest.approx(3.0)
    assert table.loc["b", "recovered_after_end_s"] == pytest.approx(0.0)
    assert table.held.dtype == np.int64 and "recovered_at_s" not in table


def test_releases_per_partition():
    rows = [(4.0, 10.0, 0, ""), (5.1, 7900.0, 0, ""), (5.3, 7800.0, 0, ""),
            (5.2, 4800.0, 1, ""), (5.4, 4700.0, 1, ""), (6.0, 1.0, 2, "_MSG_TIMED_OUT"),
            (9.0, 20.0, 2, "")]
    table = recovery.releases(records(rows), start_s=5.0, end_s=9.0)
    assert list(table.index) == [0, 1]  # partition 2 delivered nothing sent in the window
    assert table.loc[0, "sent"] == 2 and table.loc[0, "released_after_s"] == pytest.approx(8.0)
    assert table.loc[1, "released_after_s"] == pytest.approx(5.0)
    assert table.loc[0, "slowest_ms"] == 7900
    both = recovery.release_table([Run("x", rows), Run("y", rows, started_wall=1000.5)],
                                  start_wall=1005, end_wall=1009)
    assert both.index.names == ["run", "partition"]
    assert both.loc[("x", 0), "released_after_s"] == pytest.approx(8.0)
    assert both.loc[("y", 1), "released_after_s"] == pytest.approx(5.5)  # window 4.5..8.5 s


def test_client_timeouts_keep_a_broker_the_last_sample_dropped():
    def broker(node, timeouts, disconnects, rtt_max_us):
        return {"nodeid": node, "req_timeouts": timeouts, "disconnects": disconnects,
                "rtt": {"max": rtt_max_us, "cnt": 1}}  # librdkafka always prints cnt
    stats = [
        {"brokers": {"boot": broker(-1, 9, 9, 9), "a/1": broker(1, 0, 0, 5_000),
                     "b/2": broker(2, 1, 1, 0)}},
        {"brokers": {"a/1": broker(1, 0, 0, 2_000_000), "b/2": broker(2, 2, 2, 0)}},
        {"brokers": {"a/1": broker(1, 0, 0, 1_000)}},  # broker 2 fenced: gone from metadata
    ]
    table = recovery.client_timeouts(stats)
    assert list(table.index) == [1, 2]
    assert table.loc[2, "req_timeouts"] == 2 and table.loc[2, "disconnects"] == 2
    assert table.loc[1, "slowest_rtt_ms"] == 2000
    assert recovery.client_timeouts([]).empty


def test_consumption_gap_is_the_longest_stretch_without_a_message_after_the_fault():
    messages = pd.DataFrame({"t_consumed": [100.0, 100.5, 101.0, 109.0, 109.2]})
    gap = recovery.consumption_gap(messages, fault_wall=100.8)
    assert gap.from_s == pytest.approx(0.2) and gap.to_s == pytest.approx(8.2)
    assert gap.gap_s == pytest.approx(8.0)


def test_group_reaction_per_member():
    events = pd.DataFrame([
        (1.0, "m1", "assign", ["t-0"], ""), (1.0, "m2", "assign", ["t-1"], ""),
        (9.0, "m1", "lost", ["t-0"], ""), (9.5, "m2", "error", [], "_TRANSPORT: down"),
        (20.0, "m1", "assign", ["t-0"], ""), (21.0, "m2", "revoke", ["t-1"], ""),
    ], columns=["t", "member", "kind", "partitions", "detail"])
    table = recovery.group_reaction(events, started_wall=100.0, fault_wall=105.0)
    assert list(table.index) == ["m1", "m2"]
    assert table.loc["m1", "lost_s"] == 4.0 and table.loc["m1", "assigned_s"] == 15.0
    assert math.isnan(table.loc["m2", "lost_s"]) and table.loc["m2", "revoked"] == 1
    assert table.loc["m2", "errors"] == 1 and table.loc["m2", "last_error"] == "_TRANSPORT: down"
    assert math.isnan(table.loc["m2", "assigned_s"])  # its assignment came before the fault


def test_leaders_after_follows_the_partitions_a_broker_led():
    before = pd.DataFrame({"topic": ["t", "t", "u"], "partition": [0, 1, 0],
                           "leader": [2, 1, 2]})
    after = pd.DataFrame({"topic": ["t", "t"], "partition": [0, 1], "leader": [3, 1]})
    found = leaders_after(before, after, 2)
    assert found.values.tolist() == [["t", 0, 3, True], ["u", 0, -1, False]]


def test_partition_changes_finds_leader_moves_and_isr_changes():
    timeline = pd.DataFrame([
        (0.0, "t", 0, 3, [1, 2, 3]), (0.0, "t", 1, 1, [1, 2, 3]),
        (1.0, "t", 0, 3, [1, 2, 3]), (1.0, "t", 1, 1, [1, 2, 3]),
        (2.0, "t", 0, 1, [1, 2]), (2.0, "t", 1, 1, [1, 2]),
        (3.0, "t", 0, 1, [1, 2, 3]), (3.0, "t", 1, 1, [1, 2]),
    ], columns=["wall", "topic", "partition", "leader", "isr"])
    changes = partition_changes(timeline)
    assert changes[["wall", "partition", "leader", "was_leader"]].values.tolist() == [
        [2.0, 0, 1, 3], [2.0, 1, 1, 1], [3.0, 0, 1, 1]]
    assert changes.isr.tolist() == [[1, 2], [1, 2], [1, 2, 3]]
    assert changes.was_isr.tolist()[0] == [1, 2, 3]


@pytest.mark.parametrize("group_id, java_hash", [
    ("", 0), ("hello", 99162322), ("lab-group", None),
    ("polygenelubricants", -2**31),  # Integer.MIN_VALUE: Kafka's Utils.abs makes it 0
    ("\U0001F600", 31 * 0xD83D + 0xDE00),  # hashed as its two UTF-16 code units
])
def test_coordinator_partition_follows_kafkas_rule(group_id, java_hash):
    if java_hash is None:  # computed the way Java does, for an ASCII id
        h = 0
        for ch in group_id:
            h = (31 * h + ord(ch)) % 2**32
        java_hash = h - 2**32 if h >= 2**31 else h
    expected = 0 if java_hash == -2**31 else abs(java_hash) % 50
    assert coordinator_partition(group_id, 50) == expected


def test_replicas_led_by_walks_the_ring():
    assert replicas_led_by(2, [3, 1, 2], 4) == [[2, 3, 1], [3, 1, 2], [1, 2, 3], [2, 3, 1]]
    assert replicas_led_by(3, [1, 2, 3], 2, replication_factor=2) == [[3, 1], [1, 2]]
    with pytest.raises(ValueError, match="broker 4 from brokers \\[1, 2, 3\\]"):
        replicas_led_by(4, [1, 2, 3], 1)
    with pytest.raises(ValueError, match="replication_factor=4"):
        replicas_led_by(1, [1, 2, 3], 1, replication_factor=4)


def watched():
    """A PartitionWatch timeline: broker 3 leads t-0 and o-4, is fenced at 12.0, back at 20.0."""
    rows = []
    for wall in (9.0, 10.0, 12.0, 20.0):
        fenced = 12.0 <= wall < 20.0
        isr = [1, 2] if fenced else [1, 2, 3]
        rows += [(wall, "t", 0, 1 if fenced else 3, isr), (wall, "t", 1, 1, isr),
                 (wall, "o", 4, 2 if fenced else 3, isr)]
    return pd.DataFrame(rows, columns=["wall", "topic", "partition", "leader", "isr"])


def test_leader_moves_and_cluster_reaction_count_from_the_fault():
    moves = recovery.leader_moves(watched(), broker=3, fault_wall=10.0)
    assert moves[["topic", "partition", "leader"]].values.tolist() == [["o", 4, 2], ["t", 0, 1]]
    assert moves.after_s.tolist() == [2.0, 2.0]
    reaction = recovery.cluster_reaction(watched(), fault_wall=10.0)
    assert list(reaction.columns[:3]) == ["after_s", "topic", "partition"]
    assert sorted(reaction.after_s.unique()) == [2.0, 10.0]  # fenced, then the ISRs grew back
    assert recovery.leader_moves(watched(), broker=3, fault_wall=13.0).empty


def test_with_leader_moves_adds_markers_in_time_order():
    events = pd.DataFrame({"action": ["pause", "resume"], "broker": [3, 3],
                           "wall": pd.to_datetime([10.0, 20.0], unit="s", utc=True)})
    moves = recovery.leader_moves(watched(), broker=3, fault_wall=10.0)
    marked = recovery.with_leader_moves(events, moves[moves.topic == "t"])
    assert marked.action.tolist() == ["pause", "new leader", "resume"]
    assert marked.broker.tolist() == [3, 1, 3]
    assert marked.wall.iloc[1].timestamp() == 12.0


class ProducerRun(Run):
    def __init__(self, label, rows, stats=(), client_errors=0):
        super().__init__(label, rows, stats=stats)
        self.failed = int((~self.records.error.isin(["", "unreported"])).sum())
        self.unreported = int((self.records.error == "unreported").sum())
        self.client_errors = pd.DataFrame({"t": [1.0] * client_errors,
                                           "error": ["_TRANSPORT"] * client_errors,
                                           "reason": ["down"] * client_errors})


def test_producer_errors_table():
    stats = [{"brokers": {"a/1": {"nodeid": 1, "req_timeouts": 2, "disconnects": 1,
                                  "rtt": {"max": 0}},
                          "b/2": {"nodeid": 2, "req_timeouts": 1, "disconnects": 0,
                                  "rtt": {"max": 0}}}}]
    quiet = ProducerRun("quiet", steady(0, 1))
    rough = ProducerRun("rough", steady(0, 1) + [(1.0, 5.0, 0, "_MSG_TIMED_OUT"),
                                                 (1.1, None, 0, "unreported")],
                        stats=stats, client_errors=2)
    table = recovery.producer_errors([quiet, rough])
    assert table.loc["rough"].tolist() == [1, 1, 2, 3, 1]
    assert table.loc["quiet", "failed"] == 0 and math.isnan(table.loc["quiet", "req_timeouts"])


def test_recovery_table_shows_the_slowest_message_sent_after_the_end():
    run = Run("r", steady(0, 5) + [(5.5, 4500.0, 0, ""), (8.5, 900.0, 1, "")] + steady(9, 10))
    table = recovery.recovery_table([run], fault_wall=1005.0, end_wall=1008.0)
    assert table.loc["r", "after_end_slowest_ms"] == 900
