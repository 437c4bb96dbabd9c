"""labkit.experiments.replication: the min ISR and unclean election experiments on the
session's real 3-broker cluster (left whole after each), ReplicationRun and its plot on
hand-made data, LocalCluster.shutdown."""

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from labkit.analysis.audit import audit
from labkit.analysis.availability import outage_at
from labkit.cluster import unique_name, wait_until
from labkit.cluster.faults import FAULT_EVENT_COLUMNS, wait_healthy
from labkit.experiments.replication import (
    UNCLEAN_LABELS,
    ReplicationRun,
    min_isr_outage,
    topic_configs,
    unclean_changes,
    unclean_election,
)
from labkit.viz import plots

matplotlib.use("Agg")

ACKS = {"retries": 0, "linger.ms": 5, "message.timeout.ms": 3000}


# -- hand-made runs: no broker ---------------------------------------------------------------


def producer_run(run_id, started_wall, rows):
    """A stand-in for a ProducerRun: run_id, started_wall and records."""
    records = pd.DataFrame(rows, columns=["t_send", "t_delivered", "error"])
    records = records.assign(msg_id=np.arange(len(records)), topic="t",
                             partition=0, offset=np.arange(len(records)))
    return type("Run", (), {"run_id": run_id, "started_wall": started_wall,
                            "records": records})()


def hand_made_run(seen=True):
    # The producer started 0.5 s after the run: its clock is shifted by 0.5.
    producer = producer_run("r", 1000.5, [(0.0, 0.1, ""), (1.0, 1.1, "NOT_ENOUGH_REPLICAS"),
                                          (2.0, 2.2, ""), (2.5, float("nan"), "unreported")])
    lost = producer.records.iloc[[2]]
    found = producer.records.iloc[[0]].assign(run_id="r")
    result = audit(producer.records, found, "r")
    assert result.lost.msg_id.tolist() == lost.msg_id.tolist()
    events = pd.DataFrame([{"step": 0, "action": "kill", "target": "2", "broker": 2,
                            "at_s": 1.0, "t_s": 1.0, "done_s": 1.1, "wall": 1001.0}],
                          columns=list(FAULT_EVENT_COLUMNS))
    events["wall"] = pd.to_datetime(events.wall, unit="s", utc=True)
    partitions = pd.DataFrame({"wall": [1000.0, 1001.5, 1003.0], "topic": "t",
                               "partition": 0, "leader": [1, -1, 2],
                               "isr": [[1, 2], [], [2]], "replicas": [[1, 2]] * 3})
    return ReplicationRun(
        topics={"a": "t"}, producers={"a": producer}, audits={"a": result}, events=events,
        milestones=pd.DataFrame({"name": ["fenced"], "t_s": [1.5], "wall": [1001.5]}),
        phase_starts=[(0.0, "healthy"), (1.0, "broken"), (2.0, "back")],
        partitions=partitions.assign(t=partitions.wall - 1000.0),
        seen=(pd.DataFrame({"run_id": ["r"], "msg_id": [0], "t_consumed": [1001.0]})
              if seen else None),
        started_wall=1000.0, ended_s=3.5, min_insync=2)


def test_a_run_puts_producer_records_and_readers_on_its_own_clock():
    run = hand_made_run()
    rec = run.records("a")
    assert rec.t_send.tolist() == [0.5, 1.5, 2.5, 3.0]
    assert rec.t_delivered.iloc[:3].tolist() == pytest.approx([0.6, 1.6, 2.7])
    assert rec.t_seen.iloc[0] == 1.0 and rec.t_seen.iloc[1:].isna().all()
    assert run.t("fenced") == 1.5
    assert run.event("kill", 2).done_s == 1.1
    with pytest.raises(KeyError, match="there are fenced"):
        run.t("nothing")
    with pytest.raises(KeyError, match="no restart of broker 2"):
        run.event("restart", 2)
    assert outage_at(run.records("a"), 1.0) == pytest.approx((0.6, 2.7))


