"""Assignment scenarios: step checks and phase metrics by hand, groups on a real broker."""

import pandas as pd
import pytest

from labkit.cluster import unique_name
from labkit.experiments import assignment
from labkit.experiments.assignment import Scenario, ScenarioRun
from labkit.workloads.consumer import ConsumerGroup

A = ["t-0", "t-1", "t-2", "t-3"]


def run_of(events, phases, end):
    frame = pd.DataFrame(events, columns=["t", "member", "kind", "partitions", "detail"])
    table = pd.DataFrame(phases, columns=["phase", "t_trigger", "t_settled", "before", "after"])
    return ScenarioRun("hand-made", "g", "classic", frame, table, end, A)


def test_steps_are_checked_and_labelled():
    assert assignment.add("m4").label == "add m4"
    assert assignment.restart("m2", 5).down_s == 5.0
    with pytest.raises(ValueError, match="step kind 'crash'"):
        assignment.Step("crash", "m1")
    with pytest.raises(ValueError, match="down_s=-1"):
        assignment.restart("m1", -1)


@pytest.mark.parametrize("steps, message", [
    ([assignment.remove("m9")], "remove m9, but the members then are"),
    ([assignment.add("m2")], "add\\('m2'\\), but m2 is already a member"),
    ([assignment.remove("m1"), assignment.restart("m1", 1)], "restart m1, but"),
])
def test_scenarios_naming_absent_members_fail_before_anything_starts(steps, message):
    with pytest.raises(ValueError, match=message):
        assignment.run_scenarios(None, ["t"], {"s": Scenario({}, steps, members=2)})


def test_eager_step_pauses_every_partition_and_counts_handovers():
    start = {"m1": A[:2], "m2": A[2:]}
    after = {"m1": A[:1], "m2": A[1:2], "m3": A[2:]}
    run = run_of([
        (0.1, "m1", "assign", A[:2], ""), (0.1, "m2", "assign", A[2:], ""),
        (1.0, "m3", "join", [], ""),
        (2.0, "m1", "revoke", A[:2], ""), (2.0, "m2", "revoke", A[2:], ""),
        (2.5, "m1", "assign", A[:1], ""), (2.5, "m2", "assign", A[1:2], ""),
        (2.6, "m3", "assign", A[2:], ""),
    ], [("start", 0.0, 0.5, {}, start), ("add m3", 1.0, 3.0, start, after)], end=3.0)
    table = assignment.phase_summary(run)
    add = table.loc["add m3"]
    assert add.paused == 4 and add.handovers == 3 and add.net_moved == 3
    assert add.unavoidable == 2  # what m3 ends up with
    assert add.longest_pause_s == pytest.approx(0.6) and add.settle_s == pytest.approx(1.6)
    assert table.loc["start"].paused == 0 and table.loc["start"].handovers == 0


def test_restart_gap_of_the_same_member_is_a_pause_but_no_handover():
    both = {"m1": A[:2], "m2": A[2:]}
    run = run_of([
        (0.1, "m1", "assign", A[:2], ""), (0.1, "m2", "assign", A[2:], ""),
        (1.0, "m2", "revoke", A[2:], ""), (1.0, "m2", "leave", [], ""),
        (5.0, "m2", "join", [], ""), (5.2, "m2", "assign", A[2:], ""),
    ], [("start", 0.0, 0.5, {}, both), ("restart m2", 1.0, 6.0, both, both)], end=6.0)
    row = assignment.phase_summary(run).loc["restart m2"]
    assert row.handovers == 0 and row.paused == 2 and row.unavoidable == 0
    assert row.longest_pause_s == pytest.approx(4.2) and row.ownerless_s == pytest.approx(8.4)


def test_shapes_show_short_partition_names_per_member():
    run = run_of([], [("start", 0.0, 0.5, {}, {"m2": ["order-events-ab12-10", "user-events-cd-2"],
                                                "m1": ["order-events-ab12-9"]})], end=1.0)
    table = assignment.shapes({"x": run})
    assert list(table.columns) == ["m1", "m2"]
    assert table.loc[("x", "start")].tolist() == ["o9", "o10 u2"]


def test_cooperative_scenario_moves_only_what_it_must(cluster1):
    topic = unique_name("assign")
    cluster1.create_topic(topic, partitions=6)
    fast = {"partition.assignment.strategy": "cooperative-sticky", "heartbeat.interval.ms": 500,
            "session.timeout.ms": 6000}
    try:
        runs = assignment.run_scenarios(cluster1, [topic], {
            "coop": Scenario(fast, [assignment.add("m3"), assignment.remove("m1")], members=2)})
    finally:
        cluster1.delete_topic(topic)
    run = runs["coop"]
    assert list(run.phases.phase) == ["start", "add m3", "remove m1"]
    assert sorted(len(p) for p in run.phase("add m3").after.values()) == [2, 2, 2]
    table = assignment.phase_summary(run)
    for step in ("add m3", "remove m1"):
        assert table.loc[step].handovers == table.loc[step].unavoidable == 2
        assert table.loc[step].paused == 2
    assert set(run.phase("remove m1").after) == {"m2", "m3"}


def test_settle_waits_for_kip848_targets(cluster1):
    topic = unique_name("assign848")
    cluster1.create_topic(topic, partitions=4)
    try:
        with ConsumerGroup(cluster1, [topic], members=2,
                           config={"group.protocol": "consumer"}) as group:
            settled = assignment.settle(group, timeout=60)
            assert assignment.targets_reached(group)
    finally:
        cluster1.delete_topic(topic)
    assert sorted(len(p) for p in settled.values()) == [2, 2]
