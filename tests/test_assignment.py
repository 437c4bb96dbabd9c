"""Assignment scenarios: step checks, and groups on a real broker (phase metrics by hand:
test_groups.py)."""

import pytest

from labkit.analysis import groups
from labkit.cluster import unique_name
from labkit.experiments import assignment
from labkit.experiments.assignment import Scenario
from labkit.workloads.consumer import ConsumerGroup


def test_steps_are_checked_and_labelled():
    assert assignment.add_member("m4").label == "add m4"
    assert assignment.restart_member("m2", 5).down_s == 5.0
    with pytest.raises(ValueError, match="step kind 'crash'"):
        assignment.Step("crash", "m1")
    with pytest.raises(ValueError, match="down_s=-1"):
        assignment.restart_member("m1", -1)


@pytest.mark.parametrize("steps, message", [
    ([assignment.remove_member("m9")], "remove m9, but the members then are"),
    ([assignment.add_member("m2")], "add_member\\('m2'\\), but m2 is already a member"),
    ([assignment.remove_member("m1"), assignment.restart_member("m1", 1)], "restart m1, but"),
])
def test_scenarios_naming_absent_members_fail_before_anything_starts(steps, message):
    with pytest.raises(ValueError, match=message):
        assignment.run_scenarios(None, ["t"], {"s": Scenario({}, steps, members=2)})


def test_cooperative_scenario_moves_only_what_it_must(cluster1):
    topic = unique_name("assign")
    cluster1.create_topic(topic, partitions=6)
    fast = {"partition.assignment.strategy": "cooperative-sticky", "heartbeat.interval.ms": 500,
            "session.timeout.ms": 6000}
    try:
        runs = assignment.run_scenarios(cluster1, [topic], {
            "coop": Scenario(fast, [assignment.add_member("m3"), assignment.remove_member("m1")],
                             members=2)})
    finally:
        cluster1.delete_topic(topic)
    run = runs["coop"]
    assert list(run.phases.phase) == ["start", "add m3", "remove m1"]
    assert sorted(len(p) for p in run.phase("add m3").after.values()) == [2, 2, 2]
    table = groups.phase_summary(run.events, run.phases, run.end)
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