def test_a_run_counts_each_producer_per_phase():
    table = hand_made_run().phases()
    assert table.index.tolist() == [("a", 1), ("a", 2), ("a", 3)]
    assert table.phase.tolist() == ["healthy", "broken", "back"]
    assert table.sent.tolist() == [1, 1, 2]
    assert table.acked.tolist() == [1, 0, 1]
    assert table.NOT_ENOUGH_REPLICAS.tolist() == [0, 1, 0]
    assert table.unreported.tolist() == [0, 0, 1]


def test_a_run_measures_how_long_messages_took_to_become_readable():
    table = hand_made_run().read_delays()
    assert table.index.tolist() == [("a", 1), ("a", 2), ("a", 3)]
    assert table.acked.tolist() == [1, 0, 1] and table.read.tolist() == [1, 0, 0]
    assert table.median_s.iloc[0] == pytest.approx(0.4)  # acknowledged at 0.6, read at 1.0
    with pytest.raises(ValueError, match="no live reader"):
        hand_made_run(seen=False).read_delays()


@pytest.mark.parametrize("state, seen, panels", [("isr", True, 3), ("leader", False, 2)])
def test_replication_timeline_draws_a_panel_per_producer_reader_and_state(state, seen,
                                                                          panels):
    fig = plots.replication_timeline(hand_made_run(seen), state=state)
    assert len(fig.axes) == panels
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["acknowledged", "failed", "acknowledged, then lost"]
    assert fig.axes[-1].get_ylabel() == ("ISR size" if state == "isr" else "leader")
    with pytest.raises(ValueError, match="state="):
        plots.replication_timeline(hand_made_run(), state="epoch")


# -- the real cluster -------------------------------------------------------------------------


def test_the_experiments_check_their_arguments_before_anything_starts(cluster3, cluster1):
    with pytest.raises(ValueError, match="needs a cluster of 3 brokers"):
        unclean_election(cluster1, {"acks": "all"}, rate=10)
    with pytest.raises(ValueError, match="must differ"):
        unclean_election(cluster3, {"acks": "all"}, rate=10, leader=2, follower=2)
    with pytest.raises(ValueError, match="hold_s=-1"):
        unclean_election(cluster3, {"acks": "all"}, rate=10, hold_s=-1)
    with pytest.raises(ValueError, match="producer config acks='most'"):
        unclean_election(cluster3, {"acks": "most"}, rate=10)
    with pytest.raises(ValueError, match="two different brokers"):
        min_isr_outage(cluster3, {"all": {"acks": "all"}}, rate=10, down=(2, 2))
    with pytest.raises(ValueError, match="including"):
        min_isr_outage(cluster3, {"all": {"acks": "all"}}, rate=10, down=(2, 7))
    with pytest.raises(ValueError, match="rate > 0"):
        min_isr_outage(cluster3, {"all": {"acks": "all"}}, rate=0)
    assert cluster3.brokers == [1, 2, 3]


def test_topic_configs_say_what_a_topic_sets_and_what_it_inherits(cluster3):
    plain, unclean = unique_name("configs-plain"), unique_name("configs-unclean")
    cluster3.create_topic(plain, 1)
    cluster3.create_topic(unclean, 1, config={"unclean.leader.election.enable": "true"})
    table = topic_configs(cluster3, [plain, unclean], ["unclean.leader.election.enable"])
    assert table.set_index("topic").value.to_dict() == {plain: "false", unclean: "true"}
    assert table.set_index("topic").source.to_dict() == {
        plain: "STATIC_BROKER_CONFIG", unclean: "DYNAMIC_TOPIC_CONFIG"}
    with pytest.raises(ValueError, match="no config 'no.such.key'"):
        topic_configs(cluster3, [plain], ["no.such.key"])
    with pytest.raises(ValueError, match="cannot describe topic"):
        topic_configs(cluster3, [unique_name("missing")], ["min.insync.replicas"])


def test_shutdown_leaves_a_broker_down_out_of_the_isr_until_restarted(cluster3):
    topic = unique_name("shutdown")
    cluster3.create_topic(topic, 3, 3)
    try:
        cluster3.shutdown(3)
        assert not cluster3.is_running(3)
        # a controlled shutdown leaves the ISRs at once, without waiting to be fenced
        assert all(3 not in isr for isr in cluster3.partitions([topic]).isr)
        cluster3.shutdown(3)  # already down: nothing to do
    finally:
        cluster3.restart(3, timeout=120)
    wait_healthy(cluster3, [topic], timeout=120)


def test_unclean_election_loses_what_only_the_dead_leader_had(cluster3):
    run = unclean_election(cluster3, {"acks": "all", "linger.ms": 5,
                                      "message.timeout.ms": 3000},
                           rate=100, baseline_s=0.5, hold_s=1.5, tail_s=1.0)
    clean, unclean = UNCLEAN_LABELS["false"], UNCLEAN_LABELS["true"]
    assert run.events.action.tolist() == ["shutdown", "kill", "restart", "restart"]
    assert run.events.broker.tolist() == [2, 1, 2, 1]
    assert run.audits[clean].totals["lost"] == 0
    lost = run.audits[unclean].totals["lost"]
    assert lost > 0
    # what was lost had been acknowledged after the follower went down, by the leader alone
    rec = run.records(unclean)
    gone = rec[rec.msg_id.isin(run.audits[unclean].lost.msg_id)]
    assert (gone.t_delivered >= run.event("shutdown", 2).t_s).all()
    kill = run.event("kill", 1)
    restart = run.event("restart", 1)
    # the clean topic acknowledged nothing while its leader was down, the unclean one did
    for label, acked_while_down in ((clean, False), (unclean, True)):
        rec = run.records(label)
        done = rec.t_delivered[rec.error == ""]
        assert done.between(kill.done_s + 0.5, restart.t_s).any() == acked_while_down
    # from -1 if broker 1 was fenced before broker 2 was back, else straight from 1
    changes = unclean_changes(cluster3, [run.topics[unclean]])
    assert any(re.search(r"leader: -?\d+ -> 2\b", change) for change in changes.change)
    assert cluster3.brokers == [1, 2, 3]
    wait_healthy(cluster3, run.topics.values(), timeout=60)


def test_min_isr_outage_refuses_acks_all_and_hides_acks_1_until_the_isr_is_back(cluster3):
    configs = {"acks=all": {**ACKS, "acks": "all"}, "acks=1": {**ACKS, "acks": "1"}}
    # hold_s outlasts message.timeout.ms: a write held in the leader's purgatory from before
    # the ISR shrank blocks its connection until it expires; later writes meet the refusal.
    run = min_isr_outage(cluster3, configs, rate=100, baseline_s=0.5, hold_s=3.5, tail_s=1.0)
    assert run.events.action.tolist() == ["kill", "kill", "restart", "restart"]
    assert run.milestones.name.tolist() == ["ISR shrank", "min ISR met", "whole again"]
    table = run.phases().set_index("phase", append=True)
    below = table.xs("ISR below min", level="phase")
    assert below.loc["acks=all"].acked.item() == 0
    assert below.loc["acks=all"].NOT_ENOUGH_REPLICAS.item() > 0
    assert below.loc["acks=1"].acked.item() > 0
    assert run.audits["acks=all"].totals["lost"] == 0
    # acks=1 messages acknowledged below min ISR became readable only after a restart
    rec = run.records("acks=1")
    held = rec[(rec.error == "") & (rec.t_delivered >= run.t("ISR shrank"))
               & (rec.t_delivered < run.event("restart", 2).t_s)]
    assert len(held) and (held.t_seen > run.event("restart", 2).t_s).all()
    wait_until(lambda: cluster3.brokers == [1, 2, 3], 30, "every broker registered")
    wait_healthy(cluster3, run.topics.values(), timeout=60)
